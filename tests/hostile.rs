//! What a hostile or careless host puts where the exporter reads: FIFOs, devices, huge
//! files, files that clash, files rewritten in place, deeply nested config. None of it
//! may stall a scrape, grow memory without bound or cost more than linear time; each is
//! an error of that one source, and the rest is served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Exporter, BIN};

/// Every scrape of these tests must answer well within the collectors' 5 s timeout;
/// a read that blocks would hold it for the harness' 30 s.
const PROMPT: Duration = Duration::from_secs(5);

fn fifo(path: &Path) {
    shoehub_exporter::sys::mkfifo(path, 0o644).unwrap();
}

fn timed_metrics(e: &Exporter) -> common::Exposition {
    let t = Instant::now();
    let m = e.metrics();
    assert!(t.elapsed() < PROMPT, "a scrape took {:?}", t.elapsed());
    m
}

#[test]
fn fifos_and_devices_where_files_belong_stall_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["textfile", "state", "dest/shop-20261101T000000Z"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("textfile/good.prom"), "site_ok 1\n").unwrap();
    fifo(&d.join("textfile/x.prom"));
    std::os::unix::fs::symlink("/dev/zero", d.join("textfile/zero.prom")).unwrap();
    fifo(&d.join("state/backup.json"));
    fifo(&d.join("dest/shop-20261101T000000Z/manifest.json"));
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {t}\njobs:\n  state_dir: {s}\nbackup:\n  destination: {b}\n",
        t = d.join("textfile").display(),
        s = d.join("state").display(),
        b = d.join("dest").display(),
    ));
    // More scrapes than web.max_requests (the default 40 would be used up by hung ones).
    for _ in 0..50 {
        let m = timed_metrics(&e);
        assert_eq!(m.value("site_ok", &[]), Some(1.0));
        assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(1.0));
    }
    let log = e.stderr();
    assert!(log.contains("a FIFO, not a regular file"), "{log}");
    assert!(
        e.metrics()
            .value(
                "node_textfile_mtime_seconds",
                &[("file", &d.join("textfile/zero.prom").display().to_string())]
            )
            .is_none(),
        "/dev/zero was read"
    );
    assert_eq!(
        e.metrics()
            .value("shoehub_scrape_collector_success", &[("collector", "jobs")]),
        Some(0.0)
    );
    // The FIFOs go: everything recovers.
    for f in ["textfile/x.prom", "textfile/zero.prom", "state/backup.json"] {
        std::fs::remove_file(d.join(f)).unwrap();
    }
    let m = timed_metrics(&e);
    assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(0.0));
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "jobs")]),
        Some(1.0)
    );
}

#[test]
fn an_access_log_replaced_by_a_fifo_freezes_no_other_log() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (a, b) = (d.join("a.log"), d.join("b.log"));
    std::fs::write(&a, "").unwrap();
    std::fs::write(&b, "").unwrap();
    let e = Exporter::start(&format!(
        "weblogs:\n  - name: a\n    path: {}\n  - name: b\n    path: {}\n",
        a.display(),
        b.display()
    ));
    let line = "127.0.0.1 - - [30/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"t\"\n";
    let append = |p: &Path, n: usize| {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
        for _ in 0..n {
            f.write_all(line.as_bytes()).unwrap();
        }
    };
    let requests = |e: &Exporter, log: &str| -> f64 {
        e.metrics()
            .family("shoehub_http_requests_total")
            .iter()
            .filter(|s| s.labels.get("log").map(String::as_str) == Some(log))
            .map(|s| s.value)
            .sum()
    };
    // `a` rotated away and a FIFO put in its place.
    std::fs::remove_file(&a).unwrap();
    fifo(&a);
    append(&b, 3);
    let t = Instant::now();
    while requests(&e, "b") < 3.0 {
        assert!(t.elapsed() < Duration::from_secs(20), "b's counters froze");
        std::thread::sleep(Duration::from_millis(100));
    }
    append(&b, 2);
    while requests(&e, "b") < 5.0 {
        assert!(t.elapsed() < Duration::from_secs(20), "b's counters froze");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = e.stderr();
    assert!(log.contains("not a regular file"), "{log}");
}

#[test]
fn a_fifo_for_a_password_stalls_neither_serve_nor_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("mysql.password");
    // Serving: the password file turns into a FIFO under a running exporter. Every
    // path still answers at once; the MySQL collector fails, saying why.
    std::fs::write(&pw, "secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Exporter::start(&format!(
        "mysql:\n  url: mysql://exporter@127.0.0.1:9/shoe_store_hub\n  password_file: {}\n",
        pw.display()
    ));
    std::fs::remove_file(&pw).unwrap();
    fifo(&pw);
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    for path in ["/-/healthy", "/"] {
        let t = Instant::now();
        assert_eq!(e.get(path, &[]).status, 200);
        assert!(t.elapsed() < PROMPT, "{path} took {:?}", t.elapsed());
    }
    let m = timed_metrics(&e);
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "mysql")]
        ),
        Some(0.0)
    );
    assert!(
        e.stderr().contains("a FIFO, not a regular file"),
        "{}",
        e.stderr()
    );
    drop(e);
    // Checking: `check-config` says what is wrong instead of waiting for a writer.
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = format!(
        "mysql:\n  url: mysql://exporter@127.0.0.1:9/shoe_store_hub\n  password_file: {}\n",
        pw.display()
    );
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, &config).unwrap();
    let mut child = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > PROMPT {
            let _ = child.kill();
            panic!("check-config waits on the FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(
        err.contains(&pw.display().to_string()) && err.contains("a FIFO, not a regular file"),
        "{err}"
    );
}

/// A config file of `n` nested flow sequences, `[[[…]]]`.
fn nested(n: usize) -> String {
    format!("textfile: {}{}\n", "[".repeat(n), "]".repeat(n))
}

#[test]
fn bounds_on_what_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A config nested 100 000 deep is refused at once, naming the line.
    let cfg = d.join("nested.yml");
    std::fs::write(&cfg, nested(100_000)).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("line 1: nested deeper than 32 levels"),
        "{err}"
    );
    // A config of 2 MiB is refused before it is parsed.
    let cfg = d.join("big.yml");
    std::fs::write(&cfg, format!("# {}\n", "x".repeat(2 << 20))).unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("larger than the limit of 1 MiB"), "{err}");

    // A textfile over textfile.max_file_bytes is an error of that file; the files after
    // textfile.max_total_bytes is used up are not read.
    let t = d.join("textfile");
    std::fs::create_dir(&t).unwrap();
    std::fs::write(t.join("a.prom"), "site_a 1\n").unwrap();
    std::fs::write(
        t.join("b.prom"),
        format!("site_b 1\n# {}\n", "x".repeat(3000)),
    )
    .unwrap();
    std::fs::write(
        t.join("c.prom"),
        format!("site_c 1\n# {}\n", "x".repeat(2000)),
    )
    .unwrap();
    std::fs::write(
        t.join("d.prom"),
        format!("site_d 1\n# {}\n", "x".repeat(1500)),
    )
    .unwrap();
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {}\n  max_file_bytes: 2KiB\n  max_total_bytes: 3KiB\n",
        t.display()
    ));
    let m = timed_metrics(&e);
    assert_eq!(m.value("site_a", &[]), Some(1.0));
    assert_eq!(m.value("site_b", &[]), None);
    assert_eq!(m.value("site_c", &[]), Some(1.0));
    assert_eq!(m.value("site_d", &[]), None);
    let log = e.stderr();
    assert!(log.contains("larger than the limit of 2 KiB"), "{log}");
    assert!(log.contains("2 of 4 textfiles failed"), "{log}");
}

/// Two files that share the family `site_orders`, `n` series each.
fn shared_family(d: &Path, n: usize) {
    for (file, shop) in [("a.prom", "a"), ("b.prom", "b")] {
        let mut text = String::from("# TYPE site_orders gauge\n");
        for i in 0..n {
            text.push_str(&format!("site_orders{{shop=\"{shop}\",n=\"{i}\"}} {i}\n"));
        }
        std::fs::write(d.join(file), text).unwrap();
    }
}

/// The textfile collector's own time for a scrape, the least of three (the least is the
/// one a busy machine disturbed least).
fn textfile_seconds(e: &Exporter) -> f64 {
    (0..3)
        .map(|_| {
            timed_metrics(e)
                .value(
                    "shoehub_scrape_collector_duration_seconds",
                    &[("collector", "textfile")],
                )
                .unwrap()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn textfiles_are_checked_against_each_other_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Four times the series take about four times as long (a pairwise check of the
    // files against each other took sixteen times, and 19 s for 50 000).
    shared_family(d, 5_000);
    let e = Exporter::start(&format!("textfile:\n  directory: {}\n", d.display()));
    let small = textfile_seconds(&e);
    shared_family(d, 20_000);
    let large = textfile_seconds(&e);
    assert!(
        large / small < 8.0,
        "5 000 series: {small:.3} s, 20 000: {large:.3} s"
    );
    // The same series as a.prom's first, labels in another order and another value.
    std::fs::write(
        d.join("c.prom"),
        "site_other 1\n# TYPE site_orders gauge\nsite_orders{n=\"0\",shop=\"a\"} 42\n",
    )
    .unwrap();
    // A family's help differs from the first file's.
    std::fs::write(
        d.join("d.prom"),
        "# HELP site_backup_age_seconds Age.\nsite_backup_age_seconds{host=\"x\"} 1\n",
    )
    .unwrap();
    std::fs::write(
        d.join("e.prom"),
        "# HELP site_backup_age_seconds Something else.\nsite_backup_age_seconds{host=\"y\"} 1\n",
    )
    .unwrap();
    let m = timed_metrics(&e);
    assert_eq!(m.family("site_orders").len(), 40_000);
    assert_eq!(
        m.value("site_orders", &[("n", "0"), ("shop", "a")]),
        Some(0.0)
    );
    assert_eq!(m.value("site_other", &[]), None, "c.prom is dropped whole");
    assert_eq!(m.family("site_backup_age_seconds").len(), 1);
    let log = e.stderr();
    assert!(log.contains("2 of 5 textfiles failed"), "{log}");
    assert!(
        log.contains("c.prom: line 3: \\\"site_orders\\\" repeats a series of another file"),
        "{log}"
    );
}

#[test]
fn the_log_never_echoes_what_a_bad_textfile_holds() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    // A link to the exporter's own environment, and a file of secrets.
    std::os::unix::fs::symlink("/proc/self/environ", t.join("environ.prom")).unwrap();
    std::fs::write(
        t.join("a-secrets.prom"),
        "SECRET_TOKEN=hunter2-do-not-log\nsite_ok 1\n",
    )
    .unwrap();
    std::fs::write(
        t.join("label.prom"),
        "site_x{tok=\"hunter2-in-a-label\"} hunter2-as-a-value\n",
    )
    .unwrap();
    std::fs::write(t.join("good.prom"), "site_good 1\n").unwrap();
    let e = Exporter::start(&format!("textfile:\n  directory: {}\n", t.display()));
    let m = timed_metrics(&e);
    assert_eq!(m.value("site_good", &[]), Some(1.0));
    let log = e.stderr();
    assert!(log.contains("3 of 4 textfiles failed"), "{log}");
    assert!(
        log.contains(
            "a-secrets.prom: line 1: invalid metric name: \\\"SECRET_TOKEN\\\" is followed by '='"
        ),
        "{log}"
    );
    assert!(!log.contains("hunter2"), "{log}");
    let path = std::env::var("PATH").unwrap();
    assert!(
        !log.contains(&path),
        "the environment reached the log: {log}"
    );
}

#[test]
fn a_textfile_rewritten_in_place_is_never_half_served() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.prom");
    std::fs::write(
        &path,
        "site_orders{shop=\"a\"} 1\nsite_orders{shop=\"b\"} 1\n",
    )
    .unwrap();
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {}\n",
        dir.path().display()
    ));
    assert_eq!(timed_metrics(&e).family("site_orders").len(), 2);
    // Rewritten in place: truncated, and the first half written.
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"site_orders{shop=\"a\"} 2\nsite_orders{sh")
        .unwrap();
    f.flush().unwrap();
    let m = timed_metrics(&e);
    assert!(m.family("site_orders").is_empty(), "half a file was served");
    assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(1.0));
    assert!(e.stderr().contains("the last line has no newline"));
    // The rest: whole again.
    f.write_all(b"op=\"b\"} 2\n").unwrap();
    drop(f);
    let m = timed_metrics(&e);
    assert_eq!(m.value("site_orders", &[("shop", "b")]), Some(2.0));
    assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(0.0));
}

/// Whether `/-/healthy` answers 200 on a new connection within a few seconds.
fn healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got.starts_with(b"HTTP/1.1 200")
}

#[test]
fn clients_that_never_read_are_cut_and_quiet_ones_closed() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A textfile that makes every answer a megabyte or so.
    let mut text = String::from("# TYPE site_padding gauge\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "site_padding{{n=\"{i}\",pad=\"{}\"}} 1\n",
            "p".repeat(20)
        ));
    }
    std::fs::write(d.join("padding.prom"), text).unwrap();
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {}\nweb:\n  max_connections: 4\n  write_timeout: 1s\n  idle_timeout: 2s\n  header_read_timeout: 30s\n",
        d.display()
    ));
    // Every connection the exporter allows, each with requests it never reads answers to.
    let hogs: Vec<std::net::TcpStream> = (0..4)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", e.port)).unwrap();
            let req = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(40);
            s.write_all(req.as_bytes()).unwrap();
            s
        })
        .collect();
    // Prometheus gets through once the hogs are cut.
    let t = Instant::now();
    loop {
        if healthy(e.port) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "clients that never read hold every connection"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        timed_metrics(&e).value("site_padding", &[("n", "0"), ("pad", &"p".repeat(20))]),
        Some(1.0)
    );
    // The hogs were closed by the exporter: reading what it sent ends, at a close.
    for mut h in hogs {
        h.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            match h.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    // A kept-alive connection that goes quiet is closed after idle_timeout.
    let mut quiet = std::net::TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    quiet
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    quiet
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let t = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match quiet.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) => panic!("the quiet connection was not closed: {err}"),
        }
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

/// A mount table read again (as after every mount or unmount on a host of containers):
/// eight times the mounts cost about eight times as much, not sixty-four (each entry
/// was compared with every earlier one and with every mount of the last list). The
/// table is a file here, which cannot be polled, so every scrape reads it again.
#[test]
fn a_mount_table_is_read_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let procfs = dir.path().join("proc");
    std::fs::create_dir_all(procfs.join("1")).unwrap();
    let table = |n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "{} 22 0:{} / /srv/containers/c{i:05}/rootfs rw,relatime - overlay2 overlay{i} rw,lowerdir=/l{i}\n",
                    i + 100,
                    i + 100
                )
            })
            .collect()
    };
    std::fs::write(procfs.join("1/mountinfo"), table(1000)).unwrap();
    let e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  rootfs: {}\n",
        procfs.display(),
        dir.path().join("root").display()
    ));
    let seconds = |e: &Exporter| -> f64 {
        (0..3)
            .map(|_| {
                timed_metrics(e)
                    .value(
                        "shoehub_scrape_collector_duration_seconds",
                        &[("collector", "filesystem")],
                    )
                    .unwrap()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let small = seconds(&e);
    let m = timed_metrics(&e);
    assert_eq!(m.family("node_filesystem_device_error").len(), 1000);
    std::fs::write(procfs.join("1/mountinfo"), table(8000)).unwrap();
    let large = seconds(&e);
    assert_eq!(
        timed_metrics(&e)
            .family("node_filesystem_device_error")
            .len(),
        8000
    );
    assert!(
        large / small < 20.0,
        "1,000 mounts: {small:.4} s, 8,000: {large:.4} s"
    );
}
