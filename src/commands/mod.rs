//! The subcommands, one file each: each turns its arguments and the configuration into
//! a run and an exit code. `main` parses, calls [`run`] and prints the error chain once.

use std::error::Error;
use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command, JobCommand};
use crate::config::{Config, DEFAULT_PATH};

mod backup;
mod check;
mod check_config;
mod generate;
mod job;
pub mod out;
mod serve;
mod update;

/// Exit code for a configuration that cannot be used (as sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// A command that failed: the error to print and the exit code to exit with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: Box<dyn Error>,
}

impl Failure {
    pub fn new(code: u8, error: impl Error + 'static) -> Failure {
        Failure {
            code,
            error: Box::new(error),
        }
    }

    /// A configuration that cannot be used.
    pub fn config(error: impl Error + 'static) -> Failure {
        Failure::new(EXIT_CONFIG, error)
    }
}

/// The exit code of a command that ran, or why it did not.
pub type Outcome = Result<u8, Failure>;

/// A serve flag given before another subcommand.
#[derive(Debug, thiserror::Error)]
#[error("{0} is a flag of serve: give it with no subcommand or after `serve`")]
struct MisplacedFlag(&'static str);

/// Runs the command the arguments name (`serve` when they name none).
pub fn run(cli: Cli) -> Outcome {
    let config = cli.config.as_deref();
    if let (Some(_), Some(flag)) = (&cli.command, cli.serve.given()) {
        return Err(Failure::new(2, MisplacedFlag(flag)));
    }
    match cli.command {
        None => serve::run(config, cli.serve),
        Some(Command::Serve(args)) => serve::run(config, args),
        Some(Command::CheckConfig(args)) => check_config::run(config, &args),
        Some(Command::Job(JobCommand::Run(args))) => job::run(config, &args),
        Some(Command::Update(cmd)) => update::run(config, cmd),
        Some(Command::Backup(cmd)) => backup::run(config, &cmd),
        Some(Command::Generate(cmd)) => generate::run(config, &cmd),
        Some(Command::Check(args)) => check::run(config, &args),
    }
}

/// The file a command reads: `--config`, else the installed default when it exists.
pub fn config_path(flag: Option<&Path>) -> Option<PathBuf> {
    match flag {
        Some(p) => Some(p.to_owned()),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|p| p.exists()),
    }
}

/// The configuration a command runs with (see [`config_path`]; built-in defaults when
/// there is no file).
pub fn load_config(flag: Option<&Path>) -> Result<Config, Failure> {
    Config::load(config_path(flag).as_deref()).map_err(Failure::config)
}

/// Logs at `level` and above to stderr, coloured on a terminal.
pub fn init_logging(level: tracing::Level) {
    crate::logging::init(level);
}

/// An exit code from a command's own (0–255, else 1).
fn exit_code(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn serve_flags_before_another_subcommand_are_refused() {
        let cli = Cli::try_parse_from([
            "x",
            "--web.listen-address",
            "127.0.0.1:1",
            "generate",
            "dashboard",
        ])
        .unwrap();
        let f = run(cli).unwrap_err();
        assert_eq!(f.code, 2);
        assert!(f.error.to_string().contains("--web.listen-address"));
    }

    #[test]
    fn the_flag_wins_over_the_installed_file() {
        assert_eq!(
            config_path(Some(Path::new("/x.yml"))),
            Some(PathBuf::from("/x.yml"))
        );
        assert_eq!(
            config_path(None).is_some(),
            Path::new(DEFAULT_PATH).exists()
        );
    }
}
