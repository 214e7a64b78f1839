//! The update protocol's records: the plan (what an update would change now) and its
//! approval, in `<jobs.state_dir>/update/`, each replaced atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::value::DurationValue;

use super::apt::Upgrade;
use super::job::{Recap, StateError};

/// `updates:` — pending packages and the weekly update protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdatesConfig {
    /// Serve apt's pending, held and autoremovable packages (on hosts with apt).
    pub apt: bool,
    /// How often apt is asked (in the background; a scrape never waits for apt).
    pub apt_interval: DurationValue,
    /// How long one scrape may take to read the last answer.
    pub apt_timeout: DurationValue,
    /// The playbook `update apply` runs.
    pub playbook: Option<PathBuf>,
    /// The Ansible inventory the playbook runs against (`-i`); the package ships one
    /// for the local host.
    pub inventory: Option<PathBuf>,
    /// `update apply` refuses a plan older than this.
    pub max_plan_age: DurationValue,
    /// How many hosts the rollout updates together after the canary: a number, or a
    /// share of the hosts such as `25%`; all at once when unset.
    pub batch: Option<Batch>,
    /// With `prometheus_url`: how long each updated host must run without a critical
    /// alert before the rollout goes on.
    pub soak: DurationValue,
    /// The Prometheus (its base URL) that the rollout asks for critical alerts of each
    /// updated host; none is asked when unset.
    pub prometheus_url: Option<String>,
}

/// `updates.batch`: a number of hosts, or a share of them (`"25%"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Batch {
    Hosts(u64),
    Share(String),
}

impl UpdatesConfig {
    /// The rules serde cannot check: a batch of at least one host or 1 to 100 %, a
    /// Prometheus URL over HTTP(S).
    pub fn validate(&self) -> Result<(), String> {
        match &self.batch {
            Some(Batch::Hosts(0)) => {
                return Err("updates.batch: 0 hosts would update none; give a number of hosts such as 2, or a share such as 25% (leave it out to update the rest at once after the canary)".to_owned());
            }
            Some(Batch::Share(s))
                if !s
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<u8>().ok())
                    .is_some_and(|n| (1..=100).contains(&n)) =>
            {
                return Err(format!(
                    "updates.batch: {s:?} is neither a number of hosts nor a share from 1% to 100%; give e.g. 2 or 25%"
                ));
            }
            _ => {}
        }
        if let Some(text) = &self.prometheus_url {
            match url::Url::parse(text) {
                Ok(u) if !matches!(u.scheme(), "http" | "https") || u.host().is_none() => {
                    return Err(format!(
                        "updates.prometheus_url: {text:?} is not an HTTP(S) URL; give Prometheus' base URL, such as http://prometheus.example:9090"
                    ));
                }
                // The URL goes into the plan and the playbook's command line.
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    return Err(
                        "updates.prometheus_url: a user or password in the URL would be in the plan and on the playbook's command line; give a Prometheus the controller may ask without them".to_owned(),
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(format!(
                        "updates.prometheus_url: {text:?}: {e}; give Prometheus' base URL, such as http://prometheus.example:9090"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rollout these settings make, as a plan records it.
    pub fn rollout(&self) -> Rollout {
        Rollout {
            batch: match &self.batch {
                None => "100%".to_owned(),
                Some(Batch::Hosts(n)) => n.to_string(),
                Some(Batch::Share(s)) => s.trim().replace(' ', ""),
            },
            soak_seconds: self.soak.get().as_secs(),
            prometheus_url: self.prometheus_url.clone().unwrap_or_default(),
        }
    }
}

/// How a plan is rolled out: what `updates.batch`, `updates.soak` and
/// `updates.prometheus_url` were when it was made (and reviewed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Hosts per batch after the canary, or a share of them (`"100%"`: all at once).
    pub batch: String,
    pub soak_seconds: u64,
    /// Empty: no Prometheus is asked.
    #[serde(default)]
    pub prometheus_url: String,
}

impl Default for Rollout {
    fn default() -> Self {
        UpdatesConfig::default().rollout()
    }
}

/// What became of one host when a plan was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Updated and passed every validation.
    Validated,
    /// Updated; its validation did not end (the run stopped on another host).
    Updated,
    /// Failed while updated or validated, or unreachable: the rollout stopped.
    Failed,
    /// Not touched: the rollout stopped before its batch.
    NotReached,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [
        Outcome::Validated,
        Outcome::Updated,
        Outcome::Failed,
        Outcome::NotReached,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Validated => "validated",
            Outcome::Updated => "updated",
            Outcome::Failed => "failed",
            Outcome::NotReached => "not_reached",
        }
    }
}

/// One host's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostOutcome {
    pub host: String,
    pub outcome: Outcome,
    /// Where a failed host failed: `setup`, `install`, `services`, `check`, `soak`,
    /// `unreachable` or `report`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub step: String,
    /// Why, in the playbook's words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The outcome of applying a plan, host by host: in the plan's record, and in
/// `rollout.json` until the next apply (a new plan does not hide a failed rollout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutOutcome {
    pub plan: String,
    pub ended: f64,
    pub hosts: Vec<HostOutcome>,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            apt: true,
            apt_interval: DurationValue(Duration::from_secs(15 * 60)),
            apt_timeout: DurationValue(Duration::from_secs(5)),
            playbook: None,
            inventory: None,
            max_plan_age: DurationValue(Duration::from_secs(7 * 86400)),
            batch: None,
            soak: DurationValue(Duration::from_secs(5 * 60)),
            prometheus_url: None,
        }
    }
}

/// What `update plan` found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Derived from the content: the same pending changes give the same id.
    pub id: String,
    pub created: f64,
    /// What refreshing apt's lists said (`apt-get update`), which the plan follows.
    #[serde(default)]
    pub refresh: String,
    pub packages: Vec<Upgrade>,
    /// The reviewed versions' package files, fetched through apt when the plan was made
    /// and kept for `apply` in [`debs_dir`]: what is installed, whatever the archive
    /// offers by then.
    #[serde(default)]
    pub debs: Vec<Deb>,
    /// The playbook's `--check --diff` run, when a playbook is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckRun>,
    /// How apply rolls it out.
    #[serde(default)]
    pub rollout: Rollout,
    /// What became of each host when it was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RolloutOutcome>,
}

/// One reviewed package file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deb {
    pub package: String,
    pub version: String,
    pub file: PathBuf,
    pub sha256: String,
    pub size: u64,
}

/// Where the current plan's package files are kept (root's, 0700).
pub fn debs_dir(state_dir: &Path) -> PathBuf {
    dir(state_dir).join("debs")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    pub playbook: PathBuf,
    #[serde(default)]
    pub inventory: PathBuf,
    pub exit_code: i32,
    /// Ansible's PLAY RECAP of the check run: what it would change.
    #[serde(default)]
    pub recap: Recap,
    /// A fingerprint of the playbook and inventory files, so that an edited one is a
    /// new plan.
    pub playbook_digest: String,
    /// The check run's output: per task and host, what it would change (`--diff`).
    #[serde(default)]
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    pub plan: String,
    pub by: String,
    pub at: f64,
    #[serde(default)]
    pub comment: String,
    /// Set once `update apply` ran this plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<f64>,
    /// Set when an apply of this plan failed: another needs a new approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<f64>,
}

/// The last `update apply` that refused to run, and why: `update status` shows it until
/// an apply runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub at: f64,
    /// The current plan's id then (empty with no plan).
    #[serde(default)]
    pub plan: String,
    pub reason: String,
}

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("update")
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StateError> {
    // A plan lists every package with its diff: far more than a job's state.
    match crate::regular::read(path, super::job::MAX_STATE_BYTES * 64) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| StateError::Corrupt {
                    path: path.to_owned(),
                    source,
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    if let Some(parent) = path.parent() {
        crate::writes::create_dir_all(parent, crate::writes::SHARED_DIR)
            .and_then(|()| crate::writes::check_dir(parent))
            .map_err(|source| StateError::Io {
                path: parent.to_owned(),
                source,
            })?;
    }
    let bytes = serde_json::to_vec_pretty(value).map_err(|source| StateError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    crate::writes::replace(path, &bytes, crate::writes::SHARED).map_err(|source| StateError::Io {
        path: path.to_owned(),
        source,
    })
}

pub fn read_plan(state_dir: &Path) -> Result<Option<Plan>, StateError> {
    read_json(&dir(state_dir).join("plan.json"))
}

pub fn write_plan(state_dir: &Path, plan: &Plan) -> Result<(), StateError> {
    write_json(&dir(state_dir).join("plan.json"), plan)
}

pub fn read_approval(state_dir: &Path) -> Result<Option<Approval>, StateError> {
    read_json(&dir(state_dir).join("approval.json"))
}

pub fn write_approval(state_dir: &Path, approval: &Approval) -> Result<(), StateError> {
    write_json(&dir(state_dir).join("approval.json"), approval)
}

/// Forgets the approval: a new plan voids it.
pub fn clear_approval(state_dir: &Path) -> Result<(), StateError> {
    remove_record(state_dir, "approval.json")
}

/// Removes one of the records, if it is there.
fn remove_record(state_dir: &Path, name: &str) -> Result<(), StateError> {
    let path = dir(state_dir).join(name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StateError::Io { path, source: e })
        }
        _ => Ok(()),
    }
}

/// The last rollout's outcome, if a plan was applied.
pub fn read_rollout(state_dir: &Path) -> Result<Option<RolloutOutcome>, StateError> {
    read_json(&dir(state_dir).join("rollout.json"))
}

/// Records a rollout's outcome: in `rollout.json`, and in the plan's record when the
/// plan is still the current one.
pub fn write_rollout(state_dir: &Path, outcome: &RolloutOutcome) -> Result<(), StateError> {
    write_json(&dir(state_dir).join("rollout.json"), outcome)?;
    if let Some(mut plan) = read_plan(state_dir)? {
        if plan.id == outcome.plan {
            plan.outcome = Some(outcome.clone());
            write_plan(state_dir, &plan)?;
        }
    }
    Ok(())
}

/// The last refusal, if one was recorded.
pub fn read_refusal(state_dir: &Path) -> Result<Option<Refusal>, StateError> {
    read_json(&dir(state_dir).join("refusal.json"))
}

/// Records a refusal for `update status`.
pub fn write_refusal(state_dir: &Path, refusal: &Refusal) -> Result<(), StateError> {
    write_json(&dir(state_dir).join("refusal.json"), refusal)
}

/// Forgets the last refusal: an apply runs.
pub fn clear_refusal(state_dir: &Path) -> Result<(), StateError> {
    remove_record(state_dir, "refusal.json")
}

/// SHA-256 of `parts`, in hex: what binds an approval to what was reviewed.
pub fn digest(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        // Each part with its length first: no two lists of parts hash alike.
        h.update((part.len() as u64).to_le_bytes());
        h.update(part);
    }
    crate::text::hex(&h.finalize())
}

/// `output` with the names of Ansible's temporary directories
/// (`~/.ansible/tmp/ansible-local-…/tmp…/`) taken out.
fn without_temporary_paths(output: &str) -> String {
    static TEMPORARY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"/ansible-(?:local|tmp)-[^/\s]*(?:/tmp[^/\s]*)?/")
            .unwrap_or_else(|_| unreachable!("a constant pattern"))
    });
    TEMPORARY.replace_all(output, "/ansible-tmp/").into_owned()
}

/// The id of a plan with these contents, rolled out so.
pub fn plan_id(
    packages: &[Upgrade],
    debs: &[Deb],
    check: Option<&CheckRun>,
    rollout: &Rollout,
) -> String {
    let mut text = format!(
        "rollout {} {} {}\n",
        rollout.batch, rollout.soak_seconds, rollout.prometheus_url
    );
    for p in packages {
        text.push_str(&format!(
            "{} {} {} {} {}\n",
            p.package, p.from, p.to, p.origin, p.arch
        ));
    }
    for d in debs {
        text.push_str(&format!("deb {} {} {}\n", d.package, d.version, d.sha256));
    }
    if let Some(c) = check {
        text.push_str(&format!("inventory {}\n", c.inventory.display()));
    }
    if let Some(c) = check {
        text.push_str(&format!(
            "playbook {} {}\n",
            c.playbook.display(),
            c.playbook_digest
        ));
        for (host, counts) in &c.recap {
            text.push_str(&format!("{host} {counts:?}\n"));
        }
        // What the reviewer read: the check run's diff, whole, but for the temporary
        // files Ansible names in it (a template's rendering), which differ every run.
        text.push_str(&without_temporary_paths(&c.output));
    }
    // Sixteen hex digits to type; SHA-256 underneath, so no other content is made to
    // have a reviewed plan's id.
    digest(&[text.as_bytes()])[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_paths_do_not_count() {
        let a = "+++ after: /root/.ansible/tmp/ansible-local-23448_75uar9b/tmpvryw2woe/motd.j2\n+PermitRootLogin no\n";
        let b = "+++ after: /root/.ansible/tmp/ansible-local-23536z10lobjs/tmp6i8g1lpj/motd.j2\n+PermitRootLogin no\n";
        assert_eq!(without_temporary_paths(a), without_temporary_paths(b));
        assert_ne!(
            without_temporary_paths(a),
            without_temporary_paths(&a.replace("no", "yes"))
        );
    }

    #[test]
    fn ids_follow_the_content() {
        let up = |to: &str| Upgrade {
            package: "bash".into(),
            from: "1".into(),
            to: to.into(),
            origin: "Debian:12/stable".into(),
            arch: "amd64".into(),
            security: false,
        };
        let r = Rollout::default();
        let later = Rollout {
            batch: "1".into(),
            ..Rollout::default()
        };
        assert_ne!(
            plan_id(&[up("2")], &[], None, &r),
            plan_id(&[up("2")], &[], None, &later)
        );
        assert_eq!(
            plan_id(&[up("2")], &[], None, &r),
            plan_id(&[up("2")], &[], None, &r)
        );
        assert_ne!(
            plan_id(&[up("2")], &[], None, &r),
            plan_id(&[up("3")], &[], None, &r)
        );
        assert_ne!(
            plan_id(&[], &[], None, &r),
            plan_id(&[up("2")], &[], None, &r)
        );
        assert_eq!(plan_id(&[], &[], None, &r).len(), 16);
    }

    #[test]
    fn rollout_settings_are_checked_naming_the_key() {
        let parse = |text: &str| crate::config::Config::parse(text).map(|c| c.updates.rollout());
        let r =
            parse("updates:\n  batch: 2\n  soak: 90s\n  prometheus_url: http://p:9090\n").unwrap();
        assert_eq!(
            (r.batch.as_str(), r.soak_seconds, r.prometheus_url.as_str()),
            ("2", 90, "http://p:9090")
        );
        assert_eq!(parse("updates:\n  batch: 25%\n").unwrap().batch, "25%");
        assert_eq!(parse("{}").unwrap().batch, "100%");
        for bad in [
            "updates:\n  batch: 0\n",
            "updates:\n  batch: 150%\n",
            "updates:\n  batch: some\n",
            "updates:\n  prometheus_url: prometheus:9090\n",
            "updates:\n  prometheus_url: http://ops:secret@prometheus:9090\n",
            "updates:\n  prometheus_url: ftp://prometheus/\n",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("updates."), "{bad}: {e}");
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_plan(dir.path()).unwrap().is_none());
        let plan = Plan {
            id: "abc".into(),
            created: 1.0,
            refresh: String::new(),
            packages: vec![],
            debs: vec![],
            check: None,
            rollout: Rollout::default(),
            outcome: None,
        };
        write_plan(dir.path(), &plan).unwrap();
        assert_eq!(read_plan(dir.path()).unwrap(), Some(plan));
    }
}
