//! The weblog collector: request and error counters from web server access logs.
//!
//! A background thread follows every configured log ([`tail::Follower`]) and keeps its
//! counters; a scrape only reads them. Error rate is then
//! `sum(rate(shoehub_http_requests_total{code=~"5.."}[5m])) / sum(rate(shoehub_http_requests_total[5m]))`.

pub mod parse;
pub mod tail;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Run, Served, Settings};

use crate::exposition::{Family, MetricWriter};
use parse::METHODS;
use tail::{Follower, Shared, BUCKETS};

/// One entry of `weblogs:` — an access log to follow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeblogConfig {
    /// The `log` label of its series.
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub format: LogFormat,
    /// Count what the file already holds when the exporter starts; by default only
    /// lines written after the start are counted, so a restart does not count history
    /// again. A file that appears later is always read from its beginning.
    #[serde(default)]
    pub from_beginning: bool,
    /// Longer lines are counted as parse errors and skipped.
    #[serde(default = "max_line_bytes")]
    pub max_line_bytes: usize,
}

/// Each log needs a name of its own: it is the `log` label.
pub fn validate(logs: &[WeblogConfig]) -> Result<(), String> {
    for (i, w) in logs.iter().enumerate() {
        if w.name.is_empty() {
            return Err(format!("weblogs[{i}].name: must not be empty"));
        }
        if w.max_line_bytes == 0 {
            return Err(format!(
                "weblogs[{i}].max_line_bytes: 0 would make every line an error; give a size such as 65536"
            ));
        }
        if let Some(j) = logs[..i].iter().position(|o| o.name == w.name) {
            return Err(format!(
                "weblogs[{i}].name: {:?} is already the name of weblogs[{j}]; each log needs its own (it is the `log` label)",
                w.name
            ));
        }
    }
    Ok(())
}

fn max_line_bytes() -> usize {
    64 * 1024
}

/// An access log's line format.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`; nginx's default too.
    #[default]
    Combined,
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// `combined` plus Apache's `%D` (microseconds) as the last field.
    CombinedDuration,
}

static REQUESTS: Family = Family::counter(
    "shoehub_http_requests_total",
    "Requests in the access log, by method (other: outside the standard set) and status code.",
);
static RESPONSE_BYTES: Family = Family::counter(
    "shoehub_http_response_size_bytes_total",
    "Response bytes the access log recorded (%b).",
)
.unit("bytes");
static DURATION: Family = Family::histogram(
    "shoehub_http_request_duration_seconds",
    "Time the server took per request (%D), for logs whose format records it.",
)
.unit("seconds");
static LINES: Family = Family::counter(
    "shoehub_weblog_lines_total",
    "Lines read from the access log, parsed or not.",
);
static PARSE_ERRORS: Family = Family::counter(
    "shoehub_weblog_parse_errors_total",
    "Lines of the access log that were not a request in its format (or were over the length bound).",
);

/// How often the logs are checked for new lines and rotations.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

struct Log {
    name: String,
    format: LogFormat,
    shared: Arc<Mutex<Shared>>,
}

pub struct Weblog {
    logs: Vec<Log>,
    /// The followers' thread stops once this is gone (a reload replaced the collector).
    alive: Arc<()>,
}

impl Weblog {
    /// The collector and the followers that feed it; [`spawn`] starts following.
    pub fn new(cfgs: &[WeblogConfig]) -> (Weblog, Vec<Follower>) {
        let followers: Vec<Follower> = cfgs.iter().map(Follower::new).collect();
        let logs = followers
            .iter()
            .map(|f| Log {
                name: f.name.clone(),
                format: f.format(),
                shared: Arc::clone(&f.shared),
            })
            .collect();
        let alive = Arc::new(());
        (Weblog { logs, alive }, followers)
    }
}

/// Starts the thread that follows the logs for as long as `collector` lives.
pub fn spawn(collector: &Weblog, mut followers: Vec<Follower>) -> std::io::Result<()> {
    let alive = Arc::downgrade(&collector.alive);
    std::thread::Builder::new()
        .name("weblog".to_owned())
        .stack_size(256 * 1024)
        .spawn(move || {
            while alive.strong_count() > 0 {
                for f in &mut followers {
                    f.poll();
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        })
        .map(drop)
}

/// One log's counters as a scrape copies them (outside the lock for the writing).
struct Snapshot {
    requests: Vec<(usize, u16, u64)>,
    response_bytes: u64,
    lines: u64,
    parse_errors: u64,
    cumulative: [u64; BUCKETS.len()],
    duration_sum: f64,
    durations: u64,
    error: Option<String>,
}

fn snapshot(log: &Log) -> Snapshot {
    let shared = match log.shared.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    let s = &shared.stats;
    let requests = s
        .requests
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(i, n)| (i / 1000, (i % 1000) as u16, *n))
        .collect();
    let mut cumulative = [0; BUCKETS.len()];
    let mut running = 0;
    for (c, n) in cumulative.iter_mut().zip(&s.duration_buckets) {
        running += n;
        *c = running;
    }
    Snapshot {
        requests,
        response_bytes: s.response_bytes,
        lines: s.lines,
        parse_errors: s.parse_errors,
        cumulative,
        duration_sum: s.duration_micros as f64 / 1e6,
        durations: s.durations,
        error: shared.error.clone(),
    }
}

/// Every family this collector writes.
pub static SERVED: Served =
    Served::families(&[&REQUESTS, &RESPONSE_BYTES, &DURATION, &LINES, &PARSE_ERRORS]);

/// How long a scrape may take to copy the counters. The followers keep them in memory
/// and a scrape only locks and copies them: a log that stalls stalls its follower,
/// never this.
const TIMEOUT: Duration = Duration::from_secs(5);

/// On while `weblogs:` lists a log; with `start`, the followers begin.
pub fn build(s: &Settings<'_>, env: &Env) -> Result<Option<AnyCollector>, BuildError> {
    if s.weblogs.is_empty() {
        return Ok(None);
    }
    let (collector, followers) = Weblog::new(s.weblogs);
    if env.start {
        spawn(&collector, followers).map_err(BuildError::Thread)?;
    }
    let run = Run::Blocking(Arc::new(collector));
    Ok(Some(AnyCollector::new("weblog", TIMEOUT, SERVED, run)))
}

impl Collector for Weblog {
    /// Only in-memory counters: never blocks.
    fn may_block(&self) -> bool {
        false
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let snaps: Vec<Snapshot> = self.logs.iter().map(snapshot).collect();
        for (log, s) in self.logs.iter().zip(&snaps) {
            for &(method, status, n) in &s.requests {
                let digits = [
                    b'0' + (status / 100) as u8,
                    b'0' + (status / 10 % 10) as u8,
                    b'0' + (status % 10) as u8,
                ];
                let code = std::str::from_utf8(&digits).unwrap_or("000");
                w.sample_u64(
                    &REQUESTS,
                    &[
                        ("code", code),
                        ("log", &log.name),
                        ("method", METHODS[method]),
                    ],
                    n,
                );
            }
        }
        for (log, s) in self.logs.iter().zip(&snaps) {
            w.sample_u64(&RESPONSE_BYTES, &[("log", &log.name)], s.response_bytes);
        }
        for (log, s) in self.logs.iter().zip(&snaps) {
            if log.format == LogFormat::CombinedDuration {
                w.histogram(
                    &DURATION,
                    &[("log", &log.name)],
                    &BUCKETS,
                    &s.cumulative,
                    s.duration_sum,
                    s.durations,
                );
            }
        }
        for (log, s) in self.logs.iter().zip(&snaps) {
            w.sample_u64(&LINES, &[("log", &log.name)], s.lines);
        }
        for (log, s) in self.logs.iter().zip(&snaps) {
            w.sample_u64(&PARSE_ERRORS, &[("log", &log.name)], s.parse_errors);
        }
        let failed: Vec<String> = self
            .logs
            .iter()
            .zip(&snaps)
            .filter_map(|(log, s)| s.error.as_ref().map(|e| format!("{}: {e}", log.name)))
            .collect();
        match failed.first() {
            None => Ok(()),
            Some(first) => Err(CollectError::Partial {
                what: "access logs",
                failed: failed.len(),
                total: self.logs.len(),
                first: first.clone(),
            }),
        }
    }
}
