//! `update plan|approve|apply|status`: the weekly update with its review step.

use std::path::Path;

use super::{config_path, exit_code, init_logging, load_config, out, Failure, Outcome};
use crate::cli::UpdateCommand;
use crate::jobs::update::Update;

pub fn run(config: Option<&Path>, cmd: UpdateCommand) -> Outcome {
    crate::writes::job_umask();
    init_logging(tracing::Level::WARN);
    let config_file = config_path(config);
    let config = load_config(config)?;
    let u = Update {
        state_dir: &config.jobs.state_dir,
        playbook: config.updates.playbook.as_deref(),
        inventory: config.updates.inventory.as_deref(),
        max_age: config.updates.max_plan_age.get(),
        kill_grace: config.jobs.kill_grace.get(),
        max_json: usize::try_from(config.jobs.max_json_bytes.get()).unwrap_or(usize::MAX),
        rollout: config.updates.rollout(),
    };
    let fail = |e| Failure::new(1, e);
    match cmd {
        UpdateCommand::Plan => {
            let plan = u.plan().map_err(fail)?;
            out::println(crate::jobs::update::describe(&plan))?;
            out::println(crate::jobs::update::plan_report(&plan).map_err(fail)?)?;
            Ok(0)
        }
        UpdateCommand::Approve(a) => {
            let (plan, approval) = u
                .approve(a.plan.as_deref(), a.by.as_deref(), a.comment.as_deref())
                .map_err(fail)?;
            out::println(crate::jobs::update::describe(&plan))?;
            out::println(format_args!(
                "plan {} approved by {}",
                approval.plan, approval.by
            ))?;
            Ok(0)
        }
        UpdateCommand::Apply(a) => {
            if detaching(&a) {
                // Refuse here, on the operator's terminal, what the unit would refuse.
                u.ready().map_err(fail)?;
                detach(config_file.as_deref(), &a)
            } else {
                u.apply(a.timeout.map(|t| t.get()))
                    .map(exit_code)
                    .map_err(fail)
            }
        }
        UpdateCommand::Status => {
            out::print(u.status().map_err(fail)?)?;
            Ok(0)
        }
    }
}

/// The transient unit `update apply` runs in where systemd runs.
pub const APPLY_UNIT: &str = "shoehub-update-apply.service";

/// Whether `update apply` goes on as the transient unit [`APPLY_UNIT`]: where systemd
/// runs, unless `--foreground` or already inside a unit, so that a lost terminal cannot
/// cut dpkg in half.
fn detaching(a: &crate::cli::ApplyArgs) -> bool {
    if a.foreground || std::env::var_os("INVOCATION_ID").is_some() {
        return false;
    }
    if !Path::new("/run/systemd/system").is_dir() {
        eprintln!(
            "systemd is not running here: the update runs in the foreground, and closing this terminal stops it (use tmux or screen)"
        );
        return false;
    }
    true
}

/// Runs `update apply --foreground` as the transient unit [`APPLY_UNIT`] and waits for
/// it: the exit code is the unit's (its main process's), so a refusal or a failed
/// playbook inside the unit fails this command too. Closing the terminal ends only the
/// waiting; the unit goes on.
fn detach(config: Option<&Path>, a: &crate::cli::ApplyArgs) -> Outcome {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "{}error: cannot find this program's path: {e}",
                crate::logging::error_prefix()
            );
            return Ok(1);
        }
    };
    let mut cmd = std::process::Command::new("systemd-run");
    cmd.args([
        "--unit",
        APPLY_UNIT,
        "--description=Weekly update of the Shoe Store Hub host (approved plan)",
        "--collect",
        "--wait",
        "--quiet",
        "--property=KillMode=mixed",
    ])
    .arg(exe)
    .args(["update", "apply", "--foreground"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    if let Some(t) = &a.timeout {
        cmd.arg("--timeout").arg(format!("{}s", t.get().as_secs()));
    }
    eprintln!(
        "the update runs as {APPLY_UNIT}: closing this terminal does not stop it. Follow it with `journalctl -fu {APPLY_UNIT}`; waiting for it to end"
    );
    match cmd.status() {
        Ok(s) if s.success() => {
            out::println("the update succeeded: `shoehub-exporter update status` shows the run")?;
            Ok(0)
        }
        Ok(s) => {
            let code = s
                .code()
                .and_then(|c| u8::try_from(c).ok())
                .filter(|c| *c != 0)
                .unwrap_or(1);
            eprintln!(
                "{}error: {APPLY_UNIT} failed ({s}): `shoehub-exporter update status` and `journalctl -u {APPLY_UNIT}` say why",
                crate::logging::error_prefix()
            );
            Ok(code)
        }
        Err(e) => {
            eprintln!("{}error: systemd-run: {e}", crate::logging::error_prefix());
            Ok(1)
        }
    }
}
