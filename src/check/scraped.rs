//! Checks judged from an exposition the exporter already made: the collectors'
//! success, the probes, backup freshness, the update protocol and the jobs, as the last
//! scrape reported them. The status page renders these; `check` uses the same rules on
//! what it reads itself, so both say the same thing about the same state.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{age_words, combine, duration_words, Check};

/// One sample: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The samples of a text exposition (Prometheus text or OpenMetrics) whose names
/// `wanted` accepts; comments and lines that do not parse are passed over.
pub fn samples(text: &[u8], wanted: impl Fn(&str) -> bool) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        if !wanted(&line[..end]) {
            continue;
        }
        if let Some(s) = parse_line(line) {
            out.push(s);
        }
    }
    out
}

fn parse_line(line: &str) -> Option<Sample> {
    let end = line.find(['{', ' '])?;
    let name = line[..end].to_owned();
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices();
        let mut key = String::new();
        let mut value = String::new();
        let mut in_value = false;
        let mut closed = None;
        while let Some((i, c)) = chars.next() {
            if in_value {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => {
                        labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                        in_value = false;
                    }
                    _ => value.push(c),
                }
            } else {
                match c {
                    '}' => {
                        closed = Some(i);
                        break;
                    }
                    '"' => in_value = true,
                    '=' | ',' | ' ' => {}
                    _ => key.push(c),
                }
            }
        }
        rest = &r[closed? + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// The thresholds the checks judge by: the same settings the alert rules use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `backup.max_age`.
    pub backup_max_age: Duration,
    /// `alerts.backup_verify_max_age`.
    pub verify_max_age: Duration,
    /// `alerts.update_max_age`.
    pub update_max_age: Duration,
    /// A plan waiting for approval longer than this is a warning.
    pub plan_wait: Duration,
    /// `alerts.certificate_warning_days`, in seconds.
    pub certificate_min: Duration,
}

impl Limits {
    pub fn from_config(c: &crate::config::Config) -> Limits {
        Limits {
            backup_max_age: c.backup.max_age.get(),
            verify_max_age: c.alerts.backup_verify_max_age.get(),
            update_max_age: c.alerts.update_max_age.get(),
            plan_wait: Duration::from_secs(2 * 86400),
            certificate_min: Duration::from_secs(c.alerts.certificate_warning_days * 86400),
        }
    }
}

/// The newest complete backup against `backup.max_age` (`last` 0: there is none).
pub fn backup_fresh(last: f64, max_age: Duration, now: f64) -> Check {
    if last <= 0.0 {
        return Check::failed(
            "backups",
            "no complete backup exists",
            "run `shoehub-exporter backup run` and read its output",
        );
    }
    let age = now - last;
    if age > max_age.as_secs_f64() {
        Check::failed(
            "backups",
            format!(
                "the newest complete backup is {} old (backup.max_age {})",
                age_words(age),
                duration_words(max_age)
            ),
            "see why the nightly run failed: `journalctl -u shoehub-backup`, then `shoehub-exporter backup run`",
        )
    } else {
        Check::ok("backups", format!("last backup {} ago", age_words(age)))
    }
}

/// The last successful `backup verify` against `alerts.backup_verify_max_age`.
pub fn verify_fresh(last: f64, max_age: Duration, now: f64) -> Check {
    let hint = "run `shoehub-exporter backup verify`; `journalctl -u shoehub-backup-verify` says why the weekly one failed";
    if last <= 0.0 {
        return Check::failed("backups", "no backup was ever verified", hint);
    }
    let age = now - last;
    if age > max_age.as_secs_f64() {
        Check::failed(
            "backups",
            format!(
                "the last successful verify was {} ago (limit {})",
                age_words(age),
                duration_words(max_age)
            ),
            hint,
        )
    } else {
        Check::ok("backups", format!("verified {} ago", age_words(age)))
    }
}

/// BackupPC's last good backup of `host` against `backup.max_age`.
pub fn backuppc_fresh(host: &str, last: f64, max_age: Duration, now: f64) -> Check {
    let age = now - last;
    if last <= 0.0 || age > max_age.as_secs_f64() {
        Check::failed(
            "backups",
            if last <= 0.0 {
                format!("BackupPC has no good backup of {host}")
            } else {
                format!(
                    "BackupPC's last good backup of {host} is {} old",
                    age_words(age)
                )
            },
            "see the host's log in BackupPC's web interface",
        )
    } else {
        Check::ok(
            "backups",
            format!("BackupPC: {host} {} ago", age_words(age)),
        )
    }
}

/// The update job: its last success against `alerts.update_max_age`, and its last exit.
pub fn update_fresh(
    last_success: f64,
    last_exit: Option<f64>,
    max_age: Duration,
    now: f64,
) -> Check {
    if let Some(code) = last_exit.filter(|c| *c != 0.0) {
        return Check::failed(
            "updates",
            format!("the last update run exited with {code}"),
            "read `shoehub-exporter update status` and `journalctl -u shoehub-update-apply`",
        );
    }
    let hint = "the weekly protocol: `shoehub-exporter update plan`, review, `update approve`, `update apply`";
    if last_success <= 0.0 {
        return Check::failed("updates", "no update has succeeded yet", hint);
    }
    let age = now - last_success;
    if age > max_age.as_secs_f64() {
        Check::failed(
            "updates",
            format!(
                "the last successful update was {} ago (limit {})",
                age_words(age),
                duration_words(max_age)
            ),
            hint,
        )
    } else {
        Check::ok("updates", format!("last update {} ago", age_words(age)))
    }
}

/// A plan made at `created` and not approved yet.
pub fn plan_waiting(created: f64, wait: Duration, now: f64) -> Check {
    let age = now - created;
    if age > wait.as_secs_f64() {
        Check::warning(
            "updates",
            format!("an update plan has waited {} for approval", age_words(age)),
            "review it with `shoehub-exporter update status`, then `update approve`",
        )
    } else {
        Check::ok(
            "updates",
            format!("a plan made {} ago waits for approval", age_words(age)),
        )
    }
}

/// A job's last run as the jobs collector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub name: String,
    pub completed: f64,
    pub success: f64,
    pub exit_code: f64,
    pub running: bool,
}

/// Every job the exposition reports, by name.
pub fn jobs(samples: &[Sample]) -> Vec<JobRow> {
    let mut rows: BTreeMap<&str, JobRow> = BTreeMap::new();
    for s in samples {
        let name = s.label("job_name");
        if name.is_empty() || !s.name.starts_with("shoehub_job_") {
            continue;
        }
        let row = rows.entry(name).or_insert_with(|| JobRow {
            name: name.to_owned(),
            completed: 0.0,
            success: 0.0,
            exit_code: 0.0,
            running: false,
        });
        match s.name.as_str() {
            "shoehub_job_last_completion_timestamp_seconds" => row.completed = s.value,
            "shoehub_job_last_success_timestamp_seconds" => row.success = s.value,
            "shoehub_job_last_exit_code" => row.exit_code = s.value,
            "shoehub_job_running" => row.running = s.value == 1.0,
            _ => {}
        }
    }
    rows.into_values().collect()
}

/// The metrics these checks read.
pub fn wanted(name: &str) -> bool {
    name.starts_with("shoehub_scrape_collector_success")
        || name.starts_with("shoehub_probe_")
        || name.starts_with("shoehub_backup")
        || name.starts_with("shoehub_job_")
        || name.starts_with("shoehub_update_")
}

/// The checks an exposition answers: exporter (each collector; `causes` says why one
/// failed), probes, backups, updates. An area the exposition has no series of (its
/// collector off) gives no check.
pub fn checks(
    samples: &[Sample],
    causes: &BTreeMap<String, String>,
    limits: &Limits,
    now: f64,
) -> Vec<Check> {
    fn of<'a>(samples: &'a [Sample], name: &'a str) -> impl Iterator<Item = &'a Sample> {
        samples.iter().filter(move |s| s.name == name)
    }
    let one = |name: &str| of(samples, name).next().map(|s| s.value);
    let mut out = Vec::new();

    let collectors: Vec<&Sample> = of(samples, "shoehub_scrape_collector_success").collect();
    let failing: Vec<String> = collectors
        .iter()
        .filter(|s| s.value != 1.0)
        .map(|s| {
            let c = s.label("collector");
            match causes.get(c) {
                Some(cause) => format!("collector {c} failed: {cause}"),
                None => format!("collector {c} failed"),
            }
        })
        .collect();
    out.push(if failing.is_empty() {
        Check::ok(
            "exporter",
            format!("all {} collectors succeed", collectors.len()),
        )
    } else {
        Check::failed(
            "exporter",
            failing.join("; "),
            "fix the cause the detail names; the exporter's log (`journalctl -u shoehub-exporter`) has it too",
        )
    });

    let probes: Vec<Check> = of(samples, "shoehub_probe_success")
        .map(|s| {
            let p = s.label("probe");
            let status = of(samples, "shoehub_probe_http_status_code")
                .find(|c| c.label("probe") == p)
                .map_or(0.0, |c| c.value);
            let expiry = of(
                samples,
                "shoehub_probe_tls_certificate_expiry_timestamp_seconds",
            )
            .find(|c| c.label("probe") == p)
            .map(|c| c.value);
            probe(p, s.value == 1.0, status as u16, expiry, None, limits, now)
        })
        .collect();
    if !probes.is_empty() {
        out.push(combine("probes", probes));
    }

    if let Some(last) = one("shoehub_backup_last_success_timestamp_seconds") {
        let mut found = vec![backup_fresh(last, limits.backup_max_age, now)];
        if last > 0.0 {
            let verified = one("shoehub_backup_last_verified_timestamp_seconds").unwrap_or(0.0);
            found.push(verify_fresh(verified, limits.verify_max_age, now));
        }
        for s in of(
            samples,
            "shoehub_backuppc_last_good_backup_timestamp_seconds",
        ) {
            found.push(backuppc_fresh(
                s.label("host"),
                s.value,
                limits.backup_max_age,
                now,
            ));
        }
        out.push(combine("backups", found));
    }

    let rows = jobs(samples);
    let jobs_collector = collectors.iter().any(|s| s.label("collector") == "jobs");
    if jobs_collector || one("shoehub_update_pending_approval").is_some() {
        let update = rows.iter().find(|r| r.name == "update");
        let mut found = vec![update_fresh(
            update.map_or(0.0, |r| r.success),
            update.filter(|r| r.completed > 0.0).map(|r| r.exit_code),
            limits.update_max_age,
            now,
        )];
        if one("shoehub_update_pending_approval") == Some(1.0) {
            let created = one("shoehub_update_plan_timestamp_seconds").unwrap_or(now);
            found.push(plan_waiting(created, limits.plan_wait, now));
        }
        out.push(combine("updates", found));
    }
    out
}

/// One probe's verdict: `ok` and `status` as fetched, `expiry` of the certificate.
pub fn probe(
    name: &str,
    ok: bool,
    status: u16,
    expiry: Option<f64>,
    cause: Option<&str>,
    limits: &Limits,
    now: f64,
) -> Check {
    if !ok {
        let why = match (cause, status) {
            (Some(c), _) => c.to_owned(),
            (None, 0) => "no answer".to_owned(),
            (None, s) => format!("answered {s}"),
        };
        return Check::failed(
            "probes",
            format!("probe {name} fails: {why}"),
            "the shop does not answer as configured: check the web server and the database behind it",
        );
    }
    if let Some(t) = expiry {
        let left = t - now;
        if left < limits.certificate_min.as_secs_f64() {
            return Check::failed(
                "probes",
                format!(
                    "probe {name}: the certificate expires in {}",
                    age_words(left)
                ),
                "renew the certificate (certbot renew) and reload the web server",
            );
        }
        return Check::ok(
            "probes",
            format!(
                "probe {name} answers {status}, certificate valid {} more",
                age_words(left)
            ),
        );
    }
    Check::ok("probes", format!("probe {name} answers {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    const DAY: f64 = 86400.0;

    fn limits() -> Limits {
        Limits {
            backup_max_age: Duration::from_secs(26 * 3600),
            verify_max_age: Duration::from_secs(8 * 86400),
            update_max_age: Duration::from_secs(8 * 86400),
            plan_wait: Duration::from_secs(2 * 86400),
            certificate_min: Duration::from_secs(14 * 86400),
        }
    }

    #[test]
    fn samples_parse_labels_with_escapes_in_both_formats() {
        let text = b"# HELP x y\nshoehub_job_last_exit_code{job_name=\"a\\\"b,}\\\\\"} 2\nshoehub_backups 3\nother 1\n# EOF\n";
        let s = samples(text, wanted);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label("job_name"), "a\"b,}\\");
        assert_eq!(s[0].value, 2.0);
        assert_eq!(s[1].name, "shoehub_backups");
    }

    fn exposition(now: f64, backup_age: f64, verify_age: f64) -> Vec<Sample> {
        let text = format!(
            "shoehub_scrape_collector_success{{collector=\"cpu\"}} 1\n\
             shoehub_scrape_collector_success{{collector=\"mysql\"}} 0\n\
             shoehub_backup_last_success_timestamp_seconds {}\n\
             shoehub_backup_last_verified_timestamp_seconds {}\n\
             shoehub_job_last_success_timestamp_seconds{{job_name=\"update\"}} {}\n\
             shoehub_job_last_completion_timestamp_seconds{{job_name=\"update\"}} {}\n\
             shoehub_job_last_exit_code{{job_name=\"update\"}} 0\n\
             shoehub_update_pending_approval 1\n\
             shoehub_update_plan_timestamp_seconds {}\n",
            now - backup_age,
            now - verify_age,
            now - DAY,
            now - DAY,
            now - 3.0 * DAY,
        );
        samples(text.as_bytes(), wanted)
    }

    #[test]
    fn each_area_turns_on_its_own_threshold() {
        let now = 1_800_000_000.0;
        let causes = BTreeMap::from([("mysql".to_owned(), "connection refused".to_owned())]);
        let c = checks(&exposition(now, 3600.0, DAY), &causes, &limits(), now);
        let by = |n: &str| c.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(by("exporter").status, Status::Failed);
        assert_eq!(
            by("exporter").detail,
            "collector mysql failed: connection refused"
        );
        assert_eq!(by("backups").status, Status::Ok);
        assert_eq!(
            by("backups").detail,
            "last backup 60 min ago; verified 24 h ago"
        );
        assert_eq!(by("updates").status, Status::Warning, "{c:?}");
        let stale = checks(
            &exposition(now, 3.0 * DAY, 9.0 * DAY),
            &causes,
            &limits(),
            now,
        );
        let b = stale.iter().find(|c| c.name == "backups").unwrap();
        assert_eq!(b.status, Status::Failed);
        assert!(
            b.detail.contains("3 d old") && b.detail.contains("9 d ago"),
            "{b:?}"
        );
    }

    #[test]
    fn a_probe_fails_on_its_answer_and_on_a_certificate_near_its_end() {
        let now = 1_800_000_000.0;
        let l = limits();
        assert_eq!(
            probe("shop", true, 200, Some(now + 30.0 * DAY), None, &l, now).status,
            Status::Ok
        );
        let soon = probe("shop", true, 200, Some(now + 5.0 * DAY), None, &l, now);
        assert_eq!(soon.status, Status::Failed);
        assert!(soon.detail.contains("expires in 5 d"), "{soon:?}");
        let down = probe("shop", false, 503, None, None, &l, now);
        assert_eq!(down.detail, "probe shop fails: answered 503");
    }
}
