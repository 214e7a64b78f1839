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
    for file in ["backup.prom", "certs.prom"] {
        assert!(
            m.value("node_textfile_mtime_seconds", &[("file", file)])
                .unwrap()
                > 1.7e9
        );
    }
    assert!(m
        .value("node_textfile_mtime_seconds", &[("file", "clash.prom")])
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
