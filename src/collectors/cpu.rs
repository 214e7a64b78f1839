//! `cpu`: /proc/stat as node_exporter's cpu and stat collectors expose it.
//!
//! One read of /proc/stat gives per-CPU mode times, boot time, context switches, forks,
//! interrupts and process counts; reading it once serves all of them.

use std::path::Path;

use super::parse::{fields, lines, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "CPU time per CPU and mode, context switches, interrupts, forks and processes (/proc/stat).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["cpu", "stat"];

/// Its section, `system.cpu:`.
pub type Config = super::CollectorToggle;

pub static CPU_SECONDS: Family = Family::counter(
    "node_cpu_seconds_total",
    "Seconds the CPUs spent in each mode, from /proc/stat.",
)
.unit("seconds");
pub static CPU_GUEST_SECONDS: Family = Family::counter(
    "node_cpu_guest_seconds_total",
    "Seconds the CPUs spent running guests, from /proc/stat (also counted in user and nice).",
)
.unit("seconds");
pub static BOOT_TIME: Family = Family::gauge(
    "node_boot_time_seconds",
    "Time the host booted, in seconds since the epoch.",
)
.unit("seconds");
pub static CONTEXT_SWITCHES: Family = Family::counter(
    "node_context_switches_total",
    "Context switches since boot.",
);
pub static FORKS: Family = Family::counter(
    "node_forks_total",
    "Processes and threads created since boot.",
);
pub static INTERRUPTS: Family =
    Family::counter("node_intr_total", "Interrupts serviced since boot.");
pub static PROCS_RUNNING: Family =
    Family::gauge("node_procs_running", "Processes in a runnable state.");
pub static PROCS_BLOCKED: Family = Family::gauge(
    "node_procs_blocked",
    "Processes blocked waiting for I/O to complete.",
);

/// /proc/stat's per-CPU columns, in order, with node_exporter's mode names.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// What one read of /proc/stat yields.
#[derive(Debug, Default, PartialEq)]
pub struct Stat {
    /// (cpu number, 10 columns in ticks: 8 modes then guest and guest_nice).
    pub cpus: Vec<(u32, [u64; 10])>,
    pub boot_time: Option<u64>,
    pub context_switches: Option<u64>,
    pub forks: Option<u64>,
    pub interrupts: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

/// Parses /proc/stat; malformed lines are skipped and recorded.
pub fn parse(data: &[u8], errors: &mut LineErrors) -> Stat {
    let mut stat = Stat::default();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let Some(key) = f.next() else { continue };
        if let Some(id) = key.strip_prefix(b"cpu") {
            if id.is_empty() {
                continue; // the all-CPU total; PromQL sums per-CPU series itself
            }
            let Some(cpu) = u64_of(id).and_then(|c| u32::try_from(c).ok()) else {
                errors.record(n, "cpu line with a bad CPU number");
                continue;
            };
            let mut cols = [0u64; 10];
            let mut count = 0;
            let mut bad = false;
            for (i, v) in f.take(10).enumerate() {
                match u64_of(v) {
                    Some(v) => cols[i] = v,
                    None => bad = true,
                }
                count += 1;
            }
            // Kernels since 2.6.33 have all ten columns; older ones at least the first four.
            if bad || count < 4 {
                errors.record(n, "cpu line with missing or non-numeric columns");
                continue;
            }
            stat.cpus.push((cpu, cols));
            continue;
        }
        let target = match key {
            b"btime" => &mut stat.boot_time,
            b"ctxt" => &mut stat.context_switches,
            b"processes" => &mut stat.forks,
            b"intr" => &mut stat.interrupts,
            b"procs_running" => &mut stat.procs_running,
            b"procs_blocked" => &mut stat.procs_blocked,
            _ => continue,
        };
        match f.next().and_then(u64_of) {
            Some(v) => *target = Some(v),
            None => errors.record(n, "counter line without a number"),
        }
    }
    stat
}

pub struct Cpu {
    on_procfs: bool,
    stat: SharedProcFile,
    ticks_per_second: u64,
}

impl Cpu {
    pub fn new(procfs: &Path) -> Self {
        // USER_HZ, the unit of /proc/stat's columns; 100 on every Linux build we know.
        let hz = crate::sys::clock_ticks();
        let on_procfs = super::is_procfs(procfs);
        Cpu {
            on_procfs,
            stat: SharedProcFile::new(procfs.join("stat"))
                .rendered(Render::Whole.if_procfs(on_procfs)),
            ticks_per_second: if hz > 0 { hz } else { 100 },
        }
    }
}

/// Writes a parsed /proc/stat.
pub fn encode(stat: &Stat, ticks_per_second: u64, w: &mut MetricWriter<'_>) {
    // Label values are formatted once and reused by every mode's sample.
    let id_strs: Vec<String> = stat
        .cpus
        .iter()
        .map(|(cpu, _)| itoa::Buffer::new().format(*cpu).to_owned())
        .collect();
    for (i, (_, cols)) in stat.cpus.iter().enumerate() {
        for (m, mode) in MODES.iter().enumerate() {
            w.sample_quotient(
                &CPU_SECONDS,
                &[("cpu", &id_strs[i]), ("mode", mode)],
                cols[m],
                ticks_per_second,
            );
        }
    }
    for (i, (_, cols)) in stat.cpus.iter().enumerate() {
        w.sample_quotient(
            &CPU_GUEST_SECONDS,
            &[("cpu", &id_strs[i]), ("mode", "user")],
            cols[8],
            ticks_per_second,
        );
        w.sample_quotient(
            &CPU_GUEST_SECONDS,
            &[("cpu", &id_strs[i]), ("mode", "nice")],
            cols[9],
            ticks_per_second,
        );
    }
    let singles: [(&'static Family, Option<u64>); 6] = [
        (&BOOT_TIME, stat.boot_time),
        (&CONTEXT_SWITCHES, stat.context_switches),
        (&FORKS, stat.forks),
        (&INTERRUPTS, stat.interrupts),
        (&PROCS_RUNNING, stat.procs_running),
        (&PROCS_BLOCKED, stat.procs_blocked),
    ];
    for (family, value) in singles {
        if let Some(v) = value {
            w.sample_u64(family, &[], v);
        }
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &CPU_SECONDS,
    &CPU_GUEST_SECONDS,
    &BOOT_TIME,
    &CONTEXT_SWITCHES,
    &FORKS,
    &INTERRUPTS,
    &PROCS_RUNNING,
    &PROCS_BLOCKED,
]);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::blocking(Cpu::new(&s.system.procfs))))
}

impl Collector for Cpu {
    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.stat.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            let mut errors = LineErrors::default();
            let stat = parse(data, &mut errors);
            encode(&stat, self.ticks_per_second, w);
            errors.into_result(path)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    /// /proc/stat of a 2-CPU Debian 12 VM (kernel 6.1), intr line shortened.
    const DEBIAN12_STAT: &[u8] = b"cpu  2255 34 2290 22625563 6290 127 456 0 0 0
cpu0 1132 34 1441 11311718 3675 127 438 0 0 0
cpu1 1123 0 849 11313845 2615 0 18 0 0 0
intr 114930548 113199788 3 0 5 263 0 4 [... 'and so on'
ctxt 1990473
btime 1062191376
processes 2915
procs_running 1
procs_blocked 0
softirq 12121874 0 4032316 6 125 0 0 1 2 3 4
";

    #[test]
    fn parses_a_real_proc_stat() {
        let mut e = LineErrors::default();
        let s = parse(DEBIAN12_STAT, &mut e);
        assert!(e.into_result(Path::new("stat")).is_ok());
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(
            s.cpus[1],
            (1, [1123, 0, 849, 11313845, 2615, 0, 18, 0, 0, 0])
        );
        assert_eq!(s.boot_time, Some(1062191376));
        assert_eq!(s.interrupts, Some(114930548));
        assert_eq!(s.forks, Some(2915));
        let mut buf = Vec::new();
        encode(&s, 100, &mut MetricWriter::new(&mut buf, Format::Text));
        let out = String::from_utf8(buf).unwrap();
        assert!(
            out.contains("node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 113138.45\n"),
            "{out}"
        );
        assert!(out.contains("node_cpu_seconds_total{cpu=\"0\",mode=\"softirq\"} 4.38\n"));
        assert!(out.contains("node_boot_time_seconds 1062191376\n"));
        assert!(out.contains("node_procs_blocked 0\n"));
    }

    #[test]
    fn malformed_lines_are_skipped_and_reported() {
        let mut e = LineErrors::default();
        let s = parse(
            b"cpu0 1 2 x 4 5 6 7 8 9 10\ncpu1 1 2 3 4 5 6 7 8 9 10\ncpuX 1 2 3 4\nctxt\n",
            &mut e,
        );
        assert_eq!(s.cpus.len(), 1);
        assert_eq!(s.cpus[0].0, 1);
        let err = e
            .into_result(Path::new("/proc/stat"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3 malformed line(s), first at line 1"),
            "{err}"
        );
    }
}
