//! Small text helpers that more than one parser of outside input needs.

/// Decodes `%xx` escapes (URL user names, BackupPC's escaped fields); a `%` not followed
/// by two hex digits stays as it is, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| char::from(b).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How much of a file's content an error message may quote.
pub const EXCERPT_CHARS: usize = 24;

/// A short, escaped, quoted prefix of `s` for an error message: the first
/// [`EXCERPT_CHARS`] characters with control characters and quotes escaped, and `…` when
/// there was more. A file the exporter is pointed at (a link to `/proc/self/environ`, a
/// file of secrets) is never echoed into a log beyond this.
pub fn excerpt(s: &str) -> String {
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    out.push('"');
    let mut chars = s.chars();
    for c in chars.by_ref().take(EXCERPT_CHARS) {
        out.extend(c.escape_debug());
    }
    out.push('"');
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// A UTC date and time, as read from a name or a certificate, in Unix seconds; `None`
/// when a field is out of range.
pub fn unix_time(year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&min)
        && (0..61).contains(&sec);
    if !valid {
        return None;
    }
    // Days from the civil date (H. Hinnant's algorithm), March-based years.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + hour * 3600 + min * 60 + sec)
}

/// Bytes as lowercase hex (a digest as it is written down).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_keeps_the_rest() {
        assert_eq!(percent_decode("%25%09x%zz"), "%\tx%zz");
        assert_eq!(percent_decode("us%40er"), "us@er");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }

    #[test]
    fn civil_times() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_time(2000, 2, 29, 12, 0, 0), Some(951_825_600));
        assert_eq!(unix_time(2026, 12, 1, 7, 0, 0), Some(1_796_108_400));
        assert_eq!(unix_time(2026, 13, 1, 0, 0, 0), None);
        assert_eq!(unix_time(2026, 1, 1, 24, 0, 0), None);
    }
    #[test]
    fn excerpts_are_short_and_escaped() {
        assert_eq!(excerpt("abc"), "\"abc\"");
        let environ = "PATH=/usr/bin\0SECRET_TOKEN=hunter2\0HOME=/root";
        let e = excerpt(environ);
        assert_eq!(e, "\"PATH=/usr/bin\\0SECRET_TOK\"…");
        assert!(!e.contains("hunter2"));
        assert_eq!(excerpt("a\nb\"c"), "\"a\\nb\\\"c\"");
    }
}
