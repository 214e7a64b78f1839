//! The job state file: what a job run records and the jobs collector reads.
//!
//! One JSON file per job, `<state_dir>/<job>.json`, replaced atomically (temporary file,
//! fsync, rename, fsync of the directory): a reader sees the previous state or the new
//! one, never half of either, and a run killed at any point leaves the last good state.
//! While a run is under way the file names the runner's pid and its start time in the
//! kernel's clock, so that a runner that was killed (or a pid reused by another process)
//! is recognised as not running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::value::{ByteSize, DurationValue};

/// `jobs:` — job state files, written by `job run` (and the backup and update jobs),
/// read by the jobs collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    pub state_dir: PathBuf,
    /// Serve the jobs' metrics.
    pub enabled: bool,
    /// How long a timed-out job gets after SIGTERM before SIGKILL.
    pub kill_grace: DurationValue,
    /// How long one scrape may read the state files.
    pub timeout: DurationValue,
    /// A command's JSON output (Ansible's json callback) is read for its stats up to
    /// this size; a larger document is reported and its stats left out.
    pub max_json_bytes: ByteSize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            state_dir: PathBuf::from("/var/lib/shoehub-exporter/jobs"),
            enabled: true,
            kill_grace: DurationValue(Duration::from_secs(10)),
            timeout: DurationValue(Duration::from_secs(5)),
            max_json_bytes: ByteSize(16 << 20),
        }
    }
}

/// The ansible task counters, per host, by status (`ok`, `changed`, `unreachable`,
/// `failed`, `skipped`, `rescued`, `ignored`).
pub type Recap = BTreeMap<String, BTreeMap<String, u64>>;

/// The statuses of a PLAY RECAP line, in Ansible's order.
pub const RECAP_STATUSES: [&str; 7] = [
    "ok",
    "changed",
    "unreachable",
    "failed",
    "skipped",
    "rescued",
    "ignored",
];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub job: String,
    /// The run under way, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Running>,
    /// The last run that ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Finished>,
    /// Unix time of the last run that exited 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<f64>,
    #[serde(default)]
    pub runs: u64,
    #[serde(default)]
    pub failures: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Running {
    /// The runner's pid (the process that writes this file when the run ends).
    pub pid: u32,
    /// The runner's start time in clock ticks since boot (/proc/PID/stat field 22): a
    /// pid reused by another process has another start time.
    pub pid_start: u64,
    pub started: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finished {
    pub started: f64,
    pub ended: f64,
    /// The command's exit code, or 128 + N when signal N ended it.
    pub exit_code: i32,
    #[serde(default)]
    pub timed_out: bool,
    /// The last lines of its output.
    #[serde(default)]
    pub tail: Vec<String>,
    /// Ansible's PLAY RECAP, when the command printed one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recap: Option<Recap>,
}

/// Why a state file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a job state file")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A job name: it becomes a file name and a label value.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// A state file larger than this is not read: the exporter writes them, and they hold
/// a few hundred bytes.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

pub fn path(state_dir: &Path, job: &str) -> PathBuf {
    state_dir.join(format!("{job}.json"))
}

/// Reads a job's state; a job that never ran has the default state.
pub fn read(state_dir: &Path, job: &str) -> Result<JobState, StateError> {
    let p = path(state_dir, job);
    match crate::regular::read(&p, MAX_STATE_BYTES) {
        Ok(bytes) => parse(&p, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(JobState {
            job: job.to_owned(),
            ..JobState::default()
        }),
        Err(source) => Err(StateError::Io { path: p, source }),
    }
}

pub fn parse(path: &Path, bytes: &[u8]) -> Result<JobState, StateError> {
    serde_json::from_slice(bytes).map_err(|source| StateError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

/// Replaces the job's state file atomically.
pub fn write(state_dir: &Path, state: &JobState) -> Result<(), StateError> {
    let target = path(state_dir, &state.job);
    let bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Corrupt {
        path: target.clone(),
        source,
    })?;
    crate::writes::replace(&target, &bytes, crate::writes::SHARED).map_err(|source| {
        StateError::Io {
            path: target.clone(),
            source,
        }
    })
}

/// Whether the run recorded as under way is still alive: its pid exists and started
/// when the record says.
pub fn is_alive(r: &Running) -> bool {
    process_start(r.pid) == Some(r.pid_start)
}

/// A process's start time in clock ticks since boot, if it exists.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 22 overall is the 20th after the name (state is field 3).
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Parses Ansible's PLAY RECAP lines (`host : ok=2 changed=1 unreachable=0 …`) from
/// output lines that follow a `PLAY RECAP` header.
pub fn parse_recap_line(line: &str) -> Option<(String, BTreeMap<String, u64>)> {
    let (host, counts) = line.split_once(" : ")?;
    let host = strip_ansi(host).trim().to_owned();
    if host.is_empty() || host.contains(' ') {
        return None;
    }
    let mut out = BTreeMap::new();
    for field in strip_ansi(counts).split_whitespace() {
        let (k, v) = field.split_once('=')?;
        if RECAP_STATUSES.contains(&k) {
            out.insert(k.to_owned(), v.parse().ok()?);
        }
    }
    (!out.is_empty()).then_some((host, out))
}

/// Ansible colours its recap on a terminal.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `stats` of Ansible's JSON callback output.
pub fn parse_json_stats(output: &[u8]) -> Option<Recap> {
    let v: serde_json::Value = serde_json::from_slice(output).ok()?;
    let stats = v.get("stats")?.as_object()?;
    let mut recap = Recap::new();
    for (host, counts) in stats {
        let counts = counts.as_object()?;
        let mut m = BTreeMap::new();
        for s in RECAP_STATUSES {
            // The JSON callback says `failures` where the recap line says `failed`.
            let key = if s == "failed" { "failures" } else { s };
            if let Some(n) = counts.get(key).and_then(serde_json::Value::as_u64) {
                m.insert(s.to_owned(), n);
            }
        }
        recap.insert(host.clone(), m);
    }
    Some(recap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = read(dir.path(), "backup").unwrap();
        assert_eq!(s.runs, 0);
        s.runs = 3;
        s.last = Some(Finished {
            started: 1.0,
            ended: 2.5,
            exit_code: 0,
            timed_out: false,
            tail: vec!["done".into()],
            recap: None,
        });
        write(dir.path(), &s).unwrap();
        assert_eq!(read(dir.path(), "backup").unwrap(), s);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::write(path(dir.path(), "bad"), "{not json").unwrap();
        assert!(matches!(
            read(dir.path(), "bad"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn names() {
        assert!(valid_name("backup-verify"));
        assert!(valid_name("update_2"));
        for bad in ["", "../x", "a/b", ".hidden", "with space"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn liveness_by_pid_and_start_time() {
        let me = std::process::id();
        let start = process_start(me).unwrap();
        let alive = Running {
            pid: me,
            pid_start: start,
            started: 0.0,
        };
        assert!(is_alive(&alive));
        assert!(!is_alive(&Running {
            pid_start: start + 1,
            ..alive.clone()
        }));
        assert!(!is_alive(&Running {
            pid: u32::MAX - 1,
            ..alive
        }));
    }

    #[test]
    fn recap_lines() {
        let (host, c) = parse_recap_line(
            "localhost                  : ok=3    changed=1    unreachable=0    failed=1    skipped=2    rescued=0    ignored=0   ",
        )
        .unwrap();
        assert_eq!(host, "localhost");
        assert_eq!(c["ok"], 3);
        assert_eq!(c["failed"], 1);
        assert_eq!(c.len(), 7);
        let coloured = "\u{1b}[0;33mweb1\u{1b}[0m : \u{1b}[0;32mok=2\u{1b}[0m changed=0 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0";
        assert_eq!(parse_recap_line(coloured).unwrap().0, "web1");
        assert!(parse_recap_line("TASK [x] : ok").is_none());
        let json = br#"{"plays": [], "stats": {"localhost": {"changed": 1, "failures": 0, "ignored": 0, "ok": 2, "rescued": 0, "skipped": 0, "unreachable": 0}}}"#;
        let r = parse_json_stats(json).unwrap();
        assert_eq!(r["localhost"]["ok"], 2);
        assert_eq!(r["localhost"]["failed"], 0);
    }
}
