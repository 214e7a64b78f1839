//! A `*.prom` file, as the textfile collector checks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::collectors;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = collectors::textfile::parse_file(text, |n| n.starts_with("node_"));
    }
});
