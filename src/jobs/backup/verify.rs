//! `backup verify`: the newest complete backup's checksums, then its dumps restored
//! into scratch databases and every table's rows compared with the manifest.

use std::fs::File;
use std::io;

use sha2::{Digest, Sha256};

use super::client::{capture, Defaults};

use super::{hex, io_err, Backup, BackupError, JobGuard};
use crate::state::backup::{self, Entry, Manifest, State, Verified, VERIFIED};
use crate::sys::now;

impl Backup<'_> {
    /// `backup verify`: restores the newest complete backup's dumps into scratch
    /// databases and compares every table's rows with the manifest. Records the job
    /// `backup-verify` and `verified.json` in the backup.
    pub fn verify(&self) -> Result<String, BackupError> {
        let guard = JobGuard::begin(self.state_dir, "backup-verify")?;
        let result = self.verify_inner();
        let (code, tail) = match &result {
            Ok(msg) => (0, vec![msg.clone()]),
            Err(e) => (1, vec![crate::error_chain(e)]),
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
        let client = super::find_tool(&["mariadb", "mysql"]).ok_or(BackupError::NoDumpTool)?;
        let timeout = self.cfg.timeout.get();
        let sql = |stmt: &str| -> Result<String, BackupError> {
            let (mut cmd, _options) = defaults.command(&client)?;
            cmd.args(["--batch", "--skip-column-names", "--execute", stmt]);
            let out = capture(&mut cmd, None, timeout, self.kill_grace)?;
            if out.exit.timed_out {
                return Err(BackupError::Timeout(timeout));
            }
            if !out.exit.success() {
                return Err(fail(out.complaint()));
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
                cmd.arg(&scratch);
                let out = capture(&mut cmd, Some(&mut dec), timeout, self.kill_grace)?;
                if out.exit.timed_out {
                    return Err(BackupError::Timeout(timeout));
                }
                if !out.exit.success() {
                    return Err(fail(format!("restoring {}: {}", db.name, out.complaint())));
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
}
