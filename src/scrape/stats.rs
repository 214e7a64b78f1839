//! The engine's own families: each collector's success and duration, the build, and the
//! HTTP requests the server answered.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::collectors::Served;
use crate::exposition::Family;

pub static COLLECTOR_SUCCESS: Family = Family::gauge(
    "shoehub_scrape_collector_success",
    "Whether the collector succeeded in this scrape (1) or failed or ran out of time (0).",
);
pub static COLLECTOR_DURATION: Family = Family::gauge(
    "shoehub_scrape_collector_duration_seconds",
    "How long the collector took in this scrape (its deadline, when it ran out of time).",
)
.unit("seconds");
/// [`COLLECTOR_SUCCESS`] and [`COLLECTOR_DURATION`] again under node_exporter's names,
/// for the dashboards built on it (Node Exporter Full's "Node Exporter Scrape Time"):
/// labelled with node_exporter's collector names (`meminfo`, `diskstats`, `netdev`, …),
/// for the collectors that stand for one of its own.
pub static NODE_COLLECTOR_SUCCESS: Family = Family::gauge(
    "node_scrape_collector_success",
    "shoehub_scrape_collector_success under node_exporter's names, for its collectors.",
);
pub static NODE_COLLECTOR_DURATION: Family = Family::gauge(
    "node_scrape_collector_duration_seconds",
    "shoehub_scrape_collector_duration_seconds under node_exporter's names, for its collectors.",
)
.unit("seconds");
pub static BUILD_INFO: Family = Family::gauge(
    "shoehub_exporter_build_info",
    "The exporter's version and source revision: constant 1, the values are in the labels.",
);
pub static REQUESTS: Family = Family::counter(
    "shoehub_exporter_http_requests_total",
    "HTTP requests the exporter answered, by path kind and status code.",
);

/// The names the engine itself serves (see [`Collector::served`]).
pub static SERVED: Served = Served::families(&[
    &COLLECTOR_SUCCESS,
    &COLLECTOR_DURATION,
    &NODE_COLLECTOR_SUCCESS,
    &NODE_COLLECTOR_DURATION,
    &BUILD_INFO,
    &REQUESTS,
]);

/// What a request was for, as the request counter labels it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Handler {
    Metrics,
    Other,
}

impl Handler {
    const ALL: [Handler; 2] = [Handler::Metrics, Handler::Other];

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Handler::Metrics => "metrics",
            Handler::Other => "other",
        }
    }
}

/// HTTP status codes are three digits: 100 to 599.
const FIRST_CODE: u16 = 100;
const CODES: usize = 500;

/// The exporter's own long-lived counters, updated by the HTTP server and read at
/// scrape time: one atomic per handler and status code, so any code the server answers
/// with is counted and exported, with no lock on the request path.
#[derive(Debug)]
pub struct ExporterStats {
    requests: [Box<[AtomicU64]>; 2],
}

impl Default for ExporterStats {
    fn default() -> Self {
        let row = || (0..CODES).map(|_| AtomicU64::new(0)).collect();
        ExporterStats {
            requests: [row(), row()],
        }
    }
}

impl ExporterStats {
    pub fn record_request(&self, handler: Handler, code: u16) {
        let i = usize::from(code.saturating_sub(FIRST_CODE)).min(CODES - 1);
        self.requests[handler as usize][i].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (handler, code) that was answered at least once, with its count, sorted.
    pub fn requests(&self) -> Vec<(Handler, u16, u64)> {
        let mut out = Vec::new();
        for handler in Handler::ALL {
            for (i, n) in self.requests[handler as usize].iter().enumerate() {
                let v = n.load(Ordering::Relaxed);
                if v > 0 {
                    out.push((handler, FIRST_CODE + i as u16, v));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_code_is_counted_and_exported() {
        let stats = ExporterStats::default();
        stats.record_request(Handler::Metrics, 200);
        stats.record_request(Handler::Metrics, 200);
        stats.record_request(Handler::Other, 413);
        stats.record_request(Handler::Other, 599);
        assert_eq!(
            stats.requests(),
            vec![
                (Handler::Metrics, 200, 2),
                (Handler::Other, 413, 1),
                (Handler::Other, 599, 1)
            ]
        );
    }
}
