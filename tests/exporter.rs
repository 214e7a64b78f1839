//! The exporter binary end to end: families and values against the kernel's own files,
//! HTTP behaviour, limits, deadlines, configuration errors and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_collector_succeeded, http, require_tool, Exporter, Exposition, BIN};

/// Families every host must have, with their types and label keys.
const FAMILIES: &[(&str, &str, &[&str])] = &[
    ("node_cpu_seconds_total", "counter", &["cpu", "mode"]),
    ("node_boot_time_seconds", "gauge", &[]),
    ("node_context_switches_total", "counter", &[]),
    ("node_memory_MemTotal_bytes", "gauge", &[]),
    ("node_memory_MemAvailable_bytes", "gauge", &[]),
    ("node_memory_SwapFree_bytes", "gauge", &[]),
    ("node_memory_SReclaimable_bytes", "gauge", &[]),
    ("node_memory_HugePages_Total", "gauge", &[]),
    (
        "node_filesystem_size_bytes",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_avail_bytes",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_free_bytes",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_files",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_files_free",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    (
        "node_filesystem_readonly",
        "gauge",
        &["device", "fstype", "mountpoint"],
    ),
    ("node_disk_reads_completed_total", "counter", &["device"]),
    ("node_disk_writes_completed_total", "counter", &["device"]),
    ("node_disk_read_bytes_total", "counter", &["device"]),
    ("node_disk_written_bytes_total", "counter", &["device"]),
    ("node_disk_io_time_seconds_total", "counter", &["device"]),
    ("node_network_receive_bytes_total", "counter", &["device"]),
    ("node_network_transmit_bytes_total", "counter", &["device"]),
    ("node_network_receive_packets_total", "counter", &["device"]),
    ("node_network_receive_errs_total", "counter", &["device"]),
    ("node_network_receive_drop_total", "counter", &["device"]),
    ("node_load1", "gauge", &[]),
    ("node_load5", "gauge", &[]),
    ("node_load15", "gauge", &[]),
    ("node_time_seconds", "gauge", &[]),
    (
        "node_uname_info",
        "gauge",
        &[
            "domainname",
            "machine",
            "nodename",
            "release",
            "sysname",
            "version",
        ],
    ),
    (
        "shoehub_exporter_build_info",
        "gauge",
        &["revision", "version"],
    ),
    ("shoehub_scrape_collector_success", "gauge", &["collector"]),
    (
        "shoehub_scrape_collector_duration_seconds",
        "gauge",
        &["collector"],
    ),
];

#[test]
fn every_family_has_its_type_and_labels() {
    let e = Exporter::start("");
    let m = e.metrics();
    for (name, kind, labels) in FAMILIES {
        assert_eq!(
            m.types.get(*name).map(String::as_str),
            Some(*kind),
            "type of {name}"
        );
        let samples = m.family(name);
        assert!(!samples.is_empty(), "no samples for {name}");
        for s in samples {
            let keys: Vec<&str> = s.labels.keys().map(String::as_str).collect();
            assert_eq!(keys, *labels, "labels of {name}");
        }
    }
    for c in ["cpu", "memory", "filesystem", "disk", "network", "host"] {
        assert_eq!(
            m.value("shoehub_scrape_collector_success", &[("collector", c)]),
            Some(1.0),
            "collector {c} failed: {}",
            e.stderr()
        );
    }
    if Path::new("/proc/pressure/cpu").exists() {
        assert!(m
            .value("node_pressure_cpu_waiting_seconds_total", &[])
            .is_some());
    }
    assert_eq!(
        m.family("shoehub_exporter_build_info")[0].labels["version"],
        env!("CARGO_PKG_VERSION")
    );
}

fn meminfo_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn proc_stat_cpu0() -> Vec<u64> {
    let text = std::fs::read_to_string("/proc/stat").unwrap();
    let line = text.lines().find(|l| l.starts_with("cpu0 ")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect()
}

#[test]
fn values_agree_with_the_kernel() {
    let e = Exporter::start("");
    let before = proc_stat_cpu0();
    let m = e.metrics();
    let after = proc_stat_cpu0();

    assert_eq!(
        m.value("node_memory_MemTotal_bytes", &[]).unwrap(),
        (meminfo_kb("MemTotal") * 1024) as f64
    );
    assert_eq!(
        m.value("node_memory_SwapTotal_bytes", &[]).unwrap(),
        (meminfo_kb("SwapTotal") * 1024) as f64
    );

    // CPU seconds lie between two reads of /proc/stat taken around the scrape.
    let hz = 100.0;
    for (i, mode) in [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .enumerate()
    {
        let v = m
            .value("node_cpu_seconds_total", &[("cpu", "0"), ("mode", mode)])
            .unwrap();
        assert!(
            v >= before[i] as f64 / hz - 1e-9 && v <= after[i] as f64 / hz + 1e-9,
            "cpu0 {mode}: {v} not within [{}, {}]",
            before[i] as f64 / hz,
            after[i] as f64 / hz
        );
    }
    let cpus = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    assert_eq!(m.family("node_cpu_seconds_total").len(), cpus * 8);

    // Size of / equal to what statvfs says; free space close (it moves).
    let st = statvfs("/");
    let size = m
        .value("node_filesystem_size_bytes", &[("mountpoint", "/")])
        .expect("/ is reported");
    assert_eq!(size, (st.blocks * st.block_size) as f64);
    let files = m
        .value("node_filesystem_files", &[("mountpoint", "/")])
        .unwrap();
    assert_eq!(files, st.files as f64);

    // Boot time as /proc/stat says; time close to now.
    let btime: f64 = std::fs::read_to_string("/proc/stat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!((m.value("node_boot_time_seconds", &[]).unwrap() - btime).abs() <= 1.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((m.value("node_time_seconds", &[]).unwrap() - now).abs() < 5.0);

    // Every network device of /proc/net/dev, with its receive bytes not going backwards.
    let netdev = std::fs::read_to_string("/proc/net/dev").unwrap();
    for line in netdev.lines().skip(2) {
        let (dev, rest) = line.split_once(':').unwrap();
        let rx_after: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        let v = m
            .value(
                "node_network_receive_bytes_total",
                &[("device", dev.trim())],
            )
            .unwrap_or_else(|| panic!("device {dev} missing"));
        assert!(v <= rx_after, "{dev}: {v} > {rx_after}");
    }
}

/// What coreutils' `stat -f` says of a filesystem: an independent reading.
struct FsStat {
    blocks: u64,
    block_size: u64,
    files: u64,
}

fn statvfs(path: &str) -> FsStat {
    let out = Command::new("stat")
        .args(["-f", "-c", "%b %S %c", path])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let v: Vec<u64> = text
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    FsStat {
        blocks: v[0],
        block_size: v[1],
        files: v[2],
    }
}

#[test]
fn promtool_finds_nothing_but_what_node_exporter_gets_itself() {
    let promtool = require_tool("promtool", "prometheus");
    // With an access log too, so that its families (a histogram among them) are checked.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(
        &log,
        "203.0.113.9 - - [25/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 500 12 \"-\" \"t\" 1500\n",
    )
    .unwrap();
    let e = Exporter::start(&format!(
        "weblogs:\n  - name: shop\n    path: {}\n    format: combined_duration\n    from_beginning: true\n",
        log.display()
    ));
    let mut body = Vec::new();
    for _ in 0..50 {
        body = e.get("/metrics", &[]).body;
        if String::from_utf8_lossy(&body)
            .contains("shoehub_http_request_duration_seconds_count{log=\"shop\"} 1")
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        String::from_utf8_lossy(&body)
            .contains("shoehub_http_requests_total{code=\"500\",log=\"shop\",method=\"GET\"} 1"),
        "the access log was not counted"
    );
    let check = |body: &[u8]| -> Vec<String> {
        let mut child = Command::new(&promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    // What promtool says of node_exporter's own names (camelCase /proc fields, entropy
    // in bits), by family prefix and finding: the same names here may get the same.
    let (_node, node_port) = common::start_node_exporter();
    let kind = |finding: &str| -> String {
        let (name, message) = finding.split_once(' ').unwrap_or((finding, ""));
        let prefix: Vec<&str> = name.splitn(3, '_').take(2).collect();
        format!("{} {message}", prefix.join("_"))
    };
    let peer: Vec<String> = check(&common::http("GET", node_port, "/metrics", &[]).body)
        .iter()
        .map(|f| kind(f))
        .collect();
    let ours = check(&body);
    let unexpected: Vec<&String> = ours.iter().filter(|f| !peer.contains(&kind(f))).collect();
    assert!(unexpected.is_empty(), "promtool findings: {unexpected:#?}");
    // The check really ran: MemTotal and friends are always reported as camelCase.
    assert!(ours.len() > 3, "promtool printed no findings at all");
}

#[test]
fn content_negotiation_routes_and_methods() {
    let e = Exporter::start("");
    let text = e.get("/metrics", &[]);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(text
        .text()
        .contains("# TYPE node_cpu_seconds_total counter\n"));
    assert!(!text.text().contains("# EOF"));

    let prom_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let om = e.get("/metrics", &[("Accept", prom_accept)]);
    assert_eq!(
        om.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = om.text();
    assert!(body.contains("# TYPE node_cpu_seconds counter\n# UNIT node_cpu_seconds seconds\n"));
    assert!(body.contains("\nnode_cpu_seconds_total{"));
    assert!(body.ends_with("# EOF\n"));

    let gz = e.get("/metrics", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut plain = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut plain)
        .unwrap();
    assert!(plain.contains("node_load1 "));

    let landing = e.get("/", &[]);
    assert_eq!(landing.status, 200);
    assert!(
        landing.text().contains("href=\"/metrics\"")
            && landing.text().contains(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(e.get("/-/healthy", &[]).status, 200);
    assert_eq!(e.get("/nope", &[]).status, 404);
    assert_eq!(e.get("/metricsx", &[]).status, 404);
    let post = http("POST", e.port, "/metrics", &[("Content-Length", "0")]);
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    let head = http("HEAD", e.port, "/metrics", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn telemetry_path_flag_overrides_the_config() {
    let e = Exporter::start_with_args(
        "web:\n  telemetry_path: /other\n",
        &["--web.telemetry-path", "/m"],
    );
    assert_eq!(e.get("/m", &[]).status, 200);
    assert_eq!(e.get("/other", &[]).status, 404);
    assert_eq!(e.get("/metrics", &[]).status, 404);
}

/// A procfs tree whose files are fixtures: real /proc text of a Debian 12 host, one
/// malformed line in /proc/stat, and a mount table naming the real `/`.
fn fixture_procfs(dir: &Path) {
    std::fs::create_dir_all(dir.join("self")).unwrap();
    std::fs::create_dir_all(dir.join("net")).unwrap();
    std::fs::write(
        dir.join("stat"),
        "cpu  200 0 100 10000 5 0 1 0 0 0\ncpu0 100 0 50 5000 5 0 1 0 0 0\ncpu1 100 0 50 5000 0 0 0 0 0 0\ncpuZ garbage\nbtime 1700000000\nctxt 42\nprocesses 7\nprocs_running 2\nprocs_blocked 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("meminfo"),
        "MemTotal:  2048 kB\nMemAvailable: 1024 kB\nHugePages_Total: 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("diskstats"),
        " 254 0 vda 1 2 3 4 5 6 7 8 0 10 11 0 0 0 0 0 0\n 254 1 vda1 1 2 3 4 5 6 7 8 0 10 11 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("net/dev"),
        "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n",
    )
    .unwrap();
    std::fs::write(dir.join("loadavg"), "0.50 0.25 0.10 1/100 1234\n").unwrap();
    std::fs::write(
        dir.join("self/mountinfo"),
        "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n",
    )
    .unwrap();
}

#[test]
fn fixture_procfs_tree_with_a_malformed_line() {
    let dir = tempfile::tempdir().unwrap();
    fixture_procfs(dir.path());
    let e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  host:\n    pressure: false\n",
        dir.path().display()
    ));
    let m = e.metrics();
    // The malformed cpuZ line fails the cpu collector, but what parsed is served.
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "cpu")]),
        Some(0.0)
    );
    assert_eq!(
        m.value("node_cpu_seconds_total", &[("cpu", "1"), ("mode", "user")]),
        Some(1.0)
    );
    assert_eq!(m.value("node_context_switches_total", &[]), Some(42.0));
    assert_eq!(
        m.value("node_memory_MemTotal_bytes", &[]),
        Some(2_097_152.0)
    );
    assert_eq!(
        m.value("node_disk_reads_completed_total", &[("device", "vda")]),
        Some(1.0)
    );
    assert_eq!(
        m.value("node_disk_reads_completed_total", &[("device", "vda1")]),
        None
    );
    assert_eq!(
        m.value("node_network_transmit_bytes_total", &[("device", "eth0")]),
        Some(2000.0)
    );
    assert_eq!(m.value("node_load5", &[]), Some(0.25));
    assert_eq!(
        m.value(
            "node_filesystem_readonly",
            &[("mountpoint", "/"), ("device", "/dev/vda1")]
        ),
        Some(0.0)
    );
    for c in ["memory", "filesystem", "disk", "network", "host"] {
        assert_eq!(
            m.value("shoehub_scrape_collector_success", &[("collector", c)]),
            Some(1.0),
            "{c}"
        );
    }
    assert!(
        e.stderr().contains("collector failed") && e.stderr().contains("malformed"),
        "{}",
        e.stderr()
    );
}

/// Pointed at another procfs tree, the process collector still describes the exporter:
/// that tree's `self` is some other process (here one that started at boot, with a
/// 12345-byte address space), and it has no `fd`.
#[test]
fn process_series_describe_the_exporter_whatever_the_procfs() {
    let dir = tempfile::tempdir().unwrap();
    fixture_procfs(dir.path());
    std::fs::write(
        dir.path().join("self/stat"),
        "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 900 900 0 0 20 0 1 0 0 12345 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 0 0 0 0\n",
    )
    .unwrap();
    let e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  host:\n    pressure: false\n",
        dir.path().display()
    ));
    let m = e.metrics();
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "process")]
        ),
        Some(1.0),
        "{}",
        e.stderr()
    );
    let own = std::fs::read_to_string(format!("/proc/{}/stat", e.child.id())).unwrap();
    let vsize: f64 = own[own.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(20)
        .unwrap()
        .parse()
        .unwrap();
    let served = m.value("process_virtual_memory_bytes", &[]).unwrap();
    assert_ne!(served, 12345.0, "the tree's self was read");
    assert!(
        (served - vsize).abs() / vsize < 0.5,
        "served {served}, the exporter's is {vsize}"
    );
    assert!(m.value("process_open_fds", &[]).unwrap() >= 3.0);
    // Started just now, by the host's clock and boot time (the tree's btime is not the
    // host's, so the live one is used).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = m.value("process_start_time_seconds", &[]).unwrap();
    assert!((now - start).abs() < 120.0, "start {start}, now {now}");
}

fn mkfifo(path: &Path) {
    shoehub_exporter::sys::mkfifo(path, 0o600).unwrap();
}

#[test]
fn a_collector_that_hangs_neither_delays_the_scrape_nor_hides_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fixture_procfs(dir.path());
    // Opening a FIFO without a writer blocks: the host collector hangs in open().
    std::fs::remove_file(dir.path().join("loadavg")).unwrap();
    mkfifo(&dir.path().join("loadavg"));
    let e = Exporter::start(&format!(
        "web:\n  timeout_offset: 500ms\nsystem:\n  procfs: {}\n  host:\n    pressure: false\n    timeout: 30s\n",
        dir.path().display()
    ));
    // Prometheus says 1.5s: the deadline is 1s, not the collector's 30s.
    let t = Instant::now();
    let r = e.get(
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    );
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1400),
        "took {took:?}"
    );
    let m = Exposition::parse(&r.text());
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "host")]),
        Some(0.0)
    );
    assert_eq!(
        m.value("node_memory_MemTotal_bytes", &[]),
        Some(2_097_152.0)
    );
    assert_eq!(
        m.value("node_network_receive_bytes_total", &[("device", "eth0")]),
        Some(1000.0)
    );
    assert!(e.stderr().contains("ran out of time"), "{}", e.stderr());

    // While the first run is still blocked, later scrapes do not wait for it again.
    let t = Instant::now();
    let m = Exposition::parse(
        &e.get(
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
        )
        .text(),
    );
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(
        m.value("shoehub_scrape_collector_success", &[("collector", "host")]),
        Some(0.0)
    );

    // Unblock the hung open, put a regular file in place: the collector recovers.
    let fifo = dir.path().join("loadavg");
    let tmp = dir.path().join("loadavg.new");
    std::fs::write(&tmp, "1.00 2.00 3.00 1/100 1\n").unwrap();
    // The writer stays open until the regular file is in place: a reader that reopens
    // the path in between must not find a writer-less FIFO and block again.
    let writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    std::fs::rename(&tmp, &fifo).unwrap();
    drop(writer);
    let t = Instant::now();
    loop {
        let m = Exposition::parse(&e.get("/metrics", &[]).text());
        if m.value("shoehub_scrape_collector_success", &[("collector", "host")]) == Some(1.0) {
            assert_eq!(m.value("node_load15", &[]), Some(3.0));
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "host collector did not recover: {}",
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn excess_concurrent_scrapes_get_a_quick_503() {
    let dir = tempfile::tempdir().unwrap();
    fixture_procfs(dir.path());
    std::fs::remove_file(dir.path().join("loadavg")).unwrap();
    mkfifo(&dir.path().join("loadavg"));
    let e = Exporter::start(&format!(
        "web:\n  max_requests: 1\nsystem:\n  procfs: {}\n  host:\n    pressure: false\n    timeout: 1500ms\n",
        dir.path().display()
    ));
    let port = e.port;
    let slow = std::thread::spawn(move || http("GET", port, "/metrics", &[]).status);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = e.get("/metrics", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "503 took {:?}",
        t.elapsed()
    );
    // Other endpoints are not limited.
    assert_eq!(e.get("/-/healthy", &[]).status, 200);
    assert_eq!(slow.join().unwrap(), 200);
    // The 503 is counted.
    let m = Exposition::parse(
        &e.get(
            "/metrics",
            &[("X-Prometheus-Scrape-Timeout-Seconds", "0.5")],
        )
        .text(),
    );
    assert_eq!(
        m.value(
            "shoehub_exporter_http_requests_total",
            &[("code", "503"), ("handler", "metrics")]
        ),
        Some(1.0)
    );
}

#[test]
fn a_client_that_sends_headers_byte_by_byte_is_dropped_and_others_are_served() {
    let e = Exporter::start("web:\n  header_read_timeout: 1s\n");
    let mut slow = TcpStream::connect(("127.0.0.1", e.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t = Instant::now();
    let mut closed = false;
    for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaa" {
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        // Meanwhile a normal client is served at once.
        if t.elapsed() < Duration::from_millis(400) {
            assert_eq!(e.get("/-/healthy", &[]).status, 200);
        }
        std::thread::sleep(Duration::from_millis(100));
        if t.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    if !closed {
        let mut buf = [0u8; 512];
        // The server answers 408 or just closes; either way the read ends.
        let n = slow.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            n == 0 || text.starts_with("HTTP/1.1 408"),
            "unexpected: {text}"
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "slow client held for {:?}",
        t.elapsed()
    );
    assert_eq!(e.get("/metrics", &[]).status, 200);
}

#[test]
fn many_concurrent_clients_all_get_well_formed_answers() {
    let e = Exporter::start("web:\n  max_requests: 4\n");
    let port = e.port;
    let handles: Vec<_> = (0..32)
        .map(|_| {
            std::thread::spawn(move || {
                let r = http("GET", port, "/metrics", &[]);
                match r.status {
                    200 => {
                        let m = Exposition::parse(&r.text());
                        assert!(m.value("node_load1", &[]).is_some());
                        // Scrapes that stat the same mounts at once do not take each
                        // other for a blocked statvfs.
                        assert_eq!(
                            m.value(
                                "shoehub_scrape_collector_success",
                                &[("collector", "filesystem")]
                            ),
                            Some(1.0)
                        );
                        200
                    }
                    503 => 503,
                    s => panic!("unexpected status {s}"),
                }
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(statuses.contains(&200));
    assert_eq!(e.get("/-/healthy", &[]).status, 200);
}

fn run_with_config(text: &str) -> (i32, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shoehub.yml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .arg("--web.listen-address")
        .arg("127.0.0.1:1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
        dir,
    )
}

#[test]
fn bad_config_files_name_the_file_the_key_and_the_position() {
    let cases: &[(&str, &[&str])] = &[
        ("web:\n  listen_adress: \"0.0.0.0:1\"\n", &["unknown field `listen_adress`", "line 2 column 3"]),
        (
            "system:\n  filesystem:\n    mount_points_exclude: \"^(/proc\"\n",
            &["system.filesystem.mount_points_exclude", "invalid regular expression", "line 3"],
        ),
        ("web:\n  header_read_timeout: 5 seconds\n", &["web.header_read_timeout", "invalid duration", "line 2"]),
        ("system:\n  cpu:\n    enabled: maybe\n", &["system.cpu.enabled", "expected a boolean", "line 3"]),
        ("web:\n  max_requests: -1\n", &["web.max_requests", "line 2"]),
        ("web:\n  max_connections: 0\n", &["web.max_connections: 0 would refuse every request"]),
        ("web:\n  write_timeout: 0s\n", &["web.write_timeout: 0s would cut every connection"]),
        ("textfile:\n  max_file_bytes: 4MB\n", &["textfile.max_file_bytes", "such as 4MiB", "line 2"]),
        ("jobs:\n  max_json_bytes: 0\n", &["jobs.max_json_bytes: 0 would refuse everything"]),
        ("backup:\n  retention: 0s\n  keep_min: 3\n", &["backup.retention: 0s is under a day", "at least 1d"]),
        ("backup:\n  retention: 12h\n", &["backup.retention: 43200s is under a day"]),
        ("backup:\n  keep_min: 0\n", &["backup.keep_min: 0 would let a prune remove every backup", "at least 1"]),
        ("weblogs:\n  - name: a\n    path: /x.log\n    max_line_bytes: 0\n", &["weblogs[0].max_line_bytes: 0"]),
        ("dashboard:\n  title: x\n  rows:\n    - title: r\n      panels:\n        - title: p\n          span: 13\n", &["dashboard.rows[0].panels[0].span", "span 13", "at line "]),
    ];
    for (text, expected) in cases {
        let (code, stderr, path, _dir) = run_with_config(text);
        assert_eq!(code, 78, "exit code for {text:?}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "file not named: {stderr}"
        );
        for want in *expected {
            assert!(stderr.contains(want), "{want:?} missing from: {stderr}");
        }
        assert_eq!(
            stderr.lines().count(),
            stderr.matches("error:").count().max(1),
            "one message: {stderr}"
        );
    }
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/shoehub.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read config file /nonexistent/shoehub.yml"));
}

#[test]
fn the_plans_dashboard_only_config_is_valid() {
    let seed = include_str!("fixtures/seed-config.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, seed).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the exporter runs with it.
    let e = Exporter::start(seed);
    assert!(e.metrics().value("node_load1", &[]).is_some());
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut e = Exporter::start("");
    assert_eq!(e.get("/-/healthy", &[]).status, 200);
    shoehub_exporter::sys::kill(e.child.id(), shoehub_exporter::sys::SIGTERM);
    let t = Instant::now();
    let status = loop {
        if let Some(s) = e.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}: {}", e.stderr());
    assert!(e.stderr().contains("SIGTERM received"));
}

#[test]
fn sighup_reloads_the_config_and_keeps_it_when_the_new_one_is_bad() {
    use common::wait_until;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("a.prom"), "shop_from_a 1\n").unwrap();
    std::fs::write(b.path().join("b.prom"), "shop_from_b 2\n").unwrap();
    let mut e = Exporter::start(&format!("textfile:\n  directory: {}\n", a.path().display()));
    assert_eq!(e.metrics().value("shop_from_a", &[]), Some(1.0));
    let config = e.stderr_path.with_file_name("config.yml");
    let hup =
        |e: &Exporter| shoehub_exporter::sys::kill(e.child.id(), shoehub_exporter::sys::SIGHUP);

    std::fs::write(
        &config,
        format!(
            "textfile:\n  directory: {}\nupdates:\n  apt: false\n",
            b.path().display()
        ),
    )
    .unwrap();
    hup(&e);
    wait_until("the new textfile directory", || {
        e.metrics().value("shop_from_b", &[]) == Some(2.0)
    });
    let m = e.metrics();
    assert_eq!(
        m.value("shop_from_a", &[]),
        None,
        "the old directory is still read"
    );
    assert!(
        e.stderr().contains("configuration reloaded"),
        "{}",
        e.stderr()
    );

    // A bad config: said in the log, naming the file, and the running one stays.
    std::fs::write(&config, "textfile:\n  directory: [\n").unwrap();
    hup(&e);
    wait_until("the failed reload in the log", || {
        e.stderr().contains("reload failed")
    });
    let log = e.stderr();
    let line = log.lines().find(|l| l.contains("reload failed")).unwrap();
    assert!(line.contains("config.yml"), "{line}");
    assert_eq!(e.metrics().value("shop_from_b", &[]), Some(2.0));
    assert!(e.child.try_wait().unwrap().is_none(), "it exited: {log}");
}

#[test]
fn sigterm_stops_within_five_seconds_while_a_collector_is_stuck() {
    let dir = tempfile::tempdir().unwrap();
    fixture_procfs(dir.path());
    // A FIFO without a writer: the host collector blocks in open() for good, and its
    // own timeout (30 s) holds the scrape that runs it.
    std::fs::remove_file(dir.path().join("loadavg")).unwrap();
    mkfifo(&dir.path().join("loadavg"));
    let mut e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  host:\n    pressure: false\n    timeout: 30s\n",
        dir.path().display()
    ));
    let port = e.port;
    // A scrape in flight, stuck on the collector.
    let scrape = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
    });
    // Wait for the stuck thread: the kernel shows it waiting for the FIFO's writer.
    let t = Instant::now();
    while !std::fs::read_dir(format!("/proc/{}/task", e.child.id()))
        .unwrap()
        .flatten()
        .any(|task| {
            std::fs::read_to_string(task.path().join("wchan"))
                .is_ok_and(|w| w.contains("wait_for_partner") || w.contains("fifo"))
        })
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no collector blocked"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    shoehub_exporter::sys::kill(e.child.id(), shoehub_exporter::sys::SIGTERM);
    let t = Instant::now();
    loop {
        if e.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "still running {:?} after SIGTERM: {}",
            t.elapsed(),
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(e.stderr().contains("stopped"), "{}", e.stderr());
    scrape.join().unwrap();
}

#[test]
fn port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["--web.listen-address", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {addr}")) && err.contains("--web.listen-address"),
        "{err}"
    );
}

/// A tmpfs mounted in the host's (PID 1's) mount namespace for the life of a test.
struct TmpfsMount(tempfile::TempDir);

impl TmpfsMount {
    fn new(options: &str) -> TmpfsMount {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "shoehub-test"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs needs root");
        TmpfsMount(dir)
    }

    fn path(&self) -> &str {
        self.0.path().to_str().unwrap()
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn the_units_sandbox_makes_no_mount_look_read_only_and_hides_none_that_is() {
    // On the host: one tmpfs read-only, one read-write.
    let ro = TmpfsMount::new("ro,size=1m");
    let rw = TmpfsMount::new("size=1m");
    // In the exporter's namespace every mount is read-only: the wrapper checks it.
    let e = Exporter::start_sandboxed("");
    let m = e.metrics();
    let readonly = |mp: &str| m.value("node_filesystem_readonly", &[("mountpoint", mp)]);
    assert_eq!(readonly("/"), Some(0.0), "/ is read-write on the host");
    assert_eq!(readonly(rw.path()), Some(0.0));
    assert_eq!(readonly(ro.path()), Some(1.0));
    // Space is still read through the sandbox.
    assert_eq!(
        m.value("node_filesystem_size_bytes", &[("mountpoint", rw.path())]),
        Some(1024.0 * 1024.0)
    );
    // No mount fails in the sandbox that the same user reaches on the host. (A machine
    // may have a mount below a directory closed to that user; it fails both ways, and
    // only then may the collector report a failure.)
    let failing: Vec<&str> = m
        .family("node_filesystem_device_error")
        .into_iter()
        .filter(|s| s.value == 1.0)
        .map(|s| s.labels["mountpoint"].as_str())
        .collect();
    for mp in &failing {
        assert!(
            common::statfs_fails_on_host_as(common::SANDBOX_USER, mp),
            "{mp} fails in the sandbox, not on the host: {}",
            e.stderr()
        );
    }
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "filesystem")]
        ),
        Some(if failing.is_empty() { 1.0 } else { 0.0 }),
        "{}",
        e.stderr()
    );
}

/// Mounts made for one test, unmounted in reverse order when dropped.
struct Mounts(Vec<std::path::PathBuf>);

impl Mounts {
    fn tmpfs(&mut self, source: &str, at: &Path) {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", source])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs needs root");
        self.0.push(at.to_owned());
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for at in self.0.iter().rev() {
            let _ = Command::new("umount").arg(at).status();
        }
    }
}

#[test]
fn filesystem_series_are_node_exporters_for_stacked_escaped_and_hidden_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut mounts = Mounts(Vec::new());
    // Two mounts on one mount point: both listed, statfs sees the upper one.
    mounts.tmpfs("lower", &root.join("stacked"));
    mounts.tmpfs("upper", &root.join("stacked"));
    // A device name and a mount point with a space, which the mount table escapes.
    mounts.tmpfs("shop data", &root.join("my disk"));
    // A mount covered by a later mount on its parent: listed, but statfs cannot reach it.
    mounts.tmpfs("inner", &root.join("hidden/inner"));
    mounts.tmpfs("cover", &root.join("hidden"));

    let (_node, node_port) = common::start_node_exporter();
    let e = Exporter::start("");
    let ours = e.metrics();
    let peer = Exposition::parse(&String::from_utf8_lossy(
        &http("GET", node_port, "/metrics", &[]).body,
    ));
    let prefix = root.to_str().unwrap();
    let series = |x: &Exposition| -> Vec<String> {
        let mut v: Vec<String> = x
            .samples
            .iter()
            .filter(|s| {
                s.name.starts_with("node_filesystem_")
                    && s.labels
                        .get("mountpoint")
                        .is_some_and(|m| m.starts_with(prefix))
            })
            .map(|s| {
                // Values that both read from one statfs; free space may move between.
                let value = match s.name.as_str() {
                    "node_filesystem_size_bytes"
                    | "node_filesystem_readonly"
                    | "node_filesystem_device_error" => s.value.to_string(),
                    _ => String::new(),
                };
                format!("{}{:?} {value}", s.name, s.labels)
            })
            .collect();
        v.sort();
        v
    };
    let (ours, peer) = (series(&ours), series(&peer));
    assert_eq!(ours, peer, "this exporter, then node_exporter");
    // What the comparison covers, so that it cannot pass on two empty lists.
    let stacked = format!("{prefix}/stacked");
    for device in ["lower", "upper"] {
        assert!(
            ours.iter()
                .any(|s| s.starts_with("node_filesystem_size_bytes")
                    && s.contains(&format!("\"device\": \"{device}\""))
                    && s.contains(&stacked)),
            "{device}: {ours:#?}"
        );
    }
    assert!(
        ours.iter()
            .any(|s| s.contains(r#""device": "shop\\040data""#)
                && s.contains(&format!("{prefix}/my disk"))),
        "{ours:#?}"
    );
    let hidden: Vec<&String> = ours.iter().filter(|s| s.contains("inner")).collect();
    assert_eq!(hidden.len(), 1, "{hidden:#?}");
    assert!(hidden[0].starts_with("node_filesystem_device_error") && hidden[0].ends_with(" 1"));
}

#[test]
fn scheduler_statistics_are_node_exporters_series() {
    let procfs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schedstat/linux-6.1-two-cpus");
    let flag = format!("--path.procfs={}", procfs.display());
    let (_node, node_port) = common::start_node_exporter_with(&[
        &flag,
        "--collector.disable-defaults",
        "--collector.schedstat",
    ]);
    let e = Exporter::start(&format!("system:\n  procfs: {}\n", procfs.display()));
    let ours = e.metrics().series_with_prefix(&["node_schedstat_"]);
    let peer = common::scrape_port(node_port).series_with_prefix(&["node_schedstat_"]);
    assert_eq!(peer.len(), 6, "node_exporter gave {peer:#?}");
    assert_eq!(ours, peer, "this exporter, then node_exporter");
    common::assert_collector_succeeded(&e, &e.metrics(), "schedstat");
}

/// Unusual mount table lines, read by node_exporter and this exporter from the same
/// procfs tree, with the mount points made under a root of the test's own (so that
/// statvfs answers the same for both): escaped blanks and backslashes in mount points
/// and devices, several optional fields, none, a bind mount, FUSE and network types, a
/// stacked mount over an earlier one, and types and points both leave out by default.
#[test]
fn unusual_mount_table_lines_are_node_exporters_series() {
    let dir = tempfile::tempdir().unwrap();
    let procfs = dir.path().join("proc");
    let rootfs = dir.path().join("root");
    let table = [
        r"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro",
        r"30 22 8:2 / /srv/my\040shop rw,nosuid,nodev shared:7 master:3 propagate_from:2 - ext4 /dev/sda2 rw",
        r"31 22 8:3 / /srv/tab\011and\134slash rw - xfs /dev/sda3 rw,attr2",
        r"32 22 8:2 /data /srv/bound ro,relatime shared:7 - ext4 /dev/sda2 rw",
        r"33 22 0:52 / /opt/sshfs rw,nosuid,nodev,relatime shared:40 - fuse.sshfs user@host:/home/u rw,user_id=0,group_id=0",
        r"34 22 0:53 / /opt/nfs rw,relatime shared:41 - nfs4 server:/export rw,vers=4.2",
        r"35 22 0:54 / /opt/stacked rw - tmpfs first rw",
        r"36 35 0:55 / /opt/stacked rw - tmpfs second rw,size=1024k",
        r"37 22 0:56 / /opt/with\040device rw - tmpfs my\040tmp rw",
        r"38 22 0:5 / /dev rw,nosuid - devtmpfs udev rw",
        r"39 22 0:21 / /proc rw - proc proc rw",
        r"40 22 0:57 / /opt/auto rw - autofs systemd-1 rw,fd=29",
        r"41 22 7:0 / /snap/core/1 ro - squashfs /dev/loop0 ro",
    ];
    // The same table as /proc/PID/mounts shows it, which node_exporter before 1.9
    // reads: source, mount point, type, the mount's options then the superblock's.
    let mounts: String = table
        .iter()
        .map(|l| {
            let (mount, sb) = l.split_once(" - ").unwrap();
            let m: Vec<&str> = mount.split(' ').collect();
            let f: Vec<&str> = sb.split(' ').collect();
            let own: Vec<&str> = f[2]
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect();
            let options = std::iter::once(m[5])
                .chain(own)
                .collect::<Vec<_>>()
                .join(",");
            format!("{} {} {} {options} 0 0\n", f[1], m[4], f[0])
        })
        .collect();
    for sub in ["1", "self"] {
        std::fs::create_dir_all(procfs.join(sub)).unwrap();
        std::fs::write(procfs.join(sub).join("mountinfo"), table.join("\n") + "\n").unwrap();
        std::fs::write(procfs.join(sub).join("mounts"), &mounts).unwrap();
    }
    for point in [
        "srv/my shop",
        "srv/tab\tand\\slash",
        "srv/bound",
        "opt/sshfs",
        "opt/nfs",
        "opt/stacked",
        "opt/with device",
        "dev",
        "proc",
        "opt/auto",
        "snap/core/1",
    ] {
        std::fs::create_dir_all(rootfs.join(point)).unwrap();
    }
    let (_node, node_port) = common::start_node_exporter_with(&[
        &format!("--path.procfs={}", procfs.display()),
        &format!("--path.rootfs={}", rootfs.display()),
        "--collector.disable-defaults",
        "--collector.filesystem",
    ]);
    let e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  rootfs: {}\n",
        procfs.display(),
        rootfs.display()
    ));
    // The values are the test root's filesystem's, which moves between two scrapes:
    // the series are compared by their labels, and the values that do not move.
    let labels = |m: &Exposition| -> Vec<String> {
        m.samples
            .iter()
            .filter(|s| s.name.starts_with("node_filesystem_"))
            .map(|s| {
                let steady = ["node_filesystem_readonly", "node_filesystem_device_error"]
                    .contains(&s.name.as_str());
                let value = if steady {
                    s.value.to_string()
                } else {
                    String::new()
                };
                format!("{}{:?} {value}", s.name, s.labels)
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    // node_exporter 1.5 decodes `\040` and `\011` in mount points but not `\134`, the
    // kernel's escape of a backslash, so its statvfs of that mount fails; this exporter
    // decodes it and reads the mount: that line is compared apart.
    let backslash = |v: Vec<String>| -> Vec<String> {
        v.into_iter().filter(|s| !s.contains("slash")).collect()
    };
    let peer = labels(&common::scrape_port(node_port));
    let m = e.metrics();
    let ours = labels(&m);
    assert!(peer.len() > 40, "node_exporter gave {peer:#?}");
    assert_eq!(
        backslash(ours),
        backslash(peer),
        "this exporter, then node_exporter"
    );
    assert_eq!(
        m.value(
            "node_filesystem_device_error",
            &[
                ("device", "/dev/sda3"),
                ("fstype", "xfs"),
                ("mountpoint", "/srv/tab\tand\\slash")
            ]
        ),
        Some(0.0)
    );
    assert_collector_succeeded(&e, &m, "filesystem");
}

#[test]
fn raid_arrays_are_node_exporters_series() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mdstat");
    for case in [
        "raid1-failed-raid5-recovering",
        "raid10-check-raid6-resync-pending-raid0",
        "linear-reshape-resync-delayed-spare",
    ] {
        let procfs = fixtures.join(case);
        let flag = format!("--path.procfs={}", procfs.display());
        let (_node, node_port) = common::start_node_exporter_with(&[
            &flag,
            "--collector.disable-defaults",
            "--collector.mdadm",
        ]);
        let e = Exporter::start(&format!("system:\n  procfs: {}\n", procfs.display()));
        let ours = e.metrics().series_with_prefix(&["node_md_"]);
        let peer = common::scrape_port(node_port).series_with_prefix(&["node_md_"]);
        assert!(peer.len() > 20, "{case}: node_exporter gave {peer:#?}");
        assert_eq!(ours, peer, "{case}: this exporter, then node_exporter");
        let m = e.metrics();
        assert_eq!(
            m.value(
                "shoehub_scrape_collector_success",
                &[("collector", "mdadm")]
            ),
            Some(1.0),
            "{}",
            e.stderr()
        );
    }
}

/// A sysfs tree of the network devices a shop host has besides its NIC, written here:
/// a bond with two slaves, a bridge, a veth pair's end, a VLAN, a WireGuard tunnel
/// (no hardware address, no carrier counters), a device that is down, loopback. Each
/// has the attribute files its kind has (a virtual device has no `speed` to read).
fn virtual_net_sysfs(root: &Path) {
    let net = root.join("class/net");
    let device = |name: &str, kind: u32, flags: &str, operstate: &str, extra: &[(&str, &str)]| {
        let dir = net.join(name);
        std::fs::create_dir_all(dir.join("statistics")).unwrap();
        let index = name.len() + usize::from(name.as_bytes()[0]);
        let mut files: Vec<(String, String)> = [
            ("addr_assign_type", "0"),
            ("address", "02:42:ac:11:00:02"),
            ("broadcast", "ff:ff:ff:ff:ff:ff"),
            ("carrier", "1"),
            ("carrier_changes", "2"),
            ("carrier_down_count", "1"),
            ("carrier_up_count", "1"),
            ("dev_id", "0x0"),
            ("dormant", "0"),
            ("flags", flags),
            ("ifalias", ""),
            ("link_mode", "0"),
            ("mtu", "1500"),
            ("name_assign_type", "3"),
            ("netdev_group", "0"),
            ("operstate", operstate),
            ("tx_queue_len", "1000"),
            ("statistics/rx_nohandler", "0"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        files.push(("type".into(), kind.to_string()));
        files.push(("ifindex".into(), index.to_string()));
        files.push(("iflink".into(), index.to_string()));
        for (k, v) in extra {
            files.retain(|(f, _)| f != k);
            if !v.is_empty() || *k == "ifalias" {
                files.push((k.to_string(), v.to_string()));
            }
        }
        for (f, v) in files {
            std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
        }
    };
    device(
        "eth0",
        1,
        "0x1003",
        "up",
        &[("speed", "1000"), ("duplex", "full")],
    );
    device(
        "eth1",
        1,
        "0x1803",
        "up",
        &[
            ("speed", "1000"),
            ("duplex", "full"),
            ("ifalias", "bond slave"),
        ],
    );
    device(
        "bond0",
        1,
        "0x1443",
        "up",
        &[
            ("addr_assign_type", "3"),
            ("speed", "2000"),
            ("duplex", "full"),
        ],
    );
    std::fs::create_dir_all(net.join("bond0/bonding")).unwrap();
    std::fs::write(net.join("bond0/bonding/slaves"), "eth0 eth1\n").unwrap();
    device(
        "br0",
        1,
        "0x1003",
        "up",
        &[("addr_assign_type", "3"), ("tx_queue_len", "0")],
    );
    std::fs::create_dir_all(net.join("br0/bridge")).unwrap();
    device(
        "veth1a2b",
        1,
        "0x1003",
        "up",
        &[("addr_assign_type", "1"), ("iflink", "9")],
    );
    device(
        "eth0.20",
        1,
        "0x1003",
        "lowerlayerdown",
        &[("carrier", ""), ("dormant", "")],
    );
    device(
        "wg0",
        65534,
        "0x91",
        "unknown",
        &[
            ("address", ""),
            ("broadcast", ""),
            ("tx_queue_len", "500"),
            ("mtu", "1420"),
        ],
    );
    device(
        "eth2",
        1,
        "0x1002",
        "down",
        &[("carrier", ""), ("dormant", ""), ("speed", "-1")],
    );
    device(
        "lo",
        772,
        "0x9",
        "unknown",
        &[
            ("address", "00:00:00:00:00:00"),
            ("broadcast", "00:00:00:00:00:00"),
            ("mtu", "65536"),
        ],
    );
}

/// Bonds, bridges, veths, VLANs, tunnels and a device that is down, from a sysfs tree
/// read by both exporters: node_exporter 1.5's series, one for one (its node_network_info
/// has no `adminstate`, which 1.6 added; that label is checked against the flags).
#[test]
fn virtual_network_devices_are_node_exporters_series() {
    let dir = tempfile::tempdir().unwrap();
    virtual_net_sysfs(dir.path());
    let flag = format!("--path.sysfs={}", dir.path().display());
    let (_node, node_port) = common::start_node_exporter_with(&[
        &flag,
        "--collector.disable-defaults",
        "--collector.netclass",
    ]);
    let e = Exporter::start(&format!("system:\n  sysfs: {}\n", dir.path().display()));
    let m = e.metrics();
    assert_collector_succeeded(&e, &m, "netclass");
    for (device, admin) in [("eth0", "up"), ("eth2", "down"), ("wg0", "up")] {
        let info = m.family("node_network_info");
        let info = info.iter().find(|s| s.labels["device"] == device).unwrap();
        assert_eq!(info.labels["adminstate"], admin, "{device}");
    }
    // node_exporter's families (its netclass collector's alone; this exporter's
    // network collector reads the host's /proc/net/dev beside), series by series.
    let theirs = common::scrape_port(node_port);
    let families: Vec<&str> = theirs
        .types
        .keys()
        .map(String::as_str)
        .filter(|f| f.starts_with("node_network_"))
        .collect();
    let of_families = |v: Vec<String>| -> Vec<String> {
        v.into_iter()
            .filter(|s| families.iter().any(|f| s.starts_with(&format!("{f}{{"))))
            .collect()
    };
    let peer = of_families(theirs.series_with_prefix(&["node_network_"]));
    let ours: Vec<String> = of_families(m.series_with_prefix(&["node_network_"]))
        .into_iter()
        .map(without_adminstate)
        .collect();
    assert!(peer.len() > 100, "node_exporter gave {peer:#?}");
    let missing: Vec<&String> = peer.iter().filter(|s| !ours.contains(s)).collect();
    let extra: Vec<&String> = ours.iter().filter(|s| !peer.contains(s)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "node_exporter's only: {missing:#?}\nthis exporter's only: {extra:#?}"
    );
}

/// Started with systemd's default for a service (a soft limit of 1,024 open files under
/// a higher hard one), the exporter raises its soft limit to the hard one, as Go
/// programs do.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_one() {
    let prlimit = common::require_tool("prlimit", "util-linux");
    let prlimit = prlimit.display().to_string();
    let e = Exporter::start_under(&[&prlimit, "--nofile=1024:4096", "--"], "", &[]);
    assert_eq!(e.metrics().value("process_max_fds", &[]), Some(4096.0));
}

/// A host with hundreds of network devices (a veth per container) under a descriptor
/// limit far below the devices' attribute files: netclass succeeds on every scrape,
/// the exporter keeps answering, and the descriptors it holds stay a few dozen.
#[test]
fn many_network_devices_do_not_exhaust_the_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("class/net");
    for i in 0..300 {
        let d = net.join(format!("veth{i:03}"));
        std::fs::create_dir_all(d.join("statistics")).unwrap();
        for (f, v) in [
            ("addr_assign_type", "1"),
            ("address", "02:42:ac:11:00:02"),
            ("broadcast", "ff:ff:ff:ff:ff:ff"),
            ("carrier", "1"),
            ("carrier_changes", "2"),
            ("dev_id", "0x0"),
            ("flags", "0x1003"),
            ("ifalias", ""),
            ("mtu", "1500"),
            ("operstate", "up"),
            ("type", "1"),
            ("tx_queue_len", "1000"),
            ("statistics/rx_nohandler", "0"),
        ] {
            std::fs::write(d.join(f), format!("{v}\n")).unwrap();
        }
        std::fs::write(d.join("ifindex"), format!("{}\n", i + 10)).unwrap();
        std::fs::write(d.join("iflink"), format!("{}\n", i + 10)).unwrap();
    }
    // 256 descriptors: what the 300 devices' 23 attribute files would need twenty-seven
    // times over; the hard limit too, so that the exporter cannot raise it.
    let prlimit = common::require_tool("prlimit", "util-linux");
    let prlimit = prlimit.display().to_string();
    let e = Exporter::start_under(
        &[&prlimit, "--nofile=256:256", "--"],
        &format!("system:\n  sysfs: {}\n", dir.path().display()),
        &[],
    );
    for _ in 0..5 {
        let m = e.metrics();
        assert_collector_succeeded(&e, &m, "netclass");
        assert_eq!(m.family("node_network_mtu_bytes").len(), 300);
        let fds = m.value("process_open_fds", &[]).unwrap();
        assert!(fds < 70.0, "{fds} descriptors open");
    }
    assert!(
        !e.stderr().contains("Too many open files"),
        "{}",
        e.stderr()
    );
}

/// The descriptors the exporter holds, from /proc.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Out of descriptors (idle connections hold every one, under a hard limit it cannot
/// raise), the exporter answers a scrape on a connection it already holds, with only the
/// collectors that needed another file failing; connections that arrive meanwhile wait
/// in the listen queue instead of being lost, and are answered once others close.
#[test]
fn out_of_descriptors_a_collector_fails_alone_and_the_server_keeps_accepting() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.prom");
    std::fs::write(&file, "shop_orders_open 3\n").unwrap();
    let prlimit = common::require_tool("prlimit", "util-linux");
    let prlimit = prlimit.display().to_string();
    const LIMIT: usize = 128;
    let mut e = Exporter::start_under(
        &[&prlimit, &format!("--nofile={LIMIT}:{LIMIT}"), "--"],
        &format!(
            "web:\n  header_read_timeout: 120s\n  idle_timeout: 120s\ntextfile:\n  directory: {}\n",
            dir.path().display()
        ),
        &[],
    );
    let pid = e.child.id();
    assert_eq!(e.metrics().value("shop_orders_open", &[]), Some(3.0));
    // The connection the next scrape is sent on, then idle ones until the exporter
    // says it cannot accept another; the last waits in the listen queue.
    let mut probe = TcpStream::connect(e.address()).unwrap();
    let mut idle = Vec::new();
    while !e.stderr().contains("accept failed") {
        assert!(
            idle.len() < LIMIT,
            "{LIMIT} connections and no failed accept"
        );
        let before = open_fds(pid);
        idle.push(TcpStream::connect(e.address()).unwrap());
        common::wait_until("the exporter to accept or refuse a connection", || {
            open_fds(pid) > before || e.stderr().contains("accept failed")
        });
    }
    common::wait_until("the exporter to hold every descriptor", || {
        open_fds(pid) >= LIMIT
    });
    // The textfile changed: the collector must open it and cannot; the others answer
    // from the files they keep open.
    std::fs::write(&file, "shop_orders_open 4\n").unwrap();
    probe
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = Vec::new();
    probe.read_to_end(&mut answer).unwrap();
    let r = common::parse_response(&answer, false);
    assert_eq!(r.status, 200, "{}", r.text());
    let m = Exposition::parse(&r.text());
    assert_eq!(
        m.value(
            "node_scrape_collector_success",
            &[("collector", "textfile")]
        ),
        Some(0.0),
        "{}",
        r.text()
    );
    assert_eq!(m.value("shop_orders_open", &[]), None);
    for collector in ["memory", "cpu", "disk", "network", "filesystem", "host"] {
        assert_collector_succeeded(&e, &m, collector);
    }
    assert!(e.stderr().contains("Too many open files"), "{}", e.stderr());
    // More connections with their requests wait in the listen queue; once the idle
    // connections close, each is answered.
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(e.address()).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        waiting.push(c);
    }
    drop(idle);
    for mut c in waiting {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).unwrap();
        let r = common::parse_response(&answer, false);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("shop_orders_open 4"), "{}", r.text());
    }
    assert_collector_succeeded(&e, &e.metrics(), "textfile");
    assert!(
        e.stderr().contains("accepting connections again"),
        "{}",
        e.stderr()
    );
    assert!(e.child.try_wait().unwrap().is_none(), "the exporter exited");
}

/// A series as `series_with_prefix` writes it, without its `adminstate` label, which
/// node_exporter 1.6 added and Debian's 1.5 lacks.
fn without_adminstate(s: String) -> String {
    match s.find("\"adminstate\": ") {
        Some(i) => {
            let end = s[i..].find(", ").map_or(s.len(), |j| i + j + 2);
            format!("{}{}", &s[..i], &s[end..])
        }
        None => s,
    }
}

#[test]
fn network_device_series_are_node_exporters_on_this_host() {
    // The host's own devices through the real sysfs, where this exporter takes most
    // attributes from the kernel's list over rtnetlink and node_exporter 1.5 reads
    // sysfs alone: the series and their values must be the same.
    let (_node, node_port) =
        common::start_node_exporter_with(&["--collector.disable-defaults", "--collector.netclass"]);
    let e = Exporter::start("");
    let mut last = String::new();
    // A counter (carrier changes) may move between the two scrapes: a few tries.
    let same = (0..5).any(|_| {
        let peer = common::scrape_port(node_port);
        let families: Vec<&str> = peer
            .types
            .keys()
            .map(String::as_str)
            .filter(|f| f.starts_with("node_network_"))
            .collect();
        assert!(families.len() >= 15, "node_exporter gave {families:?}");
        // A family name is a prefix of another's (`node_network_carrier` of
        // `node_network_carrier_changes_total`): only the peer's families count.
        let of_families = |m: &Exposition| -> Vec<String> {
            m.series_with_prefix(&families)
                .into_iter()
                .filter(|s| families.iter().any(|f| s.starts_with(&format!("{f}{{"))))
                .collect()
        };
        let mine = e.metrics();
        // node_exporter 1.6 and later label node_network_info with `adminstate`, the
        // UP flag; Debian's 1.5 does not: checked here, then left out.
        for info in mine.family("node_network_info") {
            let device = &info.labels["device"];
            let up = mine
                .value("node_network_flags", &[("device", device)])
                .unwrap() as i64
                & 1;
            let want = if up == 1 { "up" } else { "down" };
            assert_eq!(info.labels["adminstate"], want, "{device}");
        }
        let ours: Vec<String> = of_families(&mine)
            .into_iter()
            .map(without_adminstate)
            .collect();
        let theirs = of_families(&peer);
        assert!(theirs.iter().any(|s| s.contains("\"lo\"")), "{theirs:#?}");
        last = format!("node_exporter: {theirs:#?}\nthis exporter: {ours:#?}");
        ours == theirs
    });
    assert!(same, "{last}");
    assert_collector_succeeded(&e, &e.metrics(), "netclass");
    assert!(
        !e.stderr().contains("no rtnetlink socket"),
        "{}",
        e.stderr()
    );
}

#[test]
fn network_devices_read_the_same_in_the_units_sandbox_with_and_without_netlink() {
    // As the shipped unit runs it (its RestrictAddressFamilies= applied with seccomp,
    // as systemd does), and as a unit that leaves AF_NETLINK out would: netclass reads
    // the kernel's list in the first, sysfs alone in the second, and says so once.
    let shipped = common::unit_address_families();
    assert!(shipped.iter().any(|f| f == "AF_NETLINK"), "{shipped:?}");
    let without: Vec<String> = shipped.into_iter().filter(|f| f != "AF_NETLINK").collect();
    let with = Exporter::start_sandboxed("");
    let sandbox = common::sandbox_allowing(common::SANDBOX_USER, &without);
    let sandbox: Vec<&str> = sandbox.iter().map(String::as_str).collect();
    let plain = Exporter::start_under(&sandbox, "", &[]);
    let network = |e: &Exporter| {
        let m = e.metrics();
        assert_collector_succeeded(e, &m, "netclass");
        m.series_with_prefix(&[
            "node_network_mtu_bytes",
            "node_network_up",
            "node_network_info",
            "node_network_iface_id",
            "node_network_protocol_type",
            "node_network_transmit_queue_length",
        ])
    };
    let theirs = network(&with);
    assert!(theirs.iter().any(|s| s.contains("\"lo\"")), "{theirs:#?}");
    assert_eq!(network(&plain), theirs);
    assert!(
        !with.stderr().contains("no rtnetlink socket"),
        "{}",
        with.stderr()
    );
    let said = plain.stderr();
    assert_eq!(said.matches("no rtnetlink socket").count(), 1, "{said}");
    assert!(said.contains("Address family not supported"), "{said}");
}

/// node_exporter's scrape statistics carry its own collector names (`meminfo`,
/// `diskstats`, `netdev`, …): every name this exporter puts there is one Debian's
/// node_exporter has a `--collector.NAME` switch for, and the collectors that stand for
/// none of its own (jobs, MySQL, the exporter's process) are left out.
#[test]
fn node_scrape_statistics_use_node_exporters_collector_names() {
    let help = Command::new(common::require_tool(
        "prometheus-node-exporter",
        "prometheus-node-exporter",
    ))
    .arg("--help")
    .output()
    .unwrap();
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    let known: std::collections::BTreeSet<&str> = help
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--collector."))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .collect();
    assert!(known.contains("meminfo") && known.len() > 40, "{known:?}");
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {}\n",
        dir.path().display()
    ));
    let m = e.metrics();
    let ours: std::collections::BTreeSet<String> = m
        .family("node_scrape_collector_success")
        .iter()
        .map(|s| s.labels["collector"].clone())
        .collect();
    let unknown: Vec<&String> = ours
        .iter()
        .filter(|c| !known.contains(c.as_str()))
        .collect();
    assert!(unknown.is_empty(), "not node_exporter's names: {unknown:?}");
    for name in [
        "meminfo",
        "diskstats",
        "netdev",
        "loadavg",
        "time",
        "uname",
        "stat",
        "textfile",
    ] {
        assert!(ours.contains(name), "{name} missing: {ours:?}");
    }
    // Each stands for one of this exporter's collectors, with its outcome and time.
    assert_eq!(
        m.value("node_scrape_collector_success", &[("collector", "meminfo")]),
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "memory")]
        )
    );
    assert_eq!(
        m.family("node_scrape_collector_duration_seconds").len(),
        ours.len()
    );
}

/// hwmon chips that share a device, and a GPU's clocks, in a sysfs tree written here:
/// the three radios of one `ieee80211/phy0`, two chips of `platform/asus-nb-wmi` with
/// the same `name`, and an amdgpu with a labelled and an unlabelled `freq` input.
fn shared_device_sysfs(root: &Path) {
    let chip = |device: &str, n: u32, files: &[(&str, &str)]| {
        let dir = root.join(device).join(format!("hwmon/hwmon{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        for (f, v) in files {
            std::fs::write(dir.join(f), format!("{v}\n")).unwrap();
        }
        std::os::unix::fs::symlink("../..", dir.join("device")).unwrap();
        std::fs::create_dir_all(root.join("class/hwmon")).unwrap();
        std::os::unix::fs::symlink(
            format!("../../{device}/hwmon/hwmon{n}"),
            root.join(format!("class/hwmon/hwmon{n}")),
        )
        .unwrap();
    };
    let radio = "devices/pci0000:00/0000:00:1c.0/0000:03:00.0/ieee80211/phy0";
    for n in 0..3 {
        let name = format!("mt7996_phy0_{n}");
        let temp = (55_000 + n * 1000).to_string();
        chip(
            radio,
            n,
            &[
                ("name", &name),
                ("temp1_input", &temp),
                ("temp1_crit", "120000"),
            ],
        );
    }
    let wmi = "devices/platform/asus-nb-wmi";
    chip(
        wmi,
        3,
        &[
            ("name", "asus"),
            ("pwm1_enable", "2"),
            ("fan1_input", "2000"),
        ],
    );
    chip(
        wmi,
        4,
        &[
            ("name", "asus"),
            ("pwm1_enable", "1"),
            ("fan1_input", "2100"),
        ],
    );
    chip(
        "devices/pci0000:00/0000:00:01.0/0000:01:00.0",
        5,
        &[
            ("name", "amdgpu"),
            ("temp1_input", "45000"),
            ("freq1_input", "1800000000"),
            ("freq1_label", "sclk"),
            ("freq2_input", "96000000"),
        ],
    );
}

/// Chips that share a device get names of their own, and freq sensors are served, as
/// node_exporter 1.12 (unique names: the `name` file as a suffix when it tells the chips
/// apart, else `hwmonN`) and 1.9 (`node_hwmon_freq_freq_mhz`) do. Debian's node_exporter
/// (1.5) predates both: it gives the sharing chips one name, serves one of each
/// duplicated series, and no frequencies; the rest it serves as this exporter does.
#[test]
fn hwmon_chips_sharing_a_device_get_names_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    shared_device_sysfs(dir.path());
    let flag = format!("--path.sysfs={}", dir.path().display());
    let (_node, node_port) = common::start_node_exporter_with(&[
        &flag,
        "--collector.disable-defaults",
        "--collector.hwmon",
    ]);
    let e = Exporter::start(&format!("system:\n  sysfs: {}\n", dir.path().display()));
    let m = e.metrics();
    assert_collector_succeeded(&e, &m, "hwmon");
    let ours = m.series_with_prefix(&["node_hwmon_"]);
    // No series twice.
    let unique: std::collections::BTreeSet<&String> = ours.iter().collect();
    assert_eq!(unique.len(), ours.len(), "{ours:#?}");
    for (chip, name, temp) in [
        ("ieee80211_phy0_mt7996_phy0_0", "mt7996_phy0_0", 55.0),
        ("ieee80211_phy0_mt7996_phy0_1", "mt7996_phy0_1", 56.0),
        ("ieee80211_phy0_mt7996_phy0_2", "mt7996_phy0_2", 57.0),
    ] {
        assert_eq!(
            m.value(
                "node_hwmon_temp_celsius",
                &[("chip", chip), ("sensor", "temp1")]
            ),
            Some(temp)
        );
        assert_eq!(
            m.value(
                "node_hwmon_chip_names",
                &[("chip", chip), ("chip_name", name)]
            ),
            Some(1.0)
        );
    }
    for (chip, rpm) in [
        ("platform_asus_nb_wmi_hwmon3", 2000.0),
        ("platform_asus_nb_wmi_hwmon4", 2100.0),
    ] {
        assert_eq!(
            m.value("node_hwmon_fan_rpm", &[("chip", chip), ("sensor", "fan1")]),
            Some(rpm)
        );
    }
    let gpu = m.family("node_hwmon_freq_freq_mhz");
    assert_eq!(gpu.len(), 1, "only the labelled clock: {gpu:?}");
    assert_eq!(gpu[0].labels["sensor"], "sclk");
    assert_eq!(gpu[0].value, 1800.0);
    // node_exporter 1.5 on the same tree: the same series once the names are taken
    // back to the shared one and the frequencies left out; of each duplicated series it
    // keeps one.
    let shared = |s: &String| {
        let mut s = s.clone();
        for (unique, base) in [
            ("ieee80211_phy0_mt7996_phy0_0", "ieee80211_phy0"),
            ("ieee80211_phy0_mt7996_phy0_1", "ieee80211_phy0"),
            ("ieee80211_phy0_mt7996_phy0_2", "ieee80211_phy0"),
            ("platform_asus_nb_wmi_hwmon3", "platform_asus_nb_wmi"),
            ("platform_asus_nb_wmi_hwmon4", "platform_asus_nb_wmi"),
        ] {
            s = s.replace(&format!("\"{unique}\""), &format!("\"{base}\""));
        }
        s
    };
    let label_free = |s: &String| {
        // The series without its value: which of the duplicates 1.5 kept varies.
        s.rsplit_once(' ').map_or(s.clone(), |(k, _)| k.to_owned())
    };
    let peer: std::collections::BTreeSet<String> = common::scrape_port(node_port)
        .series_with_prefix(&["node_hwmon_"])
        .iter()
        .map(label_free)
        .collect();
    let ours_as_old: std::collections::BTreeSet<String> = ours
        .iter()
        // 1.5 knows no freq sensors: neither their value nor their label.
        .filter(|s| !s.contains("\"sensor\": \"freq") && !s.starts_with("node_hwmon_freq_"))
        .map(|s| label_free(&shared(s)))
        .collect();
    assert!(peer.len() >= 8, "{peer:#?}");
    assert_eq!(ours_as_old, peer);
}

#[test]
fn sensors_and_thermal_zones_are_node_exporters_series() {
    // A sysfs tree with the hwmon chips and thermal zones of a desktop board (see
    // tests/fixtures/sysfs/README.md): the test machines have no sensors.
    let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sysfs/sensors");
    let flag = format!("--path.sysfs={}", sysfs.display());
    let (_node, node_port) = common::start_node_exporter_with(&[
        &flag,
        "--collector.disable-defaults",
        "--collector.hwmon",
        "--collector.thermal_zone",
    ]);
    let e = Exporter::start(&format!("system:\n  sysfs: {}\n", sysfs.display()));
    let prefixes = ["node_hwmon_", "node_thermal_zone_", "node_cooling_device_"];
    let m = e.metrics();
    let ours = m.series_with_prefix(&prefixes);
    let peer = common::scrape_port(node_port).series_with_prefix(&prefixes);
    assert!(peer.len() > 50, "node_exporter gave {peer:#?}");
    let missing: Vec<&String> = peer.iter().filter(|s| !ours.contains(s)).collect();
    let extra: Vec<&String> = ours.iter().filter(|s| !peer.contains(s)).collect();
    // The GPU's clock, which node_exporter serves since 1.9 (Debian's is 1.5): its
    // frequency in MHz and its label.
    let newer = [
        "node_hwmon_freq_freq_mhz{\"chip\": \"0000:00:03_1_0000:09:00_0\", \"sensor\": \"sclk\"} 1000",
        "node_hwmon_sensor_label{\"chip\": \"0000:00:03_1_0000:09:00_0\", \"label\": \"sclk\", \"sensor\": \"freq1\"} 1",
    ];
    assert!(
        missing.is_empty() && extra == newer.iter().collect::<Vec<_>>(),
        "node_exporter's only: {missing:#?}\nthis exporter's only: {extra:#?}"
    );
    for collector in ["hwmon", "thermal_zone"] {
        assert_collector_succeeded(&e, &m, collector);
    }
}
