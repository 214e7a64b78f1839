//! `disk`: /proc/diskstats as node_exporter's diskstats collector exposes it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::parse::{fields, lines, str_of, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};
use crate::value::{Builtin, DurationValue, NameFilter, Pattern};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "I/O counts, bytes and times per block device (/proc/diskstats).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["diskstats"];

/// Its section, `system.disk:`.
pub type Config = DiskConfig;

/// `system.disk:`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub devices_exclude: Pattern,
    pub devices_include: Option<Pattern>,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            devices_exclude: Pattern::builtin(Builtin::DiskDevices),
            devices_include: None,
        }
    }
}

/// The kernel's sector unit in /proc/diskstats, whatever the device's own.
const SECTOR_BYTES: f64 = 512.0;

pub static READS_COMPLETED: Family = Family::counter(
    "node_disk_reads_completed_total",
    "Reads completed successfully.",
);
pub static READS_MERGED: Family = Family::counter(
    "node_disk_reads_merged_total",
    "Adjacent reads merged into one.",
);
pub static READ_BYTES: Family =
    Family::counter("node_disk_read_bytes_total", "Bytes read.").unit("bytes");
pub static READ_TIME: Family = Family::counter(
    "node_disk_read_time_seconds_total",
    "Seconds spent by all reads.",
)
.unit("seconds");
pub static WRITES_COMPLETED: Family = Family::counter(
    "node_disk_writes_completed_total",
    "Writes completed successfully.",
);
pub static WRITES_MERGED: Family = Family::counter(
    "node_disk_writes_merged_total",
    "Adjacent writes merged into one.",
);
pub static WRITTEN_BYTES: Family =
    Family::counter("node_disk_written_bytes_total", "Bytes written.").unit("bytes");
pub static WRITE_TIME: Family = Family::counter(
    "node_disk_write_time_seconds_total",
    "Seconds spent by all writes.",
)
.unit("seconds");
pub static IO_NOW: Family = Family::gauge("node_disk_io_now", "I/Os currently in progress.");
pub static IO_TIME: Family = Family::counter(
    "node_disk_io_time_seconds_total",
    "Seconds the device spent doing I/O.",
)
.unit("seconds");
pub static IO_TIME_WEIGHTED: Family = Family::counter(
    "node_disk_io_time_weighted_seconds_total",
    "Seconds spent doing I/O weighted by the I/Os in progress.",
)
.unit("seconds");
pub static DISCARDS_COMPLETED: Family = Family::counter(
    "node_disk_discards_completed_total",
    "Discards completed successfully.",
);
pub static DISCARDS_MERGED: Family = Family::counter(
    "node_disk_discards_merged_total",
    "Adjacent discards merged into one.",
);
pub static DISCARDED_SECTORS: Family =
    Family::counter("node_disk_discarded_sectors_total", "Sectors discarded.");
pub static DISCARD_TIME: Family = Family::counter(
    "node_disk_discard_time_seconds_total",
    "Seconds spent by all discards.",
)
.unit("seconds");
pub static FLUSH_REQUESTS: Family = Family::counter(
    "node_disk_flush_requests_total",
    "Flush requests completed successfully.",
);
pub static FLUSH_TIME: Family = Family::counter(
    "node_disk_flush_requests_time_seconds_total",
    "Seconds spent by all flush requests.",
)
.unit("seconds");

/// How each /proc/diskstats column (after major, minor and name) is exposed: its family
/// and the factor from the kernel's unit to the metric's.
const COLUMNS: [(&Family, f64); 17] = [
    (&READS_COMPLETED, 1.0),
    (&READS_MERGED, 1.0),
    (&READ_BYTES, SECTOR_BYTES),
    (&READ_TIME, 0.001),
    (&WRITES_COMPLETED, 1.0),
    (&WRITES_MERGED, 1.0),
    (&WRITTEN_BYTES, SECTOR_BYTES),
    (&WRITE_TIME, 0.001),
    (&IO_NOW, 1.0),
    (&IO_TIME, 0.001),
    (&IO_TIME_WEIGHTED, 0.001),
    (&DISCARDS_COMPLETED, 1.0),
    (&DISCARDS_MERGED, 1.0),
    (&DISCARDED_SECTORS, 1.0),
    (&DISCARD_TIME, 0.001),
    (&FLUSH_REQUESTS, 1.0),
    (&FLUSH_TIME, 0.001),
];

/// One device's line: its name, its columns and how many the kernel gave (11 before
/// 4.18, 15 with discards, 17 with flushes since 5.5).
#[derive(Debug, PartialEq)]
pub struct DiskLine<'a> {
    pub device: &'a str,
    pub values: [u64; 17],
    pub count: usize,
}

pub fn parse<'a>(
    data: &'a [u8],
    filter: &NameFilter,
    errors: &mut LineErrors,
) -> Vec<DiskLine<'a>> {
    let mut out = Vec::new();
    // A device twice (not in a kernel's file, but in a copy) would repeat its series.
    let mut seen = std::collections::HashSet::new();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let (Some(_major), Some(_minor), Some(name)) = (f.next(), f.next(), f.next()) else {
            errors.record(n, "fewer than three fields");
            continue;
        };
        let Some(device) = str_of(name) else {
            errors.record(n, "device name is not UTF-8");
            continue;
        };
        if !filter.accepts(device) {
            continue;
        }
        let mut values = [0u64; 17];
        let mut count = 0;
        let mut bad = false;
        for (i, v) in f.take(17).enumerate() {
            match u64_of(v) {
                Some(v) => values[i] = v,
                None => bad = true,
            }
            count = i + 1;
        }
        if bad || count < 11 {
            errors.record(n, "missing or non-numeric counters");
            continue;
        }
        if !seen.insert(device) {
            errors.record(n, "repeats an earlier device");
            continue;
        }
        out.push(DiskLine {
            device,
            values,
            count,
        });
    }
    out
}

pub fn encode(disks: &[DiskLine<'_>], w: &mut MetricWriter<'_>) {
    for (col, (family, factor)) in COLUMNS.iter().enumerate() {
        for d in disks.iter().filter(|d| col < d.count) {
            let labels = [("device", d.device)];
            if *factor == 1.0 {
                w.sample_u64(family, &labels, d.values[col]);
            } else {
                w.sample(family, &labels, d.values[col] as f64 * factor);
            }
        }
    }
}

pub struct Disk {
    on_procfs: bool,
    diskstats: SharedProcFile,
    filter: NameFilter,
}

impl Disk {
    pub fn new(procfs: &Path, cfg: &DiskConfig) -> Self {
        let on_procfs = super::is_procfs(procfs);
        Disk {
            on_procfs,
            diskstats: SharedProcFile::new(procfs.join("diskstats"))
                .rendered(Render::Records(1024).if_procfs(on_procfs)),
            filter: NameFilter::new(
                cfg.devices_include.clone(),
                Some(cfg.devices_exclude.clone()),
            ),
        }
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &READS_COMPLETED,
    &READS_MERGED,
    &READ_BYTES,
    &READ_TIME,
    &WRITES_COMPLETED,
    &WRITES_MERGED,
    &WRITTEN_BYTES,
    &WRITE_TIME,
    &IO_NOW,
    &IO_TIME,
    &IO_TIME_WEIGHTED,
    &DISCARDS_COMPLETED,
    &DISCARDS_MERGED,
    &DISCARDED_SECTORS,
    &DISCARD_TIME,
    &FLUSH_REQUESTS,
    &FLUSH_TIME,
]);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.disk;
    Ok(Some(super::blocking(Disk::new(&s.system.procfs, c))))
}

impl Collector for Disk {
    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.diskstats.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            let mut errors = LineErrors::default();
            let disks = parse(data, &self.filter, &mut errors);
            encode(&disks, w);
            errors.into_result(path)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::exposition::Format;

    /// /proc/diskstats of a Debian 12 VM (kernel 6.1): a virtio disk, its partition, a
    /// loop device; plus a 4.x-style 11-column line and a broken one.
    const DEBIAN12_DISKSTATS: &[u8] = b" 254       0 vda 23516 7843 2315878 9361 1175313 882470 41236138 3224452 0 1271044 3271478 0 0 0 0 140632 37663
 254       1 vda1 23400 7843 2310000 9300 1175000 882000 41200000 3224000 0 1270000 3270000 0 0 0 0 0 0
   7       0 loop0 10 0 100 1 0 0 0 0 0 4 1 0 0 0 0 0 0
   8       0 sdb 100 2 800 50 10 1 80 20 0 60 70
   8      16 sdc 1 x 3
";

    #[test]
    fn parses_every_kernel_layout_and_applies_default_excludes() {
        let cfg = DiskConfig::default();
        let filter = NameFilter::new(None, Some(cfg.devices_exclude.clone()));
        let mut e = LineErrors::default();
        let disks = parse(DEBIAN12_DISKSTATS, &filter, &mut e);
        let names: Vec<&str> = disks.iter().map(|d| d.device).collect();
        assert_eq!(names, ["vda", "sdb"]);
        assert_eq!(disks[0].count, 17);
        assert_eq!(disks[1].count, 11);
        assert!(e
            .into_result(Path::new("d"))
            .unwrap_err()
            .to_string()
            .contains("line 5"));
        let mut buf = Vec::new();
        encode(&disks, &mut MetricWriter::new(&mut buf, Format::Text));
        let out = String::from_utf8(buf).unwrap();
        assert!(
            out.contains("node_disk_read_bytes_total{device=\"vda\"} 1185729536\n"),
            "{out}"
        );
        assert!(out.contains("node_disk_io_time_seconds_total{device=\"vda\"} 1271.044\n"));
        assert!(out.contains("node_disk_flush_requests_total{device=\"vda\"} 140632\n"));
        assert!(!out.contains("node_disk_flush_requests_total{device=\"sdb\"}"));
    }
}
