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
use super::inventory::{ident, literal, Inventory, RestoreNeeds, Sql};
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
        // The server only when a database or the accounts are asked for: files come back
        // on a host whose server is down.
        let defaults = if wanted.is_empty() && !req.users {
            None
        } else {
            Some(Defaults::new(&self.credentials()?)?)
        };
        let sql = defaults.as_ref().map(|d| self.sql(d)).transpose()?;
        let mut loads = Vec::new();
        for d in wanted {
            let Some(sql) = &sql else { break };
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
            let Some(sql) = &sql else { break };
            let mut grants = sql.missing_restore_grants(&needs)?;
            if l.exists {
                // The copy beside it and the kept original.
                let beside = Beside::now().new;
                grants.extend(sql.missing_restore_grants(&RestoreNeeds {
                    target: &beside,
                    users: false,
                    ..needs
                })?);
            }
            for grant in grants {
                if !missing.contains(&grant) {
                    missing.push(grant);
                }
            }
        }
        if let (false, Some(sql)) = (missing.is_empty(), &sql) {
            return Err(BackupError::RestoreGrants {
                account: sql.current_user()?,
                missing,
            });
        }

        // Room where the server keeps its data, before anything changes.
        let space = match &sql {
            Some(sql) if !loads.is_empty() => Some(self.check_restore_space(sql, entry, &loads)?),
            _ => None,
        };

        // The plan.
        if let Some(space) = space {
            say!(out, "{space}");
        }
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
        // What interrupted restores left.
        if let Some(sql) = &sql {
            let pattern = literal(&format!("{}%", BESIDE_PREFIX.replace('_', "\\_")));
            for row in sql.rows(&format!(
                "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE {pattern} ORDER BY 1"
            ))? {
                let Some(name) = row.first() else { continue };
                let what = if name.ends_with("_new") {
                    "a copy an interrupted restore left"
                } else {
                    "what a database held before a restore replaced it"
                };
                say!(out, "note: {name} is {what}; DROP DATABASE {} when it is no longer needed", ident(name));
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
            || self.carry_out(sql.as_ref(), entry, &manifest, &loads, req),
            String::clone,
        )
    }

    /// Refuses when the server's data directory lacks `backup.space_factor` times the
    /// dumps' size; says what it found. A server on another host, or a data directory
    /// this process cannot see, is not checked (and the plan says so).
    fn check_restore_space(
        &self,
        sql: &Sql<'_>,
        entry: &Entry,
        loads: &[Load<'_>],
    ) -> Result<String, BackupError> {
        let mut raw = 0u64;
        for l in loads {
            raw += if l.dump.raw_bytes > 0 {
                l.dump.raw_bytes
            } else {
                // A backup from before the size was recorded: counted.
                let path = entry.path.join(&l.dump.file);
                let file =
                    File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
                let mut dec = zstd::Decoder::new(file)
                    .map_err(io_err(format!("reading {}", path.display())))?;
                std::io::copy(&mut dec, &mut std::io::sink())
                    .map_err(io_err(format!("reading {}", path.display())))?
            };
        }
        let factor = self.cfg.space_factor;
        let need = (raw as f64 * factor) as u64;
        let datadir = sql
            .rows("SELECT @@datadir")?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next())
            .unwrap_or_default();
        let human = crate::regular::human_bytes;
        let avail = std::ffi::CString::new(datadir.as_bytes())
            .ok()
            .filter(|_| Path::new(&datadir).is_dir())
            .and_then(|c| crate::sys::statvfs(&c).ok())
            .map(|s| s.avail);
        match avail {
            Some(avail) if avail < need => Err(BackupError::Restore(format!(
                "the server's data directory {datadir} has {} free; the restore needs {} ({} of dumps times backup.space_factor {factor}); nothing was changed: make room, or restore fewer databases",
                human(avail),
                human(need),
                human(raw)
            ))),
            Some(avail) => Ok(format!(
                "space: {} free in {datadir}, {} needed",
                human(avail),
                human(need)
            )),
            None => Ok(format!(
                "space: not checked ({datadir:?} is not a directory here: the server runs elsewhere or hides it); {} needed",
                human(need)
            )),
        }
    }

    fn carry_out(
        &self,
        sql: Option<&Sql<'_>>,
        entry: &Entry,
        manifest: &Manifest,
        loads: &[Load<'_>],
        req: &Request,
    ) -> Result<String, BackupError> {
        let mut progress = Progress::new();
        let mut done = Vec::new();
        // Accounts first: the objects' DEFINERs and the grants on the database name them.
        if let (true, Some(sql)) = (req.users, sql) {
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
            let Some(sql) = sql else { break };
            if l.exists {
                // Beside the live database first; it takes the name only once whole.
                let names = Beside::now();
                self.load_dump(sql, entry, l.dump, &names.new, &mut progress)
                    .and_then(|()| {
                        compare(sql, l.dump, &names.new).map_err(|reason| BackupError::Verify {
                            name: manifest.name.clone(),
                            reason,
                        })
                    })
                    .map_err(|e| {
                        let _ = sql.rows(&format!("DROP DATABASE IF EXISTS {}", ident(&names.new)));
                        BackupError::Restore(format!(
                            "{}; the database {} was not touched",
                            crate::error_chain(&e),
                            l.target
                        ))
                    })?;
                swap(sql, &l.target, &names)?;
                compare(sql, l.dump, &l.target).map_err(|reason| BackupError::Verify {
                    name: manifest.name.clone(),
                    reason: format!(
                        "{reason} (after the swap; what {} held is in {})",
                        l.target, names.old
                    ),
                })?;
                done.push(format!(
                    "what {} held before is kept in {} (DROP DATABASE {} when it is no longer needed)",
                    l.target,
                    names.old,
                    ident(&names.old)
                ));
            } else {
                self.load_dump(sql, entry, l.dump, &l.target, &mut progress)?;
                compare(sql, l.dump, &l.target).map_err(|reason| BackupError::Verify {
                    name: manifest.name.clone(),
                    reason,
                })?;
            }
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
            let (n, skipped) = self.unpack(entry, dir, &mut progress)?;
            progress.done(&format!("{n} file(s) restored under {}", dir.display()));
            done.push(format!("{n} file(s) under {}", dir.display()));
            if !skipped.is_empty() {
                done.push(format!(
                    "{} archive entr{} skipped: {}",
                    skipped.len(),
                    if skipped.len() == 1 { "y" } else { "ies" },
                    skipped.join("; ")
                ));
            }
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

    /// The archive unpacked under `dir`, owners, modes and times kept: the files
    /// counted, and the entries skipped, each with why. An entry whose name is absolute
    /// or climbs out with `..` is skipped (a backup this program made has neither): what
    /// the unpacking library would do with it is not what the name says.
    fn unpack(
        &self,
        entry: &Entry,
        dir: &Path,
        progress: &mut Progress,
    ) -> Result<(u64, Vec<String>), BackupError> {
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
        let mut skipped = Vec::new();
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
            let Some(inside) = beneath(&name) else {
                let why = if name.is_absolute() {
                    "an absolute name"
                } else {
                    "a name that leaves the target"
                };
                tracing::warn!(entry = %name.display(), "skipped: {why}");
                skipped.push(format!("{} ({why})", name.display()));
                continue;
            };
            // A hard link to what is not in the target: the unpacking library refuses
            // it with an error that would end the restore.
            if e.header().entry_type().is_hard_link() {
                let to = e
                    .link_name()
                    .map_err(io_err(format!("reading {}", path.display())))?
                    .map(|l| l.into_owned());
                if to.as_deref().and_then(beneath).is_none() {
                    tracing::warn!(entry = %name.display(), "skipped: a hard link to outside the target");
                    skipped.push(format!(
                        "{} (a hard link to outside the target)",
                        name.display()
                    ));
                    continue;
                }
            }
            // A link on its path (one this archive made, or one that was there) that
            // leads out of the target: the unpacking library refuses that too, but with
            // an error that would end the restore. (Links that stay inside, such as a
            // host's own under `--files-to /`, are followed as they always were.)
            if leads_outside(dir, &inside) {
                tracing::warn!(entry = %name.display(), "skipped: a link on its path leads out of the target");
                skipped.push(format!(
                    "{} (a link on its path leads out of the target)",
                    name.display()
                ));
                continue;
            }
            let placed = e
                .unpack_in(dir)
                .map_err(io_err(format!("restoring {}", name.display())))?;
            if !placed {
                tracing::warn!(entry = %name.display(), "skipped: it would land outside the target");
                skipped.push(format!("{} (lands outside the target)", name.display()));
                continue;
            }
            if is_dir {
                // A directory's time is set again once its files are in.
                if let Ok(mtime) = e.header().mtime() {
                    dirs.push((inside, mtime));
                }
            } else {
                files += 1;
                progress.show(|| format!("restoring files: {files}"));
            }
        }
        let root =
            crate::regular::open_dir(dir).map_err(io_err(format!("opening {}", dir.display())))?;
        for (d, mtime) in dirs.into_iter().rev() {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            // What was created under `dir` and nothing else: no link followed on the
            // way, no FIFO or device waited on.
            if let Ok(f) = crate::writes::open_dir_beneath(&root, &d) {
                let _ = f.set_modified(t);
            }
        }
        Ok((files, skipped))
    }
}

/// `name` as a path under the target: its plain components, `.` dropped; `None` when
/// it is absolute or has a `..`.
fn beneath(name: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut inside = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(part) => inside.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return None,
        }
    }
    Some(inside)
}

/// Whether the directory `inside` would be unpacked into, under `dir`, is in truth
/// somewhere else: the deepest part of its path that exists, links resolved, is not
/// under `dir`.
fn leads_outside(dir: &Path, inside: &Path) -> bool {
    let Ok(root) = std::fs::canonicalize(dir) else {
        return true;
    };
    let mut parent = dir.join(inside);
    parent.pop();
    loop {
        match std::fs::canonicalize(&parent) {
            Ok(real) => return !real.starts_with(&root),
            Err(_) if parent.pop() => {}
            Err(_) => return true,
        }
    }
}

/// The databases a restore over a live one uses: the copy loaded beside it, and the
/// dated name that keeps what the live one held. Both under `shoehub_restore_`, which
/// the restore grants of docs/jobs.md cover.
pub struct Beside {
    pub new: String,
    pub old: String,
}

/// The prefix of the databases a restore over a live one makes.
pub const BESIDE_PREFIX: &str = "shoehub_restore_";

impl Beside {
    pub fn now() -> Beside {
        let stamp = backup::name_for(crate::sys::now() as i64).to_ascii_lowercase();
        Beside {
            new: format!("{BESIDE_PREFIX}{stamp}_new"),
            old: format!("{BESIDE_PREFIX}{stamp}_was"),
        }
    }
}

/// The statements that make `db`'s views, routines, triggers and events again in
/// another database, as the server shows them (each with its SQL mode; a view's
/// references to `db` become references to `into`), separated by `;;`.
fn code_of(sql: &Sql<'_>, db: &str, inv: &Inventory, into: &str) -> Result<String, BackupError> {
    let mut out = String::new();
    let show = |what: &str, name: &str| -> Result<Vec<String>, BackupError> {
        sql.rows(&format!("SHOW CREATE {what} {}.{}", ident(db), ident(name)))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                BackupError::Restore(format!("SHOW CREATE {what} {} gave nothing", ident(name)))
            })
    };
    let mode = |m: &str| format!("SET sql_mode = {} ;;\n", literal(m));
    for r in &inv.routines {
        let (kind, name) = r.split_once(' ').unwrap_or(("PROCEDURE", r));
        let row = show(kind, name)?;
        if let [_, m, create, ..] = row.as_slice() {
            out.push_str(&mode(m));
            out.push_str(&format!("{create} ;;\n"));
        }
    }
    for v in &inv.views {
        let row = show("VIEW", v)?;
        if let [_, create, ..] = row.as_slice() {
            let create = create.replace(&format!("{}.", ident(db)), &format!("{}.", ident(into)));
            out.push_str(&format!("{create} ;;\n"));
        }
    }
    for t in &inv.triggers {
        let row = show("TRIGGER", t)?;
        if let [_, m, create, ..] = row.as_slice() {
            out.push_str(&mode(m));
            out.push_str(&format!("{create} ;;\n"));
        }
    }
    for e in &inv.events {
        let row = show("EVENT", e)?;
        if let [_, m, tz, create, ..] = row.as_slice() {
            out.push_str(&mode(m));
            out.push_str(&format!(
                "SET time_zone = {} ;;\n{create} ;;\n",
                literal(tz)
            ));
        }
    }
    Ok(out)
}

/// Runs `script` (statements separated by `;;`) in `db`.
fn run_script(sql: &Sql<'_>, db: &str, script: &str) -> Result<(), BackupError> {
    if script.is_empty() {
        return Ok(());
    }
    let text = format!(
        "USE {};\nSET NAMES utf8mb4;\nDELIMITER ;;\n{script}DELIMITER ;\n",
        ident(db)
    );
    let (mut cmd, _options) = sql.defaults.command(&sql.client)?;
    cmd.arg("--binary-mode");
    let out = super::client::capture(
        &mut cmd,
        Some(&mut text.as_bytes()),
        sql.timeout,
        sql.kill_grace,
    )?;
    if !out.exit.success() {
        return Err(BackupError::Sql(out.complaint()));
    }
    Ok(())
}

/// Gives the loaded copy `names.new` the name `target`, keeping what `target` held under
/// `names.old`. Base tables move in one `RENAME TABLE`, which the server carries out
/// whole or not at all; triggers (which cannot move to another database with their
/// tables), views, routines and events are made again from what the server shows. The
/// live database changes only from that statement on; until it, a failure leaves it as
/// it was and removes the copy.
fn swap(sql: &Sql<'_>, target: &str, names: &Beside) -> Result<(), BackupError> {
    let gone = |what: &str| BackupError::Restore(format!("{what} is gone; nothing was changed"));
    let live = sql.inventory(target)?.ok_or_else(|| gone(target))?;
    let copy = sql.inventory(&names.new)?.ok_or_else(|| gone(&names.new))?;
    let live_code = code_of(sql, target, &live, &names.old)?;
    let copy_code = code_of(sql, &names.new, &copy, target)?;
    let mut create = format!("CREATE DATABASE {}", ident(&names.old));
    if !live.charset.is_empty() {
        create.push_str(&format!(
            " CHARACTER SET {} COLLATE {}",
            literal(&live.charset),
            literal(&live.collation)
        ));
    }
    sql.rows(&create)?;
    // The copy's triggers out of the way of its tables' move (they are made again).
    let copy_triggers: Vec<String> = copy
        .triggers
        .iter()
        .map(|t| format!("DROP TRIGGER {}.{}", ident(&names.new), ident(t)))
        .collect();
    if !copy_triggers.is_empty() {
        sql.rows(&copy_triggers.join(";\n"))?;
    }
    // The live database changes from here: its triggers out of the way, then every
    // table of both in one statement.
    let mut statements: Vec<String> = live
        .triggers
        .iter()
        .map(|t| format!("DROP TRIGGER {}.{}", ident(target), ident(t)))
        .collect();
    let moves: Vec<String> = live
        .tables
        .iter()
        .map(|t| {
            format!(
                "{}.{} TO {}.{}",
                ident(target),
                ident(t),
                ident(&names.old),
                ident(t)
            )
        })
        .chain(copy.tables.iter().map(|t| {
            format!(
                "{}.{} TO {}.{}",
                ident(&names.new),
                ident(t),
                ident(target),
                ident(t)
            )
        }))
        .collect();
    if !moves.is_empty() {
        statements.push(format!("RENAME TABLE {}", moves.join(", ")));
    }
    // Then the live database's views, routines and events, made again below under
    // the kept name.
    for v in &live.views {
        statements.push(format!("DROP VIEW {}.{}", ident(target), ident(v)));
    }
    for r in &live.routines {
        let (kind, name) = r.split_once(' ').unwrap_or(("PROCEDURE", r));
        statements.push(format!("DROP {kind} {}.{}", ident(target), ident(name)));
    }
    for e in &live.events {
        statements.push(format!("DROP EVENT {}.{}", ident(target), ident(e)));
    }
    if !statements.is_empty() {
        sql.rows(&statements.join(";\n"))?;
    }
    run_script(sql, &names.old, &live_code)?;
    // The kept database must not run the scheduled work a second time.
    for e in &live.events {
        sql.rows(&format!(
            "ALTER EVENT {}.{} DISABLE",
            ident(&names.old),
            ident(e)
        ))?;
    }
    run_script(sql, target, &copy_code)?;
    sql.rows(&format!("DROP DATABASE {}", ident(&names.new)))?;
    Ok(())
}
