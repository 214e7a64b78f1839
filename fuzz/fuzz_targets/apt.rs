//! apt-get's simulated upgrade and autoremove output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::state::apt;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let upgrades = apt::parse_upgrades(&text);
    let _ = apt::count_by_origin(&upgrades);
    let _ = apt::count_removals(&text);
});
