//! Access-log lines in Apache's common and combined formats (nginx's default is
//! combined), parsed without allocating: only the fields the metrics need are read.
//!
//! ```text
//! %h %l %u %t "%r" %>s %b                                   common
//! %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"      combined
//! %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i" %D   combined_duration
//! ```

use super::LogFormat;

/// The methods counted by name; anything else is `other`.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "other",
];
pub const OTHER: usize = METHODS.len() - 1;

/// What a line says about its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Index into [`METHODS`].
    pub method: usize,
    /// The status code, 0 to 999.
    pub status: u16,
    /// Response bytes (`%b`; `-` is 0).
    pub bytes: u64,
    /// `%D`, microseconds, for the format that has it.
    pub micros: Option<u64>,
}

/// Why a line was not counted as a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    NoTimestamp,
    NoRequest,
    BadStatus,
    BadBytes,
    MissingFields,
    BadDuration,
}

pub fn parse(line: &[u8], format: LogFormat) -> Result<Request, LineError> {
    // The timestamp is the first bracketed field; host, ident and user come before it.
    let open = memchr::memchr(b'[', line).ok_or(LineError::NoTimestamp)?;
    let close = memchr::memchr(b']', &line[open..]).ok_or(LineError::NoTimestamp)? + open;
    let rest = line[close + 1..]
        .strip_prefix(b" \"")
        .ok_or(LineError::NoRequest)?;
    let end = closing_quote(rest).ok_or(LineError::NoRequest)?;
    let request = &rest[..end];
    let method = method_index(request);
    let rest = rest[end + 1..]
        .strip_prefix(b" ")
        .ok_or(LineError::BadStatus)?;
    let status = match rest.get(..3) {
        Some([a, b, c]) if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(LineError::BadStatus),
    };
    let rest = rest[3..].strip_prefix(b" ").ok_or(LineError::BadStatus)?;
    let bytes_end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let bytes = match &rest[..bytes_end] {
        b"-" => 0,
        digits => number(digits).ok_or(LineError::BadBytes)?,
    };
    let rest = &rest[bytes_end..];
    let micros = match format {
        LogFormat::Common => None,
        LogFormat::Combined | LogFormat::CombinedDuration => {
            // Referer and user agent: two quoted fields.
            let mut rest = rest;
            for _ in 0..2 {
                rest = rest.strip_prefix(b" \"").ok_or(LineError::MissingFields)?;
                let end = closing_quote(rest).ok_or(LineError::MissingFields)?;
                rest = &rest[end + 1..];
            }
            if format == LogFormat::CombinedDuration {
                let digits = rest.strip_prefix(b" ").ok_or(LineError::BadDuration)?;
                let digits = digits.strip_suffix(b"\r").unwrap_or(digits);
                Some(number(digits).ok_or(LineError::BadDuration)?)
            } else {
                None
            }
        }
    };
    Ok(Request {
        method,
        status,
        bytes,
        micros,
    })
}

/// The position of the `"` that ends a quoted field: Apache writes a `"` inside one as
/// `\"` and a backslash as `\\`.
fn closing_quote(s: &[u8]) -> Option<usize> {
    let mut from = 0;
    loop {
        let i = memchr::memchr(b'"', &s[from..])? + from;
        let backslashes = s[..i].iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(i);
        }
        from = i + 1;
    }
}

fn method_index(request: &[u8]) -> usize {
    let m = match memchr::memchr(b' ', request) {
        Some(i) => &request[..i],
        None => request,
    };
    METHODS[..OTHER]
        .iter()
        .position(|name| name.as_bytes() == m)
        .unwrap_or(OTHER)
}

/// Decimal digits, at most 19 (no overflow).
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMBINED: &str = r#"192.0.2.7 - alice [25/Nov/2026:10:00:01 +0000] "GET /shoes?id=3 HTTP/1.1" 200 5120 "https://shop.example/" "Mozilla/5.0 (X11)""#;

    #[test]
    fn combined_line() {
        let r = parse(COMBINED.as_bytes(), LogFormat::Combined).unwrap();
        assert_eq!(
            r,
            Request {
                method: 0,
                status: 200,
                bytes: 5120,
                micros: None
            }
        );
    }

    #[test]
    fn common_and_duration() {
        let common = r#"::1 - - [25/Nov/2026:10:00:01 +0000] "POST /cart HTTP/1.1" 302 -"#;
        let r = parse(common.as_bytes(), LogFormat::Common).unwrap();
        assert_eq!((METHODS[r.method], r.status, r.bytes), ("POST", 302, 0));
        let timed = format!("{COMBINED} 48213");
        let r = parse(timed.as_bytes(), LogFormat::CombinedDuration).unwrap();
        assert_eq!(r.micros, Some(48213));
        // Combined without the duration is malformed for the timed format.
        assert_eq!(
            parse(COMBINED.as_bytes(), LogFormat::CombinedDuration),
            Err(LineError::BadDuration)
        );
    }

    #[test]
    fn escaped_quotes_and_odd_requests() {
        let line = r#"10.0.0.1 - - [25/Nov/2026:10:00:01 +0000] "GET /a\"b\\ HTTP/1.1" 404 12 "-" "curl \"x\"""#;
        let r = parse(line.as_bytes(), LogFormat::Combined).unwrap();
        assert_eq!((r.status, r.bytes), (404, 12));
        // A TLS handshake sent to a plain-HTTP port: Apache logs it with status 400.
        let tls =
            "10.0.0.1 - - [25/Nov/2026:10:00:01 +0000] \"\\x16\\x03\\x01\" 400 226 \"-\" \"-\"";
        let r = parse(tls.as_bytes(), LogFormat::Combined).unwrap();
        assert_eq!((METHODS[r.method], r.status), ("other", 400));
        let brew = r#"h - - [25/Nov/2026:10:00:01 +0000] "BREW /pot HTTP/1.1" 418 0 "-" "-""#;
        assert_eq!(
            METHODS[parse(brew.as_bytes(), LogFormat::Combined).unwrap().method],
            "other"
        );
    }

    #[test]
    fn malformed_lines() {
        let cases: &[(&str, LineError)] = &[
            ("", LineError::NoTimestamp),
            ("garbage without fields", LineError::NoTimestamp),
            (r#"h - - [t] GET / 200 1"#, LineError::NoRequest),
            (r#"h - - [t] "GET / HTTP/1.1 200 1"#, LineError::NoRequest),
            (
                r#"h - - [t] "GET / HTTP/1.1" 20 1 "-" "-""#,
                LineError::BadStatus,
            ),
            (
                r#"h - - [t] "GET / HTTP/1.1" 2000 1 "-" "-""#,
                LineError::BadStatus,
            ),
            (
                r#"h - - [t] "GET / HTTP/1.1" OK! 1 "-" "-""#,
                LineError::BadStatus,
            ),
            (
                r#"h - - [t] "GET / HTTP/1.1" 200 12x "-" "-""#,
                LineError::BadBytes,
            ),
            (
                r#"h - - [t] "GET / HTTP/1.1" 200 12"#,
                LineError::MissingFields,
            ),
            (
                r#"h - - [t] "GET / HTTP/1.1" 200 12 "-""#,
                LineError::MissingFields,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse(line.as_bytes(), LogFormat::Combined),
                Err(*want),
                "{line}"
            );
        }
        let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        assert!(parse(&binary, LogFormat::Combined).is_err());
    }
}
