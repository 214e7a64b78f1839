//! `backup run|verify|prune|list`: the nightly backup as a job that cannot lie about
//! its outcome (layout and completeness rules: [`crate::state::backup`]).
//!
//! A run takes the job lock, dumps each database ([`dump`]), archives the configured
//! paths ([`archive`]), writes the manifest and renames the backup into place, then
//! prunes ([`prune`]). `verify` restores into a scratch database ([`verify`]). The client
//! tools run under the job supervisor and get the account through [`client`].

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::runner::{JobGuard, RunError};
use crate::credentials::{AccountConfig, Credentials, CredentialsError};
use crate::state::backup::{
    self, AccountsDump, Artifact, BackupConfig, DatabaseDump, Entry, Manifest, TableRows, MANIFEST,
    PARTIAL_PREFIX,
};
use crate::sys::now;
use crate::text::hex;

mod archive;
mod client;
mod dump;
pub mod inventory;
mod prune;
pub mod restore;
mod verify;

pub use restore::Request as RestoreRequest;

use client::Defaults;
pub use dump::DumpReader;
pub use verify::check_artifacts;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("no database account for the backup: set backup.mysql or mysql (url with password_file or defaults_file)")]
    NoAccount,
    #[error("no database to dump: set backup.databases, or a database in the mysql url")]
    NoDatabase,
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("neither mariadb-dump nor mysqldump is installed (Debian: mariadb-client)")]
    NoDumpTool,
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the dump of {db} failed: {reason}")]
    Dump { db: String, reason: String },
    #[error("the backup account {account} cannot see everything it must save; grant it {}, as docs/jobs.md lists under Backups (the account is backup.mysql's, or the mysql: section's when backup.mysql is not set)", .missing.join(", "))]
    Grants {
        account: String,
        missing: Vec<String>,
    },
    #[error("the account {account} lacks what this restore needs, and nothing was changed; grant it {}, as docs/jobs.md lists under Backups for backup restore", .missing.join(", "))]
    RestoreGrants {
        account: String,
        missing: Vec<String>,
    },
    #[error("there is no database {0:?} (or the backup account cannot see it)")]
    NoSuchDatabase(String),
    #[error("the database server: {0}")]
    Sql(String),
    #[error("{0}")]
    Restore(String),
    #[error("backup.paths: {0}")]
    Path(String),
    #[error("not enough free space in {}: {} available, and the last backup took {}; {factor}× that ({}) is needed before a run starts. Free space, or lower backup.space_factor", dest.display(), crate::regular::human_bytes(*avail), crate::regular::human_bytes(*last), crate::regular::human_bytes(*need))]
    Space {
        dest: PathBuf,
        avail: u64,
        last: u64,
        need: u64,
        factor: f64,
    },
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("no complete backup in {0}")]
    NothingToVerify(PathBuf),
    #[error("verification of {name} failed: {reason}")]
    Verify { name: String, reason: String },
    #[error(transparent)]
    Job(#[from] RunError),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

pub struct Backup<'a> {
    pub cfg: &'a BackupConfig,
    /// `backup.mysql`, or else the account of the `mysql:` section.
    pub account: Option<AccountConfig>,
    pub state_dir: &'a Path,
    /// How long a client tool that is stopped gets between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

/// Counts what passes through it and hashes it.
struct HashWriter<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Ends the compressed stream, flushes and syncs the file: the artifact as written.
fn finish_artifact(
    enc: zstd::Encoder<'static, HashWriter<io::BufWriter<File>>>,
    path: &Path,
    file: String,
) -> Result<Artifact, BackupError> {
    let hw = enc
        .finish()
        .map_err(io_err(format!("finishing {}", path.display())))?;
    let written = hw.inner.into_inner().map_err(|e| BackupError::Io {
        what: format!("writing {}", path.display()),
        source: e.into_error(),
    })?;
    written
        .sync_all()
        .map_err(io_err(format!("syncing {}", path.display())))?;
    Ok(Artifact {
        file,
        size: hw.bytes,
        sha256: hex(&hw.hash.finalize()),
    })
}

/// `bytes` compressed into a new private file: the artifact as written.
fn write_compressed(path: &Path, bytes: &[u8]) -> Result<Artifact, BackupError> {
    let file = crate::writes::create_new(path, crate::writes::PRIVATE)
        .map_err(io_err(format!("creating {}", path.display())))?;
    let hw = HashWriter {
        inner: io::BufWriter::new(file),
        hash: Sha256::new(),
        bytes: 0,
    };
    let mut enc = zstd::Encoder::new(hw, 3).map_err(io_err("starting compression"))?;
    enc.write_all(bytes)
        .map_err(io_err(format!("writing {}", path.display())))?;
    finish_artifact(enc, path, String::new())
}

/// Progress on a terminal: a line rewritten in place at most every 200 ms.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            on: io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }
    fn show(&mut self, msg: impl FnOnce() -> String) {
        if self.on && self.last.elapsed() >= Duration::from_millis(200) {
            eprint!("\r\x1b[K{}", msg());
            self.last = Instant::now();
        }
    }
    fn done(&mut self, msg: &str) {
        if self.on {
            eprintln!("\r\x1b[K{msg}");
        } else {
            tracing::info!("{msg}");
        }
    }
}

fn find_tool(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .find(|n| std::env::split_paths(&path).any(|d| d.join(n).is_file()))
        .map(|n| (*n).to_owned())
}

fn fsync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(format!("syncing {}", dir.display())))
}

impl Backup<'_> {
    fn credentials(&self) -> Result<Credentials, BackupError> {
        let account = self.account.as_ref().ok_or(BackupError::NoAccount)?;
        let c = Credentials::new(account);
        c.check()?;
        Ok(c)
    }

    fn databases(&self) -> Result<Vec<String>, BackupError> {
        if !self.cfg.databases.is_empty() {
            return Ok(self.cfg.databases.clone());
        }
        let account = self.account.as_ref().ok_or(BackupError::NoAccount)?;
        let db = account.database().ok_or(BackupError::NoDatabase)?;
        Ok(vec![db])
    }

    /// `backup run`: dump, archive, manifest, then prune. Records the job `backup`.
    pub fn run(&self) -> Result<Manifest, BackupError> {
        self.as_job(
            "backup",
            || self.run_locked(),
            |m| format!("backup {} complete", m.name),
        )
    }

    /// Runs `work` as the job `name` (its lock and its state file): exit code 0 with
    /// `summary` of the outcome, or 1 with the error, timed out when it was a timeout.
    fn as_job<T>(
        &self,
        name: &str,
        work: impl FnOnce() -> Result<T, BackupError>,
        summary: impl FnOnce(&T) -> String,
    ) -> Result<T, BackupError> {
        let guard = JobGuard::begin(self.state_dir, name)?;
        let result = work();
        let (code, tail) = match &result {
            Ok(v) => (0, vec![summary(v)]),
            Err(e) => (1, vec![crate::error_chain(e)]),
        };
        guard.finish(
            code,
            matches!(result, Err(BackupError::Timeout(_))),
            tail,
            None,
        )?;
        result
    }

    fn run_locked(&self) -> Result<Manifest, BackupError> {
        let dest = &self.cfg.destination;
        crate::writes::create_dir_all(dest, crate::writes::SHARED_DIR)
            .map_err(io_err(format!("creating {}", dest.display())))?;
        crate::writes::check_dir(dest).map_err(io_err("the backup destination".to_owned()))?;
        self.remove_leftovers()?;
        self.check_space(dest)?;
        let started = now();
        // Names go by the second: a run that starts within the second of the last one
        // takes the next free second.
        let name = (0..3600)
            .map(|k| backup::name_for(started as i64 + k))
            .find(|n| !dest.join(n).exists())
            .unwrap_or_else(|| backup::name_for(started as i64));
        let partial = dest.join(format!("{PARTIAL_PREFIX}{name}"));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(crate::writes::SHARED_DIR)
                .create(&partial)
                .map_err(io_err(format!("creating {}", partial.display())))?;
        }
        // A failed run leaves nothing behind: a full disk stays full no longer than the
        // run that filled it. (A killed run's directory is removed by the next run.)
        let filled = self.fill(&partial, &name, started).and_then(|manifest| {
            let final_dir = dest.join(&name);
            std::fs::rename(&partial, &final_dir)
                .map_err(io_err(format!("renaming {} into place", partial.display())))?;
            Ok(manifest)
        });
        let manifest = match filled {
            Ok(m) => m,
            Err(e) => {
                if let Err(rm) = std::fs::remove_dir_all(&partial) {
                    tracing::warn!(path = %partial.display(), error = %rm, "cannot remove the failed run's directory");
                }
                return Err(e);
            }
        };
        fsync_dir(dest)?;
        let pruned = self.prune_locked()?;
        let total: u64 = manifest.artifacts.iter().map(|a| a.size).sum();
        Progress::new().done(&format!(
            "backup {name} complete: {} database(s), {} file(s), {total} bytes; {} skipped, {} warning(s); {pruned} old backup(s) pruned",
            manifest.databases.len(),
            manifest.files_archived,
            manifest.skipped.len(),
            manifest.warnings.len(),
        ));
        for w in &manifest.warnings {
            tracing::warn!("{w}");
        }
        Ok(manifest)
    }

    /// Refuses to start without `space_factor` times the last complete backup's size
    /// free in `dest`.
    fn check_space(&self, dest: &Path) -> Result<(), BackupError> {
        let factor = self.cfg.space_factor;
        let last = backup::scan(dest)
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|e| e.state == backup::State::Complete)
            .map_or(0, |e| e.size);
        if last == 0 || factor == 0.0 {
            return Ok(());
        }
        let c = std::ffi::CString::new(dest.as_os_str().as_encoded_bytes())
            .map_err(|e| io_err(format!("{}", dest.display()))(io::Error::other(e)))?;
        let avail = crate::sys::statvfs(&c)
            .map_err(io_err(format!("statfs of {}", dest.display())))?
            .avail;
        let need = (last as f64 * factor) as u64;
        if avail < need {
            return Err(BackupError::Space {
                dest: dest.to_owned(),
                avail,
                last,
                need,
                factor,
            });
        }
        Ok(())
    }

    /// Dumps, archive and manifest into the partial directory.
    fn fill(&self, partial: &Path, name: &str, started: f64) -> Result<Manifest, BackupError> {
        let creds = self.credentials()?;
        let defaults = Defaults::new(&creds)?;
        let deadline = Instant::now() + self.cfg.timeout.get();
        let mut artifacts = Vec::new();
        let mut dumps = Vec::new();
        let mut server_version = String::new();
        let tool = find_tool(&["mariadb-dump", "mysqldump"]).ok_or(BackupError::NoDumpTool)?;
        let sql = self.sql(&defaults)?;
        let databases = self.databases()?;
        // The account must see everything it dumps, or the backup would be complete in
        // name only: what it lacks is named before anything is dumped.
        let mut missing = Vec::new();
        for db in &databases {
            for grant in sql.missing_grants(db)? {
                if !missing.contains(&grant) {
                    missing.push(grant);
                }
            }
        }
        if !missing.is_empty() {
            return Err(BackupError::Grants {
                account: sql.current_user()?,
                missing,
            });
        }
        for (i, db) in databases.iter().enumerate() {
            let inventory = sql
                .inventory(db)?
                .ok_or_else(|| BackupError::NoSuchDatabase(db.clone()))?;
            let simple = db
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let file = if simple {
                format!("db-{db}.sql.zst")
            } else {
                format!("db-{i}.sql.zst")
            };
            let (artifact, reader) = self.dump(
                &tool,
                &sql,
                db,
                &inventory.events,
                &partial.join(&file),
                deadline,
            )?;
            if server_version.is_empty() {
                server_version.clone_from(&reader.server_version);
            }
            // Every table the server lists is in the dump, with the rows it holds.
            let mut tables = Vec::new();
            for t in &inventory.tables {
                let rows = reader.rows(t).ok_or_else(|| BackupError::Dump {
                    db: db.clone(),
                    reason: format!("the table {} is missing from the dump", inventory::ident(t)),
                })?;
                tables.push(TableRows {
                    table: t.clone(),
                    rows,
                });
            }
            dumps.push(DatabaseDump {
                name: db.clone(),
                file: file.clone(),
                charset: inventory.charset,
                collation: inventory.collation,
                tables,
                routines: inventory.routines,
                triggers: inventory.triggers,
                views: inventory.views,
                events: inventory.events,
                raw_bytes: reader.bytes,
            });
            artifacts.push(Artifact { file, ..artifact });
        }
        // The accounts with privileges on these databases, to restore with them.
        let accounts = sql.accounts(&databases)?;
        let statements = sql.account_statements(&accounts, &databases)?;
        let accounts_file = "accounts.sql.zst";
        let artifact = write_compressed(&partial.join(accounts_file), statements.as_bytes())?;
        artifacts.push(Artifact {
            file: accounts_file.to_owned(),
            ..artifact
        });
        let accounts = AccountsDump {
            file: accounts_file.to_owned(),
            accounts: accounts
                .iter()
                .map(|(u, h)| format!("{}@{}", inventory::literal(u), inventory::literal(h)))
                .collect(),
        };
        let archived = self.archive(&partial.join("files.tar.zst"), deadline)?;
        artifacts.push(archived.artifact);
        let manifest = Manifest {
            format: 2,
            name: name.to_owned(),
            started,
            completed: now(),
            server_version,
            databases: dumps,
            paths: self.cfg.paths.clone(),
            files_archived: archived.files,
            artifacts,
            skipped: archived.skipped,
            warnings: archived.warnings,
            accounts: Some(accounts),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io {
            what: "encoding the manifest".into(),
            source: io::Error::other(e),
        })?;
        crate::writes::replace(&partial.join(MANIFEST), &bytes, crate::writes::SHARED)
            .map_err(io_err("writing the manifest".to_owned()))?;
        fsync_dir(partial)?;
        Ok(manifest)
    }

    /// `backup list`: every backup and leftover, oldest first.
    pub fn list(&self) -> Result<Vec<Entry>, BackupError> {
        match backup::scan(&self.cfg.destination) {
            Ok(e) => Ok(e),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_err("reading the destination")(e)),
        }
    }
}
