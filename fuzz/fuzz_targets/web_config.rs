//! The `--web.config.file`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

use shoehub_exporter::config::webfile::WebFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = WebFile::parse(text, Path::new("/etc/shoehub-exporter"));
    }
});
