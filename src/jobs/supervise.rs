//! The one process supervisor every job uses (`job run`, the backup's dump and client
//! tools, `update apply`): a command starts in a process group of its own, and a
//! deadline, a cancel or a SIGTERM/SIGINT to the runner stops the whole group — SIGTERM,
//! then SIGKILL after a grace period. A command killed by signal N exits 128 + N, as a
//! shell reports it.
//!
//! A thread per command watches it, so the caller is free to stream the command's output
//! meanwhile; the deadline holds even while the caller is blocked in a read of its pipe.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::sys;

/// How long a supervised command may run, and how long it has to stop once asked.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// No deadline when `None`.
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

/// How a supervised command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// Its exit code, or 128 + N when signal N ended it.
    pub code: i32,
    /// It was stopped because its deadline passed.
    pub timed_out: bool,
    /// It was stopped: deadline, cancel, or a stop signal to this process.
    pub stopped: bool,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// A command under supervision. Its pipes, where they were asked for, are the
/// caller's to read or write.
pub struct Process {
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    cancel: Arc<AtomicBool>,
    watcher: JoinHandle<io::Result<Exit>>,
}

/// How often the watcher looks at the command, the clock and the stop flags.
const TICK: Duration = Duration::from_millis(20);

/// Starts `cmd` in a new process group under `limits`.
pub fn spawn(cmd: &mut Command, limits: Limits) -> io::Result<Process> {
    let mut child = cmd.process_group(0).spawn()?;
    let cancel = Arc::new(AtomicBool::new(false));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let flag = Arc::clone(&cancel);
    let watcher = std::thread::Builder::new()
        .name("supervise".into())
        .spawn(move || watch(child, limits, &flag))?;
    Ok(Process {
        stdin,
        stdout,
        stderr,
        cancel,
        watcher,
    })
}

impl Process {
    /// Asks the command to stop (SIGTERM to its group, SIGKILL after the grace).
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Waits for the command to end. Pipes still held are closed first, so a command
    /// waiting on its input sees its end.
    pub fn wait(mut self) -> io::Result<Exit> {
        drop(self.stdin.take());
        match self.watcher.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the supervising thread panicked")),
        }
    }
}

fn watch(mut child: std::process::Child, limits: Limits, cancel: &AtomicBool) -> io::Result<Exit> {
    let pgid = child.id();
    let deadline = limits.timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    let mut term_sent: Option<Instant> = None;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let asked = sys::stop_requested() != 0 || cancel.load(Ordering::SeqCst);
        let expired = deadline.is_some_and(|d| Instant::now() >= d);
        if (asked || expired) && term_sent.is_none() {
            timed_out = expired && !asked;
            sys::kill_group(pgid, sys::SIGTERM);
            term_sent = Some(Instant::now());
        }
        if term_sent.is_some_and(|t| t.elapsed() >= limits.kill_grace) {
            sys::kill_group(pgid, sys::SIGKILL);
        }
        std::thread::sleep(TICK);
    };
    // What is left in the group (a background child holding the pipes) goes too, so
    // that whoever reads the pipes sees their end.
    if term_sent.is_some() {
        sys::kill_group(pgid, sys::SIGKILL);
    }
    Ok(Exit {
        code: exit_code(status),
        timed_out,
        stopped: term_sent.is_some(),
    })
}

/// The exit code a shell would report: the code, or 128 + N for signal N.
pub fn exit_code(status: ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        (None, None) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::Stdio;

    fn limits(timeout_ms: Option<u64>) -> Limits {
        Limits {
            timeout: timeout_ms.map(Duration::from_millis),
            kill_grace: Duration::from_millis(300),
        }
    }

    #[test]
    fn exit_codes_and_signals() {
        let p = spawn(Command::new("sh").args(["-c", "exit 3"]), limits(None)).unwrap();
        assert_eq!(
            p.wait().unwrap(),
            Exit {
                code: 3,
                timed_out: false,
                stopped: false
            }
        );
        let p = spawn(Command::new("sh").args(["-c", "kill -9 $$"]), limits(None)).unwrap();
        assert_eq!(p.wait().unwrap().code, 137);
    }

    #[test]
    fn deadline_stops_the_whole_group_even_while_the_caller_reads() {
        // The shell ignores SIGTERM and its background child keeps the pipe open: only
        // SIGKILL to the group ends the read.
        let mut p = spawn(
            Command::new("sh")
                .args(["-c", "trap '' TERM; sleep 30 & echo started; wait"])
                .stdout(Stdio::piped()),
            limits(Some(200)),
        )
        .unwrap();
        let t = Instant::now();
        let mut out = String::new();
        p.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        let exit = p.wait().unwrap();
        assert_eq!(out, "started\n");
        assert!(exit.timed_out && exit.stopped, "{exit:?}");
        assert_eq!(exit.code, 128 + sys::SIGKILL.as_raw());
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    }

    #[test]
    fn cancel_stops_without_a_timeout() {
        let p = spawn(Command::new("sleep").arg("30"), limits(None)).unwrap();
        p.cancel();
        let exit = p.wait().unwrap();
        assert!(exit.stopped && !exit.timed_out);
        assert_eq!(exit.code, 128 + sys::SIGTERM.as_raw());
    }
}
