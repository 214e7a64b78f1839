//! `conntrack`: the connection tracking table's fill and its per-CPU statistics, from
//! /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack, as node_exporter's
//! conntrack collector names them. Without the nf_conntrack module there is nothing to
//! report, and nothing is.


use super::parse::{fields, lines, str_of, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "The connection tracking table (where nf_conntrack is loaded).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["conntrack"];

/// Its section, `system.conntrack:`.
pub type Config = super::CollectorToggle;

pub static ENTRIES: Family = Family::gauge(
    "node_nf_conntrack_entries",
    "Number of currently allocated flow entries for connection tracking.",
);
pub static LIMIT: Family = Family::gauge(
    "node_nf_conntrack_entries_limit",
    "Maximum size of connection tracking table.",
);

macro_rules! stat {
    ($id:ident, $name:literal, $help:literal) => {
        pub static $id: Family = Family::gauge($name, $help);
    };
}
stat!(
    FOUND,
    "node_nf_conntrack_stat_found",
    "Number of searched entries which were successful."
);
stat!(
    INVALID,
    "node_nf_conntrack_stat_invalid",
    "Number of packets seen which can not be tracked."
);
stat!(
    IGNORE,
    "node_nf_conntrack_stat_ignore",
    "Number of packets seen which are already connected to a conntrack entry."
);
stat!(
    INSERT,
    "node_nf_conntrack_stat_insert",
    "Number of entries inserted into the list."
);
stat!(
    INSERT_FAILED,
    "node_nf_conntrack_stat_insert_failed",
    "Number of entries for which list insertion was attempted but failed."
);
stat!(
    DROP,
    "node_nf_conntrack_stat_drop",
    "Number of packets dropped due to conntrack failure."
);
stat!(EARLY_DROP, "node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.");
stat!(
    SEARCH_RESTART,
    "node_nf_conntrack_stat_search_restart",
    "Number of conntrack table lookups which had to be restarted due to hashtable resizes."
);

/// The statistics' columns in /proc/net/stat/nf_conntrack, with their families.
const STATS: &[(&str, &Family)] = &[
    ("found", &FOUND),
    ("invalid", &INVALID),
    ("ignore", &IGNORE),
    ("insert", &INSERT),
    ("insert_failed", &INSERT_FAILED),
    ("drop", &DROP),
    ("early_drop", &EARLY_DROP),
    ("search_restart", &SEARCH_RESTART),
];

pub static SERVED: Served = Served::families(&[
    &ENTRIES,
    &LIMIT,
    &DROP,
    &EARLY_DROP,
    &FOUND,
    &IGNORE,
    &INSERT,
    &INSERT_FAILED,
    &INVALID,
    &SEARCH_RESTART,
]);

/// Each statistic summed over the CPUs' lines (hexadecimal), in [`STATS`]' order;
/// `None` without a header naming the columns.
pub fn sum_stats(data: &[u8]) -> Option<Vec<u64>> {
    let mut rows = lines(data);
    let (_, header) = rows.next()?;
    let names: Vec<&str> = fields(header).filter_map(str_of).collect();
    let at: Vec<Option<usize>> = STATS
        .iter()
        .map(|(n, _)| names.iter().position(|h| h == n))
        .collect();
    let mut sums = vec![0u64; STATS.len()];
    for (_, row) in rows {
        let cols: Vec<&[u8]> = fields(row).collect();
        for (sum, i) in sums.iter_mut().zip(&at) {
            let v = i
                .and_then(|i| cols.get(i))
                .and_then(|c| u64::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
                .unwrap_or(0);
            *sum = sum.saturating_add(v);
        }
    }
    Some(sums)
}

/// The files, kept open and read again from offset 0 (the kernel renders them afresh).
pub struct Conntrack {
    count: SharedProcFile,
    max: SharedProcFile,
    stat: SharedProcFile,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let procfs = &s.system.procfs;
    let on_procfs = super::is_procfs(procfs);
    let nf = procfs.join("sys/net/netfilter");
    Ok(Some(super::procfs_only(&s.system.procfs, Conntrack {
        count: SharedProcFile::new(nf.join("nf_conntrack_count"))
            .rendered(Render::Whole.if_procfs(on_procfs)),
        max: SharedProcFile::new(nf.join("nf_conntrack_max"))
            .rendered(Render::Whole.if_procfs(on_procfs)),
        // A CPU's line of hexadecimal counters is under 200 bytes.
        stat: SharedProcFile::new(procfs.join("net/stat/nf_conntrack"))
            .rendered(Render::Records(512).if_procfs(on_procfs)),
    })))
}

/// What `f` makes of the file, or `None` when it does not exist (no nf_conntrack).
fn read<T>(
    file: &SharedProcFile,
    f: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<Option<T>, CollectError> {
    file.with(|path, data| match data {
        Ok(d) => Ok(f(d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CollectError::read(path, e)),
    })
}

impl Collector for Conntrack {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let one = |d: &[u8]| u64_of(d.trim_ascii());
        if let Some(n) = read(&self.count, one)? {
            w.sample_u64(&ENTRIES, &[], n);
        }
        if let Some(n) = read(&self.max, one)? {
            w.sample_u64(&LIMIT, &[], n);
        }
        if let Some(sums) = read(&self.stat, sum_stats)? {
            for ((_, family), v) in STATS.iter().zip(sums) {
                w.sample_u64(family, &[], v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statistics_are_summed_over_the_cpus() {
        let data = b"entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n00000000  00000000 00000002 00000000 0000000a 00000000 00000000 00000000 00000001 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000003\n00000000  00000000 00000001 00000000 00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000000\n";
        assert_eq!(super::sum_stats(data), Some(vec![3, 11, 0, 1, 0, 0, 0, 3]));
        assert_eq!(super::sum_stats(b""), None);
    }
}
