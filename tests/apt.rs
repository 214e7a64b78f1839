//! The apt collector on this (Debian) host, against apt's own answer, and on a host
//! where apt is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, require_tool, Exporter, Exposition, BIN};

#[test]
fn pending_upgrades_match_apt_on_this_host() {
    let apt_get = require_tool("apt-get", "apt");
    let e = Exporter::start("updates:\n  apt: true\n");
    // The first look at apt runs in the background; wait for it.
    let t = Instant::now();
    let m = loop {
        let m = e.metrics();
        if !m.family("apt_upgrades_pending").is_empty() {
            break m;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "apt was never asked");
        std::thread::sleep(Duration::from_millis(200));
    };
    // apt's own answer, counted here with a parser of the test's own.
    let out = Command::new(apt_get)
        .args(["--just-print", "dist-upgrade"])
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let inst: Vec<&str> = text.lines().filter(|l| l.starts_with("Inst ")).collect();
    let served: f64 = m
        .family("apt_upgrades_pending")
        .iter()
        .map(|s| s.value)
        .sum();
    assert_eq!(served, inst.len() as f64);
    let security_lines = inst.iter().filter(|l| l.contains("-security")).count();
    let security: f64 = m
        .family("apt_upgrades_pending")
        .iter()
        .filter(|s| s.labels["origin"].contains("-security"))
        .map(|s| s.value)
        .sum();
    assert_eq!(security, security_lines as f64);
    assert_eq!(
        m.value("node_reboot_required", &[]),
        Some(if std::path::Path::new("/run/reboot-required").exists() {
            1.0
        } else {
            0.0
        })
    );
    assert!(m.value("apt_upgrades_held", &[]).is_some());
    assert!(m.value("apt_autoremove_pending", &[]).is_some());
    assert!(m.value("apt_package_cache_timestamp_seconds", &[]).unwrap() > 0.0);
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "apt")]),
        Some(1.0)
    );
}

#[test]
fn without_apt_the_collector_says_so_once_and_stays_off() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = dir.path().join("stderr");
    let mut child = Command::new(BIN)
        .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
        .env("PATH", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let body = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break common::http("GET", port, "/metrics", &[]).text();
        }
        assert!(t.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = common::http("GET", port, "/metrics", &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    let m = Exposition::parse(&body);
    assert!(m.family("apt_upgrades_pending").is_empty());
    assert!(m
        .value("shoehub_scrape_collector_success", &[("collector", "apt")])
        .is_none());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("apt-get not found").count(), 1, "{text}");
}
