//! `schedstat`: the scheduler's time per CPU from /proc/schedstat, as node_exporter's
//! schedstat collector names it: time spent running tasks, time tasks spent waiting for
//! the CPU, and the time slices run, per `cpu`. A kernel built without
//! `CONFIG_SCHEDSTATS` has no such file: the collector then serves nothing and succeeds.

use std::io;

use super::parse::{fields, lines, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::SharedProcFile;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str =
    "Time each CPU spent running tasks, tasks waited for it, and its time slices (/proc/schedstat).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["schedstat"];

/// Its section, `system.schedstat:`.
pub type Config = super::CollectorToggle;

pub static RUNNING: Family = Family::counter(
    "node_schedstat_running_seconds_total",
    "Seconds the CPU spent running tasks, from /proc/schedstat.",
);
pub static WAITING: Family = Family::counter(
    "node_schedstat_waiting_seconds_total",
    "Seconds tasks spent runnable, waiting for this CPU, from /proc/schedstat.",
);
pub static TIMESLICES: Family = Family::counter(
    "node_schedstat_timeslices_total",
    "Time slices the CPU ran, from /proc/schedstat.",
);

pub static SERVED: Served = Served::families(&[&RUNNING, &WAITING, &TIMESLICES]);

/// One CPU's line: its number as the file writes it, nanoseconds running and waiting,
/// and time slices.
#[derive(Debug, PartialEq, Eq)]
pub struct Cpu<'a> {
    pub id: &'a str,
    pub running_ns: u64,
    pub waiting_ns: u64,
    pub timeslices: u64,
}

/// The `cpuN` lines of /proc/schedstat (the `version`, `timestamp` and `domain` lines
/// say nothing per CPU), and the malformed ones. A `cpuN` line has nine counters; the
/// last three are the time running, the time waiting (in nanoseconds) and the slices.
pub fn parse(data: &[u8]) -> (Vec<Cpu<'_>>, LineErrors) {
    let mut errors = LineErrors::default();
    let mut cpus = Vec::new();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let Some(id) = f
            .next()
            .and_then(|name| name.strip_prefix(b"cpu"))
            .filter(|id| !id.is_empty() && id.iter().all(u8::is_ascii_digit))
        else {
            continue;
        };
        let counters: Vec<u64> = f.map_while(u64_of).collect();
        match (counters.len(), std::str::from_utf8(id)) {
            (9.., Ok(id)) => cpus.push(Cpu {
                id,
                running_ns: counters[6],
                waiting_ns: counters[7],
                timeslices: counters[8],
            }),
            _ => errors.record(n, "a cpu line without nine counters"),
        }
    }
    (cpus, errors)
}

/// Writes each CPU's counters, family by family.
pub fn encode(cpus: &[Cpu<'_>], w: &mut MetricWriter<'_>) {
    const NS: f64 = 1e9;
    for c in cpus {
        w.sample(&RUNNING, &[("cpu", c.id)], c.running_ns as f64 / NS);
    }
    for c in cpus {
        w.sample(&WAITING, &[("cpu", c.id)], c.waiting_ns as f64 / NS);
    }
    for c in cpus {
        w.sample_u64(&TIMESLICES, &[("cpu", c.id)], c.timeslices);
    }
}

pub struct Schedstat {
    file: SharedProcFile,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::procfs_only(&s.system.procfs, Schedstat {
        file: SharedProcFile::new(s.system.procfs.join("schedstat")),
    })))
}

impl Collector for Schedstat {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.file.with(|path, data| match data {
            Ok(data) => {
                let (cpus, errors) = parse(data);
                encode(&cpus, w);
                errors.into_result(path)
            }
            // A kernel without CONFIG_SCHEDSTATS.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CollectError::read(path, e)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/schedstat in the layout a 6.1 kernel writes on a two-CPU host (version 15:
    /// a `cpuN` line of nine counters, then its scheduling domains); the integration
    /// test serves the same file to node_exporter and compares.
    const TWO_CPUS: &[u8] =
        include_bytes!("../../tests/fixtures/schedstat/linux-6.1-two-cpus/schedstat");

    #[test]
    fn each_cpu_line_gives_its_last_three_counters() {
        let (cpus, errors) = parse(TWO_CPUS);
        assert!(errors.summary().is_none());
        assert_eq!(
            cpus,
            [
                Cpu {
                    id: "0",
                    running_ns: 2571342468217,
                    waiting_ns: 107498093744,
                    timeslices: 13474498
                },
                Cpu {
                    id: "1",
                    running_ns: 2636735853394,
                    waiting_ns: 115434508451,
                    timeslices: 13614541
                },
            ]
        );
    }

    #[test]
    fn a_short_cpu_line_is_malformed_and_the_rest_still_served() {
        let (cpus, errors) = parse(b"version 15\ncpu0 1 2 3\ncpu1 0 0 0 0 0 0 5 6 7\n");
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].timeslices, 7);
        assert_eq!(errors.summary(), Some((2, 1, "a cpu line without nine counters")));
    }

    #[test]
    fn seconds_from_nanoseconds() {
        let (cpus, _) = parse(TWO_CPUS);
        let mut buf = Vec::new();
        let mut w = MetricWriter::new(&mut buf, crate::exposition::Format::Text);
        encode(&cpus, &mut w);
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("node_schedstat_running_seconds_total{cpu=\"0\"} 2571.342468217\n"),
            "{text}"
        );
        assert!(text.contains("node_schedstat_timeslices_total{cpu=\"1\"} 13614541\n"));
    }
}
