//! `job run NAME [--timeout DUR] -- COMMAND [ARGS…]`: runs a command as a job that
//! reports itself.
//!
//! One run of a job at a time (a lock file per job, held with flock, so a killed runner
//! releases it with its last file descriptor). The command runs in its own process
//! group, its output passed through; a timeout, SIGTERM or SIGINT stops the whole group
//! (SIGTERM, then SIGKILL after the grace period). The state file records start, end,
//! exit code (128 + N for signal N), the last lines of output and, for Ansible, the
//! PLAY RECAP. The runner exits with the command's own exit code.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::supervise::{self, Exit, Limits};
use crate::state::job::{self, Finished, JobState, Recap, Running, StateError};
use crate::sys::{self, now};

/// Exit code when another run of the job holds the lock (sysexits' EX_TEMPFAIL).
pub const EXIT_BUSY: i32 = 75;
/// Exit code when the command cannot be started (as a shell says).
pub const EXIT_NOT_STARTED: i32 = 127;
/// Lines of output kept in the state file.
const TAIL_LINES: usize = 20;
/// Longest line kept (longer ones are cut).
const TAIL_LINE_BYTES: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("invalid job name {0:?}: use letters, digits, '-', '_' and '.' (it becomes a file name and a label)")]
    Name(String),
    #[error("job {job} is already running{by}; this run was not started")]
    Busy { job: String, by: String },
    #[error("cannot use the job state directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Busy { .. } => EXIT_BUSY,
            _ => 1,
        }
    }
}

pub struct JobRun<'a> {
    pub state_dir: &'a Path,
    pub job: &'a str,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub command: &'a [OsString],
    /// JSON output (Ansible's json callback) is read for its stats up to this size.
    pub max_json: usize,
}

/// What the output readers collect.
#[derive(Default)]
struct Output {
    tail: VecDeque<String>,
    recap: Recap,
    in_recap: bool,
    json: Option<Vec<u8>>,
    /// The JSON document was larger than the bound: what was kept is not all of it.
    json_cut: bool,
}

impl Output {
    fn line(&mut self, line: &str) {
        if line.starts_with("PLAY RECAP") {
            self.in_recap = true;
            self.recap.clear();
        } else if self.in_recap {
            match job::parse_recap_line(line) {
                Some((host, counts)) => {
                    self.recap.insert(host, counts);
                }
                None if line.trim().is_empty() => {}
                None => self.in_recap = false,
            }
        }
        let mut kept = line.to_owned();
        if kept.len() > TAIL_LINE_BYTES {
            let mut cut = TAIL_LINE_BYTES;
            while !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            kept.truncate(cut);
            kept.push('…');
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(kept);
    }
}

/// Bytes of one line looked at (the Ansible recap's lines are far shorter; the tail keeps
/// [`TAIL_LINE_BYTES`] of them): the rest of a longer line is copied through, not kept.
const LINE_KEEP: usize = 4096;

/// Copies `from` to `to` as it comes, feeding `out` line by line. Memory stays bounded
/// whatever the command prints: at most [`LINE_KEEP`] bytes of a line and
/// `max_json` bytes of JSON are kept, however long a line is.
fn pump(
    from: impl Read,
    mut to: impl Write,
    out: &Mutex<Output>,
    watch_json: bool,
    max_json: usize,
) {
    let mut reader = BufReader::with_capacity(64 << 10, from);
    let mut line: Vec<u8> = Vec::new();
    let mut json_decided = !watch_json;
    loop {
        let chunk = match reader.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(c) => c,
        };
        let (piece, ended) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..=i], true),
            None => (chunk, false),
        };
        let _ = to.write_all(piece);
        let Ok(mut o) = out.lock() else { return };
        if !json_decided {
            // JSON output is a document whose first byte (after blanks) is `{`.
            if let Some(b) = piece.iter().find(|b| !b.is_ascii_whitespace()) {
                if *b == b'{' {
                    o.json = Some(Vec::new());
                }
                json_decided = true;
            }
        }
        if let Some(j) = o.json.as_mut() {
            let room = max_json.saturating_sub(j.len()).min(piece.len());
            j.extend_from_slice(&piece[..room]);
            if room < piece.len() {
                o.json_cut = true;
            }
        }
        let room = LINE_KEEP.saturating_sub(line.len()).min(piece.len());
        line.extend_from_slice(&piece[..room]);
        let n = piece.len();
        if ended {
            let _ = to.flush();
            let text = String::from_utf8_lossy(&line);
            o.line(text.trim_end_matches(['\n', '\r']));
            line.clear();
        }
        drop(o);
        reader.consume(n);
    }
    let _ = to.flush();
    if !line.is_empty() {
        if let Ok(mut o) = out.lock() {
            let text = String::from_utf8_lossy(&line);
            o.line(text.trim_end_matches(['\n', '\r']));
        }
    }
}

/// A job run under way: it holds the job's lock and has recorded the run as started.
/// [`JobGuard::finish`] records its end; a guard dropped without it (a crash, a kill)
/// leaves the state saying "running" with a pid that will be gone.
pub struct JobGuard {
    state_dir: PathBuf,
    state: JobState,
    started: f64,
    _lock: std::fs::File,
}

impl JobGuard {
    /// Takes the job's lock and records the start, or says who holds it.
    pub fn begin(state_dir: &Path, job_name: &str) -> Result<JobGuard, RunError> {
        if !job::valid_name(job_name) {
            return Err(RunError::Name(job_name.to_owned()));
        }
        let dir_err = |source| RunError::StateDir {
            path: state_dir.to_owned(),
            source,
        };
        crate::writes::create_dir_all(state_dir, crate::writes::SHARED_DIR).map_err(dir_err)?;
        crate::writes::check_dir(state_dir).map_err(dir_err)?;
        let lock_path = state_dir.join(format!("{job_name}.lock"));
        let lock = crate::writes::open_lock(&lock_path).map_err(dir_err)?;
        if !sys::try_lock_exclusive(&lock).map_err(dir_err)? {
            let by = job::read(state_dir, job_name)
                .ok()
                .and_then(|s| s.running)
                .map(|run| format!(" (runner pid {})", run.pid))
                .unwrap_or_default();
            return Err(RunError::Busy {
                job: job_name.to_owned(),
                by,
            });
        }
        let mut state = match job::read(state_dir, job_name) {
            Ok(s) => s,
            Err(e) => {
                // Start over rather than refuse to run: the counters restart from zero.
                tracing::warn!(error = %crate::error_chain(&e), "unreadable job state replaced");
                JobState::default()
            }
        };
        state.job = job_name.to_owned();
        let started = now();
        let me = std::process::id();
        state.running = Some(Running {
            pid: me,
            pid_start: job::process_start(me).unwrap_or(0),
            started,
        });
        job::write(state_dir, &state)?;
        Ok(JobGuard {
            state_dir: state_dir.to_owned(),
            state,
            started,
            _lock: lock,
        })
    }

    /// Records the run's end and releases the lock.
    pub fn finish(
        mut self,
        exit_code: i32,
        timed_out: bool,
        tail: Vec<String>,
        recap: Option<Recap>,
    ) -> Result<(), RunError> {
        let ended = now();
        let state = &mut self.state;
        state.running = None;
        state.runs += 1;
        if exit_code == 0 {
            state.last_success = Some(ended);
        } else {
            state.failures += 1;
        }
        state.last = Some(Finished {
            started: self.started,
            ended,
            exit_code,
            timed_out,
            tail,
            recap,
        });
        job::write(&self.state_dir, state)?;
        Ok(())
    }
}

/// Runs the job; returns the exit code to exit with.
pub fn run(r: &JobRun<'_>) -> Result<i32, RunError> {
    let guard = JobGuard::begin(r.state_dir, r.job)?;
    if let Err(e) = sys::catch_stop_signals() {
        // The run goes on: a stop signal then ends it unrecorded, as before.
        tracing::warn!("cannot catch SIGTERM and SIGINT: {e}");
    }
    let (exit, output) = match execute(r) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(
                "cannot start {}: {e}",
                r.command
                    .first()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            let mut o = Output::default();
            o.line(&format!("cannot start the command: {e}"));
            let exit = Exit {
                code: EXIT_NOT_STARTED,
                timed_out: false,
                stopped: false,
            };
            (exit, o)
        }
    };
    if output.json_cut {
        tracing::warn!(
            job = r.job,
            limit = %crate::regular::human_bytes(r.max_json as u64),
            "the command's JSON output is larger than jobs.max_json_bytes: its stats are not read; raise the bound"
        );
    }
    let recap = match (&output.json, output.recap.is_empty()) {
        (Some(_), _) if output.json_cut => (!output.recap.is_empty()).then(|| output.recap.clone()),
        (Some(json), _) => job::parse_json_stats(json)
            .or_else(|| (!output.recap.is_empty()).then(|| output.recap.clone())),
        (None, false) => Some(output.recap.clone()),
        (None, true) => None,
    };
    guard.finish(
        exit.code,
        exit.timed_out,
        output.tail.into_iter().collect(),
        recap,
    )?;
    Ok(exit.code)
}

/// Starts the command and waits for it: (exit, output).
fn execute(r: &JobRun<'_>) -> std::io::Result<(Exit, Output)> {
    let (program, args) = r
        .command
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command"))?;
    let mut process = supervise::spawn(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
        Limits {
            timeout: r.timeout,
            kill_grace: r.kill_grace,
        },
    )?;
    let output = Arc::new(Mutex::new(Output::default()));
    let mut readers = Vec::new();
    let max_json = r.max_json;
    if let Some(s) = process.stdout.take() {
        let out = Arc::clone(&output);
        readers.push(std::thread::spawn(move || {
            pump(s, std::io::stdout(), &out, true, max_json)
        }));
    }
    if let Some(s) = process.stderr.take() {
        let out = Arc::clone(&output);
        readers.push(std::thread::spawn(move || {
            pump(s, std::io::stderr(), &out, false, max_json)
        }));
    }
    let exit = process.wait()?;
    if exit.timed_out {
        tracing::error!(
            "job {}: timed out after {:?}; stopped it",
            r.job,
            r.timeout.unwrap_or_default()
        );
    }
    // A reader still blocked (a grandchild outside the group holds the pipe) is left.
    let give_up = Instant::now() + Duration::from_secs(2);
    for reader in readers {
        while !reader.is_finished() && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(10));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
    let output = match Arc::try_unwrap(output) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(shared) => {
            let mut o = Output::default();
            if let Ok(s) = shared.lock() {
                o.tail = s.tail.clone();
                o.recap = s.recap.clone();
                o.json = s.json.clone();
                o.json_cut = s.json_cut;
            }
            o
        }
    };
    Ok((exit, output))
}
