//! What `packaging/` ships is checked by the tools that will read it: Ansible parses the
//! update playbook, systemd verifies the units (with the built binary in place of the
//! installed one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_tool, BIN};

fn packaging(p: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("packaging")
        .join(p)
}

#[test]
fn the_update_playbook_parses() {
    let ansible = require_tool("ansible-playbook", "ansible-core");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(ansible)
        .args(["--syntax-check", "-i", "shoe_store_hub,"])
        .arg(packaging("ansible/update.yml"))
        .env("ANSIBLE_HOME", home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(packaging("ansible/update.yml")).unwrap();
    assert!(
        text.contains("when: upgrade is changed"),
        "apache2 restarts only on change"
    );
    assert!(text.contains("/run/reboot-required"));
}

#[test]
fn the_systemd_units_verify() {
    let analyze = require_tool("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for unit in [
        "shoehub-exporter.service",
        "shoehub-update-plan.service",
        "shoehub-update-plan.timer",
        "shoehub-backup.service",
        "shoehub-backup.timer",
        "shoehub-backup-verify.service",
        "shoehub-backup-verify.timer",
    ] {
        let text = std::fs::read_to_string(packaging(&format!("systemd/{unit}")))
            .unwrap()
            .replace("/usr/local/bin/shoehub-exporter", BIN);
        let p = dir.path().join(unit);
        std::fs::write(&p, text).unwrap();
        units.push(p);
    }
    let out = Command::new(analyze)
        .arg("verify")
        .args(&units)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // Messages about the host's own units (or the missing user) are not about ours.
    let ours: Vec<&str> = text.lines().filter(|l| l.contains("shoehub-")).collect();
    assert!(ours.is_empty(), "{text}");
    let timer = std::fs::read_to_string(packaging("systemd/shoehub-update-plan.timer")).unwrap();
    assert!(timer.contains("OnCalendar=Mon"), "weekly");
    let backup = std::fs::read_to_string(packaging("systemd/shoehub-backup.timer")).unwrap();
    assert!(backup.contains("OnCalendar=*-*-* 02:00:00") && backup.contains("Persistent=true"));
}
