//! `arp`: the ARP table's entries per device, from /proc/net/arp, as node_exporter's arp
//! collector names them.

use std::collections::BTreeMap;

use super::parse::{fields, lines, str_of};
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "ARP entries per device (/proc/net/arp).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["arp"];

/// Its section, `system.arp:`.
pub type Config = super::CollectorToggle;

pub static ENTRIES: Family = Family::gauge("node_arp_entries", "ARP entries by device");

pub static SERVED: Served = Served::families(&[&ENTRIES]);

/// Entries per device (the last column), below the header line.
pub fn count(data: &[u8]) -> BTreeMap<&str, u64> {
    let mut out = BTreeMap::new();
    for (_, line) in lines(data).skip(1) {
        if let Some(device) = fields(line).last().and_then(str_of) {
            *out.entry(device).or_insert(0) += 1;
        }
    }
    out
}

pub struct Arp {
    /// Kept open and read again from offset 0.
    file: SharedProcFile,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let render = Render::Records(256).if_procfs(super::is_procfs(&s.system.procfs));
    Ok(Some(super::procfs_only(&s.system.procfs, Arp {
        file: SharedProcFile::new(s.system.procfs.join("net/arp")).rendered(render),
    })))
}

impl Collector for Arp {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.file.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            for (device, n) in count(data) {
                w.sample_u64(&ENTRIES, &[("device", device)], n);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn entries_per_device() {
        let data = b"IP address       HW type     Flags       HW address            Mask     Device\n192.0.2.1        0x1         0x2         02:fc:00:00:00:05     *        eth0\n192.0.2.2        0x1         0x2         02:fc:00:00:00:06     *        eth0\n10.0.0.1         0x1         0x2         02:fc:00:00:00:07     *        br0\n";
        let c = super::count(data);
        assert_eq!(c.get("eth0"), Some(&2));
        assert_eq!(c.get("br0"), Some(&1));
    }
}
