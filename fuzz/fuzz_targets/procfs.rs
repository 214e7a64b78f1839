//! /proc/stat, /proc/diskstats, /proc/net/dev, /proc/meminfo, /proc/loadavg and the
//! pressure files, as the host collectors parse them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::collectors::{self, LineErrors};
use shoehub_exporter::value::NameFilter;

fuzz_target!(|data: &[u8]| {
    let all = NameFilter::new(None, None);
    let mut errors = LineErrors::default();
    let _ = collectors::cpu::parse(data, &mut errors);
    let _ = collectors::disk::parse(data, &all, &mut errors);
    let _ = collectors::network::parse(data, &all, &mut errors);
    let _ = collectors::host::parse_loadavg(data);
    let _ = collectors::host::parse_pressure(data, &mut errors);
    for line in data.split(|b| *b == b'\n') {
        let _ = collectors::memory::parse_line(line);
    }
});
