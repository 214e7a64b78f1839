//! The backups collector: freshness of the backups in `backup.destination`.
//!
//! Only complete backups count (manifest in place, every artifact there with its
//! recorded size); runs under way, killed runs and corrupt backups never do. A backup
//! directory is read again only when its modification time changes (a verification
//! written into it, an artifact removed); otherwise a scrape costs one directory listing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::state::backup::{self, State};

static LAST_SUCCESS: Family = Family::gauge(
    "shoehub_backup_last_success_timestamp_seconds",
    "When the newest complete backup was completed, Unix time; 0 if there is none.",
)
.unit("seconds");
static OLDEST: Family = Family::gauge(
    "shoehub_backup_oldest_timestamp_seconds",
    "When the oldest complete backup kept was completed, Unix time; 0 if there is none.",
)
.unit("seconds");
static COUNT: Family = Family::gauge("shoehub_backups", "Complete backups in the destination.");
static LAST_SIZE: Family = Family::gauge(
    "shoehub_backup_last_size_bytes",
    "Size of the newest complete backup.",
)
.unit("bytes");
static TOTAL_SIZE: Family = Family::gauge(
    "shoehub_backup_total_size_bytes",
    "Size of all complete backups.",
)
.unit("bytes");
static VERIFIED: Family = Family::gauge(
    "shoehub_backup_last_verified_timestamp_seconds",
    "When a backup was last restored and found whole by backup verify, Unix time; 0 if never.",
)
.unit("seconds");

/// What the collector keeps of a backup directory between scrapes.
#[derive(Debug, Clone, Copy)]
struct Seen {
    modified: Option<std::time::SystemTime>,
    /// (completed, size) of a complete backup; `None` for one that is not.
    complete: Option<(f64, u64)>,
    /// When it was last verified whole.
    verified: Option<f64>,
}

pub struct Backups {
    destination: PathBuf,
    /// Backup directories read, by name: read again only when the directory changes.
    seen: Mutex<HashMap<String, Seen>>,
}

impl Backups {
    pub fn new(destination: PathBuf) -> Backups {
        Backups {
            destination,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &LAST_SUCCESS,
    &OLDEST,
    &COUNT,
    &LAST_SIZE,
    &TOTAL_SIZE,
    &VERIFIED,
]);

/// Reads `backup.enabled`, `backup.destination` and `backup.scrape_timeout` (the
/// section is shared with the backup job, which writes what this reads).
pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = s.backup;
    Ok(c.enabled.then(|| {
        let run = super::blocking(Backups::new(c.destination.clone()));
        AnyCollector::new("backups", c.scrape_timeout.get(), SERVED, run)
    }))
}

impl Collector for Backups {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut complete: Vec<(f64, u64)> = Vec::new();
        let mut verified = 0.0f64;
        let result = match backup::dirs(&self.destination) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CollectError::read(&self.destination, e)),
            Ok(dirs) => {
                let mut seen = match self.seen.lock() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                seen.retain(|name, _| dirs.iter().any(|d| &d.name == name && !d.partial));
                for d in dirs.iter().filter(|d| !d.partial) {
                    let cached = seen
                        .get(&d.name)
                        .filter(|s| s.modified.is_some() && s.modified == d.modified)
                        .copied();
                    let s = cached.unwrap_or_else(|| {
                        let e = backup::read(d);
                        let s = Seen {
                            modified: d.modified,
                            complete: match (&e.state, &e.manifest) {
                                (State::Complete, Some(m)) => Some((m.completed, e.size)),
                                _ => None,
                            },
                            verified: e.verified.filter(|v| v.ok).map(|v| v.at),
                        };
                        seen.insert(d.name.clone(), s);
                        s
                    });
                    if let Some(c) = s.complete {
                        complete.push(c);
                    }
                    if let Some(v) = s.verified {
                        verified = verified.max(v);
                    }
                }
                Ok(())
            }
        };
        let newest = complete.iter().max_by(|a, b| a.0.total_cmp(&b.0));
        let oldest = complete.iter().min_by(|a, b| a.0.total_cmp(&b.0));
        w.sample(&LAST_SUCCESS, &[], newest.map_or(0.0, |c| c.0));
        w.sample(&OLDEST, &[], oldest.map_or(0.0, |c| c.0));
        w.sample_u64(&COUNT, &[], complete.len() as u64);
        w.sample_u64(&LAST_SIZE, &[], newest.map_or(0, |c| c.1));
        w.sample_u64(&TOTAL_SIZE, &[], complete.iter().map(|c| c.1).sum());
        w.sample(&VERIFIED, &[], verified);
        result
    }
}
