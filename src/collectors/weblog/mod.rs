//! The weblog collector: request and error counters from web server access logs.
//!
//! A background thread follows every configured log ([`tail::Follower`]) and keeps its
//! counters; a scrape only reads them. Error rate is then
//! `sum(rate(shoehub_http_requests_total{code=~"5.."}[5m])) / sum(rate(shoehub_http_requests_total[5m]))`.

pub mod parse;
pub mod tail;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CollectError, Collector};
use crate::config::{LogFormat, WeblogConfig};
use crate::exposition::{Family, MetricWriter};
use parse::METHODS;
use tail::{Follower, Shared, BUCKETS};

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
        (Weblog { logs }, followers)
    }
}

/// Starts the thread that follows the logs for as long as the process runs.
pub fn spawn(mut followers: Vec<Follower>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("weblog".to_owned())
        .stack_size(256 * 1024)
        .spawn(move || loop {
            for f in &mut followers {
                f.poll();
            }
            std::thread::sleep(POLL_INTERVAL);
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

impl Collector for Weblog {
    fn name(&self) -> &'static str {
        "weblog"
    }

    fn serves(&self) -> &'static [&'static str] {
        &["shoehub_http_", "shoehub_weblog_"]
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

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
