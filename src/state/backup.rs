//! The backup destination's layout, which `backup run` writes and the backups collector
//! reads.
//!
//! ```text
//! <destination>/20261125T020000Z/            a complete backup (0750)
//!     db-shoe_store_hub.sql.zst              one dump per database (0600)
//!     accounts.sql.zst                       the accounts and their grants (0600)
//!     files.tar.zst                          the configured paths (0600)
//!     manifest.json                          written last: what is here, with checksums
//!                                            (0640: the exporter's group reads it)
//!     verified.json                          written by `backup verify`
//! <destination>/.partial-20261126T020000Z/   a run under way, or killed
//! ```
//!
//! A backup is complete only when its directory has its final name and its manifest
//! parses and lists artifacts that are all there with their recorded sizes. The run
//! writes into a `.partial-` directory and renames it when the manifest is in place, so
//! a killed run never leaves anything that looks complete.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::credentials::AccountConfig;
use crate::value::DurationValue;

/// `backup:` — what `backup run` saves, where, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Serve the freshness metrics of `destination`.
    pub enabled: bool,
    pub destination: PathBuf,
    /// Backups older than this are pruned (never the newest `keep_min`).
    pub retention: DurationValue,
    pub keep_min: usize,
    /// Directories archived with each backup.
    pub paths: Vec<PathBuf>,
    /// Databases dumped; by default the database of `mysql.url`.
    pub databases: Vec<String>,
    /// The account that dumps and verifies, as in `mysql:` (url, password_file or
    /// defaults_file); by default the `mysql:` section's. It needs to read everything it
    /// dumps, and `verify` needs to create and drop its scratch database.
    pub mysql: Option<AccountConfig>,
    /// A dump or archive that takes longer fails the run.
    pub timeout: DurationValue,
    /// Freshness threshold used by alerts.
    pub max_age: DurationValue,
    /// How long one scrape may read the destination.
    pub scrape_timeout: DurationValue,
    /// A run starts only with this many times the last backup's size free in the
    /// destination (1.5: half as much again, for growth).
    pub space_factor: f64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            destination: PathBuf::from("/var/backups/shoe_store_hub"),
            retention: DurationValue(Duration::from_secs(30 * 86400)),
            keep_min: 7,
            paths: vec![
                PathBuf::from("/etc/shoe_store_hub"),
                PathBuf::from("/var/www/shoe_store_hub/user_data"),
                // This program's own settings and password files: what a new host needs
                // after the old one is lost.
                PathBuf::from("/etc/shoehub-exporter"),
            ],
            databases: Vec::new(),
            mysql: None,
            timeout: DurationValue(Duration::from_secs(2 * 3600)),
            max_age: DurationValue(Duration::from_secs(26 * 3600)),
            scrape_timeout: DurationValue(Duration::from_secs(5)),
            space_factor: 1.5,
        }
    }
}

/// The shortest retention accepted: a day, the plan's interval between two runs. A
/// shorter one would have each run prune the one before.
pub const MIN_RETENTION: Duration = Duration::from_secs(86_400);

impl BackupConfig {
    /// A retention that could leave no backup behind is refused.
    pub fn validate(&self) -> Result<(), String> {
        if self.keep_min == 0 {
            return Err(
                "backup.keep_min: 0 would let a prune remove every backup, the one just made \
                 included; give at least 1 (the default keeps 7)"
                    .to_owned(),
            );
        }
        if self.retention.get() < MIN_RETENTION {
            return Err(format!(
                "backup.retention: {}s is under a day, the interval between two nightly runs: \
                 each run would prune the one before; give at least 1d (the default is 30d)",
                self.retention.get().as_secs()
            ));
        }
        Ok(())
    }
}

pub const MANIFEST: &str = "manifest.json";
pub const VERIFIED: &str = "verified.json";
pub const PARTIAL_PREFIX: &str = ".partial-";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub started: f64,
    pub completed: f64,
    pub server_version: String,
    pub databases: Vec<DatabaseDump>,
    pub paths: Vec<PathBuf>,
    pub files_archived: u64,
    pub artifacts: Vec<Artifact>,
    /// Sockets, FIFOs and devices under the paths: not archived.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Files that vanished or changed while they were archived.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The accounts with privileges on the dumped databases, as `CREATE USER` and
    /// `GRANT` statements (an artifact of its own).
    #[serde(default)]
    pub accounts: Option<AccountsDump>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    pub path: PathBuf,
    /// `socket`, `fifo`, `char device` or `block device`.
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountsDump {
    pub file: String,
    /// `'user'@'host'`, as the server names them.
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseDump {
    pub name: String,
    pub file: String,
    #[serde(default)]
    pub charset: String,
    #[serde(default)]
    pub collation: String,
    /// Rows per table as the dump holds them (base tables; views are below).
    pub tables: Vec<TableRows>,
    /// `PROCEDURE name` and `FUNCTION name`.
    #[serde(default)]
    pub routines: Vec<String>,
    #[serde(default)]
    pub triggers: Vec<String>,
    #[serde(default)]
    pub views: Vec<String>,
    #[serde(default)]
    pub events: Vec<String>,
    /// The dump's size before compression (0 in backups made before it was recorded):
    /// what a restore needs free, as the server stores it about as large.
    #[serde(default)]
    pub raw_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRows {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub file: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verified {
    pub at: f64,
    pub ok: bool,
    pub detail: String,
}

/// A backup name for a time: `20261125T020000Z` (UTC), which sorts by time.
pub fn name_for(unix: i64) -> String {
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Whether a directory name is a backup's.
pub fn is_backup_name(n: &str) -> bool {
    n.len() == 16
        && n.as_bytes()[8] == b'T'
        && n.ends_with('Z')
        && n[..8].bytes().all(|b| b.is_ascii_digit())
        && n[9..15].bytes().all(|b| b.is_ascii_digit())
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// What a directory in the destination is.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Complete,
    /// A `.partial-` directory: a run under way or one that was killed.
    Partial,
    /// A backup directory whose manifest is missing, unreadable, or lists an artifact
    /// that is missing or of another size.
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub path: PathBuf,
    pub state: State,
    pub manifest: Option<Manifest>,
    /// Bytes of its artifacts on disk.
    pub size: u64,
    pub verified: Option<Verified>,
}

fn check(path: &Path) -> (State, Option<Manifest>, u64) {
    let text = match crate::regular::read(&path.join(MANIFEST), super::job::MAX_STATE_BYTES * 16) {
        Ok(t) => t,
        Err(e) => return (State::Corrupt(format!("no manifest: {e}")), None, 0),
    };
    let manifest: Manifest = match serde_json::from_slice(&text) {
        Ok(m) => m,
        Err(e) => return (State::Corrupt(format!("unreadable manifest: {e}")), None, 0),
    };
    let mut size = 0;
    for a in &manifest.artifacts {
        match std::fs::metadata(path.join(&a.file)) {
            Ok(m) if m.len() == a.size => size += m.len(),
            Ok(m) => {
                return (
                    State::Corrupt(format!(
                        "{} is {} bytes, the manifest says {}",
                        a.file,
                        m.len(),
                        a.size
                    )),
                    Some(manifest),
                    0,
                )
            }
            Err(e) => {
                return (
                    State::Corrupt(format!("{}: {e}", a.file)),
                    Some(manifest),
                    0,
                )
            }
        }
    }
    (State::Complete, Some(manifest), size)
}

/// A directory of the destination that is one of the exporter's: a backup or a
/// leftover, with the directory's modification time (a new `verified.json` or a removed
/// artifact changes it).
#[derive(Debug, Clone)]
pub struct Dir {
    pub name: String,
    pub path: PathBuf,
    pub partial: bool,
    pub modified: Option<std::time::SystemTime>,
}

/// The exporter's directories in the destination, oldest first. Anything else there is
/// not the exporter's and is left alone.
pub fn dirs(destination: &Path) -> std::io::Result<Vec<Dir>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(destination)?.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_dir() {
            continue;
        }
        let (name, partial) = match name.strip_prefix(PARTIAL_PREFIX) {
            Some(rest) => (rest.to_owned(), true),
            None => (name, false),
        };
        if is_backup_name(&name) {
            out.push(Dir {
                name,
                path: e.path(),
                partial,
                modified: meta.modified().ok(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What one directory holds: its state, manifest, size and verification.
pub fn read(dir: &Dir) -> Entry {
    if dir.partial {
        return Entry {
            name: dir.name.clone(),
            path: dir.path.clone(),
            state: State::Partial,
            manifest: None,
            size: 0,
            verified: None,
        };
    }
    let (state, manifest, size) = check(&dir.path);
    let verified = crate::regular::read(&dir.path.join(VERIFIED), super::job::MAX_STATE_BYTES)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    Entry {
        name: dir.name.clone(),
        path: dir.path.clone(),
        state,
        manifest,
        size,
        verified,
    }
}

/// Every backup and leftover in the destination, read whole, oldest first.
pub fn scan(destination: &Path) -> std::io::Result<Vec<Entry>> {
    Ok(dirs(destination)?.iter().map(read).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_by_time() {
        assert_eq!(name_for(0), "19700101T000000Z");
        assert_eq!(name_for(1_795_600_000), "20261125T094640Z");
        assert_eq!(name_for(951_782_400), "20000229T000000Z");
        assert!(is_backup_name("20261125T020000Z"));
        for bad in [
            "2026-11-25",
            "20261125T0200Z",
            "lost+found",
            "20261125X020000Z",
        ] {
            assert!(!is_backup_name(bad), "{bad}");
        }
        assert!(name_for(1_700_000_000) < name_for(1_700_000_001));
    }
}
