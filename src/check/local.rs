//! The checks `check` makes on the host itself: backups and updates.
//!
//! Freshness is judged by running the same collectors the exporter runs (backups,
//! BackupPC, jobs) and the same rules as the status page ([`super::scraped`]). On top
//! comes what no metric carries: a damaged newest backup, the artifacts' checksums
//! (`--deep`), and an approved plan too old to be applied.

use std::collections::BTreeMap;

use super::scraped::{self, Limits};
use super::{age_words, combine, duration_words, Check};
use crate::collectors::Collector;
use crate::config::Config;
use crate::exposition::{Format, MetricWriter};
use crate::state::backup::{self, State};
use crate::state::update;

/// What the backups, BackupPC and jobs collectors report now, as the exporter would.
fn collected(config: &Config) -> (Vec<scraped::Sample>, Vec<String>) {
    let mut buf = Vec::new();
    let mut errors = Vec::new();
    let mut w = MetricWriter::new(&mut buf, Format::Text);
    let mut run = |name: &str, c: &dyn Collector| {
        if let Err(e) = c.collect(&mut w) {
            errors.push(format!("{name}: {}", crate::error_chain(&e)));
        }
    };
    if config.backup.enabled {
        let destination = config.backup.destination.clone();
        run(
            "backups",
            &crate::collectors::backups::Backups::new(destination),
        );
    }
    if config.backuppc.enabled {
        let (top_dir, hosts) = (
            config.backuppc.top_dir.clone(),
            config.backuppc.hosts.clone(),
        );
        run(
            "backuppc",
            &crate::collectors::backuppc::Backuppc::new(top_dir, hosts),
        );
    }
    run(
        "jobs",
        &crate::collectors::jobs::Jobs::new(config.jobs.state_dir.clone()),
    );
    crate::exposition::finish(&mut buf, Format::Text);
    (scraped::samples(&buf, scraped::wanted), errors)
}

/// `backups` and `updates`, as far as `only` wants them.
pub fn checks(config: &Config, deep: bool, only: &dyn Fn(&str) -> bool) -> Vec<Check> {
    let limits = Limits::from_config(config);
    let now = super::now();
    let (samples, errors) = collected(config);
    let from_metrics = scraped::checks(&samples, &BTreeMap::new(), &limits, now);
    let mut out = Vec::new();
    if config.backup.enabled && only("backups") {
        let mut found: Vec<Check> = from_metrics
            .iter()
            .filter(|c| c.name == "backups")
            .cloned()
            .collect();
        found.extend(unreadable("backups", &errors, &["backups", "backuppc"]));
        found.push(artifacts(config, deep));
        out.push(combine("backups", found));
    }
    if only("updates") {
        let mut found: Vec<Check> = from_metrics
            .iter()
            .filter(|c| c.name == "updates")
            .cloned()
            .collect();
        if found.is_empty() {
            // No plan, no approval: the jobs collector wrote no update series.
            found.push(scraped::update_fresh(0.0, None, limits.update_max_age, now));
        }
        found.extend(unreadable("updates", &errors, &["jobs"]));
        found.push(approved_plan(config, now));
        out.push(combine("updates", found));
    }
    out
}

/// A collector's error about the files `check` reads, as a failed check.
fn unreadable(check: &str, errors: &[String], collectors: &[&str]) -> Vec<Check> {
    errors
        .iter()
        .filter(|e| collectors.iter().any(|c| e.starts_with(&format!("{c}:"))))
        .map(|e| {
            Check::failed(
                check,
                e.clone(),
                "the exporter cannot read this either: fix the path or its permissions",
            )
        })
        .collect()
}

/// The newest backup is whole: every artifact with its recorded size, and with `deep`
/// its recorded checksum.
fn artifacts(config: &Config, deep: bool) -> Check {
    let dest = &config.backup.destination;
    let entries = match backup::scan(dest) {
        Ok(e) => e,
        Err(e) => {
            return Check::failed(
                "backups",
                format!("cannot read backup.destination {}: {e}", dest.display()),
                "create it with `shoehub-exporter backup run`, or fix backup.destination",
            )
        }
    };
    let Some(newest) = entries
        .iter()
        .filter(|e| e.state != State::Partial)
        .max_by(|a, b| a.name.cmp(&b.name))
    else {
        return Check::failed(
            "backups",
            format!("no backup in {}", dest.display()),
            "run `shoehub-exporter backup run`",
        );
    };
    match (&newest.state, &newest.manifest) {
        (State::Corrupt(why), _) => Check::failed(
            "backups",
            format!("the newest backup {} is damaged: {why}", newest.name),
            "do not restore from it; run `shoehub-exporter backup run` now and find what removed or changed the file",
        ),
        (_, Some(m)) if deep => match crate::jobs::backup::check_artifacts(newest, m) {
            Ok(()) => Check::ok(
                "backups",
                format!(
                    "{} artifacts of {} match their checksums",
                    m.artifacts.len(),
                    newest.name
                ),
            ),
            Err(e) => Check::failed(
                "backups",
                format!("backup {}: {e}", newest.name),
                "do not restore from it; run `shoehub-exporter backup run` now",
            ),
        },
        (_, Some(m)) => Check::ok(
            "backups",
            format!(
                "{} artifacts of {} have their recorded sizes",
                m.artifacts.len(),
                newest.name
            ),
        ),
        (_, None) => Check::failed(
            "backups",
            format!("the newest backup {} has no manifest", newest.name),
            "run `shoehub-exporter backup run`",
        ),
    }
}

/// An approved plan not applied yet must still be young enough to be applied.
fn approved_plan(config: &Config, now: f64) -> Check {
    let dir = &config.jobs.state_dir;
    let read = update::read_plan(dir).and_then(|p| Ok((p, update::read_approval(dir)?)));
    let (plan, approval) = match read {
        Ok(pa) => pa,
        Err(e) => {
            return Check::failed(
                "updates",
                crate::error_chain(&e),
                "run `shoehub-exporter update plan` to write a new plan",
            )
        }
    };
    let max = config.updates.max_plan_age.get();
    match (plan, approval) {
        (Some(p), Some(a)) if a.plan == p.id && a.applied.is_none() => {
            let age = now - p.created;
            if age > max.as_secs_f64() {
                Check::failed(
                    "updates",
                    format!(
                        "the approved plan {} is {} old (updates.max_plan_age {}): apply will refuse it",
                        p.id,
                        age_words(age),
                        duration_words(max)
                    ),
                    "make and review a new plan: `shoehub-exporter update plan`, then `update approve`",
                )
            } else {
                Check::ok("updates", format!("plan {} approved by {}", p.id, a.by))
            }
        }
        _ => Check::ok("updates", ""),
    }
}
