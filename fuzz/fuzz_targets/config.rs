//! The config file, as `check-config` and `serve` read it, and a my.cnf-style
//! defaults file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::config::Config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(text);
        let _ = shoehub_exporter::credentials::parse_defaults(text);
    }
});
