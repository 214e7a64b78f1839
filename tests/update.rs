//! The update protocol end to end: plan (apt on this host and a real
//! `ansible-playbook --check`), approval, apply through the job runner, and every
//! refusal, with the metrics the exporter serves meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{require_tool, Exporter, BIN};

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(max_age: &str) -> Setup {
        require_tool("ansible-playbook", "ansible-core");
        require_tool("apt-get", "apt");
        let s = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(
            s.path("config.yml"),
            format!(
                "jobs:\n  state_dir: {}\nupdates:\n  apt: false\n  playbook: {}\n  max_plan_age: {max_age}\n",
                s.path("state").display(),
                s.path("update.yml").display()
            ),
        )
        .unwrap();
        s.playbook("");
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A harmless playbook: it touches a marker file (and runs `extra` tasks).
    fn playbook(&self, extra: &str) {
        std::fs::write(
            self.path("update.yml"),
            format!(
                "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n    - name: marker\n      ansible.builtin.file:\n        path: {}\n        state: touch\n{extra}",
                self.path("applied").display()
            ),
        )
        .unwrap();
    }

    fn update(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("update")
            .args(args)
            .arg("--config")
            .arg(self.path("config.yml"))
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOME", self.path("ansible-home"))
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .output()
            .unwrap()
    }

    fn plan(&self) -> String {
        let out = self.update(&["plan"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| l.strip_prefix("plan "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned()
    }
}

fn refused(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

fn exists(p: &Path) -> bool {
    p.exists()
}

#[test]
fn plan_approve_apply_and_every_refusal() {
    let s = Setup::new("7d");
    refused(&s.update(&["apply"]), "there is no update plan yet");
    let id = s.plan();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("state/update/plan.json")).unwrap())
            .unwrap();
    // The plan holds what apt says is pending on this host.
    let apt = Command::new("apt-get")
        .args(["--just-print", "dist-upgrade"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let pending = String::from_utf8_lossy(&apt.stdout)
        .lines()
        .filter(|l| l.starts_with("Inst "))
        .count();
    assert_eq!(plan["packages"].as_array().unwrap().len(), pending);
    assert_eq!(plan["check"]["exit_code"], 0);
    // A plan made again from the same state has the same id.
    assert_eq!(s.plan(), id);

    let e = Exporter::start(&std::fs::read_to_string(s.path("config.yml")).unwrap());
    let m = e.metrics();
    assert_eq!(m.value("shoehub_update_pending_approval", &[]), Some(1.0));
    assert!(
        m.value("shoehub_update_plan_timestamp_seconds", &[])
            .unwrap()
            > 1.7e9
    );
    assert_eq!(
        m.value("shoehub_update_plan_packages", &[]),
        Some(pending as f64)
    );

    refused(
        &s.update(&["apply"]),
        &format!("update approve --plan {id}"),
    );
    refused(
        &s.update(&["approve", "--plan", "0000000000000000"]),
        "is not the current plan",
    );
    let ok = s.update(&["approve", "--plan", &id, "--by", "alice"]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        e.metrics().value("shoehub_update_pending_approval", &[]),
        Some(0.0)
    );

    // The playbook changed after the approval: a different plan.
    s.playbook("    - name: also\n      ansible.builtin.command: /bin/true\n");
    refused(&s.update(&["apply"]), "what is pending changed since plan");
    assert!(!exists(&s.path("applied")), "nothing ran");

    let id2 = s.plan();
    assert_ne!(id2, id);
    assert_eq!(
        s.update(&["approve", "--plan", &id2]).status.code(),
        Some(0)
    );
    let applied = s.update(&["apply"]);
    let printed = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert_eq!(applied.status.code(), Some(0), "{printed}");
    assert!(exists(&s.path("applied")));
    refused(&s.update(&["apply"]), "was already applied");

    // The run is the job `update`, with Ansible's recap as metrics.
    let recap_line = printed
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.starts_with("localhost"))
        .unwrap()
        .to_owned();
    let m = e.metrics();
    assert_eq!(
        m.value("shoehub_job_last_exit_code", &[("job_name", "update")]),
        Some(0.0)
    );
    for field in recap_line.split_whitespace().filter(|f| f.contains('=')) {
        let (status, n) = field.split_once('=').unwrap();
        assert_eq!(
            m.value(
                "shoehub_ansible_last_run_tasks",
                &[
                    ("job_name", "update"),
                    ("host", "localhost"),
                    ("status", status)
                ]
            ),
            Some(n.parse().unwrap()),
            "{status} in {recap_line}"
        );
    }
    let status = s.update(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("approved by")
            && text.contains("applied")
            && text.contains("last update run: exit code 0"),
        "{text}"
    );

    // A failing task: apply runs the approved plan and reports the failure.
    s.playbook("    - name: broken\n      ansible.builtin.command: /bin/false\n");
    let id3 = s.plan();
    assert_eq!(
        s.update(&["approve", "--plan", &id3]).status.code(),
        Some(0)
    );
    let failed = s.update(&["apply"]);
    assert_eq!(failed.status.code(), Some(2));
    let m = e.metrics();
    assert_eq!(
        m.value("shoehub_job_last_exit_code", &[("job_name", "update")]),
        Some(2.0)
    );
    assert_eq!(
        m.value(
            "shoehub_ansible_last_run_tasks",
            &[
                ("job_name", "update"),
                ("host", "localhost"),
                ("status", "failed")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value("shoehub_job_failures_total", &[("job_name", "update")]),
        Some(1.0)
    );
}

#[test]
fn a_stale_plan_is_refused() {
    let s = Setup::new("1s");
    let id = s.plan();
    assert_eq!(s.update(&["approve", "--plan", &id]).status.code(), Some(0));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    refused(&s.update(&["apply"]), "older than updates.max_plan_age");
    assert!(!exists(&s.path("applied")));
}
