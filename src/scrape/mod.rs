//! The scrape engine: runs every enabled collector concurrently under a deadline and
//! assembles one exposition.
//!
//! Each collector runs on tokio's blocking pool (they read /proc, /sys and statvfs,
//! which block). Its deadline is the smaller of its own timeout and Prometheus'
//! `X-Prometheus-Scrape-Timeout-Seconds` minus an offset. A collector that overruns is
//! reported failed and its thread left to finish; until it does, later scrapes do not
//! start it again (unless it isolates blocking items itself), so a stuck source costs one
//! thread, not one per scrape.
//!
//! Collectors that wait on the network ([`AsyncCollector`]: the database) run as tasks
//! on the async runtime instead, and handle their deadline themselves: a hung server
//! costs neither a thread nor more than the deadline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::collectors::{AnyCollector, Collector, Run};
use crate::exposition::{finish, Format, MetricWriter};

mod stats;

pub use stats::{ExporterStats, Handler, SERVED};
use stats::{
    BUILD_INFO, COLLECTOR_DURATION, COLLECTOR_SUCCESS, NODE_COLLECTOR_DURATION,
    NODE_COLLECTOR_SUCCESS, REQUESTS,
};

/// One collector and what the engine remembers of it between scrapes.
struct Slot {
    collector: AnyCollector,
    /// A run that overran its deadline (its scrape's batch and index), until it returns.
    stalled: Mutex<Option<(Arc<Batch>, usize)>>,
    /// Whether the last scrape failed, so a failure is logged when it starts and a
    /// recovery when it ends, not on every scrape.
    failing: AtomicBool,
    /// The last output size, to size the next buffer in one allocation.
    last_len: AtomicUsize,
    /// Why it failed, while it fails (for the status page).
    cause: Mutex<Option<String>>,
}

/// The outcome of one collector in one scrape.
struct Outcome {
    ok: bool,
    seconds: f64,
    output: bytes::Bytes,
    cause: Option<String>,
}

/// One scrape's work: the collectors still to start, and what the finished ones wrote.
///
/// Only collectors that can block are queued here. Runner threads from the blocking
/// pool take them off the queue one by one. One runner starts (a thread hand-off costs
/// more than most collectors take); when a collector blocks, the scrape notices the
/// stalled progress and starts another runner for the rest, so a stuck source never
/// holds the others back past a short grace period.
struct Batch {
    slots: Vec<Arc<Slot>>,
    format: Format,
    next: AtomicUsize,
    finished: AtomicUsize,
    /// Set when the scrape stops waiting: runners then start nothing more.
    closed: AtomicBool,
    started: Vec<AtomicBool>,
    done: Vec<AtomicBool>,
    results: Mutex<Vec<Option<Outcome>>>,
    wake: tokio::sync::Notify,
}

impl Batch {
    fn run(&self) {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let i = self.next.fetch_add(1, Ordering::AcqRel);
            let Some(slot) = self.slots.get(i) else {
                return;
            };
            self.started[i].store(true, Ordering::Release);
            let outcome = run_one(slot, self.format);
            // After the scrape stopped waiting, the results are gone: drop this one.
            if let Ok(mut r) = self.results.lock() {
                if let Some(place) = r.get_mut(i) {
                    *place = Some(outcome);
                }
            }
            self.done[i].store(true, Ordering::Release);
            // Only the last one wakes the scrape: a wake-up per collector would cost more
            // than most collectors take. Stalls are noticed by the scrape's own timer.
            if self.finished.fetch_add(1, Ordering::AcqRel) + 1 == self.slots.len() {
                self.wake.notify_one();
            }
        }
    }
}

/// Runners a scrape starts with.
const INITIAL_RUNNERS: usize = 1;
/// How long a scrape waits for an asynchronous collector past its deadline.
const TASK_GRACE: Duration = Duration::from_millis(100);
/// How long a scrape waits without progress before it adds a runner.
const STALL_GRACE: Duration = Duration::from_millis(50);

pub struct Engine {
    slots: Vec<Arc<Slot>>,
    timeout_offset: Duration,
    pub stats: ExporterStats,
    /// The last scrape's exposition: the buffers it sent, shared, not copied.
    last: Mutex<Option<LastScrape>>,
}

/// What the last scrape served, and when.
#[derive(Debug, Clone)]
pub struct LastScrape {
    pub at: std::time::SystemTime,
    pub format: Format,
    pub parts: Vec<bytes::Bytes>,
}

impl Engine {
    pub fn new(collectors: Vec<AnyCollector>, timeout_offset: Duration) -> Self {
        Engine {
            slots: collectors
                .into_iter()
                .map(|collector| {
                    Arc::new(Slot {
                        collector,
                        stalled: Mutex::new(None),
                        failing: AtomicBool::new(false),
                        last_len: AtomicUsize::new(1024),
                        cause: Mutex::new(None),
                    })
                })
                .collect(),
            timeout_offset,
            stats: ExporterStats::default(),
            last: Mutex::new(None),
        }
    }

    /// The exposition the last scrape served, if there was one.
    pub fn last_scrape(&self) -> Option<LastScrape> {
        match self.last.lock() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Why each failing collector failed in its last run.
    pub fn failure_causes(&self) -> std::collections::BTreeMap<String, String> {
        self.slots
            .iter()
            .filter_map(|s| {
                let cause = s.cause.lock().ok()?.clone()?;
                Some((s.collector.name().to_owned(), cause))
            })
            .collect()
    }

    /// The names of the collectors this engine runs, in exposition order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.collector.name()).collect()
    }

    /// The deadline for one collector given Prometheus' scrape timeout, if it sent one.
    fn deadline(&self, own: Duration, scrape_timeout: Option<Duration>) -> Duration {
        match scrape_timeout {
            None => own,
            Some(t) => {
                // Too small a timeout to subtract the offset from: keep nine tenths.
                let budget = t
                    .checked_sub(self.timeout_offset)
                    .filter(|b| !b.is_zero())
                    .unwrap_or(t.mul_f64(0.9));
                own.min(budget)
            }
        }
    }

    /// Runs every collector and returns the whole exposition, in pieces to be sent in
    /// order.
    pub async fn scrape(
        &self,
        format: Format,
        scrape_timeout: Option<Duration>,
    ) -> Vec<bytes::Bytes> {
        let start = Instant::now();
        let n = self.slots.len();
        // Where each collector's outcome comes from.
        enum Source {
            Refused(String),
            Inline,
            Pooled(usize),
            Task(tokio::task::JoinHandle<Outcome>, Instant),
        }
        let mut sources = Vec::with_capacity(n);
        let mut pooled = Vec::new();
        for slot in &self.slots {
            let blocking = match &slot.collector.run {
                Run::Blocking(c) => c,
                Run::Async(c) => {
                    // Started first, so that it runs while this thread is busy below.
                    let deadline = start + self.deadline(slot.collector.timeout(), scrape_timeout);
                    let run = Arc::clone(c).collect(format, deadline);
                    let task = tokio::spawn(async move {
                        let began = Instant::now();
                        let (output, result) = run.await;
                        Outcome {
                            ok: result.is_ok(),
                            seconds: began.elapsed().as_secs_f64(),
                            output,
                            cause: result.err().map(|e| crate::error_chain(&e)),
                        }
                    });
                    sources.push(Source::Task(task, deadline));
                    continue;
                }
            };
            sources.push(match still_blocked(slot, blocking.as_ref()) {
                // An earlier run overran and has not returned: not started again.
                Some(cause) => Source::Refused(cause),
                None if blocking.may_block() => {
                    pooled.push(Arc::clone(slot));
                    Source::Pooled(pooled.len() - 1)
                }
                None => Source::Inline,
            });
        }
        let deadlines: Vec<Instant> = pooled
            .iter()
            .map(|s| start + self.deadline(s.collector.timeout(), scrape_timeout))
            .collect();
        let q = pooled.len();
        let batch = Arc::new(Batch {
            format,
            next: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            started: (0..q).map(|_| AtomicBool::new(false)).collect(),
            done: (0..q).map(|_| AtomicBool::new(false)).collect(),
            results: Mutex::new((0..q).map(|_| None).collect()),
            wake: tokio::sync::Notify::new(),
            slots: pooled,
        });
        let mut runners = 0;
        while runners < INITIAL_RUNNERS.min(q) {
            spawn_runner(&batch);
            runners += 1;
        }
        // The collectors that cannot block run here meanwhile, in order, on the async
        // worker itself: they read procfs or ask the kernel directly, which answers in
        // microseconds, so running them costs less than handing the worker's duties to
        // another thread and back (`block_in_place`) would. The tasks go first, as far
        // as they can, and get the thread back between two collectors: a database's
        // query is on its way before this thread is busy, and its answer is read and the
        // next query sent as soon as it comes, so that the server's work and theirs
        // overlap instead of following each other.
        let tasks = sources.iter().any(|s| matches!(s, Source::Task(..)));
        let mut inline_outcomes = Vec::new();
        for (slot, _) in self
            .slots
            .iter()
            .zip(&sources)
            .filter(|(_, s)| matches!(s, Source::Inline))
        {
            if tasks {
                tokio::task::yield_now().await;
            }
            inline_outcomes.push(run_one(slot, format));
        }
        let mut inline_outcomes = inline_outcomes.into_iter();
        let mut last_progress = (0, Instant::now());
        loop {
            let finished = batch.finished.load(Ordering::Acquire);
            if finished == q {
                break;
            }
            let now = Instant::now();
            // The latest deadline of a collector not yet done: past it, nobody waits.
            let open_deadline = (0..q)
                .filter(|&i| !batch.done[i].load(Ordering::Acquire))
                .map(|i| deadlines[i])
                .max();
            let Some(open_deadline) = open_deadline else {
                break;
            };
            if now >= open_deadline {
                break;
            }
            if finished != last_progress.0 {
                last_progress = (finished, now);
            } else if now >= last_progress.1 + STALL_GRACE
                && runners < q
                && batch.next.load(Ordering::Acquire) < q
            {
                // No progress for a while and collectors still queued: one is blocked,
                // so another runner takes the rest.
                spawn_runner(&batch);
                runners += 1;
                last_progress.1 = now;
            }
            let wait_until = open_deadline.min(now + STALL_GRACE);
            let _ = tokio::time::timeout_at(wait_until.into(), batch.wake.notified()).await;
        }
        batch.closed.store(true, Ordering::Release);
        let mut results = match batch.results.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => (0..q).map(|_| None).collect(),
        };
        let mut outcomes = Vec::with_capacity(n);
        for (slot, source) in self.slots.iter().zip(sources) {
            let outcome = match source {
                Source::Refused(cause) => Outcome::failed(start, cause),
                Source::Task(mut task, deadline) => {
                    // The task ends itself at its deadline; the grace only covers a
                    // task that fails to, which is then stopped.
                    match tokio::time::timeout_at((deadline + TASK_GRACE).into(), &mut task).await {
                        Ok(Ok(outcome)) => outcome,
                        Ok(Err(e)) => Outcome::failed(start, format!("collector task failed: {e}")),
                        Err(_) => {
                            task.abort();
                            Outcome::failed(
                                start,
                                format!("ran out of time after {:?}", deadline - start),
                            )
                        }
                    }
                }
                Source::Inline => inline_outcomes
                    .next()
                    .unwrap_or_else(|| Outcome::failed(start, "not run".to_owned())),
                Source::Pooled(i) => match results.get_mut(i).and_then(Option::take) {
                    Some(o) => o,
                    None => {
                        if batch.started[i].load(Ordering::Acquire) {
                            if let Ok(mut s) = slot.stalled.lock() {
                                *s = Some((Arc::clone(&batch), i));
                            }
                        }
                        Outcome::failed(
                            start,
                            format!("ran out of time after {:?}", deadlines[i] - start),
                        )
                    }
                },
            };
            // A failed outcome always carries its cause; no cause means success.
            match &outcome.cause {
                Some(cause) => note_failure(slot, cause),
                None => {
                    if slot.failing.swap(false, Ordering::Relaxed) {
                        info!(collector = slot.collector.name(), "collector recovered");
                        if let Ok(mut c) = slot.cause.lock() {
                            *c = None;
                        }
                    }
                }
            }
            outcomes.push(outcome);
        }
        let parts = self.assemble(format, outcomes);
        let last = LastScrape {
            at: std::time::SystemTime::now(),
            format,
            parts: parts.clone(),
        };
        if let Ok(mut l) = self.last.lock() {
            *l = Some(last);
        }
        parts
    }

    /// The collectors' outputs as they are (no copy), then the engine's own families.
    fn assemble(&self, format: Format, outcomes: Vec<Outcome>) -> Vec<bytes::Bytes> {
        let mut parts = Vec::with_capacity(outcomes.len() + 1);
        let mut buf = Vec::with_capacity(2048);
        let mut w = MetricWriter::new(&mut buf, format);
        for (slot, o) in self.slots.iter().zip(&outcomes) {
            let c = [("collector", slot.collector.name())];
            w.sample_u64(&COLLECTOR_SUCCESS, &c, u64::from(o.ok));
        }
        for (slot, o) in self.slots.iter().zip(&outcomes) {
            let c = [("collector", slot.collector.name())];
            w.sample(&COLLECTOR_DURATION, &c, o.seconds);
        }
        // Again under node_exporter's names, for the collectors that stand for its own.
        for (slot, o) in self.slots.iter().zip(&outcomes) {
            for name in slot.collector.node_exporter_names() {
                w.sample_u64(
                    &NODE_COLLECTOR_SUCCESS,
                    &[("collector", name)],
                    u64::from(o.ok),
                );
            }
        }
        for (slot, o) in self.slots.iter().zip(&outcomes) {
            for name in slot.collector.node_exporter_names() {
                w.sample(&NODE_COLLECTOR_DURATION, &[("collector", name)], o.seconds);
            }
        }
        w.sample_u64(
            &BUILD_INFO,
            &[("revision", crate::REVISION), ("version", crate::VERSION)],
            1,
        );
        for (handler, code, v) in self.stats.requests() {
            let code = itoa::Buffer::new().format(code).to_owned();
            w.sample_u64(
                &REQUESTS,
                &[("code", &code), ("handler", handler.as_str())],
                v,
            );
        }
        finish(&mut buf, format);
        parts.extend(
            outcomes
                .into_iter()
                .map(|o| o.output)
                .filter(|o| !o.is_empty()),
        );
        parts.push(buf.into());
        parts
    }
}

/// Runs one collector into its own buffer.
fn run_one(slot: &Slot, format: Format) -> Outcome {
    let started = Instant::now();
    let mut output = Vec::with_capacity(slot.last_len.load(Ordering::Relaxed) + 256);
    let result = {
        let mut w = MetricWriter::new(&mut output, format);
        match &slot.collector.run {
            Run::Blocking(c) => c.collect(&mut w),
            // Never queued: asynchronous collectors run as tasks.
            Run::Async(_) => Ok(()),
        }
    };
    slot.last_len.store(output.len(), Ordering::Relaxed);
    Outcome {
        ok: result.is_ok(),
        seconds: started.elapsed().as_secs_f64(),
        output: output.into(),
        cause: result.err().map(|e| crate::error_chain(&e)),
    }
}

fn spawn_runner(batch: &Arc<Batch>) {
    let batch = Arc::clone(batch);
    // The handle is not awaited: the scrape waits on the batch, with its deadlines.
    drop(tokio::task::spawn_blocking(move || batch.run()));
}

/// Why a collector is not started: an earlier run of it overran and has not returned.
fn still_blocked(slot: &Slot, collector: &dyn Collector) -> Option<String> {
    if collector.reentrant() {
        return None;
    }
    let mut stalled = match slot.stalled.lock() {
        Ok(s) => s,
        Err(p) => p.into_inner(),
    };
    let (batch, i) = stalled.as_ref()?;
    if batch.done[*i].load(Ordering::Acquire) {
        *stalled = None;
        return None;
    }
    Some("an earlier run ran out of time and has not returned yet".to_owned())
}

fn note_failure(slot: &Slot, cause: &str) {
    if !slot.failing.swap(true, Ordering::Relaxed) {
        warn!(collector = slot.collector.name(), cause, "collector failed");
    }
    if let Ok(mut c) = slot.cause.lock() {
        if c.as_deref() != Some(cause) {
            *c = Some(cause.to_owned());
        }
    }
}

impl Outcome {
    fn failed(start: Instant, cause: String) -> Outcome {
        Outcome {
            ok: false,
            seconds: start.elapsed().as_secs_f64(),
            output: bytes::Bytes::new(),
            cause: Some(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::{CollectError, Served};
    use crate::exposition::Family;

    /// A collector named `name`, as the table would hold it.
    fn entry(name: &'static str, c: impl Collector) -> AnyCollector {
        AnyCollector::new(
            name,
            Duration::from_secs(10),
            Served::families(&[]),
            crate::collectors::blocking(c),
        )
    }

    struct Sleepy(Duration);
    impl Collector for Sleepy {
        fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
            std::thread::sleep(self.0);
            static F: Family = Family::gauge("test_sleepy", "x");
            w.sample_u64(&F, &[], 1);
            Ok(())
        }
    }

    struct Quick;
    impl Collector for Quick {
        fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
            static F: Family = Family::gauge("test_quick", "x");
            w.sample_u64(&F, &[], 7);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn overrun_is_reported_and_not_restarted_until_it_returns() {
        let engine = Engine::new(
            vec![
                entry("sleepy", Sleepy(Duration::from_millis(600))),
                entry("quick", Quick),
            ],
            Duration::from_millis(100),
        );
        let t = Instant::now();
        let out = String::from_utf8(
            engine
                .scrape(Format::Text, Some(Duration::from_millis(300)))
                .await
                .concat()
                .to_vec(),
        )
        .unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(450),
            "{:?}",
            t.elapsed()
        );
        assert!(
            out.contains("shoehub_scrape_collector_success{collector=\"sleepy\"} 0\n"),
            "{out}"
        );
        assert!(out.contains("test_quick 7\n"));
        assert!(!out.contains("test_sleepy"));
        // Still blocked: refused at once rather than started again.
        let t = Instant::now();
        let out = String::from_utf8(
            engine
                .scrape(Format::Text, Some(Duration::from_millis(300)))
                .await
                .concat()
                .to_vec(),
        )
        .unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
        assert!(out.contains("collector=\"sleepy\"} 0\n"));
        // Once it returned, it runs again (and with time enough, succeeds).
        tokio::time::sleep(Duration::from_millis(500)).await;
        let out =
            String::from_utf8(engine.scrape(Format::Text, None).await.concat().to_vec()).unwrap();
        assert!(
            out.contains("shoehub_scrape_collector_success{collector=\"sleepy\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("test_sleepy 1\n"));
    }

    #[test]
    fn deadline_is_the_smaller_of_own_and_prometheus_minus_offset() {
        let e = Engine::new(vec![], Duration::from_millis(500));
        let s = Duration::from_secs;
        assert_eq!(e.deadline(s(5), None), s(5));
        assert_eq!(e.deadline(s(5), Some(s(10))), s(5));
        assert_eq!(e.deadline(s(5), Some(s(3))), Duration::from_millis(2500));
        assert_eq!(
            e.deadline(s(5), Some(Duration::from_millis(400))),
            Duration::from_millis(360)
        );
    }
}
