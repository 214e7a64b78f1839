//! What the commands print, read by a pipe that closes early (`| head`): the command
//! ends as other command-line tools do (SIGPIPE, exit status 141 in a shell, or 0 when
//! it had finished), never by an abort.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use common::BIN;

#[test]
fn a_closed_pipe_ends_a_printing_command_without_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::jobs_only_config(dir.path());
    let config = config.to_str().unwrap();
    for args in [
        &["generate", "dashboard"][..],
        &["generate", "alerts"],
        &["update", "status", "--config", config],
    ] {
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // As `head -c 100`: read a little, then close the pipe.
        let mut first = [0u8; 100];
        let mut stdout = child.stdout.take().unwrap();
        let n = stdout.read(&mut first).unwrap();
        assert!(n > 0, "{args:?} printed nothing");
        drop(stdout);
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(
            status.success() || status.signal() == Some(libc::SIGPIPE),
            "{args:?} ended {status}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
