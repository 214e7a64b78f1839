//! The Accept, Accept-Encoding and Authorization headers of a request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoehub_exporter::server;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = server::negotiate_format(Some(text));
        let _ = server::accepts_gzip(Some(text));
    }
    if let Ok(value) = hyper::header::HeaderValue::from_bytes(data) {
        let _ = server::auth::credentials(&value);
    }
});
