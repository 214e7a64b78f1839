//! The BackupPC collector: per host, when its last good and last full backups ended,
//! its backups by type, and the size and transfer errors of the last good one, from
//! `<top_dir>/pc/<host>/backups`. A host whose file is missing or unreadable is
//! reported (collector success 0, logged) while the others are still served.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::value::DurationValue;

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::state::backuppc::{self, Row};

/// `backuppc:` — where BackupPC keeps its per-host backup lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackuppcConfig {
    pub enabled: bool,
    /// Reads `<top_dir>/pc/<host>/backups`; nothing is reported where it does not exist.
    pub top_dir: PathBuf,
    /// The hosts to report; empty: every host found.
    pub hosts: Vec<String>,
    /// How long one scrape may read the hosts' files.
    pub timeout: DurationValue,
}

impl Default for BackuppcConfig {
    fn default() -> Self {
        BackuppcConfig {
            enabled: true,
            top_dir: PathBuf::from("/var/lib/backuppc"),
            hosts: Vec::new(),
            timeout: DurationValue(Duration::from_secs(5)),
        }
    }
}

/// A host's `backups` file larger than this is not read: BackupPC writes one line of a
/// few hundred bytes per backup it keeps.
const MAX_BACKUPS_FILE: u64 = 16 << 20;

static LAST_GOOD: Family = Family::gauge(
    "shoehub_backuppc_last_good_backup_timestamp_seconds",
    "When the host's newest full or incremental backup ended, Unix time; 0 if none.",
)
.unit("seconds");
static LAST_FULL: Family = Family::gauge(
    "shoehub_backuppc_last_full_backup_timestamp_seconds",
    "When the host's newest full backup ended, Unix time; 0 if none.",
)
.unit("seconds");
static BACKUPS: Family = Family::gauge(
    "shoehub_backuppc_backups",
    "The host's backups BackupPC keeps, by type (full, incr, partial, active).",
);
static LAST_SIZE: Family = Family::gauge(
    "shoehub_backuppc_last_backup_size_bytes",
    "Size of the host's last good backup.",
)
.unit("bytes");
static LAST_ERRORS: Family = Family::gauge(
    "shoehub_backuppc_last_backup_xfer_errors",
    "Transfer errors of the host's last good backup.",
);

pub struct Backuppc {
    top_dir: PathBuf,
    hosts: Vec<String>,
}

impl Backuppc {
    pub fn new(top_dir: PathBuf, hosts: Vec<String>) -> Backuppc {
        Backuppc { top_dir, hosts }
    }
}

/// Every family this collector writes.
pub static SERVED: Served =
    Served::families(&[&LAST_GOOD, &LAST_FULL, &BACKUPS, &LAST_SIZE, &LAST_ERRORS]);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = s.backuppc;
    Ok(c.enabled.then(|| {
        let run = super::blocking(Backuppc::new(c.top_dir.clone(), c.hosts.clone()));
        AnyCollector::new("backuppc", c.timeout.get(), SERVED, run)
    }))
}

impl Collector for Backuppc {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let pc = self.top_dir.join("pc");
        let hosts: Vec<String> = if self.hosts.is_empty() {
            match std::fs::read_dir(&pc) {
                Ok(entries) => {
                    let mut h: Vec<String> = entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.'))
                        .collect();
                    h.sort();
                    h
                }
                // No BackupPC here.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(CollectError::read(&pc, e)),
            }
        } else {
            self.hosts.clone()
        };
        let mut read: Vec<(String, Vec<Row>)> = Vec::new();
        let mut errors = Vec::new();
        for host in &hosts {
            let path = pc.join(host).join("backups");
            match crate::regular::read_to_string(&path, MAX_BACKUPS_FILE) {
                Ok(text) => {
                    let (rows, bad) = backuppc::parse(&text);
                    if let Some(first) = bad.first() {
                        errors.push(format!(
                            "{}: {} malformed line(s), first line {first}",
                            path.display(),
                            bad.len()
                        ));
                    }
                    read.push((host.clone(), rows));
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        let last = |rows: &[Row], pred: &dyn Fn(&Row) -> bool| -> Option<Row> {
            rows.iter()
                .filter(|r| pred(r))
                .max_by(|a, b| a.end.total_cmp(&b.end).then(a.num.cmp(&b.num)))
                .cloned()
        };
        for (host, rows) in &read {
            let good = last(rows, &Row::is_good);
            w.sample(
                &LAST_GOOD,
                &[("host", host)],
                good.as_ref().map_or(0.0, |r| r.end),
            );
        }
        for (host, rows) in &read {
            let full = last(rows, &|r: &Row| r.kind == "full");
            w.sample(
                &LAST_FULL,
                &[("host", host)],
                full.as_ref().map_or(0.0, |r| r.end),
            );
        }
        for (host, rows) in &read {
            for kind in ["full", "incr", "partial", "active"] {
                let n = rows.iter().filter(|r| r.kind == kind).count() as u64;
                w.sample_u64(&BACKUPS, &[("host", host), ("type", kind)], n);
            }
        }
        for (host, rows) in &read {
            let good = last(rows, &Row::is_good);
            w.sample_u64(
                &LAST_SIZE,
                &[("host", host)],
                good.as_ref().map_or(0, |r| r.size),
            );
        }
        for (host, rows) in &read {
            let good = last(rows, &Row::is_good);
            w.sample_u64(
                &LAST_ERRORS,
                &[("host", host)],
                good.as_ref().map_or(0, |r| r.xfer_errors),
            );
        }
        match errors.first() {
            None => Ok(()),
            Some(first) => Err(CollectError::Partial {
                what: "BackupPC hosts",
                failed: errors.len(),
                total: hosts.len(),
                first: first.clone(),
            }),
        }
    }
}
