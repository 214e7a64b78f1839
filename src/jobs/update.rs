//! `update plan|approve|apply|status`: the maintenance plan's weekly update, with its
//! review step made real.
//!
//! `plan` records what an update would change now (apt's pending packages and, with a
//! playbook, its `--check` run) under an id derived from that content. `approve` records
//! who approved which plan. `apply` runs the playbook as the job `update`, but only for
//! an approved plan that is not older than `updates.max_plan_age` and still matches what
//! is pending now; otherwise it refuses and says what to do.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::runner::{self, JobRun};
use crate::state::apt;
use crate::state::job::{self, StateError};
use crate::state::update::{self, Approval, CheckRun, Plan};
use crate::sys::now;

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("cannot ask apt for pending packages: {0}")]
    Apt(String),
    #[error("cannot run the playbook's check: {0}")]
    Check(String),
    #[error("there is no update plan yet: run `shoehub-exporter update plan` first")]
    NoPlan,
    #[error("plan {given} is not the current plan ({current}); review `shoehub-exporter update status` and approve the current one")]
    WrongPlan { given: String, current: String },
    #[error("plan {0} is not approved: review it with `shoehub-exporter update status`, then `shoehub-exporter update approve --plan {0}`")]
    NotApproved(String),
    #[error(
        "plan {0} was already applied: run `shoehub-exporter update plan` for the next update"
    )]
    Applied(String),
    #[error("plan {id} is {age} old, older than updates.max_plan_age ({max}): run `shoehub-exporter update plan` and approve the new plan")]
    Stale {
        id: String,
        age: String,
        max: String,
    },
    #[error("what is pending changed since plan {approved} was made (now: plan {now}); run `shoehub-exporter update plan`, review it and approve the new plan")]
    Changed { approved: String, now: String },
    #[error("no playbook to apply: set updates.playbook in the config")]
    NoPlaybook,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Run(#[from] runner::RunError),
}

pub struct Update<'a> {
    pub state_dir: &'a Path,
    pub playbook: Option<&'a Path>,
    pub max_age: Duration,
    pub kill_grace: Duration,
    /// `jobs.max_json_bytes`.
    pub max_json: usize,
}

fn human(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

impl Update<'_> {
    /// What an update would change now.
    fn current(&self) -> Result<Plan, UpdateError> {
        let out = Command::new("apt-get")
            .args(["--just-print", "dist-upgrade"])
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| UpdateError::Apt(format!("apt-get: {e}")))?;
        if !out.status.success() {
            return Err(UpdateError::Apt(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        let packages = apt::parse_upgrades(&String::from_utf8_lossy(&out.stdout));
        let check = match self.playbook {
            Some(p) => Some(check_run(p)?),
            None => None,
        };
        let id = update::plan_id(&packages, check.as_ref());
        Ok(Plan {
            id,
            created: now(),
            packages,
            check,
        })
    }

    pub fn plan(&self) -> Result<Plan, UpdateError> {
        let plan = self.current()?;
        update::write_plan(self.state_dir, &plan)?;
        println!("{}", describe(&plan));
        println!(
            "review it, then approve it with: shoehub-exporter update approve --plan {}",
            plan.id
        );
        Ok(plan)
    }

    pub fn approve(
        &self,
        plan_id: Option<&str>,
        by: Option<&str>,
    ) -> Result<Approval, UpdateError> {
        let plan = update::read_plan(self.state_dir)?.ok_or(UpdateError::NoPlan)?;
        if let Some(given) = plan_id {
            if given != plan.id {
                return Err(UpdateError::WrongPlan {
                    given: given.to_owned(),
                    current: plan.id,
                });
            }
        }
        let by = by
            .map(str::to_owned)
            .or_else(|| std::env::var("SUDO_USER").ok())
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "unknown".to_owned());
        let approval = Approval {
            plan: plan.id.clone(),
            by,
            at: now(),
            applied: None,
        };
        update::write_approval(self.state_dir, &approval)?;
        println!("plan {} approved by {}", approval.plan, approval.by);
        Ok(approval)
    }

    /// Runs the approved plan's playbook as the job `update`; returns its exit code.
    pub fn apply(&self, timeout: Option<Duration>) -> Result<i32, UpdateError> {
        let playbook = self.playbook.ok_or(UpdateError::NoPlaybook)?;
        let plan = update::read_plan(self.state_dir)?.ok_or(UpdateError::NoPlan)?;
        let mut approval = match update::read_approval(self.state_dir)? {
            Some(a) if a.plan == plan.id => a,
            _ => return Err(UpdateError::NotApproved(plan.id)),
        };
        if approval.applied.is_some() {
            return Err(UpdateError::Applied(plan.id));
        }
        let age = now() - plan.created;
        if age > self.max_age.as_secs_f64() {
            return Err(UpdateError::Stale {
                id: plan.id,
                age: human(age),
                max: human(self.max_age.as_secs_f64()),
            });
        }
        let current = self.current()?;
        if current.id != plan.id {
            return Err(UpdateError::Changed {
                approved: plan.id,
                now: current.id,
            });
        }
        let command: Vec<OsString> =
            vec!["ansible-playbook".into(), playbook.as_os_str().to_owned()];
        let code = runner::run(&JobRun {
            state_dir: self.state_dir,
            job: "update",
            timeout,
            kill_grace: self.kill_grace,
            command: &command,
            max_json: self.max_json,
        })?;
        if code == 0 {
            approval.applied = Some(now());
            update::write_approval(self.state_dir, &approval)?;
        }
        Ok(code)
    }

    pub fn status(&self) -> Result<(), UpdateError> {
        match update::read_plan(self.state_dir)? {
            None => println!("no plan: run `shoehub-exporter update plan`"),
            Some(plan) => {
                println!("{}", describe(&plan));
                match update::read_approval(self.state_dir)? {
                    Some(a) if a.plan == plan.id => {
                        println!("approved by {} {} ago", a.by, human(now() - a.at));
                        if let Some(t) = a.applied {
                            println!("applied {} ago", human(now() - t));
                        }
                    }
                    _ => println!(
                        "not approved: shoehub-exporter update approve --plan {}",
                        plan.id
                    ),
                }
            }
        }
        let last = job::read(self.state_dir, "update")?;
        match last.last {
            Some(l) => println!(
                "last update run: exit code {} {} ago, took {}",
                l.exit_code,
                human(now() - l.ended),
                human(l.ended - l.started)
            ),
            None => println!("no update has run yet"),
        }
        Ok(())
    }
}

fn describe(plan: &Plan) -> String {
    let security = plan
        .packages
        .iter()
        .filter(|p| p.origin.contains("-security"))
        .count();
    let mut out = format!(
        "plan {} made {} ago: {} package(s) to upgrade, {} from security archives",
        plan.id,
        human(now() - plan.created),
        plan.packages.len(),
        security
    );
    for p in &plan.packages {
        out.push_str(&format!(
            "\n  {} {} -> {} ({})",
            p.package, p.from, p.to, p.origin
        ));
    }
    if let Some(c) = &plan.check {
        out.push_str(&format!(
            "\nplaybook {} in check mode: exit code {}",
            c.playbook.display(),
            c.exit_code
        ));
        for (host, counts) in &c.recap {
            let changed = counts.get("changed").copied().unwrap_or(0);
            let failed = counts.get("failed").copied().unwrap_or(0);
            out.push_str(&format!(
                "\n  {host}: {changed} change(s), {failed} failure(s)"
            ));
        }
    }
    out
}

/// `ansible-playbook --check --diff PLAYBOOK`, its output shown on stderr.
fn check_run(playbook: &Path) -> Result<CheckRun, UpdateError> {
    let content = crate::regular::read(playbook, crate::config::MAX_FILE_BYTES)
        .map_err(|e| UpdateError::Check(format!("{}: {e}", playbook.display())))?;
    let out = Command::new("ansible-playbook")
        .arg("--check")
        .arg("--diff")
        .arg(playbook)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .map_err(|e| UpdateError::Check(format!("ansible-playbook: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    eprint!("{text}");
    let mut recap = job::Recap::new();
    let mut in_recap = false;
    for line in text.lines() {
        if line.starts_with("PLAY RECAP") {
            in_recap = true;
        } else if in_recap {
            if let Some((host, counts)) = job::parse_recap_line(line) {
                recap.insert(host, counts);
            }
        }
    }
    Ok(CheckRun {
        playbook: PathBuf::from(playbook),
        exit_code: out.status.code().unwrap_or(1),
        recap,
        playbook_digest: update::digest(&[&content]),
    })
}
