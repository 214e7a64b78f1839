//! `--web.config.file`: TLS, client certificates, basic authentication and response
//! headers, exercised with curl and openssl and scraped by a real Prometheus.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::issue;
use common::{require_tool, Exporter, Prometheus, BIN};

const HOST_ONLY: &str = "jobs:\n  enabled: false\ntextfile:\n  enabled: false\n";

/// curl's answer: HTTP status (0 when no HTTP answer came) and body.
fn curl(url: &str, args: &[&str]) -> (u16, String) {
    let out = Command::new(require_tool("curl", "curl"))
        .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes `web` as `DIR/web.yml` and starts the host collectors with it.
fn start_with_web(dir: &Path, web: &str, extra: &[&str]) -> Exporter {
    let path = write(dir, "web.yml", web);
    let mut args = vec!["--web.config.file", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    Exporter::start_with_args(HOST_ONLY, &args)
}

#[test]
fn basic_auth_guards_every_path_and_never_logs_the_password() {
    let _cpu = cpu_bound();
    let dir = tempfile::tempdir().unwrap();
    // Cost 12 (a quarter of a second) makes a bcrypt run stand out from a scrape.
    let hash = bcrypt::hash("scrape-pass-7781", 12).unwrap();
    let e = start_with_web(
        dir.path(),
        &format!(
            "basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n"
        ),
        &["--log.level", "debug"],
    );
    let url = format!("http://127.0.0.1:{}", e.port);
    let r = e.get("/metrics", &[]);
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    assert_eq!(r.header("x-frame-options"), Some("deny"));
    for path in ["/", "/-/healthy", "/nothing"] {
        assert_eq!(e.get(path, &[]).status, 401, "{path}");
    }
    let (code, _) = curl(&format!("{url}/metrics"), &["-u", "prometheus:wrong"]);
    assert_eq!(code, 401);
    let (code, _) = curl(
        &format!("{url}/metrics"),
        &["-u", "nobody:scrape-pass-7781"],
    );
    assert_eq!(code, 401);
    let t = Instant::now();
    let (code, body) = curl(
        &format!("{url}/metrics"),
        &["-u", "prometheus:scrape-pass-7781"],
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("node_cpu_seconds_total{"));
    let first = t.elapsed();
    // Remembered: the next scrapes cost no bcrypt run, so twenty of them take less than
    // a few first ones.
    let t = Instant::now();
    for _ in 0..20 {
        let (code, _) = curl(
            &format!("{url}/metrics"),
            &["-u", "prometheus:scrape-pass-7781"],
        );
        assert_eq!(code, 200);
    }
    assert!(
        t.elapsed() < first * 5,
        "remembered passes should be faster than the first: {:?} for 20 vs {first:?}",
        t.elapsed()
    );
    let (_, body) = curl(
        &format!("{url}/metrics"),
        &["-u", "prometheus:scrape-pass-7781", "-D", "-"],
    );
    assert!(body
        .to_ascii_lowercase()
        .contains("x-content-type-options: nosniff"));
    // Refused: three scrapes (none, a wrong password, an unknown user), three other paths.
    assert!(
        body.contains("shoehub_exporter_http_requests_total{code=\"401\",handler=\"metrics\"} 3\n"),
        "{body}"
    );
    assert!(
        body.contains("shoehub_exporter_http_requests_total{code=\"401\",handler=\"other\"} 3\n")
    );
    let log = e.stderr();
    assert!(log.contains("basic authentication failed"), "{log}");
    assert!(log.contains("basic_auth=true"), "{log}");
    assert!(
        !log.contains("scrape-pass-7781") && !log.contains("wrong"),
        "{log}"
    );
}

#[test]
fn tls_serves_https_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    issue(dir.path(), "first");
    issue(dir.path(), "second");
    std::fs::copy(dir.path().join("first.pem"), dir.path().join("server.pem")).unwrap();
    std::fs::copy(dir.path().join("first.key"), dir.path().join("server.key")).unwrap();
    // Relative names are taken from the web config file's directory.
    let e = start_with_web(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\n",
        &[],
    );
    let url = format!("https://localhost:{}/metrics", e.port);
    let first_ca = dir.path().join("first-ca.pem");
    let second_ca = dir.path().join("second-ca.pem");
    let (code, body) = curl(&url, &["--cacert", first_ca.to_str().unwrap()]);
    assert_eq!(code, 200, "{}", e.stderr());
    assert!(body.contains("node_memory_MemTotal_bytes "));
    // TLS 1.3 and 1.2 both; plain HTTP gets no HTTP answer.
    let (code, _) = curl(
        &url,
        &[
            "--cacert",
            first_ca.to_str().unwrap(),
            "--tlsv1.2",
            "--tls-max",
            "1.2",
        ],
    );
    assert_eq!(code, 200);
    let (code, _) = curl(&format!("http://127.0.0.1:{}/metrics", e.port), &[]);
    assert_eq!(code, 0);
    // A client that trusts only the other CA refuses the certificate.
    let (code, _) = curl(&url, &["--cacert", second_ca.to_str().unwrap()]);
    assert_eq!(code, 0);
    // A broken renewal (half-written certificate) is logged, and the certificate in
    // use stays.
    std::fs::write(
        dir.path().join("server.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .unwrap();
    let t = Instant::now();
    while !e.stderr().contains("cannot be loaded") {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "broken renewal not noticed: {}",
            e.stderr()
        );
        // Connections make the exporter look at the files.
        let _ = curl(&url, &["--cacert", first_ca.to_str().unwrap()]);
        std::thread::sleep(Duration::from_millis(300));
    }
    let (code, _) = curl(&url, &["--cacert", first_ca.to_str().unwrap()]);
    assert_eq!(
        code,
        200,
        "the certificate in use must stay: {}",
        e.stderr()
    );
    // Renewed on disk (key first, as tools do): served within the recheck interval,
    // without a restart.
    std::fs::copy(dir.path().join("second.key"), dir.path().join("server.key")).unwrap();
    std::fs::copy(dir.path().join("second.pem"), dir.path().join("server.pem")).unwrap();
    let t = Instant::now();
    loop {
        let (code, _) = curl(&url, &["--cacert", second_ca.to_str().unwrap()]);
        if code == 200 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "renewed certificate not served: {}",
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(e.stderr().contains("loaded again"), "{}", e.stderr());
}

#[test]
fn client_certificates_are_required_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    issue(dir.path(), "server");
    issue(dir.path(), "client");
    issue(dir.path(), "stranger");
    let e = start_with_web(
        dir.path(),
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
        &[],
    );
    let url = format!("https://localhost:{}/metrics", e.port);
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let ca = ["--cacert".to_owned(), p("server-ca.pem")];
    let (code, _) = curl(&url, &[&ca[0], &ca[1]]);
    assert_eq!(code, 0, "no client certificate must not get an answer");
    let (code, _) = curl(
        &url,
        &[
            &ca[0],
            &ca[1],
            "--cert",
            &p("stranger.pem"),
            "--key",
            &p("stranger.key"),
        ],
    );
    assert_eq!(
        code, 0,
        "a certificate from another CA must not get an answer"
    );
    let (code, body) = curl(
        &url,
        &[
            &ca[0],
            &ca[1],
            "--cert",
            &p("client.pem"),
            "--key",
            &p("client.key"),
        ],
    );
    assert_eq!(code, 200, "{}", e.stderr());
    assert!(body.contains("node_load1 "));
}

/// Held by the tests that keep both cores busy with bcrypt (the flood of wrong
/// passwords) or need a scrape to finish within Prometheus' timeout, so that they do
/// not run at once.
fn cpu_bound() -> std::sync::MutexGuard<'static, ()> {
    static CPU: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CPU.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let _cpu = cpu_bound();
    let dir = tempfile::tempdir().unwrap();
    issue(dir.path(), "server");
    let hash = bcrypt::hash("prom-pass-3312", 6).unwrap();
    let e = start_with_web(
        dir.path(),
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\n"
        ),
        &[],
    );
    let password_file = write(dir.path(), "prom.password", "prom-pass-3312");
    let prom = Prometheus::start(&format!(
        "  - job_name: shoehub\n    scrape_interval: 3s\n    scrape_timeout: 3s\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    basic_auth:\n      username: prometheus\n      password_file: {pw}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n  - job_name: wrong_password\n    scrape_interval: 10s\n    scrape_timeout: 10s\n    scheme: https\n    tls_config:\n      ca_file: {ca}\n      server_name: localhost\n    basic_auth:\n      username: prometheus\n      password: not-it\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
        ca = dir.path().join("server-ca.pem").display(),
        pw = password_file.display(),
        port = e.port
    ));
    // A minute, and 3 s a scrape: the other tests here run bcrypt at cost 12 meanwhile
    // (unoptimised), which can starve a TLS handshake and a password check. The wrong
    // password comes from the same address, which has one unchecked password checked
    // at a time (the others get 429 until it is done): every 10 s, so that the right
    // one's first check finds the address free.
    let up = prom.wait_for("up{job=\"shoehub\"} == 1", Duration::from_secs(60));
    assert_eq!(up.len(), 1, "{}", prom.log());
    let cpu = prom.wait_for(
        "count(node_cpu_seconds_total{job=\"shoehub\"}) > 0",
        Duration::from_secs(10),
    );
    assert_eq!(cpu.len(), 1);
    let refused = prom.wait_for("up{job=\"wrong_password\"} == 0", Duration::from_secs(30));
    assert_eq!(refused.len(), 1);

    // `check` reaches the exporter as Prometheus does: over TLS, with a user's password.
    let check = |password: &str, mode: u32| {
        let pw = write(dir.path(), "check.password", &format!("{password}\n"));
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).unwrap();
        let cfg = write(
            dir.path(),
            "check.yml",
            &format!(
                "check:\n  exporter_url: https://localhost:{port}/metrics\n  exporter_ca_file: {ca}\n  exporter_username: prometheus\n  exporter_password_file: {pw}\n",
                port = e.port,
                ca = dir.path().join("server-ca.pem").display(),
                pw = pw.display()
            ),
        );
        let out = Command::new(BIN)
            .args(["check", "--only", "exporter", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = check("prom-pass-3312", 0o600);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.starts_with("ok       exporter  https://localhost:"),
        "{text}"
    );
    let (code, text) = check("not-it", 0o600);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("refused the credentials (401)"), "{text}");
    let (code, text) = check("prom-pass-3312", 0o644);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("mode 0644") && text.contains("chmod 600"),
        "{text}"
    );
    assert!(
        !text.contains("prom-pass-3312"),
        "the password is printed: {text}"
    );
}

#[test]
fn bad_web_config_files_are_refused_with_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.yml", HOST_ONLY);
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    for (text, words) in [
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n",
            "missing.pem",
        ),
        (
            "tls_server_config:\n  cert_file: garbage.pem\n  key_file: garbage.pem\n",
            "certificate",
        ),
        ("tls_server_config:\n  certfile: a.pem\n", "line 2"),
        (
            "basic_auth_users:\n  bob: plain-text\n",
            "not a bcrypt hash",
        ),
    ] {
        let web = write(dir.path(), "web.yml", text);
        for args in [
            vec!["check-config", "--config", config.to_str().unwrap()],
            vec![
                "--config",
                config.to_str().unwrap(),
                "--web.listen-address",
                "127.0.0.1:0",
            ],
        ] {
            let out = Command::new(BIN)
                .args(&args)
                .args(["--web.config.file", web.to_str().unwrap()])
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(78), "{args:?} {text:?}: {stderr}");
            assert!(stderr.contains(words), "{args:?} {text:?}: {stderr}");
        }
    }
    // A good one passes the check.
    issue(dir.path(), "server");
    let web = write(
        dir.path(),
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    );
    let out = Command::new(BIN)
        .args(["check-config", "--config", config.to_str().unwrap()])
        .args(["--web.config.file", web.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("web.yml: valid"));
}

/// A raw `GET /metrics` with basic authentication; the status, or 0 without an answer.
fn status_with(port: u16, user_password: &str) -> u16 {
    use base64::Engine as _;
    let b = base64::engine::general_purpose::STANDARD.encode(user_password);
    common::http(
        "GET",
        port,
        "/metrics",
        &[("Authorization", &format!("Basic {b}"))],
    )
    .status
}

#[test]
fn a_flood_of_wrong_passwords_costs_bounded_work_and_queues_no_right_one() {
    let _cpu = cpu_bound();
    let dir = tempfile::tempdir().unwrap();
    // Cost 10, the toolkit's usual: some 50 ms a check when optimised.
    let hash = bcrypt::hash("flood-pass-5521", 10).unwrap();
    let e = start_with_web(
        dir.path(),
        &format!("basic_auth_users:\n  prometheus: {hash}\n"),
        &[],
    );
    let port = e.port;
    let stop = std::sync::atomic::AtomicBool::new(false);
    let denied = std::sync::atomic::AtomicUsize::new(0);
    let busy = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        // The flood comes from another address than Prometheus (127.0.0.2, through
        // curl's --interface), sixteen clients at once, each trying again at once.
        for i in 0..16 {
            let (stop, denied, busy) = (&stop, &denied, &busy);
            let url = format!("http://127.0.0.1:{port}/metrics");
            s.spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (code, _) = curl(
                        &url,
                        &[
                            "--interface",
                            "127.0.0.2",
                            "-u",
                            &format!("prometheus:guess-{i}"),
                        ],
                    );
                    match code {
                        401 => denied.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        429 => busy.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                        other => panic!("a wrong password got {other}"),
                    };
                }
            });
        }
        // The flood is under way: some checks have failed.
        let t = Instant::now();
        while denied.load(std::sync::atomic::Ordering::Relaxed) < 3 {
            assert!(t.elapsed() < Duration::from_secs(30), "no check ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The right password, never seen yet, from Prometheus' address: one check of
        // the flood's address ahead of it at most, so 200 at the first try (429 would
        // say it was turned away).
        let mut tries = 0;
        loop {
            tries += 1;
            let code = status_with(port, "prometheus:flood-pass-5521");
            if code == 200 {
                break;
            }
            assert_eq!(code, 429, "try {tries}");
            assert!(
                tries < 3,
                "the right password was turned away {tries} times"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Seen once: it never waits again, however long the flood goes on.
        for _ in 0..20 {
            assert_eq!(status_with(port, "prometheus:flood-pass-5521"), 200);
        }
        // Wrong passwords were checked at most ten a second; the rest were turned away.
        let checks_before = denied.load(std::sync::atomic::Ordering::Relaxed);
        let t = Instant::now();
        std::thread::sleep(Duration::from_secs(2));
        let checked = denied.load(std::sync::atomic::Ordering::Relaxed) - checks_before;
        let rate = checked as f64 / t.elapsed().as_secs_f64();
        assert!(rate <= 11.0, "{rate:.1} failed checks a second");
        assert!(busy.load(std::sync::atomic::Ordering::Relaxed) > 0);
    });
}
