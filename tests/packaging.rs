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
        .args(["--syntax-check", "-i"])
        .arg(packaging("ansible/inventory.ini"))
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
        "the shop's services restart only on change"
    );
    assert!(
        text.contains("any_errors_fatal: true") && text.contains("hosts: \"canary:"),
        "the canary goes first, and the first failed host stops the rollout"
    );
    assert!(
        text.contains("loop: \"{{ shoehub_debs | default([]) }}\"")
            && text.contains("deb: ")
            && !text.contains("upgrade: ")
            && !text.contains("name: \"{{ shoehub_packages }}\""),
        "only the reviewed package files are installed, never by name from the archive"
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
        "shoehub-check.service",
        "shoehub-check.timer",
    ] {
        let text = std::fs::read_to_string(packaging(&format!("systemd/{unit}")))
            .unwrap()
            .replace("/usr/bin/shoehub-exporter", BIN);
        let p = dir.path().join(unit);
        std::fs::write(&p, text).unwrap();
        units.push(p);
    }
    // The units' man: links name the pages the binary writes.
    let man = tempfile::tempdir().unwrap();
    let pages = man.path().join("man1");
    let st = Command::new(BIN)
        .args(["generate", "man", "--out"])
        .arg(&pages)
        .output()
        .unwrap();
    assert!(st.status.success());
    let out = Command::new(analyze)
        .arg("verify")
        .args(&units)
        .env("MANPATH", man.path())
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

#[test]
fn the_packaged_config_is_the_documented_reference_and_loads() {
    let shipped = std::fs::read_to_string(packaging("config.yml")).unwrap();
    let reference = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    assert!(
        reference.contains(&format!("```yaml\n{shipped}```\n")),
        "docs/configuration.md's reference differs from packaging/config.yml"
    );
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(packaging("config.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each commented-out section loads too, once uncommented (its files aside).
    for section in ["mysql:", "probes:", "weblogs:", "dashboard:"] {
        let mut uncommented = String::new();
        let mut inside = false;
        for line in shipped.lines() {
            if line.starts_with(&format!("# {section}")) {
                inside = true;
            } else if !line.starts_with("#   ") && !line.starts_with("#  ") {
                inside = false;
            }
            match line.strip_prefix("# ") {
                Some(rest) if inside => uncommented.push_str(rest),
                _ => uncommented.push_str(line),
            }
            uncommented.push('\n');
        }
        assert!(uncommented.contains(&format!("\n{section}")), "{section}");
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.yml");
        // The password file it names is the operator's to create.
        let cfg_text = uncommented.replace(
            "/etc/shoehub-exporter/mysql.password",
            &dir.path().join("pw").display().to_string(),
        );
        std::fs::write(dir.path().join("pw"), "secret\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("pw"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        std::fs::write(&cfg, cfg_text).unwrap();
        let out = Command::new(BIN)
            .arg("check-config")
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{section} uncommented: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
