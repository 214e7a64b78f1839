//! A `*.prom` file, as the textfile collector reads it, and what it writes of it: a file
//! the parser accepts is written in both formats, the text answer read back gives the
//! same samples (name, labels, value), and neither answer has a line the formats'
//! grammars forbid (a blank line, a HELP with a bare quote in OpenMetrics).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::collectors;
use shoehub_exporter::exposition::{Format, MetricWriter};

fn samples(families: &std::collections::BTreeMap<String, collectors::textfile::TextFamily>) -> Vec<(Vec<u8>, u64)> {
    let mut v: Vec<(Vec<u8>, u64)> = families
        .values()
        .flat_map(|f| f.samples())
        // NaN is NaN, and -0 is written as 0 (as node_exporter writes it).
        .map(|s| {
            let bits = match s.value {
                v if v.is_nan() => u64::MAX,
                v if v == 0.0 => 0,
                v => v.to_bits(),
            };
            (s.series.to_vec(), bits)
        })
        .collect();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(families) = collectors::textfile::parse_file(text, |n| n.starts_with("node_")) else {
        return;
    };
    for format in [Format::Text, Format::OpenMetrics { version: "1.0.0" }] {
        let mut buf = Vec::new();
        let mut w = MetricWriter::new(&mut buf, format);
        for (name, f) in &families {
            collectors::textfile::write_family(&mut w, name, &[f]);
        }
        let body = String::from_utf8(buf).expect("the answer is UTF-8");
        for line in body.lines() {
            assert!(!line.is_empty(), "a blank line in {body:?}");
            if let (Format::OpenMetrics { .. }, Some(help)) = (format, line.strip_prefix("# HELP ")) {
                let text = help.split_once(' ').map_or("", |(_, t)| t);
                let mut chars = text.chars();
                while let Some(c) = chars.next() {
                    assert_ne!(c, '"', "a bare quote in {line:?}");
                    if c == '\\' {
                        assert!(matches!(chars.next(), Some('\\' | 'n' | '"')), "{line:?}");
                    }
                }
            }
        }
        if format == Format::Text {
            let again = collectors::textfile::parse_file(&body, |_| false)
                .unwrap_or_else(|e| panic!("the text answer does not read back: {e}\n{body}"));
            assert_eq!(samples(&again), samples(&families), "{body}");
        }
    }
});
