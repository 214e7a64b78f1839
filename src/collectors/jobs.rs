//! The jobs collector: every job state file in `jobs.state_dir` as metrics.
//!
//! A state file that cannot be read or parsed costs only its own job's series and is
//! reported (`collector_success 0`, logged once). A run recorded as under way whose
//! runner is gone (killed) is not reported as running.

use std::path::PathBuf;

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::state::job::{self, JobState};
use crate::state::update;

/// The job's label: `job_name`, as kube-state-metrics names the same thing. Never `job`
/// (or `instance`): Prometheus owns those, and a scraped `job` label would be stored as
/// `exported_job`, where no rule or dashboard looks.
pub const JOB_NAME: &str = "job_name";

static LAST_START: Family = Family::gauge(
    "shoehub_job_last_start_timestamp_seconds",
    "When the job's latest run started (one under way included), Unix time; 0 if it never ran.",
)
.unit("seconds");
static LAST_COMPLETION: Family = Family::gauge(
    "shoehub_job_last_completion_timestamp_seconds",
    "When the job's last finished run ended, Unix time; 0 if none has.",
)
.unit("seconds");
static LAST_SUCCESS: Family = Family::gauge(
    "shoehub_job_last_success_timestamp_seconds",
    "When the job last ended with exit code 0, Unix time; 0 if it never has.",
)
.unit("seconds");
static LAST_DURATION: Family = Family::gauge(
    "shoehub_job_last_duration_seconds",
    "How long the job's last finished run took.",
)
.unit("seconds");
static LAST_EXIT: Family = Family::gauge(
    "shoehub_job_last_exit_code",
    "Exit code of the job's last finished run (128 + N when signal N ended it).",
);
static RUNNING: Family = Family::gauge(
    "shoehub_job_running",
    "Whether a run of the job is under way (1) with its runner alive.",
);
static RUNS: Family = Family::counter("shoehub_job_runs_total", "Finished runs of the job.");
static FAILURES: Family = Family::counter(
    "shoehub_job_failures_total",
    "Finished runs of the job that did not exit with 0.",
);
static ANSIBLE_TASKS: Family = Family::gauge(
    "shoehub_ansible_last_run_tasks",
    "Tasks of the job's last Ansible run per host and status, from its PLAY RECAP.",
);

/// A job's name and its state, or why it cannot be read.
type Entry = (String, Result<JobState, String>);

static PENDING_APPROVAL: Family = Family::gauge(
    "shoehub_update_pending_approval",
    "1 if an update plan is waiting for approval (made, not approved), else 0.",
);
static PLAN_TIME: Family = Family::gauge(
    "shoehub_update_plan_timestamp_seconds",
    "When the current update plan was made, Unix time; 0 if there is none.",
)
.unit("seconds");
static PLAN_PACKAGES: Family = Family::gauge(
    "shoehub_update_plan_packages",
    "Packages the current update plan would upgrade.",
);

static ROLLOUT_HOST: Family = Family::gauge(
    "shoehub_update_rollout_host",
    "The last applied update's outcome per host: 1 for its outcome (validated, updated, failed, not_reached), 0 for the others.",
);
static ROLLOUT_FAILED: Family = Family::gauge(
    "shoehub_update_rollout_failed",
    "1 for each host where the last applied update failed, with the step that failed (setup, install, services, check, soak, unreachable, report): the rollout stopped there.",
);
static ROLLOUT_TIME: Family = Family::gauge(
    "shoehub_update_rollout_timestamp_seconds",
    "When the last applied update ended, Unix time; 0 if none has.",
)
.unit("seconds");

pub struct Jobs {
    dir: PathBuf,
}

impl Jobs {
    pub fn new(dir: PathBuf) -> Jobs {
        Jobs { dir }
    }

    /// Every state file: (job, state or why not).
    fn read_all(&self) -> Result<Vec<Entry>, CollectError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            // No job has run yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(CollectError::read(&self.dir, e)),
        };
        let mut out: Vec<Entry> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let job = name.strip_suffix(".json")?;
                if !job::valid_name(job) {
                    return None;
                }
                let path = e.path();
                let state = crate::regular::read(&path, job::MAX_STATE_BYTES)
                    .map_err(|err| format!("{}: {err}", path.display()))
                    .and_then(|bytes| {
                        job::parse(&path, &bytes).map_err(|err| crate::error_chain(&err))
                    })
                    .and_then(|s| {
                        if s.job == job {
                            Ok(s)
                        } else {
                            Err(format!("{}: records job {:?}", path.display(), s.job))
                        }
                    });
                Some((job.to_owned(), state))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl Jobs {
    /// The update protocol's state: whether a plan waits for approval, and its age.
    fn update_plan(&self, w: &mut MetricWriter<'_>) -> Result<(), String> {
        let plan = update::read_plan(&self.dir).map_err(|e| crate::error_chain(&e))?;
        let approval = update::read_approval(&self.dir).map_err(|e| crate::error_chain(&e))?;
        let waiting = match (&plan, &approval) {
            (Some(p), Some(a)) => a.plan != p.id,
            (Some(_), None) => true,
            (None, _) => false,
        };
        w.sample_u64(&PENDING_APPROVAL, &[], u64::from(waiting));
        w.sample(&PLAN_TIME, &[], plan.as_ref().map_or(0.0, |p| p.created));
        w.sample_u64(
            &PLAN_PACKAGES,
            &[],
            plan.as_ref().map_or(0, |p| p.packages.len() as u64),
        );
        let rollout = update::read_rollout(&self.dir).map_err(|e| crate::error_chain(&e))?;
        w.sample(
            &ROLLOUT_TIME,
            &[],
            rollout.as_ref().map_or(0.0, |r| r.ended),
        );
        for h in rollout.iter().flat_map(|r| &r.hosts) {
            for o in update::Outcome::ALL {
                w.sample_u64(
                    &ROLLOUT_HOST,
                    &[("host", &h.host), ("outcome", o.name())],
                    u64::from(h.outcome == o),
                );
            }
        }
        for h in rollout.iter().flat_map(|r| &r.hosts) {
            if h.outcome == update::Outcome::Failed {
                w.sample_u64(&ROLLOUT_FAILED, &[("host", &h.host), ("step", &h.step)], 1);
            }
        }
        Ok(())
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &LAST_START,
    &LAST_COMPLETION,
    &LAST_SUCCESS,
    &LAST_DURATION,
    &LAST_EXIT,
    &RUNNING,
    &RUNS,
    &FAILURES,
    &ANSIBLE_TASKS,
    &PENDING_APPROVAL,
    &PLAN_TIME,
    &PLAN_PACKAGES,
    &ROLLOUT_HOST,
    &ROLLOUT_FAILED,
    &ROLLOUT_TIME,
]);

/// Reads `jobs:` (shared with the job runner, which writes what this reads).
pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = s.jobs;
    Ok(c.enabled.then(|| {
        let run = super::blocking(Jobs::new(c.state_dir.clone()));
        AnyCollector::new("jobs", c.timeout.get(), SERVED, run)
    }))
}

impl Collector for Jobs {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let all = self.read_all()?;
        let good: Vec<(&str, &JobState)> = all
            .iter()
            .filter_map(|(j, s)| s.as_ref().ok().map(|s| (j.as_str(), s)))
            .collect();
        let running = |s: &JobState| s.running.as_ref().is_some_and(job::is_alive);
        for (j, s) in &good {
            let start = match (&s.running, &s.last) {
                (Some(r), _) if running(s) => r.started,
                (_, Some(l)) => l.started,
                _ => 0.0,
            };
            w.sample(&LAST_START, &[(JOB_NAME, j)], start);
        }
        for (j, s) in &good {
            w.sample(
                &LAST_COMPLETION,
                &[(JOB_NAME, j)],
                s.last.as_ref().map_or(0.0, |l| l.ended),
            );
        }
        for (j, s) in &good {
            w.sample(
                &LAST_SUCCESS,
                &[(JOB_NAME, j)],
                s.last_success.unwrap_or(0.0),
            );
        }
        for (j, s) in &good {
            let d = s
                .last
                .as_ref()
                .map_or(0.0, |l| (l.ended - l.started).max(0.0));
            w.sample(&LAST_DURATION, &[(JOB_NAME, j)], d);
        }
        for (j, s) in &good {
            let code = s.last.as_ref().map_or(0.0, |l| f64::from(l.exit_code));
            w.sample(&LAST_EXIT, &[(JOB_NAME, j)], code);
        }
        for (j, s) in &good {
            w.sample_u64(&RUNNING, &[(JOB_NAME, j)], u64::from(running(s)));
        }
        for (j, s) in &good {
            w.sample_u64(&RUNS, &[(JOB_NAME, j)], s.runs);
        }
        for (j, s) in &good {
            w.sample_u64(&FAILURES, &[(JOB_NAME, j)], s.failures);
        }
        for (j, s) in &good {
            let Some(recap) = s.last.as_ref().and_then(|l| l.recap.as_ref()) else {
                continue;
            };
            for (host, counts) in recap {
                for status in job::RECAP_STATUSES {
                    let n = counts.get(status).copied().unwrap_or(0);
                    w.sample_u64(
                        &ANSIBLE_TASKS,
                        &[("host", host), (JOB_NAME, j), ("status", status)],
                        n,
                    );
                }
            }
        }
        let plan_error = self.update_plan(w).err();
        let mut bad: Vec<&String> = all.iter().filter_map(|(_, s)| s.as_ref().err()).collect();
        if let Some(e) = &plan_error {
            bad.push(e);
        }
        match bad.first() {
            None => Ok(()),
            Some(first) => Err(CollectError::Partial {
                what: "job state files",
                failed: bad.len(),
                total: all.len(),
                first: (*first).clone(),
            }),
        }
    }
}
