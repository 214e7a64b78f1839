//! `process`: the exporter's own CPU time, memory, file descriptors and start time, as
//! the Prometheus client libraries' process collector names them (`process_*`), which
//! Node Exporter Full's exporter row shows.

use std::path::{Path, PathBuf};

use super::parse::{fields, lines, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};
use crate::sys::Resource;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "The exporter's own CPU, memory and file descriptors (process_*).";

/// The node_exporter collectors whose series it serves: none (`process_*` are the
/// client libraries' own), so it is not in `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &[];

/// Its section, `system.process:`.
pub type Config = super::CollectorToggle;

pub static CPU: Family = Family::counter(
    "process_cpu_seconds_total",
    "Total user and system CPU time spent in seconds.",
)
.unit("seconds");
pub static OPEN_FDS: Family = Family::gauge("process_open_fds", "Number of open file descriptors.");
pub static MAX_FDS: Family = Family::gauge(
    "process_max_fds",
    "Maximum number of open file descriptors.",
);
pub static VIRTUAL: Family = Family::gauge(
    "process_virtual_memory_bytes",
    "Virtual memory size in bytes.",
)
.unit("bytes");
pub static VIRTUAL_MAX: Family = Family::gauge(
    "process_virtual_memory_max_bytes",
    "Maximum amount of virtual memory available in bytes.",
)
.unit("bytes");
pub static RESIDENT: Family = Family::gauge(
    "process_resident_memory_bytes",
    "Resident memory size in bytes.",
)
.unit("bytes");
pub static START: Family = Family::gauge(
    "process_start_time_seconds",
    "Start time of the process since unix epoch in seconds.",
)
.unit("seconds");

pub static SERVED: Served = Served::families(&[
    &CPU,
    &OPEN_FDS,
    &MAX_FDS,
    &VIRTUAL,
    &VIRTUAL_MAX,
    &RESIDENT,
    &START,
]);

/// What /proc/self/stat says: CPU ticks (user + system), start in ticks after boot,
/// virtual size in bytes, resident pages.
#[derive(Debug, PartialEq)]
pub struct Stat {
    pub ticks: u64,
    pub start: u64,
    pub vsize: u64,
    pub rss: u64,
}

/// Parses /proc/<pid>/stat; the command name may hold spaces and parentheses, so the
/// fields are counted from its last `)`.
pub fn parse_stat(data: &[u8]) -> Option<Stat> {
    let close = data.iter().rposition(|&b| b == b')')?;
    let f: Vec<&[u8]> = fields(&data[close + 1..]).collect();
    let n = |i: usize| f.get(i).and_then(|v| u64_of(v.trim_ascii()));
    Some(Stat {
        ticks: n(11)?.checked_add(n(12)?)?,
        start: n(19)?,
        vsize: n(20)?,
        rss: n(21)?,
    })
}

pub struct Process {
    dir: PathBuf,
    /// `stat`, kept open and read again from offset 0. The limits come from
    /// getrlimit(2), without the kernel rendering the whole table as text.
    stat: SharedProcFile,
    boot_time: Option<u64>,
    ticks: u64,
    page: u64,
}

/// The boot time from /proc/stat's `btime`.
fn boot_time(procfs: &Path) -> Option<u64> {
    let stat = crate::regular::read(&procfs.join("stat"), 1 << 20).ok()?;
    let btime = lines(&stat).find_map(|(_, l)| {
        l.strip_prefix(b"btime ")
            .and_then(|v| u64_of(v.trim_ascii()))
    });
    btime
}

/// Always the live `/proc/self`, whatever `system.procfs` says: `self` in another
/// tree (a host's procfs mounted into a container, a copy) is some other process, and
/// these series describe the exporter. The boot time, for the start time, is the
/// host's, from `system.procfs` when that is a live procfs.
pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let live = Path::new(LIVE_PROCFS);
    let whole = Render::Whole.if_procfs(super::is_procfs(live));
    let boot_from = if super::is_procfs(&s.system.procfs) {
        s.system.procfs.as_path()
    } else {
        live
    };
    Ok(Some(super::procfs_only(live, Process {
        dir: live.join("self"),
        stat: SharedProcFile::new(live.join("self/stat")).rendered(whole),
        boot_time: boot_time(boot_from),
        ticks: crate::sys::clock_ticks(),
        page: crate::sys::page_size(),
    })))
}

/// Where this process's own procfs is.
const LIVE_PROCFS: &str = "/proc";

impl Collector for Process {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let stat = self.stat.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            parse_stat(data).ok_or_else(|| CollectError::Malformed {
                path: path.to_owned(),
                line: 1,
                count: 1,
                reason: "not a stat line",
            })
        })?;
        let per = self.ticks as f64;
        w.sample(&CPU, &[], stat.ticks as f64 / per);
        let fd_dir = self.dir.join("fd");
        // Since Linux 6.2 the directory's size is the number of open descriptors: one
        // stat instead of listing them.
        let open = match std::fs::metadata(&fd_dir).map(|m| m.len()) {
            Ok(n) if n > 0 => n,
            _ => std::fs::read_dir(&fd_dir)
                .map_err(|e| CollectError::read(&fd_dir, e))?
                .count() as u64,
        };
        w.sample_u64(&OPEN_FDS, &[], open);
        let files = crate::sys::soft_limit(Resource::Nofile);
        let address = crate::sys::soft_limit(Resource::As);
        if let Some(files) = files {
            w.sample_u64(&MAX_FDS, &[], files);
        }
        w.sample_u64(&VIRTUAL, &[], stat.vsize);
        w.sample(
            &VIRTUAL_MAX,
            &[],
            address.map_or(u64::MAX as f64, |a| a as f64),
        );
        w.sample_u64(&RESIDENT, &[], stat.rss.saturating_mul(self.page));
        if let Some(boot) = self.boot_time {
            w.sample(&START, &[], boot as f64 + stat.start as f64 / per);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let line = b"4242 (a (b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 9 0 1234 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                ticks: 300,
                start: 1234,
                vsize: 104857600,
                rss: 2560
            })
        );
    }

    #[test]
    fn the_live_process_reads() {
        let data = std::fs::read("/proc/self/stat").unwrap();
        let s = parse_stat(&data).unwrap();
        assert!(s.vsize > 0 && s.rss > 0);
    }
}
