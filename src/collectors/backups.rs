//! The backups collector: freshness of the backups in `backup.destination`.
//!
//! Only complete backups count (manifest in place, every artifact there with its
//! recorded size); runs under way, killed runs and corrupt backups never do. Manifests
//! never change once a backup is complete, so each is read once and remembered.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use super::{CollectError, Collector};
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

pub struct Backups {
    destination: PathBuf,
    remote: bool,
    /// Complete backups seen: name → (completed, size).
    seen: Mutex<HashMap<String, (f64, u64)>>,
}

impl Backups {
    pub fn new(destination: PathBuf) -> Backups {
        let remote = super::is_remote_fs(&destination);
        Backups {
            destination,
            remote,
            seen: Mutex::new(HashMap::new()),
        }
    }
}

impl Collector for Backups {
    fn name(&self) -> &'static str {
        "backups"
    }

    fn serves(&self) -> &'static [&'static str] {
        &["shoehub_backup_", "shoehub_backups"]
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// A backup destination on a network filesystem can hang.
    fn may_block(&self) -> bool {
        self.remote
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut complete: Vec<(String, f64, u64)> = Vec::new();
        let mut verified = 0.0f64;
        let result = match std::fs::read_dir(&self.destination) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CollectError::read(&self.destination, e)),
            Ok(_) => {
                let mut seen = match self.seen.lock() {
                    Ok(s) => s,
                    Err(p) => p.into_inner(),
                };
                match backup::scan(&self.destination) {
                    Ok(entries) => {
                        for e in entries {
                            if let Some(v) = &e.verified {
                                if v.ok {
                                    verified = verified.max(v.at);
                                }
                            }
                            if e.state != State::Complete {
                                continue;
                            }
                            let (completed, size) = match (seen.get(&e.name), &e.manifest) {
                                (Some(x), _) => *x,
                                (None, Some(m)) => (m.completed, e.size),
                                (None, None) => continue,
                            };
                            seen.insert(e.name.clone(), (completed, size));
                            complete.push((e.name, completed, size));
                        }
                        let names: Vec<&String> = complete.iter().map(|c| &c.0).collect();
                        seen.retain(|k, _| names.contains(&k));
                        Ok(())
                    }
                    Err(e) => Err(CollectError::read(&self.destination, e)),
                }
            }
        };
        let newest = complete.iter().max_by(|a, b| a.1.total_cmp(&b.1));
        let oldest = complete.iter().min_by(|a, b| a.1.total_cmp(&b.1));
        w.sample(&LAST_SUCCESS, &[], newest.map_or(0.0, |c| c.1));
        w.sample(&OLDEST, &[], oldest.map_or(0.0, |c| c.1));
        w.sample_u64(&COUNT, &[], complete.len() as u64);
        w.sample_u64(&LAST_SIZE, &[], newest.map_or(0, |c| c.2));
        w.sample_u64(&TOTAL_SIZE, &[], complete.iter().map(|c| c.2).sum());
        w.sample(&VERIFIED, &[], verified);
        result
    }
}
