//! `update plan|approve|apply|status`: the maintenance plan's weekly update, with its
//! review step made real.
//!
//! `plan` refreshes apt's lists, then records what an update would install now (every
//! package with its installed and candidate version, origin and security flag) and,
//! with a playbook, its `--check --diff` run against `updates.inventory` with exactly
//! those packages, under an id derived from that content. `approve` records who
//! approved which plan, and why. `apply` runs the playbook as the job `update` with the
//! reviewed package files (fetched by `plan`, checked against their SHA-256) and
//! nothing else, but only for an approved plan that is not older than
//! `updates.max_plan_age` and whose playbook, the files it reads and inventory are
//! unchanged; otherwise it refuses and says what to do. A version published after the
//! review waits for the next plan; one withdrawn since is installed from its file.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::fs::DirBuilderExt;
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
    #[error("plan {0} is not approved: review it with `shoehub-exporter update status`, then `shoehub-exporter update approve --plan {0} --by NAME --comment TEXT`")]
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
    #[error("the playbook, a file it reads, the inventory or the rollout's settings (updates.batch, updates.soak, updates.prometheus_url) changed since plan {0} was made; run `shoehub-exporter update plan`, review it and approve the new plan")]
    Changed(String),
    #[error("no playbook to apply: set updates.playbook in the config")]
    NoPlaybook,
    #[error("no inventory for the playbook: set updates.inventory (the package ships /etc/shoehub-exporter/inventory.ini for this host)")]
    NoInventory,
    #[error("cannot refresh apt's package lists: {0}")]
    Refresh(String),
    #[error("the playbook's check run matched no host of its `hosts:` in {inventory}: nothing would be updated. Put the hosts in the inventory's group, or set updates.inventory to one that lists them")]
    NoHosts { inventory: String },
    #[error("the playbook's check run failed (exit code {code}): see `shoehub-exporter update status`, fix the playbook or the hosts, and plan again")]
    CheckFailed { code: i32 },
    #[error("cannot fetch the reviewed package files through apt: {0}")]
    Fetch(String),
    #[error("{dir} has {avail} free; the reviewed package files take {need}: make room there (or in jobs.state_dir), then plan again")]
    Space {
        dir: String,
        avail: String,
        need: String,
    },
    #[error("the package file {file} of plan {plan} is {problem}: nothing was installed. Run `shoehub-exporter update plan` to fetch the files again, review and approve the new plan")]
    Tampered {
        plan: String,
        file: String,
        problem: String,
    },
    #[error("plan {0} was made before package files were kept with plans: run `shoehub-exporter update plan`, review and approve the new plan")]
    NoFiles(String),
    #[error("an approval needs a name: give --by NAME (under sudo, $SUDO_USER is taken)")]
    NoApprover,
    #[error("an approval names its plan: give --plan ID, the id `shoehub-exporter update status` shows, after reviewing it")]
    NoPlanGiven,
    #[error("plan {0} failed when it was applied: see `shoehub-exporter update status`; run it again only after reviewing it, with `shoehub-exporter update approve --plan {0} --by NAME --comment TEXT`, or plan anew")]
    Failed(String),
    #[error("{0}")]
    Files(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Run(#[from] runner::RunError),
}

/// What [`Update::ready`] found: the approved plan and the files it runs.
pub struct Ready<'a> {
    pub playbook: &'a Path,
    pub inventory: &'a Path,
    pub plan: Plan,
    pub approval: Approval,
}

pub struct Update<'a> {
    pub state_dir: &'a Path,
    pub playbook: Option<&'a Path>,
    pub inventory: Option<&'a Path>,
    pub max_age: Duration,
    pub kill_grace: Duration,
    /// `jobs.max_json_bytes`.
    pub max_json: usize,
    /// How a plan made now is rolled out (`updates.batch`, `updates.soak`,
    /// `updates.prometheus_url`).
    pub rollout: update::Rollout,
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

/// The playbook's extra variables: the reviewed packages (`"shoehub_packages":
/// ["name=version", …], "shoehub_debs": ["/…/name_version_arch.deb", …]`, the files in
/// apt's order of installation), the rollout's settings and where each host's outcome is
/// reported (none in a check run).
fn playbook_vars(
    packages: &[apt::Upgrade],
    debs: &[update::Deb],
    rollout: &update::Rollout,
    report_dir: Option<&Path>,
) -> String {
    let pairs: Vec<String> = packages
        .iter()
        .map(|p| format!("{}={}", p.package, p.to))
        .collect();
    let files: Vec<String> = packages
        .iter()
        .filter_map(|p| debs.iter().find(|d| d.package == p.package))
        .map(|d| d.file.display().to_string())
        .collect();
    serde_json::json!({
        "shoehub_packages": pairs,
        "shoehub_debs": files,
        "shoehub_batch": rollout.batch,
        "shoehub_soak_seconds": rollout.soak_seconds,
        "shoehub_prometheus_url": rollout.prometheus_url,
        "shoehub_report_dir": report_dir.map(|d| d.display().to_string()).unwrap_or_default(),
    })
    .to_string()
}

/// Copies `from` to the new file `to` (0600), and gives the SHA-256 of what it wrote.
fn copy_hashing(from: &Path, to: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};
    let mut src = crate::regular::open(from)?;
    let mut dst = crate::writes::create_new(to, 0o600)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
    }
    dst.sync_all()?;
    Ok(crate::text::hex(&h.finalize()))
}

/// The SHA-256 of a file, in hex, and its size.
fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    let mut f = crate::regular::open(path)?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h)?;
    Ok((crate::text::hex(&h.finalize()), size))
}

/// What apt says the reviewed version's file weighs (`Size:`), in bytes.
fn archive_size(package: &str, version: &str) -> u64 {
    Command::new("apt-cache")
        .args(["show", "--no-all-versions", &format!("{package}={version}")])
        .env("LC_ALL", "C")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("Size:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// A package file's name and version, as its control data says.
fn deb_fields(path: &Path) -> Option<(String, String)> {
    let out = Command::new("dpkg-deb")
        .arg("-f")
        .arg(path)
        .args(["Package", "Version"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_owned())
    };
    Some((field("Package:")?, field("Version:")?))
}

/// `apt-get update`: the lists a plan reads, fresh; a summary of what it said.
fn refresh() -> Result<String, UpdateError> {
    let out = Command::new("apt-get")
        .args(["-q", "update"])
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| UpdateError::Refresh(format!("apt-get: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // apt-get update exits 0 when a source cannot be fetched; it says so with W:/E:.
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("E:") || l.starts_with("W:") || l.starts_with("Err:"))
        .chain(stdout.lines().filter(|l| l.starts_with("Err:")))
        .collect();
    if !out.status.success() || problems.iter().any(|l| !l.starts_with("W:")) {
        return Err(UpdateError::Refresh(problems.join("; ")));
    }
    let fetched = stdout
        .lines()
        .filter(|l| l.starts_with("Get:") || l.starts_with("Hit:"))
        .count();
    let mut summary = format!("apt-get update: {fetched} source(s) read");
    for w in problems {
        summary.push_str(&format!("; {w}"));
    }
    Ok(summary)
}

/// The version apt would install of `package` now (from the lists as last refreshed).
fn candidate(package: &str) -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["policy", package])
        .env("LC_ALL", "C")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Candidate:"))
        .map(|v| v.trim().to_owned())
        .filter(|v| v != "(none)")
}

/// Whether Debian version `a` is later than `b`.
fn later(a: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, "gt", b])
        .status()
        .is_ok_and(|s| s.success())
}

impl<'a> Update<'a> {
    /// The packages an upgrade would install now, from the current lists.
    fn pending(&self) -> Result<Vec<apt::Upgrade>, UpdateError> {
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
        Ok(apt::parse_upgrades(&String::from_utf8_lossy(&out.stdout)))
    }

    fn inventory(&self) -> Result<&'a Path, UpdateError> {
        self.inventory.ok_or(UpdateError::NoInventory)
    }

    /// The reviewed versions' package files, fetched through apt (which checks them
    /// against the archive's signed lists) into a fresh [`update::debs_dir`], root's
    /// alone, replacing the last plan's; each with its SHA-256. Refused, with the sizes,
    /// when the directory's file system cannot hold them.
    fn fetch(&self, packages: &[apt::Upgrade]) -> Result<Vec<update::Deb>, UpdateError> {
        let dir = update::debs_dir(self.state_dir);
        let fresh = update::dir(self.state_dir).join("debs.new");
        let io = |what: &Path| {
            let what = what.display().to_string();
            move |e: std::io::Error| UpdateError::Fetch(format!("{what}: {e}"))
        };
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(io(&fresh))?;
        }
        // As the plan's own records make it (the exporter reads those).
        crate::writes::create_dir_all(&update::dir(self.state_dir), crate::writes::SHARED_DIR)
            .and_then(|()| crate::writes::check_dir(&update::dir(self.state_dir)))
            .map_err(io(&update::dir(self.state_dir)))?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&fresh)
            .map_err(io(&fresh))?;
        let need: u64 = packages
            .iter()
            .map(|p| archive_size(&p.package, &p.to))
            .sum();
        let c = std::ffi::CString::new(fresh.as_os_str().as_encoded_bytes())
            .map_err(|e| UpdateError::Fetch(e.to_string()))?;
        if let Ok(st) = crate::sys::statvfs(&c) {
            // Room for the files and a tenth more.
            if st.avail < need + need / 10 {
                let _ = std::fs::remove_dir(&fresh);
                return Err(UpdateError::Space {
                    dir: fresh.parent().unwrap_or(&fresh).display().to_string(),
                    avail: crate::regular::human_bytes(st.avail),
                    need: crate::regular::human_bytes(need),
                });
            }
        }
        if !packages.is_empty() {
            let out = Command::new("apt-get")
                // The directory is root's alone: apt downloads as root, not as _apt.
                .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
                .args(packages.iter().map(|p| format!("{}={}", p.package, p.to)))
                .current_dir(&fresh)
                .env("LC_ALL", "C")
                .output()
                .map_err(|e| UpdateError::Fetch(format!("apt-get: {e}")))?;
            if !out.status.success() {
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(UpdateError::Fetch(
                    String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                ));
            }
        }
        let mut debs = Vec::new();
        for entry in std::fs::read_dir(&fresh).map_err(io(&fresh))? {
            let path = entry.map_err(io(&fresh))?.path();
            let Some((package, version)) = deb_fields(&path) else {
                continue;
            };
            let (sha256, size) = sha256_file(&path).map_err(io(&path))?;
            let file = dir.join(path.file_name().unwrap_or_default());
            debs.push(update::Deb {
                package,
                version,
                file,
                sha256,
                size,
            });
        }
        for p in packages {
            if !debs
                .iter()
                .any(|d| d.package == p.package && d.version == p.to)
            {
                let _ = std::fs::remove_dir_all(&fresh);
                return Err(UpdateError::Fetch(format!(
                    "apt gave no file of {} {}",
                    p.package, p.to
                )));
            }
        }
        debs.sort_by(|a, b| a.package.cmp(&b.package));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        std::fs::rename(&fresh, &dir).map_err(io(&dir))?;
        Ok(debs)
    }

    /// `update plan`: refresh, what would be installed, its files fetched, the check
    /// run; recorded.
    pub fn plan(&self) -> Result<Plan, UpdateError> {
        let refresh = refresh()?;
        let packages = self.pending()?;
        let debs = self.fetch(&packages)?;
        let check = match self.playbook {
            Some(p) => Some(check_run(
                p,
                self.inventory()?,
                &packages,
                &debs,
                &self.rollout,
            )?),
            None => None,
        };
        let id = update::plan_id(&packages, &debs, check.as_ref(), &self.rollout);
        // A new plan voids every earlier approval, even one of the same content.
        update::clear_approval(self.state_dir)?;
        let plan = Plan {
            id,
            created: now(),
            refresh,
            packages,
            debs,
            check,
            rollout: self.rollout.clone(),
            outcome: None,
        };
        update::write_plan(self.state_dir, &plan)?;
        Ok(plan)
    }

    pub fn approve(
        &self,
        plan_id: Option<&str>,
        by: Option<&str>,
        comment: Option<&str>,
    ) -> Result<(Plan, Approval), UpdateError> {
        let plan = update::read_plan(self.state_dir)?.ok_or(UpdateError::NoPlan)?;
        let given = plan_id.ok_or(UpdateError::NoPlanGiven)?;
        if given != plan.id {
            return Err(UpdateError::WrongPlan {
                given: given.to_owned(),
                current: plan.id,
            });
        }
        if let Some(c) = &plan.check {
            if c.exit_code != 0 {
                return Err(UpdateError::CheckFailed { code: c.exit_code });
            }
        }
        let by = by
            .map(str::to_owned)
            .or_else(|| std::env::var("SUDO_USER").ok())
            .filter(|b| !b.trim().is_empty())
            .ok_or(UpdateError::NoApprover)?;
        let approval = Approval {
            plan: plan.id.clone(),
            by,
            at: now(),
            comment: comment.unwrap_or_default().to_owned(),
            applied: None,
            failed: None,
        };
        update::write_approval(self.state_dir, &approval)?;
        Ok((plan, approval))
    }

    /// Whether the current plan may be applied now, as far as can be told without apt:
    /// a playbook and an inventory, an approved plan not yet applied, not older than
    /// `updates.max_plan_age`, whose playbook and inventory are unchanged. A refusal is
    /// recorded for `update status`.
    pub fn ready(&self) -> Result<Ready<'a>, UpdateError> {
        self.ready_inner().map_err(|e| self.refused(e))
    }

    fn ready_inner(&self) -> Result<Ready<'a>, UpdateError> {
        let playbook = self.playbook.ok_or(UpdateError::NoPlaybook)?;
        let inventory = self.inventory()?;
        let plan = update::read_plan(self.state_dir)?.ok_or(UpdateError::NoPlan)?;
        let approval = match update::read_approval(self.state_dir)? {
            Some(a) if a.plan == plan.id => a,
            _ => return Err(UpdateError::NotApproved(plan.id)),
        };
        if approval.applied.is_some() {
            return Err(UpdateError::Applied(plan.id));
        }
        if approval.failed.is_some() {
            return Err(UpdateError::Failed(plan.id));
        }
        let age = now() - plan.created;
        if age > self.max_age.as_secs_f64() {
            return Err(UpdateError::Stale {
                id: plan.id,
                age: human(age),
                max: human(self.max_age.as_secs_f64()),
            });
        }
        if let Some(c) = &plan.check {
            if c.playbook_digest != files_digest(playbook, inventory)?
                || c.playbook != playbook
                || c.inventory != inventory
            {
                return Err(UpdateError::Changed(plan.id));
            }
        }
        if plan.rollout != self.rollout {
            return Err(UpdateError::Changed(plan.id));
        }
        Ok(Ready {
            playbook,
            inventory,
            plan,
            approval,
        })
    }

    /// Records `e` as the reason the last apply did not run, and gives it back.
    fn refused(&self, e: UpdateError) -> UpdateError {
        let plan = update::read_plan(self.state_dir)
            .ok()
            .flatten()
            .map(|p| p.id)
            .unwrap_or_default();
        let refusal = update::Refusal {
            at: now(),
            plan,
            reason: e.to_string(),
        };
        if let Err(w) = update::write_refusal(self.state_dir, &refusal) {
            tracing::warn!("cannot record the refusal for `update status`: {w}");
        }
        e
    }

    /// Runs the approved plan's playbook as the job `update`; returns its exit code.
    pub fn apply(&self, timeout: Option<Duration>) -> Result<i32, UpdateError> {
        let Ready {
            playbook,
            inventory,
            plan,
            mut approval,
        } = self.ready()?;
        // The reviewed files, exactly, whatever the archive offers now: each copied into
        // a directory of this run's, root's alone, and checked as it is copied, so that
        // what the playbook installs is what was checked (a plan made meanwhile
        // replaces the plan's files, not these).
        if !plan.packages.is_empty() && plan.debs.is_empty() {
            return Err(self.refused(UpdateError::NoFiles(plan.id)));
        }
        let run_dir = update::dir(self.state_dir).join("debs.apply");
        let checked = self
            .checked_copies(&plan, &run_dir)
            .map_err(|e| self.refused(e))?;
        update::clear_refusal(self.state_dir)?;
        // Where each host's outcome is reported: root's alone, fresh for this run.
        let report_dir = update::dir(self.state_dir).join("rollout.report");
        if report_dir.exists() {
            std::fs::remove_dir_all(&report_dir)
                .map_err(|e| UpdateError::Files(format!("{}: {e}", report_dir.display())))?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&report_dir)
            .map_err(|e| UpdateError::Files(format!("{}: {e}", report_dir.display())))?;
        let command: Vec<OsString> = vec![
            "ansible-playbook".into(),
            "-i".into(),
            inventory.as_os_str().to_owned(),
            "-e".into(),
            playbook_vars(&plan.packages, &checked, &plan.rollout, Some(&report_dir)).into(),
            playbook.as_os_str().to_owned(),
        ];
        let code = runner::run(&JobRun {
            state_dir: self.state_dir,
            job: "update",
            timeout,
            kill_grace: self.kill_grace,
            command: &command,
            max_json: self.max_json,
        });
        let _ = std::fs::remove_dir_all(&run_dir);
        if code.is_ok() {
            let recap = job::read(self.state_dir, "update")
                .ok()
                .and_then(|s| s.last)
                .and_then(|l| l.recap);
            let outcome = update::RolloutOutcome {
                plan: plan.id.clone(),
                ended: now(),
                hosts: outcomes(&plan, &report_dir, recap.as_ref()),
            };
            update::write_rollout(self.state_dir, &outcome)?;
        }
        let _ = std::fs::remove_dir_all(&report_dir);
        let code = code?;
        if code == 0 {
            approval.applied = Some(now());
            // Applied: the files have done their work.
            let _ = std::fs::remove_dir_all(update::debs_dir(self.state_dir));
        } else {
            approval.failed = Some(now());
        }
        update::write_approval(self.state_dir, &approval)?;
        Ok(code)
    }

    /// Copies each of `plan`'s files into `run_dir` (made afresh, 0700), hashing as it
    /// copies; the copies, or the first file that is not the one reviewed.
    fn checked_copies(&self, plan: &Plan, run_dir: &Path) -> Result<Vec<update::Deb>, UpdateError> {
        let io = |e: std::io::Error| UpdateError::Fetch(format!("{}: {e}", run_dir.display()));
        if run_dir.exists() {
            std::fs::remove_dir_all(run_dir).map_err(io)?;
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(run_dir)
            .map_err(io)?;
        let mut checked = Vec::new();
        for d in &plan.debs {
            let copy = run_dir.join(d.file.file_name().unwrap_or_default());
            let problem = match copy_hashing(&d.file, &copy) {
                Ok(sum) if sum == d.sha256 => {
                    checked.push(update::Deb {
                        file: copy,
                        ..d.clone()
                    });
                    continue;
                }
                Ok(_) => "not the file that was reviewed (its SHA-256 differs)".to_owned(),
                Err(e) => format!("unreadable ({e})"),
            };
            let _ = std::fs::remove_dir_all(run_dir);
            return Err(UpdateError::Tampered {
                plan: plan.id.clone(),
                file: d.file.display().to_string(),
                problem,
            });
        }
        Ok(checked)
    }

    /// What `update status` shows: the plan with its check run, its approval, the last
    /// run (with the end of its output when it failed) and the last refusal.
    pub fn status(&self) -> Result<String, UpdateError> {
        let mut out = String::new();
        // A line of the report (writing into a String cannot fail).
        macro_rules! say {
            ($($arg:tt)*) => {{
                let _ = writeln!(out, $($arg)*);
            }};
        }
        match update::read_plan(self.state_dir)? {
            None => say!("no plan: run `shoehub-exporter update plan`"),
            Some(plan) => {
                say!("{}", describe(&plan));
                // A version published since the review (a security release, most
                // often) is not in this plan: it prompts a new one.
                for p in &plan.packages {
                    if let Some(c) = candidate(&p.package).filter(|c| later(c, &p.to)) {
                        say!(
                            "NEWER since the review: {} {c} (this plan has {}): run `shoehub-exporter update plan` to review it",
                            p.package, p.to
                        );
                    }
                }
                if let Some(c) = &plan.check {
                    say!("what the check run would change, per task and host:");
                    say!("{}", c.output.trim_end());
                }
                match update::read_approval(self.state_dir)? {
                    Some(a) if a.plan == plan.id => {
                        say!(
                            "approved by {} {} ago{}",
                            a.by,
                            human(now() - a.at),
                            if a.comment.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", a.comment)
                            }
                        );
                        if let Some(t) = a.applied {
                            say!("applied {} ago", human(now() - t));
                        }
                        if let Some(t) = a.failed {
                            say!(
                                "FAILED when applied {} ago: another apply needs a new approval",
                                human(now() - t)
                            );
                        }
                    }
                    _ => say!(
                        "not approved: shoehub-exporter update approve --plan {} --by NAME --comment TEXT",
                        plan.id
                    ),
                }
            }
        }
        let last = job::read(self.state_dir, "update")?;
        match &last.last {
            Some(l) => {
                say!(
                    "last update run: {} {} ago, took {}",
                    if l.exit_code == 0 {
                        "succeeded".to_owned()
                    } else if l.timed_out {
                        format!("FAILED (timed out, exit code {})", l.exit_code)
                    } else {
                        format!("FAILED (exit code {})", l.exit_code)
                    },
                    human(now() - l.ended),
                    human(l.ended - l.started)
                );
                if l.exit_code != 0 {
                    for line in l.tail.iter().rev().take(10).rev() {
                        say!("  | {line}");
                    }
                }
            }
            None => say!("no update has run yet"),
        }
        if let Some(r) = update::read_rollout(self.state_dir)? {
            say!("{}", describe_rollout(&r));
        }
        if let Some(r) = update::read_refusal(self.state_dir)? {
            if last.last.as_ref().is_none_or(|l| r.at > l.ended) {
                say!(
                    "last apply REFUSED {} ago, nothing was installed: {}",
                    human(now() - r.at),
                    r.reason
                );
            }
        }
        Ok(out)
    }
}

/// Most a host's report may hold.
const MAX_REPORT_BYTES: u64 = 64 * 1024;

/// Each host's outcome: its report (the playbook writes one for every host whose
/// packages it installed, and for a batch it stopped before), or, without one, what the
/// run's PLAY RECAP says of it (unreachable, or failed before the update), or not
/// reached. The hosts are the check run's, by name, then any other the run reported.
fn outcomes(
    plan: &Plan,
    report_dir: &Path,
    recap: Option<&job::Recap>,
) -> Vec<update::HostOutcome> {
    #[derive(serde::Deserialize)]
    struct Report {
        outcome: update::Outcome,
        #[serde(default)]
        step: String,
        #[serde(default)]
        reason: String,
    }
    let mut reports = std::collections::BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(report_dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(host) = name.strip_suffix(".json") else {
                continue;
            };
            let report = crate::regular::read(&e.path(), MAX_REPORT_BYTES)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Report>(&b).map_err(|e| e.to_string()));
            reports.insert(host.to_owned(), report);
        }
    }
    let mut hosts: Vec<String> = plan
        .check
        .as_ref()
        .map(|c| c.recap.keys().cloned().collect())
        .unwrap_or_default();
    for h in reports
        .keys()
        .chain(recap.into_iter().flat_map(|r| r.keys()))
    {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    let count = |host: &str, key: &str| {
        recap
            .and_then(|r| r.get(host))
            .and_then(|c| c.get(key))
            .copied()
            .unwrap_or(0)
    };
    hosts
        .into_iter()
        .map(|host| {
            let (outcome, step, reason) = match reports.remove(&host) {
                Some(Ok(r)) => (
                    r.outcome,
                    printable(&r.step, 32),
                    printable(&r.reason, 2000),
                ),
                Some(Err(e)) => (
                    update::Outcome::Failed,
                    "report".to_owned(),
                    format!("its report cannot be read: {e}"),
                ),
                None if count(&host, "unreachable") > 0 => (
                    update::Outcome::Failed,
                    "unreachable".to_owned(),
                    "Ansible could not reach it (see the run's output)".to_owned(),
                ),
                None if count(&host, "failed") > 0 => (
                    update::Outcome::Failed,
                    "setup".to_owned(),
                    "a task failed before its packages were installed, or its report could not be written (see the run's output)".to_owned(),
                ),
                // The playbook reports every host whose packages it installed.
                None => (update::Outcome::NotReached, String::new(), String::new()),
            };
            update::HostOutcome {
                host,
                outcome,
                step,
                reason,
            }
        })
        .collect()
}

/// `text` as one line for a terminal: its control characters (a host's output may hold
/// escape sequences) and runs of white space made one space, cut at `max` characters.
fn printable(text: &str, max: usize) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = spaced.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = out.char_indices().nth(max) {
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// A rollout's outcome, host by host, in the order of their names.
pub fn describe_rollout(r: &update::RolloutOutcome) -> String {
    let failed = r
        .hosts
        .iter()
        .filter(|h| h.outcome == update::Outcome::Failed)
        .count();
    let mut out = format!(
        "rollout of plan {} ended {} ago: {}",
        r.plan,
        human(now() - r.ended),
        if failed > 0 {
            "STOPPED at a failed host"
        } else if r
            .hosts
            .iter()
            .all(|h| h.outcome == update::Outcome::Validated)
        {
            "every host updated and validated"
        } else {
            "not every host was validated"
        }
    );
    for h in &r.hosts {
        let _ = match h.outcome {
            update::Outcome::Failed => write!(
                out,
                "\n  {}: FAILED at {}: {}",
                printable(&h.host, 256),
                h.step,
                h.reason
            ),
            update::Outcome::Validated => {
                write!(
                    out,
                    "\n  {}: updated and validated",
                    printable(&h.host, 256)
                )
            }
            update::Outcome::Updated => {
                write!(
                    out,
                    "\n  {}: updated, not validated",
                    printable(&h.host, 256)
                )
            }
            update::Outcome::NotReached => {
                write!(
                    out,
                    "\n  {}: not reached (keeps its old versions)",
                    printable(&h.host, 256)
                )
            }
        };
    }
    out
}

/// The plan's summary, as `update plan` prints it: the outcome of the check run, and how
/// to review and approve it.
pub fn plan_report(plan: &Plan) -> Result<String, UpdateError> {
    if let Some(c) = &plan.check {
        if c.exit_code != 0 {
            return Err(UpdateError::CheckFailed { code: c.exit_code });
        }
    }
    Ok(format!(
        "review it (`shoehub-exporter update status` shows the diff), then approve it with: shoehub-exporter update approve --plan {} --by NAME --comment TEXT",
        plan.id
    ))
}

/// One plan's header: id, age, the apt refresh, every package, the check run's summary.
pub fn describe(plan: &Plan) -> String {
    let security = plan.packages.iter().filter(|p| p.security).count();
    let mut out = format!(
        "plan {} made {} ago: {} package(s) to upgrade, {} from security archives",
        plan.id,
        human(now() - plan.created),
        plan.packages.len(),
        security
    );
    if !plan.refresh.is_empty() {
        out.push_str(&format!("\n{}", plan.refresh));
    }
    for p in &plan.packages {
        out.push_str(&format!(
            "\n  {} {} -> {} ({}){}",
            p.package,
            if p.from.is_empty() { "(new)" } else { &p.from },
            p.to,
            p.origin,
            if p.security { " SECURITY" } else { "" }
        ));
    }
    if let Some(c) = &plan.check {
        out.push_str(&format!(
            "\nplaybook {} on {} in check mode: exit code {}",
            c.playbook.display(),
            c.inventory.display(),
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

/// Files a playbook's tree may hold, and bytes in all: past them the tree is not one
/// playbook's (keep it in a directory of its own).
const MAX_TREE_FILES: usize = 10_000;
const MAX_TREE_BYTES: u64 = 64 << 20;

/// The directories beside a playbook that Ansible reads it from: roles, vars, the files
/// and templates its tasks name, tasks and plays it includes, its own modules and
/// plugins. (The rest of the directory is not the playbook's: the packaged playbook
/// sits in /etc/shoehub-exporter beside the exporter's config and password files.)
const PLAYBOOK_DIRS: &[&str] = &[
    "roles",
    "group_vars",
    "host_vars",
    "vars",
    "tasks",
    "handlers",
    "templates",
    "files",
    "library",
    "module_utils",
    "filter_plugins",
    "lookup_plugins",
    "collections",
];

/// A fingerprint of every file the playbook reads: the playbook, the trees Ansible reads
/// beside it ([`PLAYBOOK_DIRS`]; `.git` left out), and the inventory with the
/// `group_vars` and `host_vars` beside it. Each file counts with its path; a link with
/// what it names.
fn files_digest(playbook: &Path, inventory: &Path) -> Result<String, UpdateError> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut bytes = 0u64;
    let mut add = |path: &Path, files: &mut Vec<(PathBuf, Vec<u8>)>| -> Result<(), UpdateError> {
        let too_many = || {
            UpdateError::Files(format!(
                "the playbook {} and what it reads hold more than {MAX_TREE_FILES} files or {} MiB",
                playbook.display(),
                MAX_TREE_BYTES >> 20
            ))
        };
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| UpdateError::Files(format!("{}: {e}", path.display())))?;
        let content = if meta.file_type().is_symlink() {
            let to = std::fs::read_link(path)
                .map_err(|e| UpdateError::Files(format!("{}: {e}", path.display())))?;
            format!("-> {}", to.display()).into_bytes()
        } else {
            crate::regular::read(path, MAX_TREE_BYTES.saturating_sub(bytes))
                .map_err(|e| UpdateError::Files(format!("{}: {e}", path.display())))?
        };
        bytes += content.len() as u64;
        if files.len() >= MAX_TREE_FILES || bytes > MAX_TREE_BYTES {
            return Err(too_many());
        }
        files.push((path.to_owned(), content));
        Ok(())
    };
    let book_dir = playbook.parent().unwrap_or(Path::new("."));
    let inventory_dir = inventory.parent().unwrap_or(Path::new("."));
    let mut dirs: Vec<PathBuf> = PLAYBOOK_DIRS
        .iter()
        .map(|d| book_dir.join(d))
        .chain(
            ["group_vars", "host_vars"]
                .iter()
                .map(|d| inventory_dir.join(d)),
        )
        .filter(|d| d.is_dir())
        .collect();
    add(playbook, &mut files)?;
    add(inventory, &mut files)?;
    let mut seen = std::collections::BTreeSet::new();
    while let Some(dir) = dirs.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| UpdateError::Files(format!("{}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| UpdateError::Files(format!("{}: {e}", dir.display())))?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .map_err(|e| UpdateError::Files(format!("{}: {e}", path.display())))?;
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    dirs.push(path);
                }
            } else if kind.is_file() || kind.is_symlink() {
                add(&path, &mut files)?;
            }
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.0 == b.0);
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(files.len() * 2);
    for (path, content) in files {
        parts.push(path.as_os_str().as_encoded_bytes().to_vec());
        parts.push(content);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(update::digest(&refs))
}

/// How much of the check run's output a plan keeps (its end, where the diff and the
/// recap are, when it is longer).
const MAX_CHECK_OUTPUT: usize = 512 * 1024;

/// `ansible-playbook -i INVENTORY --check --diff -e PACKAGES PLAYBOOK`: what the
/// playbook would change with exactly the planned packages.
fn check_run(
    playbook: &Path,
    inventory: &Path,
    packages: &[apt::Upgrade],
    debs: &[update::Deb],
    rollout: &update::Rollout,
) -> Result<CheckRun, UpdateError> {
    let digest = files_digest(playbook, inventory)?;
    let out = Command::new("ansible-playbook")
        .arg("-i")
        .arg(inventory)
        .args(["--check", "--diff", "-e"])
        .arg(playbook_vars(packages, debs, rollout, None))
        .arg(playbook)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_FORCE_COLOR", "0")
        .output()
        .map_err(|e| UpdateError::Check(format!("ansible-playbook: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut recap = job::Recap::new();
    let mut in_recap = false;
    for line in stdout.lines() {
        if line.starts_with("PLAY RECAP") {
            in_recap = true;
        } else if in_recap {
            if let Some((host, counts)) = job::parse_recap_line(line) {
                recap.insert(host, counts);
            }
        }
    }
    let no_hosts = stdout.contains("no hosts matched") || stderr.contains("no hosts matched");
    if no_hosts || recap.is_empty() {
        eprint!("{stdout}{stderr}");
        if no_hosts || out.status.success() {
            return Err(UpdateError::NoHosts {
                inventory: inventory.display().to_string(),
            });
        }
        return Err(UpdateError::Check(format!(
            "ansible-playbook exited with code {} before it ran a task (its output is above)",
            out.status.code().unwrap_or(1)
        )));
    }
    let mut output = format!("{stdout}{stderr}");
    if output.len() > MAX_CHECK_OUTPUT {
        let mut cut = output.len() - MAX_CHECK_OUTPUT;
        while !output.is_char_boundary(cut) {
            cut += 1;
        }
        output = format!("[… the first {cut} bytes left out]\n{}", &output[cut..]);
    }
    Ok(CheckRun {
        playbook: PathBuf::from(playbook),
        inventory: PathBuf::from(inventory),
        exit_code: out.status.code().unwrap_or(1),
        recap,
        playbook_digest: digest,
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_on(hosts: &[&str]) -> Plan {
        let recap = hosts
            .iter()
            .map(|h| ((*h).to_owned(), std::collections::BTreeMap::new()))
            .collect();
        Plan {
            id: "p".into(),
            created: 0.0,
            refresh: String::new(),
            packages: vec![],
            debs: vec![],
            check: Some(CheckRun {
                playbook: "update.yml".into(),
                inventory: "inventory.ini".into(),
                exit_code: 0,
                recap,
                playbook_digest: String::new(),
                output: String::new(),
            }),
            rollout: update::Rollout::default(),
            outcome: None,
        }
    }

    #[test]
    fn each_host_has_an_outcome_from_its_report_or_the_recap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web2.json"), r#"{"outcome": "validated"}"#).unwrap();
        std::fs::write(
            dir.path().join("web3.json"),
            r#"{"outcome": "failed", "step": "check", "reason": "probe shop: 500\n"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("web5.json"), "not json").unwrap();
        let counts = |pairs: &[(&str, u64)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let recap: job::Recap = [
            ("web2".to_owned(), counts(&[("ok", 9)])),
            ("web3".to_owned(), counts(&[("ok", 5), ("failed", 1)])),
            ("web4".to_owned(), counts(&[("unreachable", 1)])),
            ("web6".to_owned(), counts(&[("ok", 1)])),
            ("web7".to_owned(), counts(&[("ok", 1), ("failed", 1)])),
        ]
        .into_iter()
        .collect();
        let plan = plan_on(&["web1", "web2", "web3", "web4", "web6", "web7"]);
        let got: Vec<(String, update::Outcome, String)> = outcomes(&plan, dir.path(), Some(&recap))
            .into_iter()
            .map(|h| (h.host, h.outcome, h.step))
            .collect();
        use update::Outcome::*;
        let want = [
            ("web1", NotReached, ""),
            ("web2", Validated, ""),
            ("web3", Failed, "check"),
            ("web4", Failed, "unreachable"),
            ("web6", NotReached, ""),
            ("web7", Failed, "setup"),
            ("web5", Failed, "report"),
        ];
        assert_eq!(
            got,
            want.iter()
                .map(|(h, o, s)| ((*h).to_owned(), *o, (*s).to_owned()))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_hosts_words_reach_the_terminal_as_one_plain_line() {
        assert_eq!(
            printable("probe shop:\n\x1b[31m500\x1b[0m\t / done\r\n", 100),
            "probe shop: [31m500 [0m / done"
        );
        assert_eq!(printable("ééééé", 3), "ééé…");
    }

    #[test]
    fn the_playbook_gets_the_plans_rollout() {
        let r = update::Rollout {
            batch: "25%".into(),
            soak_seconds: 60,
            prometheus_url: "http://prometheus:9090".into(),
        };
        let v: serde_json::Value =
            serde_json::from_str(&playbook_vars(&[], &[], &r, Some(Path::new("/r")))).unwrap();
        assert_eq!(v["shoehub_batch"], "25%");
        assert_eq!(v["shoehub_soak_seconds"], 60);
        assert_eq!(v["shoehub_prometheus_url"], "http://prometheus:9090");
        assert_eq!(v["shoehub_report_dir"], "/r");
        let check: serde_json::Value =
            serde_json::from_str(&playbook_vars(&[], &[], &r, None)).unwrap();
        assert_eq!(check["shoehub_report_dir"], "");
    }
}
