//! Command-line dispatch: parse, run, print the error chain once, return an exit code.

use std::process::ExitCode;

use clap::Parser;
use shoehub_exporter::cli::Cli;
use shoehub_exporter::commands;

fn main() -> ExitCode {
    match commands::run(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        // A reader that stopped early (`| head`) is no error to report.
        Err(failure) if commands::out::is_closed_pipe(&failure) => ExitCode::from(failure.code),
        Err(failure) => {
            eprintln!(
                "{}error: {}",
                shoehub_exporter::logging::error_prefix(),
                shoehub_exporter::error_chain(failure.error.as_ref())
            );
            ExitCode::from(failure.code)
        }
    }
}
