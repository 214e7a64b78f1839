//! Content negotiation from the `Accept` and `Accept-Encoding` headers.

use crate::exposition::Format;

/// One media range of an Accept header: type, OpenMetrics version if given, and q.
fn media_ranges(header: &str) -> impl Iterator<Item = (&str, Option<&str>, f32)> {
    header.split(',').filter_map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().filter(|m| !m.is_empty())?;
        let mut version = None;
        let mut q = 1.0f32;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.trim().parse().unwrap_or(0.0),
                "version" => version = Some(v.trim().trim_matches('"')),
                _ => {}
            }
        }
        Some((media, version, q))
    })
}

/// Picks the exposition format: OpenMetrics when the client prefers it (as Prometheus
/// does when it asks for it first), the text format otherwise. Ties go to the range
/// listed first.
pub fn negotiate_format(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best: Option<(Format, f32)> = None;
    for (media, version, q) in media_ranges(accept) {
        if q <= 0.0 {
            continue;
        }
        let candidate = if media.eq_ignore_ascii_case("application/openmetrics-text") {
            match version {
                None | Some("1.0.0") => Format::OpenMetrics { version: "1.0.0" },
                Some("0.0.1") => Format::OpenMetrics { version: "0.0.1" },
                Some(_) => continue,
            }
        } else if media.eq_ignore_ascii_case("text/plain")
            || media == "*/*"
            || media.eq_ignore_ascii_case("text/*")
        {
            Format::Text
        } else {
            continue;
        };
        if best.is_none_or(|(_, bq)| q > bq) {
            best = Some((candidate, q));
        }
    }
    best.map_or(Format::Text, |(f, _)| f)
}

/// Whether the client takes a gzip body.
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|h| {
        media_ranges(h)
            .any(|(coding, _, q)| q > 0.0 && (coding.eq_ignore_ascii_case("gzip") || coding == "*"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Accept header Prometheus 2.42 sends.
    const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    #[test]
    fn formats() {
        assert_eq!(negotiate_format(None), Format::Text);
        assert_eq!(negotiate_format(Some("*/*")), Format::Text);
        assert_eq!(
            negotiate_format(Some(PROMETHEUS_ACCEPT)),
            Format::OpenMetrics { version: "1.0.0" }
        );
        assert_eq!(
            negotiate_format(Some("application/openmetrics-text; version=0.0.1")),
            Format::OpenMetrics { version: "0.0.1" }
        );
        assert_eq!(
            negotiate_format(Some(
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"
            )),
            Format::Text
        );
        assert_eq!(
            negotiate_format(Some("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(negotiate_format(Some("application/json")), Format::Text);
    }

    #[test]
    fn gzip() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(None));
    }
}
