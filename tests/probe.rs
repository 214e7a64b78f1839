//! The shop probe against a real Apache (Debian's apache2 with mod_ssl) serving the shop
//! page over HTTPS with an openssl-made certificate, and against a server that accepts
//! and never answers, a stopped server, redirects and error pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::apache::{Apache, Tls};
use common::tls::issue_for;
use common::{http, Exporter, Exposition};

/// The certificate's notAfter as openssl prints it, in Unix seconds (GNU date parses it).
fn openssl_not_after(pem: &Path) -> f64 {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in"])
        .arg(pem)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let date = text.trim().strip_prefix("notAfter=").unwrap();
    let out = Command::new("date")
        .args(["-u", "-d", date, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn probe(m: &Exposition, name: &str) -> (Option<f64>, Option<f64>) {
    (
        m.value("shoehub_probe_success", &[("probe", name)]),
        m.value("shoehub_probe_http_status_code", &[("probe", name)]),
    )
}

#[test]
fn the_shop_over_https_is_probed_as_a_visitor_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    // A certificate that expires in two days, from a CA the probe is told to trust.
    issue_for(dir.path(), "shop", 2);
    let mut apache = Apache::start_tls(
        dir.path(),
        &dir.path().join("access.log"),
        Tls {
            cert: &dir.path().join("shop.pem"),
            key: &dir.path().join("shop.key"),
        },
    );
    let base = format!("https://localhost:{}", apache.port);
    let ca = dir.path().join("shop-ca.pem");
    let probe_yaml = |name: &str, path: &str, extra: &str| {
        format!(
            "  - name: {name}\n    url: {base}{path}\n    tls_ca_file: {}\n{extra}",
            ca.display()
        )
    };
    let config = [
        "probes:\n".to_owned(),
        probe_yaml("shop", "/", "    expect_body: Shoe Store Hub\n"),
        probe_yaml("wrong_page", "/", "    expect_body: Sandals R Us\n"),
        probe_yaml("moved", "/old-shoes", "    expect_body: Shoe Store Hub\n"),
        probe_yaml(
            "moved_unfollowed",
            "/old-shoes",
            "    follow_redirects: none\n",
        ),
        probe_yaml("checkout", "/checkout", ""),
        probe_yaml(
            "checkout_down_expected",
            "/checkout",
            "    expect_status: [503]\n",
        ),
        // The system's CAs do not know the test CA.
        format!("  - name: untrusted\n    url: {base}/\n"),
        format!(
            "  - name: untrusted_but_skipped\n    url: {base}/\n    insecure_skip_verify: true\n"
        ),
    ]
    .concat();
    let e = Exporter::start(&config);
    let m = e.metrics();
    assert_eq!(
        probe(&m, "shop"),
        (Some(1.0), Some(200.0)),
        "{}",
        e.stderr()
    );
    for phase in ["connect", "tls", "first_byte", "total"] {
        let v = m
            .value(
                "shoehub_probe_duration_seconds",
                &[("probe", "shop"), ("phase", phase)],
            )
            .unwrap();
        assert!(v > 0.0 && v < 5.0, "{phase}: {v}");
    }
    let part = |phase| {
        m.value(
            "shoehub_probe_duration_seconds",
            &[("probe", "shop"), ("phase", phase)],
        )
        .unwrap()
    };
    assert!(part("total") >= part("connect") + part("tls") + part("first_byte"));
    // The earliest expiry of the chain: the two-day certificate, not the CA's 30 days.
    let expiry = m
        .value(
            "shoehub_probe_tls_certificate_expiry_timestamp_seconds",
            &[("probe", "shop")],
        )
        .unwrap();
    assert_eq!(expiry, openssl_not_after(&dir.path().join("shop.pem")));
    assert_eq!(probe(&m, "wrong_page"), (Some(0.0), Some(200.0)));
    assert_eq!(probe(&m, "moved"), (Some(1.0), Some(200.0)));
    assert_eq!(probe(&m, "moved_unfollowed"), (Some(0.0), Some(302.0)));
    assert_eq!(probe(&m, "checkout"), (Some(0.0), Some(503.0)));
    assert_eq!(
        probe(&m, "checkout_down_expected"),
        (Some(1.0), Some(503.0))
    );
    assert_eq!(probe(&m, "untrusted"), (Some(0.0), Some(0.0)));
    assert_eq!(probe(&m, "untrusted_but_skipped"), (Some(1.0), Some(200.0)));
    // A failing probe is a measurement, not a failing collector.
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "probe")]
        ),
        Some(1.0)
    );
    let log = e.stderr();
    assert!(
        log.contains("probe failed") && log.contains("wrong_page"),
        "{log}"
    );
    assert!(log.contains("Sandals R Us"), "{log}");

    // The web server stops: the shop is down.
    apache.stop();
    let m = e.metrics();
    assert_eq!(probe(&m, "shop"), (Some(0.0), Some(0.0)));
    assert!(m
        .value(
            "shoehub_probe_tls_certificate_expiry_timestamp_seconds",
            &[("probe", "shop")]
        )
        .is_none());
    assert!(e.stderr().contains("cannot connect"), "{}", e.stderr());
}

#[test]
fn a_server_that_never_answers_holds_no_scrape_past_its_deadline() {
    // Accepts connections (the kernel's backlog does) and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let e = Exporter::start(&format!(
        "probes:\n  - name: hung\n    url: http://127.0.0.1:{port}/\n    timeout: 30s\n"
    ));
    let t = Instant::now();
    let r = http(
        "GET",
        e.port,
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    );
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    // The deadline is the scrape timeout less the 0.5 s offset.
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    let m = Exposition::parse(&r.text());
    assert_eq!(
        m.value("shoehub_probe_success", &[("probe", "hung")]),
        Some(0.0)
    );
    drop(silent);
}

#[test]
fn bad_probe_settings_are_refused_with_the_key() {
    for (yaml, expect) in [
        (
            "probes:\n  - name: a\n    url: ftp://x/\n",
            "http:// or https://",
        ),
        (
            "probes:\n  - name: a\n    url: http://x/\n  - name: a\n    url: http://y/\n",
            "probes[1].name",
        ),
        (
            "probes:\n  - name: a\n    url: http://x/\n    expect_status: [99]\n",
            "expect_status",
        ),
        (
            "probes:\n  - name: a\n    url: https://x/\n    tls_ca_file: /no/such/ca.pem\n",
            "/no/such/ca.pem",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("c.yml");
        std::fs::write(&cfg, yaml).unwrap();
        let out = Command::new(common::BIN)
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{yaml}: {err}");
        assert!(err.contains(expect), "{yaml}: {err}");
    }
}
