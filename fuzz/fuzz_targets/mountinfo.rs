//! /proc/1/mountinfo, as the filesystem collector parses it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::collectors::{self, LineErrors};

fuzz_target!(|data: &[u8]| {
    let mut errors = LineErrors::default();
    let _ = collectors::filesystem::parse_mountinfo(data, &mut errors);
});
