//! The weblog collector end to end: the real binary follows access logs that the tests
//! write and rotate while writing, and a real Apache (Debian's `apache2`) serving
//! requests with known outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::apache::Apache;
use common::{Exporter, Exposition};

fn line(i: usize, status: u16, method: &str) -> String {
    format!(
        "192.0.2.{} - - [25/Nov/2026:10:00:{:02} +0000] \"{method} /item/{i} HTTP/1.1\" {status} {} \"https://shop.example/\" \"test-agent/1.0\"\n",
        i % 250,
        i % 60,
        100 + i
    )
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn counter(m: &Exposition, name: &str, log: &str) -> f64 {
    m.value(name, &[("log", log)]).unwrap_or(-1.0)
}

/// Scrapes until every log's line counter reaches its expected value (and then checks
/// it does not go past it).
fn wait_lines(e: &Exporter, want: &[(&str, f64)]) -> Exposition {
    let t = Instant::now();
    loop {
        let m = e.metrics();
        let got: Vec<f64> = want
            .iter()
            .map(|(log, _)| counter(&m, "shoehub_weblog_lines_total", log))
            .collect();
        if want.iter().zip(&got).all(|((_, w), g)| g >= w) {
            std::thread::sleep(Duration::from_millis(400));
            let m = e.metrics();
            for (log, w) in want {
                assert_eq!(
                    counter(&m, "shoehub_weblog_lines_total", log),
                    *w,
                    "log {log}: counted more lines than were written"
                );
            }
            return m;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "lines counted {got:?}, written {want:?}; log:\n{}",
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(logs: &[(&str, &Path, &str)]) -> String {
    let mut c = String::from("weblogs:\n");
    for (name, path, extra) in logs {
        c.push_str(&format!(
            "  - name: {name}\n    path: {}\n    format: combined\n{extra}",
            path.display()
        ));
    }
    c
}

/// Writes `n` lines, one every `pause`, calling `rotate` before line `at`.
fn write_lines(path: &Path, n: usize, at: usize, pause: Duration, mut rotate: impl FnMut()) {
    for i in 0..n {
        if i == at {
            rotate();
        }
        append(path, &line(i, 200, "GET"));
        if i % 50 == 0 {
            std::thread::sleep(pause);
        }
    }
}

#[test]
fn every_rotation_style_counts_each_line_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let renamed = d.join("renamed.log");
    let truncated = d.join("truncated.log");
    let deleted = d.join("deleted.log");
    let late = d.join("late.log");
    // History before the start is not counted.
    for p in [&renamed, &truncated, &deleted] {
        for i in 0..100 {
            append(p, &line(i, 200, "GET"));
        }
    }
    let e = Exporter::start(&config(&[
        ("renamed", &renamed, ""),
        ("truncated", &truncated, ""),
        ("deleted", &deleted, ""),
        ("late", &late, ""),
    ]));
    let m = e.metrics();
    for log in ["renamed", "truncated", "deleted", "late"] {
        assert_eq!(counter(&m, "shoehub_weblog_lines_total", log), 0.0, "{log}");
    }
    let pause = Duration::from_millis(7);
    let n = 3000;
    std::thread::scope(|s| {
        // Rename and create: the writer keeps writing to the renamed file for a while
        // (as a server does until it reopens its log), then to the new one.
        s.spawn(|| {
            let mut old = OpenOptions::new().append(true).open(&renamed).unwrap();
            for i in 0..n {
                if i == n / 2 {
                    std::fs::rename(&renamed, d.join("renamed.log.1")).unwrap();
                    for j in 0..40 {
                        old.write_all(line(10_000 + j, 200, "GET").as_bytes())
                            .unwrap();
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    old = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&renamed)
                        .unwrap();
                }
                old.write_all(line(i, 200, "GET").as_bytes()).unwrap();
                if i % 50 == 0 {
                    std::thread::sleep(pause);
                }
            }
        });
        // copytruncate, twice, right after a burst the follower has not read yet.
        s.spawn(|| {
            let mut writer = OpenOptions::new().append(true).open(&truncated).unwrap();
            for i in 0..n {
                if i == n / 3 || i == 2 * n / 3 {
                    let copy = d.join(if i == n / 3 {
                        "truncated.log-20261124"
                    } else {
                        "truncated.log.1"
                    });
                    std::fs::copy(&truncated, &copy).unwrap();
                    OpenOptions::new()
                        .write(true)
                        .open(&truncated)
                        .unwrap()
                        .set_len(0)
                        .unwrap();
                }
                writer.write_all(line(i, 200, "GET").as_bytes()).unwrap();
                if i % 50 == 0 && !(n / 3 - 200..n / 3).contains(&i) {
                    std::thread::sleep(pause);
                }
            }
        });
        // Deleted, then created again.
        s.spawn(|| {
            write_lines(&deleted, n, n / 2, pause, || {
                std::fs::remove_file(&deleted).unwrap();
                std::thread::sleep(Duration::from_millis(300));
            });
        });
        // Not there at start.
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            write_lines(&late, n, usize::MAX, pause, || {});
        });
    });
    let m = wait_lines(
        &e,
        &[
            ("renamed", (n + 40) as f64),
            ("truncated", n as f64),
            ("deleted", n as f64),
            ("late", n as f64),
        ],
    );
    for log in ["renamed", "truncated", "deleted", "late"] {
        assert_eq!(
            counter(&m, "shoehub_weblog_parse_errors_total", log),
            0.0,
            "{log}"
        );
    }
    assert_eq!(
        m.value(
            "shoehub_http_requests_total",
            &[("log", "late"), ("method", "GET"), ("code", "200")]
        ),
        Some(n as f64)
    );
    let bytes: f64 = (0..n).map(|i| (100 + i) as f64).sum();
    assert_eq!(
        counter(&m, "shoehub_http_response_size_bytes_total", "late"),
        bytes
    );
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "weblog")]
        ),
        Some(1.0)
    );
}

#[test]
fn bad_input_is_counted_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let junk = d.join("junk.log");
    let empty = d.join("empty.log");
    let flaky = d.join("flaky.log");
    let sub = d.join("vhost");
    let gone = sub.join("access.log");
    std::fs::write(&empty, "").unwrap();
    std::fs::write(&flaky, "").unwrap();
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(&gone, "").unwrap();
    let e = Exporter::start(&config(&[
        ("junk", &junk, "    from_beginning: true\n"),
        ("empty", &empty, ""),
        ("flaky", &flaky, ""),
        ("gone", &gone, ""),
    ]));
    // A good line, a malformed one, a status that is not three digits, binary garbage,
    // a 1 MB line, and a good line after it: 6 lines, 2 requests.
    let mut text = line(1, 503, "POST");
    text.push_str("this is not an access log line\n");
    text.push_str(&line(2, 200, "GET").replace(" 200 ", " 2000 "));
    let garbage: Vec<u8> = (0..=255u8)
        .filter(|b| *b != b'\n')
        .cycle()
        .take(3000)
        .collect();
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(&garbage);
    bytes.push(b'\n');
    bytes.extend(std::iter::repeat_n(b'x', 1 << 20));
    bytes.push(b'\n');
    bytes.extend_from_slice(line(3, 418, "BREW").as_bytes());
    // Half a line: held until its newline arrives.
    let next = line(4, 200, "HEAD");
    let (first, second) = next.split_at(40);
    bytes.extend_from_slice(first.as_bytes());
    std::fs::write(&junk, &bytes).unwrap();
    let m = wait_lines(&e, &[("junk", 6.0), ("empty", 0.0)]);
    assert_eq!(
        counter(&m, "shoehub_weblog_parse_errors_total", "junk"),
        4.0
    );
    assert_eq!(
        m.value(
            "shoehub_http_requests_total",
            &[("log", "junk"), ("method", "POST"), ("code", "503")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "shoehub_http_requests_total",
            &[("log", "junk"), ("method", "other"), ("code", "418")]
        ),
        Some(1.0)
    );
    append(&junk, second);
    let m = wait_lines(&e, &[("junk", 7.0)]);
    assert_eq!(
        m.value(
            "shoehub_http_requests_total",
            &[("log", "junk"), ("method", "HEAD"), ("code", "200")]
        ),
        Some(1.0)
    );
    // The 1 MB line was skipped, not held.
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", e.child.id()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 40 * 1024, "peak RSS {rss_kb} kB after a 1 MB line");

    // A file replaced by a directory: reported, the others go on, and it recovers.
    std::fs::remove_file(&flaky).unwrap();
    std::fs::create_dir(&flaky).unwrap();
    let t = Instant::now();
    loop {
        let m = e.metrics();
        if m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "weblog")],
        ) == Some(0.0)
        {
            assert!(!m.family("shoehub_weblog_lines_total").is_empty());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "a directory in place of the log went unnoticed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        e.stderr().contains("is not a regular file"),
        "{}",
        e.stderr()
    );
    std::fs::remove_dir(&flaky).unwrap();
    append(&flaky, &line(1, 200, "GET"));
    let m = wait_lines(&e, &[("flaky", 1.0)]);
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "weblog")]
        ),
        Some(1.0)
    );
}

#[test]
fn a_real_apache_access_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let apache = Apache::start(dir.path(), &log);
    let e = Exporter::start(&format!(
        "weblogs:\n  - name: apache\n    path: {}\n    format: combined_duration\n",
        log.display()
    ));
    // (method, path, expected status, how many)
    let plan: &[(&str, &str, u16, usize)] = &[
        ("GET", "/", 200, 7),
        ("HEAD", "/", 200, 2),
        ("GET", "/old-shoes", 302, 3),
        ("GET", "/no-such-shoe", 404, 4),
        ("GET", "/checkout", 503, 5),
    ];
    for &(method, path, status, n) in plan {
        for _ in 0..n {
            let r = common::http(method, apache.port, path, &[]);
            assert_eq!(r.status, status, "{method} {path}");
        }
    }
    let total: usize = plan.iter().map(|p| p.3).sum();
    let m = wait_lines(&e, &[("apache", total as f64)]);
    assert_eq!(
        counter(&m, "shoehub_weblog_parse_errors_total", "apache"),
        0.0
    );
    for &(method, _, status, _) in plan {
        let want: usize = plan
            .iter()
            .filter(|p| p.0 == method && p.2 == status)
            .map(|p| p.3)
            .sum();
        let code = status.to_string();
        assert_eq!(
            m.value(
                "shoehub_http_requests_total",
                &[("log", "apache"), ("method", method), ("code", &code)]
            ),
            Some(want as f64),
            "{method} {status}"
        );
    }
    // Every request has a duration; the error ratio is what was sent.
    assert_eq!(
        m.value(
            "shoehub_http_request_duration_seconds_count",
            &[("log", "apache")]
        ),
        Some(total as f64)
    );
    assert_eq!(
        m.value(
            "shoehub_http_request_duration_seconds_bucket",
            &[("log", "apache"), ("le", "+Inf")]
        ),
        Some(total as f64)
    );
    assert_eq!(
        m.types
            .get("shoehub_http_request_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    let errors: f64 = m
        .family("shoehub_http_requests_total")
        .iter()
        .filter(|s| s.labels.get("code").is_some_and(|c| c.starts_with('5')))
        .map(|s| s.value)
        .sum();
    assert_eq!(errors, 5.0);
}
