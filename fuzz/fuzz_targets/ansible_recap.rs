//! Ansible's output: the PLAY RECAP lines and the JSON callback's stats, and a job's
//! state file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use shoehub_exporter::state::job;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = job::parse_recap_line(line);
    }
    let _ = job::parse_json_stats(data);
    let _ = job::parse(Path::new("fuzz.json"), data);
});
