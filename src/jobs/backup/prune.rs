//! Retention: backups older than `backup.retention` go, never the newest
//! `backup.keep_min` complete ones and never anything that is not a backup; leftovers
//! of killed runs go first.

use super::{fsync_dir, io_err, Backup, BackupError, JobGuard};
use crate::state::backup::{self, Entry, State};
use crate::sys::now;

impl Backup<'_> {
    /// Removes what killed runs left (the job lock is held: no run is under way).
    pub(super) fn remove_leftovers(&self) -> Result<usize, BackupError> {
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

    /// `backup prune`, under the backup lock.
    pub fn prune(&self) -> Result<usize, BackupError> {
        let _guard = JobGuard::begin(self.state_dir, "backup")?;
        // Not a run of the job: the guard is dropped without recording one.
        let left = self.remove_leftovers()?;
        Ok(left + self.prune_locked()?)
    }

    /// Removes backups older than the retention, never the newest `keep_min` complete
    /// ones and never anything that is not a backup.
    pub(super) fn prune_locked(&self) -> Result<usize, BackupError> {
        let entries =
            backup::scan(&self.cfg.destination).map_err(io_err("reading the destination"))?;
        let horizon = now() - self.cfg.retention.get().as_secs_f64();
        let mut complete: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.state == State::Complete)
            .collect();
        complete.sort_by(|a, b| b.name.cmp(&a.name));
        // At least one, whatever a config that skipped validation says.
        let keep: Vec<&str> = complete
            .iter()
            .take(self.cfg.keep_min.max(1))
            .map(|e| e.name.as_str())
            .collect();
        // Nothing that started after the newest complete backup: a newer run's.
        let newest = complete.first().map(|e| e.name.as_str());
        let mut removed = 0;
        for e in &entries {
            if e.state == State::Partial
                || keep.contains(&e.name.as_str())
                || newest.is_some_and(|n| e.name.as_str() > n)
            {
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
}

/// The time a backup name stands for (for backups without a readable manifest).
fn name_time(name: &str) -> f64 {
    let n =
        |r: std::ops::Range<usize>| name.get(r).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    crate::text::unix_time(n(0..4), n(4..6), n(6..8), n(9..11), n(11..13), n(13..15)).unwrap_or(0)
        as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::backup;

    #[test]
    fn name_times_round_trip() {
        for t in [0i64, 951_782_400, 1_795_600_000] {
            assert_eq!(name_time(&backup::name_for(t)), t as f64);
        }
    }
}
