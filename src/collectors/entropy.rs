//! `entropy`: the kernel's entropy pool, from /proc/sys/kernel/random, as
//! node_exporter's entropy collector names it.


use super::parse::u64_of;
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::SharedProcFile;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "The entropy pool (/proc/sys/kernel/random).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["entropy"];

/// Its section, `system.entropy:`.
pub type Config = super::CollectorToggle;

pub static AVAILABLE: Family =
    Family::gauge("node_entropy_available_bits", "Bits of available entropy.");
pub static POOL_SIZE: Family =
    Family::gauge("node_entropy_pool_size_bits", "Bits of entropy pool.");

pub static SERVED: Served = Served::families(&[&AVAILABLE, &POOL_SIZE]);

pub struct Entropy {
    files: [(SharedProcFile, &'static Family); 2],
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let dir = s.system.procfs.join("sys/kernel/random");
    Ok(Some(super::procfs_only(&s.system.procfs, Entropy {
        files: [
            (SharedProcFile::new(dir.join("entropy_avail")), &AVAILABLE),
            (SharedProcFile::new(dir.join("poolsize")), &POOL_SIZE),
        ],
    })))
}

/// The number a one-number file holds.
pub fn parse(data: &[u8]) -> Option<u64> {
    u64_of(data.split(|&b| b == b'\n').next()?.trim_ascii())
}

impl Collector for Entropy {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        for (file, family) in &self.files {
            file.with(|path, data| {
                let data = data.map_err(|e| CollectError::read(path, e))?;
                let bits = parse(data).ok_or_else(|| CollectError::Malformed {
                    path: path.to_owned(),
                    line: 1,
                    count: 1,
                    reason: "not a number",
                })?;
                w.sample_u64(family, &[], bits);
                Ok::<(), CollectError>(())
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_number_files() {
        assert_eq!(super::parse(b"256\n"), Some(256));
        assert_eq!(super::parse(b"x\n"), None);
    }
}
