//! `filefd`: file handles the kernel has allocated and its limit, from
//! /proc/sys/fs/file-nr, as node_exporter's filefd collector names them.

use std::path::Path;

use super::parse::{fields, u64_of};
use super::{Run, BuildError, CollectError, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "File handles allocated and their limit (/proc/sys/fs/file-nr).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["filefd"];

/// Its section, `system.filefd:`.
pub type Config = super::CollectorToggle;

pub static ALLOCATED: Family = Family::gauge(
    "node_filefd_allocated",
    "File descriptor statistics: allocated.",
);
pub static MAXIMUM: Family = Family::gauge(
    "node_filefd_maximum",
    "File descriptor statistics: maximum.",
);

pub static SERVED: Served = Served::families(&[&ALLOCATED, &MAXIMUM]);

/// `allocated unused maximum`.
pub fn parse(data: &[u8]) -> Option<(u64, u64)> {
    let mut f = fields(data.split(|&b| b == b'\n').next()?);
    let allocated = u64_of(f.next()?)?;
    let _unused = u64_of(f.next()?)?;
    let maximum = u64_of(f.next()?)?;
    Some((allocated, maximum))
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::OneFile::run(
        &s.system.procfs,
        s.system.procfs.join("sys/fs/file-nr"),
        encode,
    )))
}

/// Writes `allocated` and `maximum`.
pub fn encode(path: &Path, data: &[u8], w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
    let (allocated, maximum) = parse(data).ok_or_else(|| CollectError::Malformed {
        path: path.to_owned(),
        line: 1,
        count: 1,
        reason: "not `allocated unused maximum`",
    })?;
    w.sample_u64(&ALLOCATED, &[], allocated);
    w.sample_u64(&MAXIMUM, &[], maximum);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_nr_gives_allocated_and_maximum() {
        assert_eq!(super::parse(b"315\t0\t2466186\n"), Some((315, 2466186)));
        assert_eq!(super::parse(b"315\t0\n"), None);
    }
}
