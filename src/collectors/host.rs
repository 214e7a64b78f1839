//! `host`: load average, wall-clock time, uname and pressure stall information, as
//! node_exporter's loadavg, time, uname and pressure collectors expose them.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::parse::{f64_of, fields, lines};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};
use crate::value::DurationValue;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Load average, wall-clock time, uname and pressure stall information.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["loadavg", "pressure", "time", "uname"];

/// Its section, `system.host:`.
pub type Config = HostConfig;

/// `system.host:` — load, time, uname and pressure stall information.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    /// Read /proc/pressure (PSI) where the kernel has it.
    pub pressure: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            pressure: true,
        }
    }
}

pub static LOAD1: Family = Family::gauge("node_load1", "1-minute load average.");
pub static LOAD5: Family = Family::gauge("node_load5", "5-minute load average.");
pub static LOAD15: Family = Family::gauge("node_load15", "15-minute load average.");
pub static TIME: Family = Family::gauge(
    "node_time_seconds",
    "The host's wall-clock time in seconds since the epoch.",
)
.unit("seconds");
pub static UNAME: Family = Family::gauge(
    "node_uname_info",
    "The host's uname(2): constant 1, the values are in the labels.",
);
pub static CPU_WAITING: Family = Family::counter(
    "node_pressure_cpu_waiting_seconds_total",
    "Seconds some runnable task waited for a CPU (PSI).",
)
.unit("seconds");
pub static MEMORY_WAITING: Family = Family::counter(
    "node_pressure_memory_waiting_seconds_total",
    "Seconds some task stalled on memory (PSI).",
)
.unit("seconds");
pub static MEMORY_STALLED: Family = Family::counter(
    "node_pressure_memory_stalled_seconds_total",
    "Seconds all non-idle tasks stalled on memory at once (PSI).",
)
.unit("seconds");
pub static IO_WAITING: Family = Family::counter(
    "node_pressure_io_waiting_seconds_total",
    "Seconds some task stalled on I/O (PSI).",
)
.unit("seconds");
pub static IO_STALLED: Family = Family::counter(
    "node_pressure_io_stalled_seconds_total",
    "Seconds all non-idle tasks stalled on I/O at once (PSI).",
)
.unit("seconds");
pub static IRQ_STALLED: Family = Family::counter(
    "node_pressure_irq_stalled_seconds_total",
    "Seconds the CPUs were stalled handling interrupts (PSI).",
)
.unit("seconds");

/// Parses /proc/loadavg's first three numbers.
pub fn parse_loadavg(data: &[u8]) -> Option<[f64; 3]> {
    let mut f = fields(data.split(|&b| b == b'\n').next()?);
    Some([f64_of(f.next()?)?, f64_of(f.next()?)?, f64_of(f.next()?)?])
}

/// Parses a /proc/pressure file: the `total=` microseconds of its `some` and `full` lines.
pub fn parse_pressure(data: &[u8], errors: &mut LineErrors) -> (Option<u64>, Option<u64>) {
    let (mut some, mut full) = (None, None);
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let slot = match f.next() {
            Some(b"some") => &mut some,
            Some(b"full") => &mut full,
            _ => {
                errors.record(n, "neither a `some` nor a `full` line");
                continue;
            }
        };
        match f
            .find_map(|kv| kv.strip_prefix(b"total="))
            .and_then(super::parse::u64_of)
        {
            Some(v) => *slot = Some(v),
            None => errors.record(n, "no total= value"),
        }
    }
    (some, full)
}

struct Pressure {
    file: SharedProcFile,
    some: Option<&'static Family>,
    full: Option<&'static Family>,
}

pub struct Host {
    on_procfs: bool,
    loadavg: SharedProcFile,
    pressure: Vec<Pressure>,
}

impl Host {
    pub fn new(procfs: &Path, cfg: &HostConfig) -> Self {
        let on_procfs = super::is_procfs(procfs);
        let mut pressure = Vec::new();
        if cfg.pressure {
            let dir = procfs.join("pressure");
            let kinds: [(&str, Option<&'static Family>, Option<&'static Family>); 4] = [
                ("cpu", Some(&CPU_WAITING), None),
                ("memory", Some(&MEMORY_WAITING), Some(&MEMORY_STALLED)),
                ("io", Some(&IO_WAITING), Some(&IO_STALLED)),
                ("irq", None, Some(&IRQ_STALLED)),
            ];
            // Kernels without PSI (before 4.20, or booted with psi=0) have no such files
            // or refuse to read them; that is decided once, not logged every scrape.
            for (name, some, full) in kinds {
                let path = dir.join(name);
                if std::fs::read(&path).is_ok() {
                    pressure.push(Pressure {
                        file: SharedProcFile::new(path)
                            .rendered(Render::Whole.if_procfs(on_procfs)),
                        some,
                        full,
                    });
                }
            }
        }
        Host {
            on_procfs,
            loadavg: SharedProcFile::new(procfs.join("loadavg"))
                .rendered(Render::Whole.if_procfs(on_procfs)),
            pressure,
        }
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &LOAD1,
    &LOAD5,
    &LOAD15,
    &TIME,
    &UNAME,
    &CPU_WAITING,
    &MEMORY_WAITING,
    &MEMORY_STALLED,
    &IO_WAITING,
    &IO_STALLED,
    &IRQ_STALLED,
]);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.host;
    Ok(Some(super::blocking(Host::new(&s.system.procfs, c))))
}

impl Collector for Host {
    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut result = Ok(());
        self.loadavg.with(|path, data| match data {
            Err(e) => result = Err(CollectError::read(path, e)),
            Ok(data) => match parse_loadavg(data) {
                Some([l1, l5, l15]) => {
                    w.sample(&LOAD1, &[], l1);
                    w.sample(&LOAD5, &[], l5);
                    w.sample(&LOAD15, &[], l15);
                }
                None => {
                    result = Err(CollectError::Malformed {
                        path: path.to_owned(),
                        line: 1,
                        count: 1,
                        reason: "expected three load averages",
                    })
                }
            },
        });
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        w.sample(&TIME, &[], now);
        if let Some([sysname, release, version, machine, nodename, domainname]) =
            crate::sys::uname()
        {
            w.sample_u64(
                &UNAME,
                &[
                    ("domainname", &domainname),
                    ("machine", &machine),
                    ("nodename", &nodename),
                    ("release", &release),
                    ("sysname", &sysname),
                    ("version", &version),
                ],
                1,
            );
        }
        for p in &self.pressure {
            p.file.with(|path, data| {
                let data = match data {
                    Ok(d) => d,
                    Err(e) => {
                        if result.is_ok() {
                            result = Err(CollectError::read(path, e));
                        }
                        return;
                    }
                };
                let mut errors = LineErrors::default();
                let (some, full) = parse_pressure(data, &mut errors);
                for (family, value) in [(p.some, some), (p.full, full)] {
                    if let (Some(f), Some(v)) = (family, value) {
                        w.sample(f, &[], v as f64 / 1e6);
                    }
                }
                if let Err(e) = errors.into_result(path) {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            });
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg() {
        assert_eq!(
            parse_loadavg(b"0.52 0.58 0.59 1/467 2994\n"),
            Some([0.52, 0.58, 0.59])
        );
        assert_eq!(parse_loadavg(b"0.52 x\n"), None);
        assert_eq!(parse_loadavg(b""), None);
    }

    /// /proc/pressure/io of a 6.1 kernel.
    #[test]
    fn pressure() {
        let mut e = LineErrors::default();
        let (some, full) = parse_pressure(
            b"some avg10=0.00 avg60=0.01 avg300=0.00 total=1234567\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=89\n",
            &mut e,
        );
        assert_eq!((some, full), (Some(1234567), Some(89)));
        assert!(e.into_result(Path::new("p")).is_ok());
        let mut e = LineErrors::default();
        assert_eq!(parse_pressure(b"some avg10=0.00\n", &mut e), (None, None));
        assert!(e.into_result(Path::new("p")).is_err());
    }

    #[test]
    fn uname_has_linux() {
        assert_eq!(crate::sys::uname().unwrap()[0], "Linux");
    }
}
