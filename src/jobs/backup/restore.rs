//! `backup restore`: a backup's databases, files and accounts put back. The checksums
//! are checked first and the plan is printed; `--dry-run` stops there. A database is
//! created with its recorded character set and collation, under a new name (`--as`) or
//! over the existing one only with `--yes`, then compared with the manifest as `verify`
//! does. Files are unpacked under a directory with their owners, modes and times (`/`
//! only with `--yes`). Accounts are replayed with `--users`. The whole runs as the job
//! `backup-restore`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::client::Defaults;
use super::inventory::{ident, RestoreNeeds, Sql};
use super::verify::{check_artifacts, compare};
use super::{io_err, Backup, BackupError, Progress};
use crate::state::backup::{self, DatabaseDump, Entry, Manifest, State};

/// Writes one line of the plan to `out`: a reader that went away stops the restore
/// before it changes anything.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        writeln!($out, $($arg)*).map_err(io_err("writing the plan to standard output"))?
    };
}

/// What `backup restore` was asked.
#[derive(Debug, Default, Clone)]
pub struct Request {
    pub backup: Option<String>,
    pub databases: Vec<String>,
    pub as_name: Option<String>,
    pub files_to: Option<PathBuf>,
    pub users: bool,
    pub dry_run: bool,
    pub yes: bool,
}

/// One database to load: from the manifest, into `target`.
struct Load<'m> {
    dump: &'m DatabaseDump,
    target: String,
    exists: bool,
}

impl Backup<'_> {
    /// `backup restore`: writes the plan to `out` (the command's standard output), then
    /// carries it out (unless `dry_run`); the summary is returned.
    pub fn restore(&self, req: &Request, out: &mut dyn Write) -> Result<String, BackupError> {
        let entries =
            backup::scan(&self.cfg.destination).map_err(io_err("reading the destination"))?;
        let entry = match &req.backup {
            Some(id) => entries.iter().find(|e| &e.name == id).ok_or_else(|| {
                BackupError::Restore(format!(
                    "there is no backup {id} in {}; `backup list` shows them",
                    self.cfg.destination.display()
                ))
            })?,
            None => entries
                .iter()
                .rev()
                .find(|e| e.state == State::Complete)
                .ok_or_else(|| BackupError::NothingToVerify(self.cfg.destination.clone()))?,
        };
        if entry.state != State::Complete {
            return Err(BackupError::Restore(format!(
                "backup {} is not complete ({:?}); choose another with --backup",
                entry.name, entry.state
            )));
        }
        let manifest = entry.manifest.clone().ok_or_else(|| {
            BackupError::Restore(format!("backup {} has no manifest", entry.name))
        })?;
        check_artifacts(entry, &manifest).map_err(|reason| BackupError::Verify {
            name: manifest.name.clone(),
            reason,
        })?;
        say!(out, "backup {}: every checksum matches", manifest.name);

        let nothing_named = req.databases.is_empty() && req.files_to.is_none() && !req.users;
        let wanted: Vec<&DatabaseDump> = if nothing_named {
            manifest.databases.iter().collect()
        } else {
            req.databases
                .iter()
                .map(|n| {
                    manifest
                        .databases
                        .iter()
                        .find(|d| &d.name == n)
                        .ok_or_else(|| {
                            BackupError::Restore(format!(
                                "backup {} has no database {n:?}; it has {:?}",
                                manifest.name,
                                manifest
                                    .databases
                                    .iter()
                                    .map(|d| &d.name)
                                    .collect::<Vec<_>>()
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        if req.as_name.is_some() && wanted.len() != 1 {
            return Err(BackupError::Restore(
                "--as renames one database: give exactly one --database".to_owned(),
            ));
        }
        let creds = self.credentials()?;
        let defaults = Defaults::new(&creds)?;
        let sql = self.sql(&defaults)?;
        let mut loads = Vec::new();
        for d in wanted {
            let target = req.as_name.clone().unwrap_or_else(|| d.name.clone());
            let exists = sql.inventory(&target)?.is_some();
            loads.push(Load {
                dump: d,
                target,
                exists,
            });
        }

        // Every grant the loads need, before anything changes (a dry run too).
        let mut missing = Vec::new();
        for l in &loads {
            let needs = RestoreNeeds {
                target: &l.target,
                definers: !(l.dump.views.is_empty()
                    && l.dump.routines.is_empty()
                    && l.dump.triggers.is_empty()
                    && l.dump.events.is_empty()),
                users: req.users,
            };
            for grant in sql.missing_restore_grants(&needs)? {
                if !missing.contains(&grant) {
                    missing.push(grant);
                }
            }
        }
        if !missing.is_empty() {
            return Err(BackupError::RestoreGrants {
                account: sql.current_user()?,
                missing,
            });
        }

        // The plan.
        for l in &loads {
            say!(
                out,
                "database {} -> {}{}: {} table(s), {} view(s), {} routine(s), {} trigger(s), {} event(s), {} {}",
                l.dump.name,
                l.target,
                if l.exists { " (exists: replaced)" } else { " (new)" },
                l.dump.tables.len(),
                l.dump.views.len(),
                l.dump.routines.len(),
                l.dump.triggers.len(),
                l.dump.events.len(),
                l.dump.charset,
                l.dump.collation
            );
        }
        if let Some(dir) = &req.files_to {
            say!(
                out,
                "files: {} file(s) of {:?} -> under {}",
                manifest.files_archived,
                manifest.paths,
                dir.display()
            );
        }
        if req.users {
            match &manifest.accounts {
                Some(a) => say!(out, "accounts: {}", a.accounts.join(", ")),
                None => {
                    return Err(BackupError::Restore(format!(
                        "backup {} holds no accounts (it was made before they were saved)",
                        manifest.name
                    )))
                }
            }
        }
        // What needs --yes.
        let mut needs_yes = Vec::new();
        for l in &loads {
            if l.exists {
                needs_yes.push(format!(
                    "the database {} exists (restore under another name with --as)",
                    l.target
                ));
            }
        }
        if let Some(dir) = &req.files_to {
            if dir == Path::new("/") {
                needs_yes.push("files go back to where they were, over what is there".to_owned());
            }
        }
        if req.dry_run {
            for n in &needs_yes {
                say!(out, "needs --yes: {n}");
            }
            return Ok(format!(
                "dry run: backup {}'s checksums and the account's grants checked, nothing changed",
                manifest.name
            ));
        }
        if !needs_yes.is_empty() && !req.yes {
            return Err(BackupError::Restore(format!(
                "nothing was changed: {}; add --yes to go ahead",
                needs_yes.join("; ")
            )));
        }

        self.as_job(
            "backup-restore",
            || self.carry_out(&sql, entry, &manifest, &loads, req),
            String::clone,
        )
    }

    fn carry_out(
        &self,
        sql: &Sql<'_>,
        entry: &Entry,
        manifest: &Manifest,
        loads: &[Load<'_>],
        req: &Request,
    ) -> Result<String, BackupError> {
        let mut progress = Progress::new();
        let mut done = Vec::new();
        // Accounts first: the objects' DEFINERs and the grants on the database name them.
        if req.users {
            if let Some(a) = &manifest.accounts {
                let path = entry.path.join(&a.file);
                let file =
                    File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
                let mut dec = zstd::Decoder::new(file)
                    .map_err(io_err(format!("reading {}", path.display())))?;
                let (mut cmd, _options) = sql.defaults.command(&sql.client)?;
                let out =
                    super::client::capture(&mut cmd, Some(&mut dec), sql.timeout, sql.kill_grace)?;
                if !out.exit.success() {
                    return Err(BackupError::Sql(format!(
                        "restoring the accounts: {}",
                        out.complaint()
                    )));
                }
                done.push(format!("{} account(s)", a.accounts.len()));
            }
        }
        for l in loads {
            if l.exists {
                sql.rows(&format!("DROP DATABASE {}", ident(&l.target)))?;
            }
            self.load_dump(sql, entry, l.dump, &l.target, &mut progress)?;
            compare(sql, l.dump, &l.target).map_err(|reason| BackupError::Verify {
                name: manifest.name.clone(),
                reason,
            })?;
            // A copy beside the original must not run the original's scheduled work a
            // second time: its events are loaded disabled.
            if l.target != l.dump.name {
                for event in &l.dump.events {
                    sql.rows(&format!(
                        "ALTER EVENT {}.{} DISABLE",
                        ident(&l.target),
                        ident(event)
                    ))?;
                }
            }
            progress.done(&format!(
                "database {} restored as {}",
                l.dump.name, l.target
            ));
            done.push(format!("database {} as {}", l.dump.name, l.target));
        }
        if let Some(dir) = &req.files_to {
            let n = self.unpack(entry, dir, &mut progress)?;
            progress.done(&format!("{n} file(s) restored under {}", dir.display()));
            done.push(format!("{n} file(s) under {}", dir.display()));
        }
        Ok(format!(
            "backup {} restored: {}",
            manifest.name,
            if done.is_empty() {
                "nothing asked".to_owned()
            } else {
                done.join(", ")
            }
        ))
    }

    /// The archive unpacked under `dir`, owners, modes and times kept; files counted.
    fn unpack(
        &self,
        entry: &Entry,
        dir: &Path,
        progress: &mut Progress,
    ) -> Result<u64, BackupError> {
        let path = entry.path.join("files.tar.zst");
        crate::writes::create_dir_all(dir, 0o700)
            .map_err(io_err(format!("creating {}", dir.display())))?;
        let file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        let dec =
            zstd::Decoder::new(file).map_err(io_err(format!("reading {}", path.display())))?;
        let mut archive = tar::Archive::new(dec);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        archive.set_unpack_xattrs(false);
        let mut files = 0u64;
        let mut dirs = Vec::new();
        for e in archive
            .entries()
            .map_err(io_err(format!("reading {}", path.display())))?
        {
            let mut e = e.map_err(io_err(format!("reading {}", path.display())))?;
            let is_dir = e.header().entry_type().is_dir();
            let name = e
                .path()
                .map_err(io_err(format!("reading {}", path.display())))?
                .into_owned();
            // unpack_in refuses names that would land outside `dir`.
            let placed = e
                .unpack_in(dir)
                .map_err(io_err(format!("restoring {}", name.display())))?;
            if !placed {
                return Err(BackupError::Restore(format!(
                    "{} would land outside {}",
                    name.display(),
                    dir.display()
                )));
            }
            if is_dir {
                // A directory's time is set again once its files are in.
                if let Ok(mtime) = e.header().mtime() {
                    dirs.push((dir.join(&name), mtime));
                }
            } else {
                files += 1;
                progress.show(|| format!("restoring files: {files}"));
            }
        }
        for (d, mtime) in dirs.into_iter().rev() {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            if let Ok(f) = File::open(&d) {
                let _ = f.set_modified(t);
            }
        }
        Ok(files)
    }
}
