//! The textfile collector: good files served, bad ones dropped alone, files replaced
//! while scrapes run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::Exporter;

fn start(dir: &std::path::Path) -> Exporter {
    Exporter::start(&format!("textfile:\n  directory: {}\n", dir.display()))
}

#[test]
fn good_files_are_served_and_bad_ones_dropped_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("backup.prom"),
        "# HELP site_backup_last_size_bytes Size of the last offsite copy.\n# TYPE site_backup_last_size_bytes gauge\nsite_backup_last_size_bytes{target=\"s3\"} 1048576\n",
    )
    .unwrap();
    std::fs::write(
        d.join("certs.prom"),
        "tls_cert_expiry_seconds{name=\"shop\"} 2592000\n",
    )
    .unwrap();
    // Each of these is dropped whole, with the reason logged.
    std::fs::write(
        d.join("stamped.prom"),
        "stamped_metric 1 1700000000000\nstamped_other 2\n",
    )
    .unwrap();
    std::fs::write(d.join("clash.prom"), "node_memory_MemTotal_bytes 1\n").unwrap();
    std::fs::write(d.join("garbage.prom"), [0xff, 0xfe, b'\n', 0x00]).unwrap();
    std::fs::write(d.join("notes.txt"), "not a metrics file\n").unwrap();
    let e = start(d);
    let m = e.metrics();
    assert_eq!(
        m.value("site_backup_last_size_bytes", &[("target", "s3")]),
        Some(1048576.0)
    );
    assert_eq!(
        m.helps["site_backup_last_size_bytes"],
        "Size of the last offsite copy."
    );
    assert_eq!(
        m.value("tls_cert_expiry_seconds", &[("name", "shop")]),
        Some(2592000.0)
    );
    assert!(
        m.family("stamped_other").is_empty(),
        "a bad file is dropped whole"
    );
    // The exporter's own MemTotal, once, not the file's 1.
    let mem = m.family("node_memory_MemTotal_bytes");
    assert_eq!(mem.len(), 1);
    assert!(mem[0].value > 1e6);
    assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(1.0));
    // Labelled with the file's path, as node_exporter labels it.
    let path = |f: &str| d.join(f).display().to_string();
    for file in ["backup.prom", "certs.prom"] {
        assert!(
            m.value("node_textfile_mtime_seconds", &[("file", &path(file))])
                .unwrap()
                > 1.7e9
        );
    }
    assert!(m
        .value(
            "node_textfile_mtime_seconds",
            &[("file", &path("clash.prom"))]
        )
        .is_none());
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "textfile")]
        ),
        Some(0.0)
    );
    let log = e.stderr();
    assert!(log.contains("textfiles failed"), "{log}");

    // Fixed files: the error clears.
    for f in ["stamped.prom", "clash.prom", "garbage.prom"] {
        std::fs::remove_file(d.join(f)).unwrap();
    }
    let m = e.metrics();
    assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(0.0));
}

#[test]
fn a_file_replaced_atomically_mid_scrape_is_never_half_served() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    let write = |i: usize| {
        let mut text = String::from("# TYPE shop_orders gauge\n");
        for shop in 0..200 {
            text.push_str(&format!("shop_orders{{shop=\"{shop}\"}} {i}\n"));
        }
        let tmp = d.join(".orders.prom.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, d.join("orders.prom")).unwrap();
    };
    write(0);
    let e = start(&d);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut i = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                write(i);
                i += 1;
            }
        });
        // The writer stops however this thread ends, a failed assertion included.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        let t = Instant::now();
        let mut scrapes = 0;
        while t.elapsed() < Duration::from_secs(2) {
            let m = e.metrics();
            let samples = m.family("shop_orders");
            assert_eq!(samples.len(), 200, "a scrape saw part of the file");
            let first = samples[0].value;
            assert!(
                samples.iter().all(|s| s.value == first),
                "two versions mixed"
            );
            assert_eq!(m.value("node_textfile_scrape_error", &[]), Some(0.0));
            scrapes += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(scrapes > 20, "only {scrapes} scrapes");
    });
}

/// Odd but readable lines, and lines that are not: each in a file of its own, read by
/// Debian's node_exporter and by this exporter from the same directory. Both must serve
/// the same files (their mtime series, labelled with the path, in whole seconds) and
/// the same series with the same values; what this exporter refuses on purpose is
/// listed with the reason.
#[test]
fn textfiles_are_read_as_node_exporter_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files: &[(&str, &str)] = &[
        ("plain", "t_plain 1\n"),
        ("labels", "t_labels{a=\"b\",c=\"d\"} 2\n"),
        ("no_blank_after_labels", "t14{a=\"b\"}1\n"),
        ("trailing_comma", "t15{a=\"b\",} 1\n"),
        ("tab", "t_tab\t3\n"),
        ("two_spaces", "t_two  4\n"),
        ("blanks_in_labels", "t_v7{ a = \"b\" } 5\n"),
        ("leading_blank", "  t_lead 6\n"),
        ("escapes", "t_esc{p=\"a\\\\b\\\"c\\nd\"} 8\n"),
        ("unicode", "t_uni{p=\"é ü ✓\"} 9\n"),
        ("empty_value_label", "t_empty{p=\"\"} 10\n"),
        ("labels_out_of_order", "t_order{z=\"1\",a=\"2\"} 11\n"),
        ("special_values", "t_nan NaN\nt_inf{s=\"+\"} +Inf\nt_inf{s=\"-\"} -Inf\n"),
        ("float_forms", "t_f{f=\"a\"} 1.5e3\nt_f{f=\"b\"} .5\nt_f{f=\"c\"} -0\nt_f{f=\"d\"} 5.\n"),
        ("help_escapes", "# HELP t_help A \"quoted\" \\\\ help\\nline.\n# TYPE t_help gauge\nt_help 1\n"),
        ("counter", "# TYPE t_runs_total counter\nt_runs_total 3\n"),
        ("counter_without_total", "# TYPE t_events counter\nt_events 4\n"),
        (
            "histogram",
            "# TYPE t_lat histogram\nt_lat_bucket{le=\"0.5\"} 1\nt_lat_bucket{le=\"+Inf\"} 2\nt_lat_sum 1.5\nt_lat_count 2\n",
        ),
        (
            "summary",
            "# TYPE t_sum summary\nt_sum{quantile=\"0.5\"} 1\nt_sum_sum 3\nt_sum_count 2\n",
        ),
        ("comment", "# just a comment\nt_commented 1\n"),
        // Refused by both.
        ("name_label", "t3{__name__=\"x\"} 1\n"),
        ("timestamp", "t_ts 1 1700000000000\n"),
        ("unquoted", "t_unq{a=b} 1\n"),
        ("bad_escape", "t_bq{a=\"\\q\"} 1\n"),
        ("bad_name", "t-dash 1\n"),
        ("no_value", "t_novalue\n"),
        ("bad_value", "t_badvalue one\n"),
        ("repeated_label", "t_rep{a=\"1\",a=\"2\"} 1\n"),
        ("repeated_series", "t_dup 1\nt_dup 2\n"),
        ("second_type", "# TYPE t_tt gauge\n# TYPE t_tt counter\nt_tt 1\n"),
        ("two_values", "t_two_values 1 2 3\n"),
        ("trailing_blank", "t_trail 7 \n"),
        // Refused here, served by node_exporter 1.5.
        ("bucket_without_le", "# TYPE t_h histogram\nt_h_bucket 1\n"),
        ("repeated_series", "t_dup 1\nt_dup 2\n"),
    ];
    // Why: a bucket without a bound has no place in a histogram (node_exporter serves
    // one with `le` NaN), and of a series written twice node_exporter serves neither
    // sample (its registry drops both) while keeping the file's other series.
    let refused_here = ["bucket_without_le", "repeated_series"];
    for (name, text) in files {
        std::fs::write(d.join(format!("{name}.prom")), text).unwrap();
    }
    let (_node, port) = common::start_node_exporter_with(&[
        "--collector.disable-defaults",
        "--collector.textfile",
        &format!("--collector.textfile.directory={}", d.display()),
    ]);
    let theirs = common::scrape_port(port);
    let e = start(d);
    let ours = e.metrics();
    let served = |m: &common::Exposition| -> std::collections::BTreeMap<String, f64> {
        m.family("node_textfile_mtime_seconds")
            .into_iter()
            .map(|s| (s.labels["file"].clone(), s.value))
            .collect()
    };
    let mut expected = served(&theirs);
    for name in refused_here {
        let path = d.join(format!("{name}.prom")).display().to_string();
        assert!(
            expected.remove(&path).is_some(),
            "node_exporter now refuses {path}"
        );
    }
    assert_eq!(
        served(&ours),
        expected,
        "files served (with their mtimes) differ"
    );
    assert_eq!(served(&ours).len(), 20, "{:?}", served(&ours));
    let series = |m: &common::Exposition| -> Vec<String> {
        let mut v: Vec<String> = m
            .samples
            .iter()
            .filter(|s| s.name.starts_with('t') && !s.name.starts_with("t_h") && s.name != "t_dup")
            .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
            .collect();
        v.sort();
        v
    };
    assert_eq!(series(&ours), series(&theirs));
    assert_eq!(ours.helps["t_help"], theirs.helps["t_help"]);
    assert_eq!(m_value(&ours, "node_textfile_scrape_error"), Some(1.0));
    assert_eq!(m_value(&theirs, "node_textfile_scrape_error"), Some(1.0));
}

fn m_value(m: &common::Exposition, name: &str) -> Option<f64> {
    m.value(name, &[])
}
