//! `update plan|approve|apply|status`: the weekly update with its review step.

use std::path::Path;

use super::{config_path, exit_code, init_logging, load_config, Failure, Outcome};
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
    };
    let result = match cmd {
        UpdateCommand::Plan => u.plan().map(|_| 0),
        UpdateCommand::Approve(a) => u
            .approve(a.plan.as_deref(), a.by.as_deref(), a.comment.as_deref())
            .map(|_| 0),
        UpdateCommand::Apply(a) => match detach(config_file.as_deref(), &a) {
            Some(code) => Ok(i32::from(code)),
            None => u.apply(a.timeout.map(|t| t.get())),
        },
        UpdateCommand::Status => u.status().map(|_| 0),
    };
    result.map(exit_code).map_err(|e| Failure::new(1, e))
}

/// The transient unit `update apply` runs in where systemd runs.
pub const APPLY_UNIT: &str = "shoehub-update-apply.service";

/// Where systemd runs (and this is not already its unit), `update apply` goes on as the
/// transient unit [`APPLY_UNIT`], so that a lost terminal cannot cut dpkg in half: the
/// exit code of `systemd-run`. `None`: apply here, in the foreground.
fn detach(config: Option<&Path>, a: &crate::cli::ApplyArgs) -> Option<u8> {
    let systemd = Path::new("/run/systemd/system").is_dir();
    if a.foreground || std::env::var_os("INVOCATION_ID").is_some() {
        return None;
    }
    if !systemd {
        eprintln!(
            "systemd is not running here: the update runs in the foreground, and closing this terminal stops it (use tmux or screen)"
        );
        return None;
    }
    let exe = std::env::current_exe().ok()?;
    let mut cmd = std::process::Command::new("systemd-run");
    cmd.args([
        "--unit",
        APPLY_UNIT,
        "--description=Weekly update of the Shoe Store Hub host (approved plan)",
        "--collect",
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
    match cmd.status() {
        Ok(s) if s.success() => {
            println!(
                "the update runs as {APPLY_UNIT}: closing this terminal does not stop it. Follow it with `journalctl -fu {APPLY_UNIT}` or `shoehub-exporter update status`"
            );
            Some(0)
        }
        Ok(s) => {
            eprintln!("error: systemd-run could not start {APPLY_UNIT} ({s})");
            Some(1)
        }
        Err(e) => {
            eprintln!("error: systemd-run: {e}");
            Some(1)
        }
    }
}
