//! Log lines where stderr is the journal's stream: systemd names it in `JOURNAL_STREAM`
//! (device and inode), and every line then carries its syslog priority as a `<N>`
//! prefix, which journald reads, and no time of its own. Elsewhere the lines are as a
//! terminal reads them. (The real-systemd test checks the same through journalctl.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::BIN;

/// Runs `args` with stderr in a file; `journal`: `JOURNAL_STREAM` names that file (or,
/// with `Some(false)`, another one). Stderr's text.
fn stderr_of(args: &[&str], journal: Option<bool>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stderr");
    let file = std::fs::File::create(&path).unwrap();
    let m = file.metadata().unwrap();
    let other = std::fs::metadata(dir.path()).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stderr(file)
        .stdout(std::process::Stdio::null());
    cmd.env_remove("JOURNAL_STREAM");
    match journal {
        Some(true) => cmd.env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino())),
        Some(false) => cmd.env("JOURNAL_STREAM", format!("{}:{}", other.dev(), other.ino())),
        None => &mut cmd,
    };
    cmd.status().unwrap();
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn lines_carry_their_priority_to_the_journal_and_no_second_time() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::jobs_only_config(dir.path());
    let config = config.to_str().unwrap();
    let failed_job = [
        "job",
        "run",
        "nightly",
        "--config",
        config,
        "--",
        "/nonexistent/command",
    ];
    let bad_config = ["check-config", "--config", "/nonexistent/config.yml"];

    let journal = stderr_of(&failed_job, Some(true));
    let line = journal
        .lines()
        .find(|l| l.contains("cannot start"))
        .unwrap_or_else(|| panic!("{journal}"));
    assert!(line.starts_with("<3>"), "{line}");
    assert!(
        !line.contains("ERROR") && !line.contains("T0") && !line.contains('Z'),
        "{line}"
    );
    let journal = stderr_of(&bad_config, Some(true));
    assert!(journal.starts_with("<3>error: "), "{journal}");

    // A terminal or a file: the time and the level, no prefix.
    for journal in [None, Some(false)] {
        let plain = stderr_of(&failed_job, journal);
        let line = plain
            .lines()
            .find(|l| l.contains("cannot start"))
            .unwrap_or_else(|| panic!("{plain}"));
        assert!(!line.starts_with('<') && line.contains("ERROR"), "{line}");
        let plain = stderr_of(&bad_config, journal);
        assert!(plain.starts_with("error: "), "{plain}");
    }
}
