//! `backup verify`: the newest complete backup's checksums, then its dumps restored
//! into scratch databases and compared with the manifest: every table with its rows,
//! every view, routine, trigger and event, the character set and collation.

use std::fs::File;
use std::io;

use sha2::{Digest, Sha256};

use super::client::{capture, Defaults};
use super::inventory::{ident, literal, Sql};
use super::{hex, io_err, Backup, BackupError};
use crate::state::backup::{self, DatabaseDump, Entry, Manifest, State, Verified, VERIFIED};
use crate::sys::now;

impl Backup<'_> {
    /// `backup verify`: restores the newest complete backup's dumps into scratch
    /// databases and compares every table's rows with the manifest. Records the job
    /// `backup-verify` and `verified.json` in the backup.
    pub fn verify(&self) -> Result<String, BackupError> {
        self.as_job("backup-verify", || self.verify_inner(), String::clone)
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
                Err(e) => crate::error_chain(e),
            },
        };
        // The record is what the exporter's last-verified metric reads: a verify whose
        // record cannot be written has not done its job.
        let bytes = serde_json::to_vec_pretty(&verified).map_err(|e| BackupError::Io {
            what: "encoding the verification record".into(),
            source: io::Error::other(e),
        })?;
        let path = newest.path.join(VERIFIED);
        crate::writes::replace(&path, &bytes, crate::writes::SHARED)
            .map_err(io_err(format!("writing {}", path.display())))?;
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
        check_artifacts(entry, manifest).map_err(fail)?;
        let creds = self.credentials()?;
        let defaults = Defaults::new(&creds)?;
        let sql = self.sql(&defaults)?;
        let mut tables = 0;
        let mut objects = 0;
        for db in &manifest.databases {
            let scratch = format!("shoehub_verify_{}", manifest.name.to_ascii_lowercase());
            sql.rows(&format!("DROP DATABASE IF EXISTS {}", ident(&scratch)))?;
            let result = (|| -> Result<(), BackupError> {
                self.load_dump(&sql, entry, db, &scratch, &mut super::Progress::new())?;
                compare(&sql, db, &scratch).map_err(&fail)?;
                Ok(())
            })();
            let dropped = sql.rows(&format!("DROP DATABASE IF EXISTS {}", ident(&scratch)));
            result?;
            dropped?;
            tables += db.tables.len();
            objects += db.views.len() + db.routines.len() + db.triggers.len() + db.events.len();
        }
        Ok(format!(
            "backup {} verified: checksums match, {tables} table(s) restored with the recorded row counts, and {objects} view(s), routine(s), trigger(s) and event(s) as recorded",
            manifest.name
        ))
    }

    /// Creates `target` with the dumped database's character set and collation and
    /// loads its dump into it.
    pub(super) fn load_dump(
        &self,
        sql: &Sql<'_>,
        entry: &Entry,
        db: &DatabaseDump,
        target: &str,
        progress: &mut super::Progress,
    ) -> Result<(), BackupError> {
        let mut create = format!("CREATE DATABASE {}", ident(target));
        if !db.charset.is_empty() {
            create.push_str(&format!(" CHARACTER SET {}", literal(&db.charset)));
        }
        if !db.collation.is_empty() {
            create.push_str(&format!(" COLLATE {}", literal(&db.collation)));
        }
        sql.rows(&create)?;
        let path = entry.path.join(&db.file);
        let file = File::open(&path).map_err(io_err(format!("opening {}", path.display())))?;
        let dec =
            zstd::Decoder::new(file).map_err(io_err(format!("reading {}", path.display())))?;
        let mut counted = Counted {
            inner: dec,
            bytes: 0,
            progress,
            what: format!("loading {} into {target}", db.name),
        };
        let (mut cmd, _options) = sql.defaults.command(&sql.client)?;
        // As an option's value: a name that starts with `-` is not taken for an option.
        cmd.arg(format!("--database={target}"));
        // The dump as written: without it the client turns `\r\n` into `\n` inside
        // routines' and triggers' bodies.
        cmd.arg("--binary-mode");
        let out = capture(&mut cmd, Some(&mut counted), sql.timeout, sql.kill_grace)?;
        if out.exit.timed_out {
            return Err(BackupError::Timeout(sql.timeout));
        }
        if !out.exit.success() {
            return Err(BackupError::Sql(format!(
                "loading {} into {target}: {}",
                db.name,
                out.complaint()
            )));
        }
        Ok(())
    }
}

/// A reader that shows how much has passed through it.
struct Counted<'a, R> {
    inner: R,
    bytes: u64,
    progress: &'a mut super::Progress,
    what: String,
}

impl<R: io::Read> io::Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes += n as u64;
        let (what, bytes) = (&self.what, self.bytes);
        self.progress
            .show(|| format!("{what}: {}", crate::regular::human_bytes(bytes)));
        Ok(n)
    }
}

/// Every artifact of `manifest` in `entry` with its recorded checksum.
pub fn check_artifacts(entry: &Entry, manifest: &Manifest) -> Result<(), String> {
    for a in &manifest.artifacts {
        let mut f = File::open(entry.path.join(&a.file)).map_err(|e| format!("{}: {e}", a.file))?;
        let mut h = Sha256::new();
        io::copy(&mut f, &mut h).map_err(|e| format!("{}: {e}", a.file))?;
        if hex(&h.finalize()) != a.sha256 {
            return Err(format!("{}: checksum mismatch", a.file));
        }
    }
    Ok(())
}

/// `target` as the server now lists it against what the manifest recorded of `db`:
/// tables with their rows, views, routines, triggers and events.
pub(super) fn compare(sql: &Sql<'_>, db: &DatabaseDump, target: &str) -> Result<(), String> {
    let now = sql
        .inventory(target)
        .map_err(|e| crate::error_chain(&e))?
        .ok_or_else(|| format!("{target} does not exist after the restore"))?;
    let differ = |what: &str, recorded: &[String], restored: &[String]| {
        let mut r = recorded.to_vec();
        r.sort();
        if r == restored {
            return Ok(());
        }
        let lost: Vec<&String> = r.iter().filter(|x| !restored.contains(x)).collect();
        let extra: Vec<&String> = restored.iter().filter(|x| !r.contains(x)).collect();
        Err(format!(
            "{}: {what} differ from the manifest: missing {lost:?}, unexpected {extra:?}",
            db.name
        ))
    };
    let recorded_tables: Vec<String> = db.tables.iter().map(|t| t.table.clone()).collect();
    differ("tables", &recorded_tables, &now.tables)?;
    differ("views", &db.views, &now.views)?;
    differ("routines", &db.routines, &now.routines)?;
    differ("triggers", &db.triggers, &now.triggers)?;
    differ("events", &db.events, &now.events)?;
    if !db.charset.is_empty() && (now.charset != db.charset || now.collation != db.collation) {
        return Err(format!(
            "{}: restored as {}/{}, recorded as {}/{}",
            db.name, now.charset, now.collation, db.charset, db.collation
        ));
    }
    let names: Vec<String> = db.tables.iter().map(|t| t.table.clone()).collect();
    let counted = sql
        .counts(target, &names)
        .map_err(|e| crate::error_chain(&e))?;
    for t in &db.tables {
        let n = counted
            .iter()
            .find(|(name, _)| *name == t.table)
            .map(|(_, n)| *n)
            .ok_or_else(|| format!("cannot count {}", t.table))?;
        if n != t.rows {
            return Err(format!(
                "{}.{} has {n} rows restored, the manifest says {}",
                db.name, t.table, t.rows
            ));
        }
    }
    Ok(())
}
