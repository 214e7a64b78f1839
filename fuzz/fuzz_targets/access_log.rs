//! One access-log line, in each format the weblog collector reads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::collectors::weblog::parse::parse;
use shoehub_exporter::collectors::weblog::LogFormat;

fuzz_target!(|data: &[u8]| {
    for format in [
        LogFormat::Combined,
        LogFormat::Common,
        LogFormat::CombinedDuration,
    ] {
        let _ = parse(data, format);
    }
});
