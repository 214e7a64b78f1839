//! A BackupPC host's `backups` file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::state::backuppc;

fuzz_target!(|data: &[u8]| {
    let _ = backuppc::parse(&String::from_utf8_lossy(data));
});
