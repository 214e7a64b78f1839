//! Whatever the textfiles hold, every scrape parses: random textfiles, hostile ones
//! among them, are put in place round after round, and each answer, in the text format
//! and in OpenMetrics, is read by the Prometheus project's own Python parsers (the
//! client library's, strict OpenMetrics included), which share no code with the
//! exporter, and by promtool (Prometheus's Go parser of the text format). The files the
//! exporter served must be in its answer sample for sample as that parser reads them.
//!
//! The same for random procfs trees: the files the host collectors read, with odd
//! device and field names and numbers, rewritten round after round.
//!
//! The rounds are drawn from a fixed seed; `TEXTFILE_ORACLE_SEED=n` draws others and
//! `TEXTFILE_ORACLE_ROUNDS=n` runs more of them (a fuzzing run: thousands of rounds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_tool, Exporter};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Rounds per test, unless `TEXTFILE_ORACLE_ROUNDS` says otherwise.
fn rounds() -> usize {
    std::env::var("TEXTFILE_ORACLE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

fn runner() -> (TestRunner, u64) {
    let seed: u64 = std::env::var("TEXTFILE_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2026);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    (runner, seed)
}
const FILES_PER_ROUND: usize = 30;

/// Names from a small pool, so that families meet, histograms and summaries get their
/// samples and series repeat; now and then one that is not a name.
fn name(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        16 => prop::sample::select(vec![
            "a", "b_total", "h", "h_bucket", "h_sum", "h_count", "h_created", "s", "s_sum",
            "s_count", "c_total", "c", "x:y", "_u", "g_seconds", "node_custom",
        ])
        .prop_map(move |n| format!("{prefix}{n}")),
        1 => "[a-z_:][a-z0-9_:]{0,6}",
        1 => prop::sample::select(vec!["1a", "a-b", "a.b", "é", "a{", ""]).prop_map(str::to_owned),
    ]
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => prop::sample::select(vec!["le", "quantile", "k", "j", "path"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["__name__", "__x", "1a", "a-b", ""]).prop_map(str::to_owned),
    ]
}

/// Label values as they stand in the file (escapes written out).
fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "+Inf", "Inf", "+inf", "0.5", "1", "1.0", "-1", "2", "0", "", "a\\\"b", "a\\\\b",
            "a\\nb", "x\\qy", "é ü", "tab\there", "}{,=", "#",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~&&[^\"\\\\]]{0,8}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        24 => prop::sample::select(vec![
            "1", "0", "3", "-3", "1.5e3", "0.25", "NaN", "+Inf", "-Inf", "Inf", "inf", "nan",
            "-0", ".5", "5.", "1e400", "2", "10",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["0x10", "1_000", "abc", "", "1,5", "+"]).prop_map(str::to_owned),
        1 => any::<f64>().prop_map(|v| v.to_string()),
    ]
}

fn blank() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", " ", " ", "  ", "\t", ""])
}

fn sample_line(prefix: &'static str) -> impl Strategy<Value = String> {
    (
        name(prefix),
        prop::option::of(prop::collection::vec(
            (
                label_name(),
                blank(),
                label_value(),
                prop::sample::select(vec![",", ", ", " , "]),
            ),
            0..4,
        )),
        prop::bool::weighted(0.2),
        blank(),
        value(),
        prop::sample::select(vec![
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            " ",
            " 1700000000000",
            "\r",
            " x",
        ]),
    )
        .prop_map(|(name, labels, trailing_comma, gap, value, tail)| {
            let mut line = name;
            if let Some(labels) = labels {
                line.push('{');
                let n = labels.len();
                for (i, (k, b, v, sep)) in labels.into_iter().enumerate() {
                    line.push_str(&format!("{k}{b}={b}\"{v}\""));
                    if i + 1 < n || trailing_comma {
                        line.push_str(sep);
                    }
                }
                line.push('}');
            }
            format!("{line}{gap}{value}{tail}")
        })
}

fn metadata_line(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        (
            name(prefix),
            prop::sample::select(vec![
                "counter",
                "gauge",
                "histogram",
                "summary",
                "untyped",
                "wobbly",
                "",
            ])
        )
            .prop_map(|(n, t)| format!("# TYPE {n} {t}")),
        (name(prefix), help()).prop_map(|(n, h)| format!("# HELP {n} {h}")),
        Just("# a comment".to_owned()),
        Just(String::new()),
    ]
}

/// HELP texts as they stand in a file (escapes written out).
fn help() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "Plain help.",
        "Quotes \" and a backslash \\\\ and \\n.",
        "bad \\q escape",
        "é and ü",
        "",
        "trailing \\",
    ])
}

/// A file: a few lines, or a histogram or summary written out whole (now and then
/// broken), which random lines would rarely make.
fn file(prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(
            prop_oneof![3 => sample_line(prefix), 1 => metadata_line(prefix)],
            1..6,
        )
        .prop_map(|lines| lines.join("\n") + "\n"),
        1 => (
            name(prefix),
            help(),
            prop::sample::select(vec!["counter", "gauge", "untyped"]),
            prop::collection::vec(value(), 1..4),
        )
            .prop_map(|(name, help, kind, values)| {
                let mut s = format!("# HELP {name} {help}\n# TYPE {name} {kind}\n");
                for (i, v) in values.iter().enumerate() {
                    s.push_str(&format!("{name}{{k=\"{i}\"}} {v}\n"));
                }
                s
            }),
        1 => (
            prop::sample::select(vec!["histogram", "summary"]),
            prop::collection::vec((label_value(), 0u32..5), 1..5),
            prop::bool::weighted(0.8),
        )
            .prop_map(move |(kind, points, with_total)| {
                let mut s = format!("# TYPE {prefix}t {kind}\n");
                let mut cumulative = 0;
                for (bound, n) in &points {
                    cumulative += n;
                    if kind == "histogram" {
                        s.push_str(&format!("{prefix}t_bucket{{le=\"{bound}\"}} {cumulative}\n"));
                    } else {
                        s.push_str(&format!("{prefix}t{{quantile=\"{bound}\"}} {n}\n"));
                    }
                }
                if kind == "histogram" && with_total {
                    s.push_str(&format!("{prefix}t_bucket{{le=\"+Inf\"}} {cumulative}\n"));
                }
                s.push_str(&format!("{prefix}t_sum 1.5\n{prefix}t_count {cumulative}\n"));
                s
            }),
    ]
}

fn oracle_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/oracle/bin/python");
    assert!(
        venv.is_file(),
        "required tool `{}` is missing: the Python prometheus-client parsers \
         (scripts/test installs them into target/oracle)",
        venv.display()
    );
    venv
}

/// Scrapes `e` in both formats into `keep` (`text`, `openmetrics`), with `from`
/// written as `to` in both (paths the oracle reads the kept copies under), and has
/// promtool parse the text body: its lint findings (a counter without `_total`) are the
/// input's business, a parse error is the exporter's.
fn keep_round(e: &Exporter, keep: &Path, from: &str, to: &str, promtool: &Path) -> String {
    let mut text = String::new();
    for (format, accept) in [
        ("text", "text/plain;version=0.0.4"),
        (
            "openmetrics",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        ),
    ] {
        let r = e.get("/metrics", &[("Accept", accept)]);
        assert_eq!(r.status, 200, "{}: {}", keep.display(), r.text());
        let body = r.text().replace(from, to);
        std::fs::write(keep.join(format), &body).unwrap();
        if format == "text" {
            text = body;
        }
    }
    let check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(keep.join("text")).unwrap())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr).into_owned()
        + &String::from_utf8_lossy(&check.stdout);
    assert!(
        !said.contains("parsing error") && !said.contains("error while linting"),
        "promtool cannot parse the text body: {said}\n(kept in {})",
        keep.display()
    );
    text
}

/// Runs the Python parsers over every kept round.
fn oracle(python: &Path, rounds: &Path, seed: u64) {
    let oracle = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/expositions.py"))
        .arg(rounds)
        .output()
        .unwrap();
    assert!(
        oracle.status.success(),
        "the independent parsers disagree with the exporter (seed {seed}):\n{}{}",
        String::from_utf8_lossy(&oracle.stdout),
        String::from_utf8_lossy(&oracle.stderr)
    );
}

#[test]
fn every_answer_parses_whatever_the_textfiles_hold() {
    let python = oracle_python();
    let promtool = require_tool("promtool", "prometheus");
    let (mut runner, seed) = runner();
    let dir = tempfile::tempdir().unwrap();
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    let out = dir.path().join("rounds");
    let e = Exporter::start(&format!(
        "textfile:\n  directory: {}\n",
        textfiles.display()
    ));
    // Half the files share their names with each other (families merged across files,
    // series repeated), the others have their own.
    let prefixes: Vec<&'static str> = (0..FILES_PER_ROUND)
        .map(|i| -> &'static str {
            if i % 2 == 0 {
                ""
            } else {
                Box::leak(format!("f{i}_").into_boxed_str())
            }
        })
        .collect();
    let mut served_files = 0;
    for round in 0..rounds() {
        for entry in std::fs::read_dir(&textfiles).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let keep = out.join(format!("{round:03}"));
        std::fs::create_dir_all(keep.join("files")).unwrap();
        for (i, prefix) in prefixes.iter().enumerate() {
            let text = file(prefix).new_tree(&mut runner).unwrap().current();
            let name = format!("f{i:02}.prom");
            std::fs::write(textfiles.join(&name), &text).unwrap();
            std::fs::write(keep.join("files").join(&name), &text).unwrap();
        }
        // Served files are named by the text body's mtime series; the oracle reads them
        // under the kept copies' paths.
        let text = keep_round(
            &e,
            &keep,
            &format!("{}/", textfiles.display()),
            &format!("{}/", keep.join("files").display()),
            &promtool,
        );
        served_files += text.matches("node_textfile_mtime_seconds{").count();
    }
    oracle(&python, &out, seed);
    // The rounds must exercise both sides: files served and files refused.
    let all = rounds() * FILES_PER_ROUND;
    assert!(
        served_files > all / 10 && served_files < all * 9 / 10,
        "{served_files} of {all} files served: the generator no longer mixes good and bad files"
    );
    drop(e);
}

/// Names a kernel could give a device or a field, and some it could not.
fn odd_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "eth0", "lo", "sda", "nvme0n1", "dm-0", "veth1a2b", "Active(anon)", "MemTotal",
            "HugePages_Total", "br-0f1e",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec![
            "we\"ird", "back\\slash", "é0", "x{y}", "a=b", "#", "new\\nline", "trailing_",
        ])
        .prop_map(str::to_owned),
        1 => "[!-~&&[^:]]{1,12}",
    ]
}

fn odd_number() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => any::<u64>().prop_map(|n| n.to_string()),
        2 => (0u32..100_000).prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["-1", "18446744073709551616", "x", "", "1.5", "NaN"])
            .prop_map(str::to_owned),
    ]
}

/// A procfs tree's files: (path below the root, contents).
fn procfs() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let numbers = |n: usize| prop::collection::vec(odd_number(), n).prop_map(|v| v.join(" "));
    (
        prop::collection::vec((odd_name(), odd_number()), 0..12),
        prop::collection::vec((odd_name(), numbers(16)), 0..6),
        prop::collection::vec((odd_name(), prop::sample::select(vec![11usize, 14, 17, 18]).prop_flat_map(numbers)), 0..6),
        prop::collection::vec(numbers(10), 0..4),
        numbers(3),
    )
        .prop_map(|(meminfo, netdev, disks, cpus, load)| {
            let meminfo: String = meminfo
                .iter()
                .map(|(k, v)| format!("{k}: {v} kB\n"))
                .collect();
            let mut dev = "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n".to_owned();
            for (name, n) in &netdev {
                dev.push_str(&format!("  {name}: {n}\n"));
            }
            let diskstats: String = disks
                .iter()
                .enumerate()
                .map(|(i, (name, n))| format!(" 8 {i} {name} {n}\n"))
                .collect();
            let mut stat = String::new();
            for (i, c) in cpus.iter().enumerate() {
                if i == 0 {
                    stat.push_str(&format!("cpu  {c}\n"));
                } else {
                    stat.push_str(&format!("cpu{} {c}\n", i - 1));
                }
            }
            stat.push_str("btime 1700000000\nctxt 42\n");
            vec![
                ("meminfo", meminfo),
                ("net/dev", dev),
                ("diskstats", diskstats),
                ("stat", stat),
                ("loadavg", format!("{load} 1/100 1234\n")),
            ]
        })
}

#[test]
fn every_answer_parses_whatever_procfs_holds() {
    let python = oracle_python();
    let promtool = require_tool("promtool", "prometheus");
    let (mut runner, seed) = runner();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("proc");
    std::fs::create_dir_all(root.join("net")).unwrap();
    std::fs::create_dir_all(root.join("self")).unwrap();
    let out = dir.path().join("rounds");
    let e = Exporter::start(&format!(
        "system:\n  procfs: {}\n  host:\n    pressure: false\ntextfile:\n  enabled: false\n",
        root.display()
    ));
    let strategy = procfs();
    let mut read = 0;
    for round in 0..rounds() {
        // Written in place, as the kernel's files change under an open descriptor.
        for (path, text) in strategy.new_tree(&mut runner).unwrap().current() {
            std::fs::write(root.join(path), text).unwrap();
        }
        let keep = out.join(format!("{round:03}"));
        std::fs::create_dir_all(&keep).unwrap();
        let text = keep_round(&e, &keep, "\u{0}", "\u{0}", &promtool);
        read += text.matches("node_memory_").count()
            + text.matches("node_network_receive_bytes_total{").count();
    }
    oracle(&python, &out, seed);
    assert!(
        read > rounds(),
        "the random files were not read: {read} series from them"
    );
}
