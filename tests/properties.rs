//! Property tests over every parser of outside input: whatever bytes arrive, a parser
//! returns (an error is fine) without panicking, and what it accepts it reads right.
//! Bounded in time: proptest's default case count, inputs of a few KiB at most.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proptest::prelude::*;
use shoehub_exporter::collectors::weblog::parse::{self as weblog, METHODS};
use shoehub_exporter::collectors::weblog::LogFormat;
use shoehub_exporter::collectors::{self, LineErrors};
use shoehub_exporter::config::webfile::WebFile;
use shoehub_exporter::config::Config;
use shoehub_exporter::state;
use shoehub_exporter::value::NameFilter;

/// Bytes that look like the files they stand for often enough to get past the first
/// check: printable text, digits, separators and newlines, and now and then anything.
fn texty() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(
                b"abcxyz_:{}=\",. \t\n0123456789-+eE#[]()/\\'\xff".to_vec()
            ),
            1 => any::<u8>(),
        ],
        0..2048,
    )
}

fn text() -> impl Strategy<Value = String> {
    texty().prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

proptest! {
    #[test]
    fn procfs_parsers_never_panic(data in texty()) {
        let all = NameFilter::new(None, None);
        let mut e = LineErrors::default();
        let _ = collectors::cpu::parse(&data, &mut e);
        let _ = collectors::disk::parse(&data, &all, &mut e);
        let _ = collectors::network::parse(&data, &all, &mut e);
        let _ = collectors::filesystem::parse_mountinfo(&data, &mut e);
        let _ = collectors::host::parse_loadavg(&data);
        let _ = collectors::host::parse_pressure(&data, &mut e);
        for line in data.split(|b| *b == b'\n') {
            let _ = collectors::memory::parse_line(line);
        }
    }

    #[test]
    fn state_and_tool_output_parsers_never_panic(t in text(), data in texty()) {
        let _ = state::backuppc::parse(&t);
        let _ = state::apt::parse_upgrades(&t);
        let _ = state::apt::count_removals(&t);
        for line in t.lines() {
            let _ = state::job::parse_recap_line(line);
        }
        let _ = state::job::parse_json_stats(&data);
        let _ = state::job::parse(Path::new("x.json"), &data);
        let _ = shoehub_exporter::credentials::parse_defaults(&t);
    }

    #[test]
    fn config_parsers_never_panic(t in text()) {
        let _ = Config::parse(&t);
        let _ = WebFile::parse(&t, Path::new("/etc/shoehub-exporter"));
    }

    #[test]
    fn header_parsers_never_panic(t in text()) {
        let _ = shoehub_exporter::server::negotiate_format(Some(&t));
        let _ = shoehub_exporter::server::accepts_gzip(Some(&t));
    }

    #[test]
    fn textfile_parser_never_panics(t in text()) {
        let _ = collectors::textfile::parse_file(&t, |_| false);
    }

    /// A well-formed file of distinct series is read whole, sample for sample.
    #[test]
    fn textfile_parser_reads_every_series_of_a_good_file(
        series in prop::collection::btree_map(
            ("[a-z][a-z_]{0,8}", prop::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[ -~]{0,12}", 0..4)),
            -1e9f64..1e9,
            1..40,
        )
    ) {
        let mut text = String::new();
        for ((name, labels), value) in &series {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            text.push_str(&format!("{name}{{{}}} {value}\n", labels.join(",")));
        }
        let families = collectors::textfile::parse_file(&text, |_| false).unwrap();
        let samples: usize = families.values().map(|f| f.len()).sum();
        prop_assert_eq!(samples, series.len());
    }

    #[test]
    fn access_log_parser_never_panics(line in texty()) {
        for format in [LogFormat::Combined, LogFormat::Common, LogFormat::CombinedDuration] {
            let _ = weblog::parse(&line, format);
        }
    }

    /// A combined-format line says what the request was, whatever its path and agent.
    #[test]
    fn access_log_parser_reads_what_apache_writes(
        method in prop::sample::select(METHODS[..9].to_vec()),
        path in "/[!-~&&[^\"]]{0,40}",
        status in 100u16..600,
        bytes in prop::option::of(0u64..10_000_000),
        agent in "[ -~&&[^\"]]{0,40}",
        micros in 0u64..100_000_000,
    ) {
        let size = bytes.map_or("-".to_owned(), |b| b.to_string());
        // Apache escapes backslashes (and quotes, left out here) in what it logs.
        let (path, agent) = (path.replace('\\', "\\\\"), agent.replace('\\', "\\\\"));
        let line = format!(
            "203.0.113.9 - - [30/Nov/2026:10:00:00 +0000] \"{method} {path} HTTP/1.1\" {status} {size} \"-\" \"{agent}\" {micros}"
        );
        let r = weblog::parse(line.as_bytes(), LogFormat::CombinedDuration).unwrap();
        prop_assert_eq!(METHODS[r.method], method);
        prop_assert_eq!(r.status, status);
        prop_assert_eq!(r.bytes, bytes.unwrap_or(0));
        prop_assert_eq!(r.micros, Some(micros));
    }

    /// Nesting past the bound is refused before the YAML parser sees it, at any depth.
    #[test]
    fn deep_config_is_refused_before_parsing(depth in 33usize..20_000, flow in any::<bool>()) {
        let text = if flow {
            format!("textfile: {}{}\n", "[".repeat(depth), "]".repeat(depth))
        } else {
            (0..depth.min(300)).map(|i| format!("{}k{i}:\n", " ".repeat(i))).collect()
        };
        let e = Config::parse(&text).unwrap_err();
        prop_assert!(e.contains("nested deeper than 32 levels"), "{}", e);
    }
}
