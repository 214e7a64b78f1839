//! `softnet`: per-CPU packet processing from /proc/net/softnet_stat, as node_exporter's
//! softnet collector names it: packets processed, dropped, and the times processing ran
//! out of its quota, per `cpu` (the line's index).

use std::path::Path;

use super::parse::{fields, lines};
use super::{Run, BuildError, CollectError, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Per-CPU packet processing (/proc/net/softnet_stat).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["softnet"];

/// Its section, `system.softnet:`.
pub type Config = super::CollectorToggle;

pub static PROCESSED: Family = Family::counter(
    "node_softnet_processed_total",
    "Number of processed packets",
);
pub static DROPPED: Family =
    Family::counter("node_softnet_dropped_total", "Number of dropped packets");
pub static SQUEEZED: Family = Family::counter(
    "node_softnet_times_squeezed_total",
    "Number of times processing packets ran out of quota",
);

pub static SERVED: Served = Served::families(&[&PROCESSED, &DROPPED, &SQUEEZED]);

/// A hexadecimal field of softnet_stat.
fn hex(s: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// Each CPU's (processed, dropped, squeezed), and the malformed lines.
pub fn parse(data: &[u8]) -> (Vec<[u64; 3]>, LineErrors) {
    let mut errors = LineErrors::default();
    let mut out = Vec::new();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        match (
            f.next().and_then(hex),
            f.next().and_then(hex),
            f.next().and_then(hex),
        ) {
            (Some(a), Some(b), Some(c)) => out.push([a, b, c]),
            _ => errors.record(n, "fewer than three hexadecimal fields"),
        }
    }
    (out, errors)
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::OneFile::run(
        &s.system.procfs,
        s.system.procfs.join("net/softnet_stat"),
        encode,
    )))
}

/// Writes each CPU's counters, family by family.
pub fn encode(path: &Path, data: &[u8], w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
    let (cpus, errors) = parse(data);
    let mut id = itoa::Buffer::new();
    for (i, family) in [&PROCESSED, &DROPPED, &SQUEEZED].into_iter().enumerate() {
        for (cpu, v) in cpus.iter().enumerate() {
            w.sample_u64(family, &[("cpu", id.format(cpu))], v[i]);
        }
    }
    errors.into_result(path)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hexadecimal_columns_per_cpu() {
        let (cpus, errors) =
            super::parse(b"00503466 00000000 0000000a 00000000\n004d6f17 00000001 00000009\n");
        assert!(errors.summary().is_none());
        assert_eq!(cpus, [[0x503466, 0, 10], [0x4d6f17, 1, 9]]);
    }
}
