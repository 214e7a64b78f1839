//! `backup run|verify|prune|list`: the nightly backup as a job that cannot lie about
//! its outcome (layout and completeness rules: [`crate::state::backup`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::runner::{JobGuard, RunError};
use crate::collectors::mysql::credentials::{Credentials, CredentialsError};
use crate::config::{BackupConfig, MysqlConfig};
use crate::state::backup::{
    self, Artifact, DatabaseDump, Entry, Manifest, State, TableRows, Verified, MANIFEST,
    PARTIAL_PREFIX, VERIFIED,
};
use crate::state::job::write_atomically;

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
    #[error("{what}: {source}")]
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

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub struct Backup<'a> {
    pub cfg: &'a BackupConfig,
    /// The `mysql:` section, used when `backup.mysql` is not set.
    pub mysql: Option<&'a MysqlConfig>,
    pub state_dir: &'a Path,
}

/// The account as my.cnf-style `[client]` options. Each client tool gets them through a
/// pipe of its own (`--defaults-extra-file=/dev/fd/N`): the password reaches it through
/// neither argv nor the environment, and no file holds it, not even a killed run's.
struct Defaults {
    text: String,
}

impl Defaults {
    fn new(creds: &Credentials) -> Result<Defaults, BackupError> {
        let opts = mysql_async::Opts::from(creds.options()?);
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let mut text = String::from("[client]\n");
        if let Some(u) = opts.user() {
            text.push_str(&format!("user = {}\n", quote(u)));
        }
        if let Some(p) = opts.pass() {
            text.push_str(&format!("password = {}\n", quote(p)));
        }
        match opts.socket() {
            Some(s) => text.push_str(&format!("socket = {}\nprotocol = socket\n", quote(s))),
            None => text.push_str(&format!(
                "host = {}\nport = {}\nprotocol = tcp\n",
                quote(opts.ip_or_hostname()),
                opts.tcp_port()
            )),
        }
        Ok(Defaults { text })
    }

    /// A command for `program` reading the options from a pipe; the returned descriptor
    /// (the pipe's reading end) must live until the command is spawned.
    fn command(&self, program: &str) -> Result<(Command, OwnedFd), BackupError> {
        let mut fds = [0; 2];
        // SAFETY: pipe fills the two-element array it is given.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io_err("creating a pipe")(io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are owned here alone.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // The reading end is inherited by the tool; the writing end is not.
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
        // A few hundred bytes: the pipe's buffer takes them without a reader.
        File::from(write)
            .write_all(self.text.as_bytes())
            .map_err(io_err("writing the client options"))?;
        let mut cmd = Command::new(program);
        cmd.arg(format!(
            "--defaults-extra-file=/dev/fd/{}",
            read.as_raw_fd()
        ));
        Ok((cmd, read))
    }
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

/// Rows per table in a mysqldump stream, counted from its INSERT statements as they
/// pass (extended inserts: one statement holds many rows), and its completion marker.
#[derive(Default)]
pub struct DumpReader {
    tables: BTreeMap<String, u64>,
    line_start: Vec<u8>,
    at_line_start: bool,
    mode: Mode,
    tail: Vec<u8>,
    pub server_version: String,
}

#[derive(Default, PartialEq)]
enum Mode {
    #[default]
    Scan,
    Skip,
    Values {
        table: String,
        depth: u32,
        in_str: bool,
        esc: bool,
    },
}

impl DumpReader {
    pub fn new() -> DumpReader {
        DumpReader {
            at_line_start: true,
            ..DumpReader::default()
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        for &b in data {
            self.byte(b);
        }
        self.tail.extend_from_slice(data);
        if self.tail.len() > 512 {
            let cut = self.tail.len() - 256;
            self.tail.drain(..cut);
        }
    }

    fn byte(&mut self, b: u8) {
        if let Mode::Values {
            table,
            depth,
            in_str,
            esc,
        } = &mut self.mode
        {
            if *in_str {
                if *esc {
                    *esc = false;
                } else if b == b'\\' {
                    *esc = true;
                } else if b == b'\'' {
                    *in_str = false;
                }
            } else {
                match b {
                    b'\'' => *in_str = true,
                    b'(' => {
                        if *depth == 0 {
                            *self.tables.entry(table.clone()).or_insert(0) += 1;
                        }
                        *depth += 1;
                    }
                    b')' => *depth = depth.saturating_sub(1),
                    b';' if *depth == 0 => {
                        self.mode = Mode::Skip;
                    }
                    _ => {}
                }
            }
            return;
        }
        if b == b'\n' {
            if self.mode == Mode::Scan {
                // May start counting: MariaDB puts the rows on the lines after VALUES.
                self.line(true);
            } else {
                self.mode = Mode::Scan;
            }
            self.line_start.clear();
            self.at_line_start = true;
            return;
        }
        if self.mode == Mode::Skip {
            return;
        }
        self.line_start.push(b);
        if self.line_start.ends_with(b" VALUES ") || self.line_start.len() >= 512 {
            self.line(false);
        }
    }

    /// A line's start is known: an INSERT begins counting, a CREATE TABLE registers the
    /// table (so an empty one counts 0), the header gives the server version.
    fn line(&mut self, complete: bool) {
        let l = std::mem::take(&mut self.line_start);
        let text = String::from_utf8_lossy(&l);
        if let Some(rest) = text.strip_prefix("INSERT INTO `") {
            if let Some((table, after)) = rest.split_once('`') {
                if after.trim_start().starts_with("VALUES") {
                    self.mode = Mode::Values {
                        table: table.to_owned(),
                        depth: 0,
                        in_str: false,
                        esc: false,
                    };
                    return;
                }
            }
        } else if let Some(rest) = text.strip_prefix("CREATE TABLE `") {
            if let Some((table, _)) = rest.split_once('`') {
                self.tables.entry(table.to_owned()).or_insert(0);
            }
        } else if let Some(v) = text.strip_prefix("-- Server version") {
            self.server_version = v.trim().to_owned();
        }
        self.mode = if complete { Mode::Scan } else { Mode::Skip };
    }

    pub fn completed(&self) -> bool {
        String::from_utf8_lossy(&self.tail).contains("-- Dump completed")
    }

    pub fn tables(&self) -> Vec<TableRows> {
        self.tables
            .iter()
            .map(|(t, n)| TableRows {
                table: t.clone(),
                rows: *n,
            })
            .collect()
    }
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

/// Kills the child when the deadline passes, unless disarmed first.
fn watchdog(child: &Child, timeout: Duration) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if flag.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !flag.load(Ordering::SeqCst) {
            // SAFETY: signalling a child process this run started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            flag.store(true, Ordering::SeqCst);
        }
    });
    done
}

impl Backup<'_> {
    fn credentials(&self) -> Result<Credentials, BackupError> {
        let m = self
            .cfg
            .mysql
            .as_ref()
            .or(self.mysql)
            .ok_or(BackupError::NoAccount)?;
        let c = Credentials::new(m);
        c.check()?;
        Ok(c)
    }

    fn databases(&self) -> Result<Vec<String>, BackupError> {
        if !self.cfg.databases.is_empty() {
            return Ok(self.cfg.databases.clone());
        }
        let m = self
            .cfg
            .mysql
            .as_ref()
            .or(self.mysql)
            .ok_or(BackupError::NoAccount)?;
        let db = m
            .url
            .as_ref()
            .and_then(|u| url::Url::parse(&u.0).ok())
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .filter(|d| !d.is_empty())
            .ok_or(BackupError::NoDatabase)?;
        Ok(vec![db])
    }

    /// `backup run`: dump, archive, manifest, then prune. Records the job `backup`.
    pub fn run(&self) -> Result<Manifest, BackupError> {
        let guard = JobGuard::begin(self.state_dir, "backup")?;
        let result = self.run_locked();
        let (code, tail) = match &result {
            Ok(m) => (0, vec![format!("backup {} complete", m.name)]),
            Err(e) => (1, vec![e.to_string()]),
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
        std::fs::create_dir_all(dest).map_err(io_err(format!("creating {}", dest.display())))?;
        self.remove_leftovers()?;
        let started = now();
        let name = backup::name_for(started as i64);
        let partial = dest.join(format!("{PARTIAL_PREFIX}{name}"));
        std::fs::create_dir(&partial).map_err(io_err(format!("creating {}", partial.display())))?;
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
        write_atomically(&partial.join(MANIFEST), &bytes).map_err(|e| BackupError::Io {
            what: "writing the manifest".into(),
            source: io::Error::other(e),
        })?;
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

    /// Removes what killed runs left (the job lock is held: no run is under way).
    fn remove_leftovers(&self) -> Result<usize, BackupError> {
        let mut n = 0;
        for e in backup::scan(&self.cfg.destination).map_err(io_err("reading the destination"))? {
            if e.state == State::Partial {
                std::fs::remove_dir_all(&e.path)
                    .map_err(io_err(format!("removing {}", e.path.display())))?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn dump(
        &self,
        tool: &str,
        defaults: &Defaults,
        db: &str,
        path: &Path,
        deadline: Instant,
    ) -> Result<(Artifact, DumpReader), BackupError> {
        let (mut cmd, _options) = defaults.command(tool)?;
        let mut child = cmd
            .args([
                "--single-transaction",
                "--routines",
                "--triggers",
                "--events",
                "--hex-blob",
                "--quick",
                "--default-character-set=utf8mb4",
            ])
            .arg(db)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(io_err(format!("starting {tool}")))?;
        let timeout = deadline.saturating_duration_since(Instant::now());
        let done = watchdog(&child, timeout);
        let stderr = child.stderr.take();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut e) = stderr {
                let _ = e.read_to_string(&mut text);
            }
            text
        });
        let file = File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
        let hw = HashWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let mut enc = zstd::Encoder::new(hw, 3).map_err(io_err("starting compression"))?;
        let mut reader = DumpReader::new();
        let mut progress = Progress::new();
        let mut raw = 0u64;
        let mut stdout = child.stdout.take().ok_or_else(|| BackupError::Dump {
            db: db.to_owned(),
            reason: "no output".into(),
        })?;
        let mut buf = vec![0; 256 * 1024];
        let write_result = loop {
            match stdout.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    reader.feed(&buf[..n]);
                    raw += n as u64;
                    if let Err(e) = enc.write_all(&buf[..n]) {
                        break Err(e);
                    }
                    progress.show(|| format!("dumping {db}: {} MB", raw >> 20));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if write_result.is_err() {
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(io_err(format!("waiting for {tool}")))?;
        let timed_out = done.swap(true, Ordering::SeqCst) && !status.success();
        let stderr_text = errors.join().unwrap_or_default();
        write_result.map_err(io_err(format!("writing {}", path.display())))?;
        if timed_out && Instant::now() >= deadline {
            return Err(BackupError::Timeout(self.cfg.timeout.get()));
        }
        if !status.success() {
            return Err(BackupError::Dump {
                db: db.to_owned(),
                reason: format!(
                    "{tool} {status}: {}",
                    stderr_text.lines().last().unwrap_or("no message")
                ),
            });
        }
        if !reader.completed() {
            return Err(BackupError::Dump {
                db: db.to_owned(),
                reason:
                    "the dump has no completion marker (\"-- Dump completed\"): it is cut short"
                        .into(),
            });
        }
        Ok((finish_artifact(enc, path, String::new())?, reader))
    }

    /// The configured paths as one compressed tar: (artifact, files archived).
    fn archive(&self, path: &Path, deadline: Instant) -> Result<(Artifact, u64), BackupError> {
        for p in &self.cfg.paths {
            let meta = std::fs::metadata(p)
                .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
            if !meta.is_dir() && !meta.is_file() {
                return Err(BackupError::Path(format!(
                    "{} is neither a directory nor a file",
                    p.display()
                )));
            }
        }
        let file = File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
        let hw = HashWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let enc = zstd::Encoder::new(hw, 3).map_err(io_err("starting compression"))?;
        let mut tar = tar::Builder::new(enc);
        tar.follow_symlinks(false);
        let mut files = 0u64;
        let mut progress = Progress::new();
        let mut stack: Vec<PathBuf> = self.cfg.paths.clone();
        while let Some(p) = stack.pop() {
            if Instant::now() >= deadline {
                return Err(BackupError::Timeout(self.cfg.timeout.get()));
            }
            let meta = std::fs::symlink_metadata(&p)
                .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
            let name = p.strip_prefix("/").unwrap_or(&p).to_owned();
            // A write that fails is about the archive, a read that fails about the path.
            let tar_err = |e: io::Error| {
                if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
                {
                    BackupError::Io {
                        what: format!("writing {}", path.display()),
                        source: e,
                    }
                } else {
                    BackupError::Path(format!("{}: {e}", p.display()))
                }
            };
            if meta.is_dir() {
                tar.append_dir(&name, &p).map_err(tar_err)?;
                let mut children: Vec<PathBuf> = std::fs::read_dir(&p)
                    .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
                children.sort();
                children.reverse();
                stack.extend(children);
            } else {
                tar.append_path_with_name(&p, &name).map_err(tar_err)?;
                files += 1;
                progress.show(|| format!("archiving: {files} files"));
            }
        }
        let enc = tar
            .into_inner()
            .map_err(io_err(format!("writing {}", path.display())))?;
        Ok((finish_artifact(enc, path, "files.tar.zst".into())?, files))
    }

    /// `backup prune`, under the backup lock.
    pub fn prune(&self) -> Result<usize, BackupError> {
        let _guard = JobGuard::begin(self.state_dir, "backup")?;
        // Not a run of the job: the guard is dropped without recording one.
        let left = self.remove_leftovers()?;
        Ok(left + self.prune_locked()?)
    }

    /// Removes backups older than the retention, never the newest `keep_min` complete
    /// ones and never anything that is not a backup.
    fn prune_locked(&self) -> Result<usize, BackupError> {
        let entries =
            backup::scan(&self.cfg.destination).map_err(io_err("reading the destination"))?;
        let horizon = now() - self.cfg.retention.get().as_secs_f64();
        let mut complete: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.state == State::Complete)
            .collect();
        complete.sort_by(|a, b| b.name.cmp(&a.name));
        let keep: Vec<&str> = complete
            .iter()
            .take(self.cfg.keep_min)
            .map(|e| e.name.as_str())
            .collect();
        let mut removed = 0;
        for e in &entries {
            if e.state == State::Partial || keep.contains(&e.name.as_str()) {
                continue;
            }
            let when = e
                .manifest
                .as_ref()
                .map_or_else(|| name_time(&e.name), |m| m.completed);
            if when < horizon {
                std::fs::remove_dir_all(&e.path)
                    .map_err(io_err(format!("removing {}", e.path.display())))?;
                removed += 1;
            }
        }
        if removed > 0 {
            fsync_dir(&self.cfg.destination)?;
        }
        Ok(removed)
    }

    /// `backup verify`: restores the newest complete backup's dumps into scratch
    /// databases and compares every table's rows with the manifest. Records the job
    /// `backup-verify` and `verified.json` in the backup.
    pub fn verify(&self) -> Result<String, BackupError> {
        let guard = JobGuard::begin(self.state_dir, "backup-verify")?;
        let result = self.verify_inner();
        let (code, tail) = match &result {
            Ok(msg) => (0, vec![msg.clone()]),
            Err(e) => (1, vec![e.to_string()]),
        };
        guard.finish(code, false, tail, None)?;
        result
    }

    fn verify_inner(&self) -> Result<String, BackupError> {
        let entries =
            backup::scan(&self.cfg.destination).map_err(io_err("reading the destination"))?;
        let newest = entries
            .iter()
            .rev()
            .find(|e| e.state == State::Complete)
            .ok_or_else(|| BackupError::NothingToVerify(self.cfg.destination.clone()))?;
        let manifest = newest
            .manifest
            .clone()
            .ok_or(BackupError::NothingToVerify(self.cfg.destination.clone()))?;
        let outcome = self.restore_and_compare(newest, &manifest);
        let verified = Verified {
            at: now(),
            ok: outcome.is_ok(),
            detail: match &outcome {
                Ok(m) => m.clone(),
                Err(e) => e.to_string(),
            },
        };
        if let Ok(bytes) = serde_json::to_vec_pretty(&verified) {
            let _ = write_atomically(&newest.path.join(VERIFIED), &bytes);
        }
        outcome
    }

    fn restore_and_compare(
        &self,
        entry: &Entry,
        manifest: &Manifest,
    ) -> Result<String, BackupError> {
        let fail = |reason: String| BackupError::Verify {
            name: manifest.name.clone(),
            reason,
        };
        // Every artifact's checksum first.
        for a in &manifest.artifacts {
            let mut f = File::open(entry.path.join(&a.file))
                .map_err(|e| fail(format!("{}: {e}", a.file)))?;
            let mut h = Sha256::new();
            io::copy(&mut f, &mut h).map_err(|e| fail(format!("{}: {e}", a.file)))?;
            if hex(&h.finalize()) != a.sha256 {
                return Err(fail(format!("{}: checksum mismatch", a.file)));
            }
        }
        let creds = self.credentials()?;
        let defaults = Defaults::new(&creds)?;
        let client = find_tool(&["mariadb", "mysql"]).ok_or(BackupError::NoDumpTool)?;
        let sql = |stmt: &str| -> Result<String, BackupError> {
            let (mut cmd, _options) = defaults.command(&client)?;
            let out = cmd
                .args(["--batch", "--skip-column-names", "--execute", stmt])
                .output()
                .map_err(io_err(format!("running {client}")))?;
            if !out.status.success() {
                return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let mut tables = 0;
        for db in &manifest.databases {
            let scratch = format!("shoehub_verify_{}", manifest.name.to_ascii_lowercase());
            sql(&format!(
                "DROP DATABASE IF EXISTS `{scratch}`; CREATE DATABASE `{scratch}`"
            ))?;
            let result = (|| {
                let file = File::open(entry.path.join(&db.file))
                    .map_err(|e| fail(format!("{}: {e}", db.file)))?;
                let mut dec =
                    zstd::Decoder::new(file).map_err(|e| fail(format!("{}: {e}", db.file)))?;
                let (mut cmd, _options) = defaults.command(&client)?;
                let mut child = cmd
                    .arg(&scratch)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(io_err(format!("running {client}")))?;
                let copied = child
                    .stdin
                    .take()
                    .map(|mut stdin| io::copy(&mut dec, &mut stdin));
                let out = child
                    .wait_with_output()
                    .map_err(io_err(format!("running {client}")))?;
                if !out.status.success() {
                    return Err(fail(format!(
                        "restoring {}: {}",
                        db.name,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                if let Some(Err(e)) = copied {
                    return Err(fail(format!("restoring {}: {e}", db.name)));
                }
                for t in &db.tables {
                    let n: u64 = sql(&format!("SELECT COUNT(*) FROM `{scratch}`.`{}`", t.table))?
                        .trim()
                        .parse()
                        .map_err(|_| fail(format!("cannot count {}", t.table)))?;
                    if n != t.rows {
                        return Err(fail(format!(
                            "{}.{} has {n} rows restored, the manifest says {}",
                            db.name, t.table, t.rows
                        )));
                    }
                }
                Ok(db.tables.len())
            })();
            let dropped = sql(&format!("DROP DATABASE IF EXISTS `{scratch}`"));
            tables += result?;
            dropped?;
        }
        Ok(format!(
            "backup {} verified: checksums match, {tables} table(s) restored with the recorded row counts",
            manifest.name
        ))
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

/// The time a backup name stands for (for backups without a readable manifest).
fn name_time(name: &str) -> f64 {
    let n =
        |r: std::ops::Range<usize>| name.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    // Days from civil (inverse of the name's encoding).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86400 + n(9..11) * 3600 + n(11..13) * 60 + n(13..15)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_counted_from_extended_inserts() {
        let dump = "-- Server version\t10.11.19-MariaDB\nCREATE TABLE `empty` (\n  `id` int\n);\nCREATE TABLE `products` (\n  `id` int\n);\nINSERT INTO `products` VALUES (1,'boot (tall)',99.50),(2,'it''s; fine',30.00),(3,'back\\\\slash\\'s',1);\nINSERT INTO `products` VALUES (4,'x',NULL);\nINSERT INTO `orders` VALUES (1,2),(2,3);\nINSERT INTO `lines` VALUES\n(1,'a'),\n(2,'b\n(c)'),\n(3,'');\n-- Dump completed on 2026-11-25  2:00:01\n";
        let mut r = DumpReader::new();
        // Fed in awkward pieces, as a pipe delivers it.
        for chunk in dump.as_bytes().chunks(7) {
            r.feed(chunk);
        }
        assert!(r.completed());
        assert_eq!(r.server_version, "10.11.19-MariaDB");
        let t: BTreeMap<String, u64> = r.tables().into_iter().map(|t| (t.table, t.rows)).collect();
        assert_eq!(t["products"], 4);
        assert_eq!(t["orders"], 2);
        assert_eq!(t["empty"], 0);
        assert_eq!(t["lines"], 3, "MariaDB's one row per line");
        let mut cut = DumpReader::new();
        cut.feed(&dump.as_bytes()[..dump.len() - 40]);
        assert!(!cut.completed());
    }

    #[test]
    fn name_times_round_trip() {
        for t in [0i64, 951_782_400, 1_795_600_000] {
            assert_eq!(name_time(&backup::name_for(t)), t as f64);
        }
    }
}
