//! `job run` with real commands, and the jobs collector serving what it recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{require_tool, Exporter, Exposition, BIN};

struct Jobs {
    dir: tempfile::TempDir,
}

impl Jobs {
    fn new() -> Jobs {
        Jobs {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("state")
    }

    fn config(&self) -> String {
        format!(
            "jobs:\n  state_dir: {}\n  kill_grace: 1s\n",
            self.state_dir().display()
        )
    }

    fn config_file(&self) -> std::path::PathBuf {
        let p = self.dir.path().join("config.yml");
        std::fs::write(&p, self.config()).unwrap();
        p
    }

    fn command(&self, job: &str, extra: &[&str], cmd: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(["job", "run", job, "--config"])
            .arg(self.config_file())
            .args(extra)
            .arg("--")
            .args(cmd);
        c
    }

    fn run(&self, job: &str, extra: &[&str], cmd: &[&str]) -> Output {
        self.command(job, extra, cmd).output().unwrap()
    }

    fn state(&self, job: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.state_dir().join(format!("{job}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn value(m: &Exposition, name: &str, job: &str) -> Option<f64> {
    m.value(name, &[("job_name", job)])
}

#[test]
fn exit_codes_output_and_metrics() {
    let j = Jobs::new();
    let ok = j.run(
        "nightly",
        &[],
        &["sh", "-c", "echo step one; echo step two >&2"],
    );
    assert_eq!(ok.status.code(), Some(0));
    // Output passes through.
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "step one\n");
    assert_eq!(String::from_utf8_lossy(&ok.stderr), "step two\n");
    let fail = j.run("nightly", &[], &["sh", "-c", "echo broken; exit 3"]);
    assert_eq!(fail.status.code(), Some(3), "the command's own exit code");
    let killed = j.run("signalled", &[], &["sh", "-c", "kill -KILL $$"]);
    assert_eq!(killed.status.code(), Some(137));
    let missing = j.run("missing", &[], &["/no/such/command"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot start /no/such/command"));

    let s = j.state("nightly");
    assert_eq!(s["runs"], 2);
    assert_eq!(s["failures"], 1);
    assert_eq!(s["last"]["exit_code"], 3);
    assert_eq!(s["last"]["tail"][0], "broken");
    assert!(s["running"].is_null());

    let e = Exporter::start(&j.config());
    let m = e.metrics();
    assert_eq!(value(&m, "shoehub_job_runs_total", "nightly"), Some(2.0));
    assert_eq!(
        value(&m, "shoehub_job_failures_total", "nightly"),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "shoehub_job_last_exit_code", "nightly"),
        Some(3.0)
    );
    assert_eq!(
        value(&m, "shoehub_job_last_exit_code", "signalled"),
        Some(137.0)
    );
    assert_eq!(
        value(&m, "shoehub_job_last_exit_code", "missing"),
        Some(127.0)
    );
    assert_eq!(value(&m, "shoehub_job_running", "nightly"), Some(0.0));
    // The success before the failure is still the last success.
    let success = value(&m, "shoehub_job_last_success_timestamp_seconds", "nightly").unwrap();
    let completion = value(
        &m,
        "shoehub_job_last_completion_timestamp_seconds",
        "nightly",
    )
    .unwrap();
    assert!(
        success > 1.7e9 && success < completion,
        "{success} {completion}"
    );
    assert_eq!(
        value(
            &m,
            "shoehub_job_last_success_timestamp_seconds",
            "signalled"
        ),
        Some(0.0),
        "never succeeded: 0, not absent"
    );
    assert_eq!(m.types["shoehub_job_runs_total"], "counter");
}

#[test]
fn a_timeout_stops_the_whole_process_group() {
    let j = Jobs::new();
    let pidfile = j.dir.path().join("grandchild.pid");
    let t = Instant::now();
    let out = j.run(
        "slow",
        &["--timeout", "1s"],
        &[
            "sh",
            "-c",
            &format!("sleep 60 & echo $! > {}; wait", pidfile.display()),
        ],
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(out.status.code(), Some(143), "SIGTERM: 128 + 15");
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out after 1s"));
    let s = j.state("slow");
    assert_eq!(s["last"]["timed_out"], true);
    let grandchild: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !Path::new(&format!("/proc/{grandchild}")).exists()
            || std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .unwrap_or_default()
                .contains(") Z"),
        "the command's background child survived the timeout"
    );
}

#[test]
fn one_run_at_a_time_and_a_killed_runner_is_not_running() {
    let j = Jobs::new();
    let e = Exporter::start(&j.config());
    let mut first = j
        .command("backup", &[], &["sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !j.state_dir().join("backup.json").exists() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(20));
    }
    let m = e.metrics();
    assert_eq!(value(&m, "shoehub_job_running", "backup"), Some(1.0));
    assert!(value(&m, "shoehub_job_last_start_timestamp_seconds", "backup").unwrap() > 1.7e9);

    let second = j.run("backup", &[], &["true"]);
    assert_eq!(second.status.code(), Some(75));
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains("job backup is already running") && msg.contains(&first.id().to_string()),
        "{msg}"
    );
    // Another job is not held up.
    assert_eq!(j.run("other", &[], &["true"]).status.code(), Some(0));

    // The runner is killed outright: it cannot write its end, and the state still says
    // running, but its pid is gone.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!j.state("backup")["running"].is_null());
    let m = e.metrics();
    assert_eq!(value(&m, "shoehub_job_running", "backup"), Some(0.0));
    // The lock went with it.
    assert_eq!(j.run("backup", &[], &["true"]).status.code(), Some(0));
    let s = j.state("backup");
    assert!(s["running"].is_null());
    assert_eq!(s["runs"], 1);
}

#[test]
fn a_corrupt_state_file_costs_only_its_job() {
    let j = Jobs::new();
    assert_eq!(j.run("good", &[], &["true"]).status.code(), Some(0));
    std::fs::write(
        j.state_dir().join("broken.json"),
        "{\"job\": \"broken\", \"runs\": ",
    )
    .unwrap();
    let e = Exporter::start(&j.config());
    let m = e.metrics();
    assert_eq!(value(&m, "shoehub_job_runs_total", "good"), Some(1.0));
    assert!(value(&m, "shoehub_job_runs_total", "broken").is_none());
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "jobs")]),
        Some(0.0)
    );
    assert!(e.stderr().contains("broken.json"), "{}", e.stderr());
}

#[test]
fn ansible_recap_from_a_real_playbook() {
    let playbook_bin = require_tool("ansible-playbook", "ansible-core");
    let j = Jobs::new();
    let book = j.dir.path().join("play.yml");
    std::fs::write(
        &book,
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: look\n      ansible.builtin.command: /bin/true\n      changed_when: false\n    - name: touch\n      ansible.builtin.file:\n        path: \"{{ marker }}\"\n        state: touch\n    - name: skip\n      ansible.builtin.debug: {msg: never}\n      when: false\n",
    )
    .unwrap();
    let marker = j.dir.path().join("marker");
    let run = |job: &str, extra_vars: &str| {
        j.command(
            job,
            &[],
            &[
                playbook_bin.to_str().unwrap(),
                "-i",
                "localhost,",
                "-c",
                "local",
                book.to_str().unwrap(),
                "-e",
                extra_vars,
            ],
        )
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", j.dir.path().join("tmp"))
        .env("ANSIBLE_HOME", j.dir.path().join("home"))
        .output()
        .unwrap()
    };
    let out = run("update", &format!("marker={}", marker.display()));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What Ansible printed, read independently of the runner's parser.
    let recap_line = printed
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.starts_with("localhost"))
        .unwrap()
        .to_owned();
    let printed_count = |status: &str| -> f64 {
        recap_line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{status}=")))
            .unwrap()
            .parse()
            .unwrap()
    };
    // A task that fails: the directory does not exist.
    let failed = run("update-broken", "marker=/no/such/dir/marker");
    assert_eq!(
        failed.status.code(),
        Some(2),
        "ansible-playbook exits 2 on a failed task"
    );

    let e = Exporter::start(&j.config());
    let m = e.metrics();
    let tasks = |job: &str, status: &str| {
        m.value(
            "shoehub_ansible_last_run_tasks",
            &[("job_name", job), ("host", "localhost"), ("status", status)],
        )
    };
    for status in [
        "ok",
        "changed",
        "unreachable",
        "failed",
        "skipped",
        "rescued",
        "ignored",
    ] {
        assert_eq!(
            tasks("update", status),
            Some(printed_count(status)),
            "{status}: {recap_line}"
        );
    }
    assert_eq!(tasks("update", "changed"), Some(1.0));
    assert_eq!(tasks("update", "skipped"), Some(1.0));
    assert_eq!(tasks("update-broken", "failed"), Some(1.0));
    assert_eq!(
        value(&m, "shoehub_job_last_exit_code", "update-broken"),
        Some(2.0)
    );
}

#[test]
fn a_300_mb_line_of_output_costs_bounded_memory() {
    let jobs = Jobs::new();
    let prlimit = require_tool("prlimit", "util-linux");
    // The runner's address space capped at 256 MiB: holding the line whole (300 MB, and
    // its copies) fails; bounded reading passes. The command is limited the same way,
    // and needs little.
    let mut cmd = Command::new(prlimit);
    cmd.arg("--as=268435456")
        .arg(BIN)
        .args(["job", "run", "flood", "--config"])
        .arg(jobs.config_file())
        .args([
            "--",
            "sh",
            "-c",
            "head -c 300000000 /dev/zero | tr '\\0' x; echo; echo done",
        ])
        .stdout(Stdio::null());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = jobs.state("flood");
    assert_eq!(state["last"]["exit_code"], 0, "{state}");
    let tail = state["last"]["tail"].to_string();
    assert!(tail.contains("done") && tail.contains("xxx"), "{tail}");
    assert!(tail.len() < 4096, "{} bytes of tail", tail.len());
}

#[test]
fn json_output_past_its_bound_is_reported_not_half_read() {
    let jobs = Jobs::new();
    let script = "printf '{\"stats\": {\"shop\": {\"ok\": 4, \"changed\": 1, \"failures\": 0}}, \"pad\": \"%s\"}\\n' \"$(head -c 3000 /dev/zero | tr '\\0' x)\"";
    // Within the default bound: the stats are read.
    let out = jobs.run("deploy", &[], &["sh", "-c", script]);
    assert!(out.status.success());
    assert_eq!(jobs.state("deploy")["last"]["recap"]["shop"]["ok"], 4);
    // Past a bound of 1 KiB: said so, and no stats rather than wrong ones.
    let cfg = jobs.config_file();
    std::fs::write(&cfg, format!("{}  max_json_bytes: 1KiB\n", jobs.config())).unwrap();
    let out = Command::new(BIN)
        .args(["job", "run", "deploy", "--config"])
        .arg(&cfg)
        .args(["--", "sh", "-c", script])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than jobs.max_json_bytes"), "{err}");
    assert!(jobs.state("deploy")["last"]["recap"].is_null());
}
