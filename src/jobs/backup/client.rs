//! The MySQL client tools a backup runs (`mariadb-dump`, `mariadb`), each under the
//! job supervisor and each given the account through a pipe of its own.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{io_err, BackupError};
use crate::credentials::Credentials;
use crate::jobs::supervise::{self, Exit, Limits};

/// The account as my.cnf-style `[client]` options. Each client tool gets them through a
/// pipe of its own (`--defaults-extra-file=/dev/fd/N`): the password reaches it through
/// neither argv nor the environment, and no file holds it, not even a killed run's.
pub struct Defaults {
    text: String,
}

impl Defaults {
    pub fn new(creds: &Credentials) -> Result<Defaults, BackupError> {
        let opts = mysql_async::Opts::from(creds.options()?);
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let mut text = String::from("[client]\n");
        if let Some(u) = opts.user() {
            text.push_str(&format!("user = {}\n", quote(u)));
        }
        if let Some(p) = opts.pass() {
            text.push_str(&format!("password = {}\n", quote(p)));
        }
        match opts.socket() {
            Some(s) => text.push_str(&format!("socket = {}\nprotocol = socket\n", quote(s))),
            None => text.push_str(&format!(
                "host = {}\nport = {}\nprotocol = tcp\n",
                quote(opts.ip_or_hostname()),
                opts.tcp_port()
            )),
        }
        Ok(Defaults { text })
    }

    /// A command for `program` reading the options from a pipe; the returned descriptor
    /// (the pipe's reading end) must live until the command is spawned.
    pub fn command(&self, program: &str) -> Result<(Command, OwnedFd), BackupError> {
        // The reading end is inherited by the tool alone; the writing end by no one.
        let (read, write) = crate::sys::cloexec_pipe().map_err(io_err("creating a pipe"))?;
        // A few hundred bytes: the pipe's buffer takes them without a reader.
        File::from(write)
            .write_all(self.text.as_bytes())
            .map_err(io_err("writing the client options"))?;
        let mut cmd = Command::new(program);
        cmd.arg(format!(
            "--defaults-extra-file=/dev/fd/{}",
            read.as_raw_fd()
        ));
        crate::sys::inherit_in_child(&mut cmd, read.as_fd());
        Ok((cmd, read))
    }
}

/// Reads a tool's complaints on a thread of its own, so that a tool that writes much to
/// standard error never stalls on a full pipe.
pub fn read_in_background(
    pipe: Option<std::process::ChildStderr>,
) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut text);
        }
        text
    })
}

/// What a client tool printed, and how it ended.
pub struct Captured {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Captured {
    /// Its last line of complaint, for an error message.
    pub fn complaint(&self) -> String {
        let text = self.stderr.trim();
        if text.is_empty() {
            format!("exit code {}", self.exit.code)
        } else {
            text.to_owned()
        }
    }
}

/// Runs `cmd` under the supervisor with `input` (if any) on its standard input, and
/// collects its output. Standard error is read on a thread of its own, so that a tool
/// that complains at length while its input is being written cannot stall.
pub fn capture(
    cmd: &mut Command,
    input: Option<&mut dyn Read>,
    timeout: Duration,
    kill_grace: Duration,
) -> Result<Captured, BackupError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut process = supervise::spawn(
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()),
        Limits {
            timeout: Some(timeout),
            kill_grace,
        },
    )
    .map_err(io_err(format!("starting {program}")))?;
    let errors = read_in_background(process.stderr.take());
    let stdout = process.stdout.take();
    let output = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut o) = stdout {
            let _ = o.read_to_end(&mut out);
        }
        out
    });
    let copied = match (input, process.stdin.take()) {
        (Some(input), Some(mut stdin)) => io::copy(input, &mut stdin).map(drop),
        _ => Ok(()),
    };
    if copied.is_err() {
        process.cancel();
    }
    let exit = process
        .wait()
        .map_err(io_err(format!("waiting for {program}")))?;
    let stdout = output.join().unwrap_or_default();
    let stderr = errors.join().unwrap_or_default();
    // A tool that stopped reading is its own failure; a write that failed while it
    // still ran is the input's.
    if let Err(e) = copied {
        if exit.success() {
            return Err(io_err(format!("feeding {program}"))(e));
        }
    }
    Ok(Captured {
        exit,
        stdout,
        stderr,
    })
}
