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
    self, Artifact, BackupConfig, DatabaseDump, Entry, Manifest, MANIFEST, PARTIAL_PREFIX,
};
use crate::sys::now;

mod archive;
mod client;
mod dump;
mod prune;
mod verify;

use client::Defaults;
pub use dump::DumpReader;

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
    #[error("backup.paths: {0}")]
    Path(String),
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        let guard = JobGuard::begin(self.state_dir, "backup")?;
        let result = self.run_locked();
        let (code, tail) = match &result {
            Ok(m) => (0, vec![format!("backup {} complete", m.name)]),
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
        let started = now();
        let name = backup::name_for(started as i64);
        let partial = dest.join(format!("{PARTIAL_PREFIX}{name}"));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(crate::writes::SHARED_DIR)
                .create(&partial)
                .map_err(io_err(format!("creating {}", partial.display())))?;
        }
        let creds = self.credentials()?;
        let defaults = Defaults::new(&creds)?;
        let deadline = Instant::now() + self.cfg.timeout.get();
        let mut artifacts = Vec::new();
        let mut dumps = Vec::new();
        let mut server_version = String::new();
        let tool = find_tool(&["mariadb-dump", "mysqldump"]).ok_or(BackupError::NoDumpTool)?;
        for db in self.databases()? {
            let file = format!("db-{db}.sql.zst");
            let (artifact, reader) =
                self.dump(&tool, &defaults, &db, &partial.join(&file), deadline)?;
            if server_version.is_empty() {
                server_version.clone_from(&reader.server_version);
            }
            dumps.push(DatabaseDump {
                name: db,
                file: file.clone(),
                tables: reader.tables(),
            });
            artifacts.push(Artifact { file, ..artifact });
        }
        let (archive, files) = self.archive(&partial.join("files.tar.zst"), deadline)?;
        artifacts.push(archive);
        let manifest = Manifest {
            format: 1,
            name: name.clone(),
            started,
            completed: now(),
            server_version,
            databases: dumps,
            paths: self.cfg.paths.clone(),
            files_archived: files,
            artifacts,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Io {
            what: "encoding the manifest".into(),
            source: io::Error::other(e),
        })?;
        crate::writes::replace(&partial.join(MANIFEST), &bytes, crate::writes::SHARED)
            .map_err(io_err("writing the manifest".to_owned()))?;
        fsync_dir(&partial)?;
        let final_dir = dest.join(&name);
        std::fs::rename(&partial, &final_dir)
            .map_err(io_err(format!("renaming {} into place", partial.display())))?;
        fsync_dir(dest)?;
        let pruned = self.prune_locked()?;
        let total: u64 = manifest.artifacts.iter().map(|a| a.size).sum();
        Progress::new().done(&format!(
            "backup {name} complete: {} database(s), {files} file(s), {total} bytes; {pruned} old backup(s) pruned",
            manifest.databases.len()
        ));
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
