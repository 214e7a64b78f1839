//! `update plan|approve|apply|status`: the weekly update with its review step.

use std::path::Path;

use super::{exit_code, init_logging, load_config, Failure, Outcome};
use crate::cli::UpdateCommand;
use crate::jobs::update::Update;

pub fn run(config: Option<&Path>, cmd: UpdateCommand) -> Outcome {
    init_logging(tracing::Level::WARN);
    let config = load_config(config)?;
    let u = Update {
        state_dir: &config.jobs.state_dir,
        playbook: config.updates.playbook.as_deref(),
        max_age: config.updates.max_plan_age.get(),
        kill_grace: config.jobs.kill_grace.get(),
        max_json: usize::try_from(config.jobs.max_json_bytes.get()).unwrap_or(usize::MAX),
    };
    let result = match cmd {
        UpdateCommand::Plan => u.plan().map(|_| 0),
        UpdateCommand::Approve(a) => u.approve(a.plan.as_deref(), a.by.as_deref()).map(|_| 0),
        UpdateCommand::Apply(a) => u.apply(a.timeout.map(|t| t.get())),
        UpdateCommand::Status => u.status().map(|_| 0),
    };
    result.map(exit_code).map_err(|e| Failure::new(1, e))
}
