//! Standard output, which every command prints through. It is fallible: a reader that
//! stops early (`| head`) ends the command quietly with status 0, as it ends ripgrep,
//! instead of a panic (`println!`) that `panic = "abort"` turns into SIGABRT. SIGPIPE
//! stays ignored, so a job that writes into its children's pipes meets EPIPE as an
//! error it can record.

use std::fmt::Display;
use std::io::{self, Write};

use super::Failure;

/// Standard output's reader went away before the command had printed everything.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed by its reader")]
pub struct ClosedPipe;

/// Prints `text` as it is.
pub fn print(text: impl Display) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    write!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(failure)
}

/// Prints `text` and a newline.
pub fn println(text: impl Display) -> Result<(), Failure> {
    print(format_args!("{text}\n"))
}

/// Standard output as a writer, for a job that tells its plan before it acts.
pub fn writer() -> impl Write {
    io::stdout()
}

/// The failure a write to standard output ended in: a closed pipe is status 0 and
/// says nothing (see [`is_closed_pipe`]); anything else is status 1.
pub fn failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Failure::new(0, ClosedPipe)
    } else {
        Failure::new(
            1,
            io::Error::new(e.kind(), format!("writing to standard output: {e}")),
        )
    }
}

/// Whether `failure` is a reader that went away, which `main` does not report.
pub fn is_closed_pipe(failure: &Failure) -> bool {
    failure.error.is::<ClosedPipe>()
}
