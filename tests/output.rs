//! What the commands print, read by a pipe that closes early (`| head`): the command
//! ends quietly with status 0, as ripgrep does, never by an abort or a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::BIN;

#[test]
fn a_closed_pipe_ends_a_printing_command_without_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::jobs_only_config(dir.path());
    let config = config.to_str().unwrap();
    for args in [
        // Longer than a pipe's buffer: the reader is gone before the last write.
        &["generate", "dashboard"][..],
        &["generate", "alerts"],
        &["update", "status", "--config", config],
        &["generate", "completions", "bash"],
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
        assert_eq!(status.code(), Some(0), "{args:?} ended {status}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
