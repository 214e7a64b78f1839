//! `check`: the maintenance plan's validation steps (does the monitoring work, do the
//! backups work, does the update protocol work) as checks that each say `ok`, `warning`
//! or `failed`, why, and what to do.
//!
//! The checks the exporter can judge from what it already holds (collectors, probes,
//! backups, updates as its last scrape saw them) are in [`scraped`]; the status page and
//! `check`'s exporter check both use them. `check` adds what only a run on the host can
//! see ([`local`]: the backup's artifacts, the update records) and what lies beyond the
//! exporter ([`remote`]: Prometheus, Alertmanager, Grafana).

use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::config::check::CheckConfig;

pub mod local;
pub mod remote;
pub mod scraped;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
        }
    }
}

/// One check: its name, verdict, what it found, and what to do (empty when ok).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub hint: String,
}

impl Check {
    pub fn ok(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status: Status::Ok,
            detail: detail.into(),
            hint: String::new(),
        }
    }

    pub fn warning(name: &str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status: Status::Warning,
            detail: detail.into(),
            hint: hint.into(),
        }
    }

    pub fn failed(name: &str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            status: Status::Failed,
            detail: detail.into(),
            hint: hint.into(),
        }
    }
}

/// Several findings of one area as one check: the worst verdict, every detail that is
/// not ok (or every detail when all are), the hints of the worst.
pub fn combine(name: &str, findings: Vec<Check>) -> Check {
    let worst = findings
        .iter()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok);
    let shown: Vec<&Check> = findings
        .iter()
        .filter(|c| worst == Status::Ok || c.status != Status::Ok)
        .collect();
    let join = |f: &dyn Fn(&Check) -> &str| {
        let mut parts: Vec<&str> = Vec::new();
        for c in &shown {
            let s = f(c);
            if !s.is_empty() && !parts.contains(&s) {
                parts.push(s);
            }
        }
        parts.join("; ")
    };
    Check {
        name: name.to_owned(),
        status: worst,
        detail: join(&|c| c.detail.as_str()),
        hint: join(&|c| {
            if c.status == worst {
                c.hint.as_str()
            } else {
                ""
            }
        }),
    }
}

/// What `check --format json` prints, and the exporter's `/-/status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// One line per check (its hint on the next), then a count of each verdict.
    pub fn text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{:<7}  {:<width$}  {}",
                c.status.as_str(),
                c.name,
                c.detail
            );
            if !c.hint.is_empty() {
                let _ = writeln!(out, "{:<7}  {:<width$}  -> {}", "", "", c.hint);
            }
        }
        let count = |s: Status| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "{} failed, {} warning(s), {} ok",
            count(Status::Failed),
            count(Status::Warning),
            count(Status::Ok)
        );
        out
    }

    pub fn json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// An age in words: "45 s", "12 min", "5 h", "3 d".
pub fn age_words(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 90.0 {
        format!("{} s", s.round() as u64)
    } else if s < 90.0 * 60.0 {
        format!("{} min", (s / 60.0).round() as u64)
    } else if s < 48.0 * 3600.0 {
        format!("{} h", (s / 3600.0).round() as u64)
    } else {
        format!("{} d", (s / 86400.0).round() as u64)
    }
}

/// A duration setting in words, as [`age_words`] gives ages.
pub fn duration_words(d: Duration) -> String {
    age_words(d.as_secs_f64())
}

/// The current Unix time in seconds.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combine_keeps_the_worst_and_its_hints() {
        let c = combine(
            "backups",
            vec![
                Check::ok("a", "fresh"),
                Check::warning("b", "old verify", "run verify"),
                Check::failed("c", "missing file", "run backup"),
            ],
        );
        assert_eq!(c.status, Status::Failed);
        assert_eq!(c.detail, "old verify; missing file");
        assert_eq!(c.hint, "run backup");
        let ok = combine("x", vec![Check::ok("a", "one"), Check::ok("b", "two")]);
        assert_eq!((ok.status, ok.detail.as_str()), (Status::Ok, "one; two"));
    }

    #[test]
    fn ages_read_as_words() {
        assert_eq!(age_words(5.0), "5 s");
        assert_eq!(age_words(600.0), "10 min");
        assert_eq!(age_words(5.0 * 3600.0), "5 h");
        assert_eq!(age_words(3.0 * 86400.0), "3 d");
        assert_eq!(age_words(-3.0), "0 s");
    }

    #[test]
    fn the_text_report_has_a_line_per_check_and_a_summary() {
        let r = Report {
            checks: vec![
                Check::ok("exporter", "11 collectors succeed"),
                Check::failed("backups", "3 d old", "run backup"),
            ],
        };
        let t = r.text();
        assert!(
            t.contains("ok       exporter  11 collectors succeed\n"),
            "{t}"
        );
        assert!(t.contains("failed   backups   3 d old\n"), "{t}");
        assert!(t.contains("-> run backup\n"), "{t}");
        assert!(t.ends_with("1 failed, 0 warning(s), 1 ok\n"), "{t}");
        assert_eq!(r.worst(), Status::Failed);
        let back: Report = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(back, r);
    }
}
