//! `job run NAME -- COMMAND…`: a command run as a job that reports itself.

use std::path::Path;

use super::{exit_code, init_logging, load_config, Failure, Outcome};
use crate::cli::JobRunArgs;
use crate::jobs::runner::{self, JobRun};

pub fn run(config: Option<&Path>, args: &JobRunArgs) -> Outcome {
    crate::writes::job_umask();
    init_logging(tracing::Level::WARN);
    let config = load_config(config)?;
    let run = JobRun {
        state_dir: &config.jobs.state_dir,
        job: &args.name,
        timeout: args.timeout.map(|t| t.get()),
        kill_grace: config.jobs.kill_grace.get(),
        command: &args.command,
        max_json: usize::try_from(config.jobs.max_json_bytes.get()).unwrap_or(usize::MAX),
    };
    match runner::run(&run) {
        Ok(code) => Ok(exit_code(code)),
        Err(e) => Err(Failure::new(exit_code(e.exit_code()), e)),
    }
}
