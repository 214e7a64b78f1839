//! The one thing a probe reads from a certificate: when it expires (`notAfter`), from its
//! DER encoding (RFC 5280, section 4.1), without a general X.509 parser.

/// One DER element: (tag, contents, what follows it).
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: the low bits say how many length bytes follow (at most 4 here).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The certificate's `notAfter` as Unix seconds, or `None` when it is not a DER
/// certificate this can read.
pub fn not_after(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let (mut tag, mut body, mut rest) = element(tbs)?;
    if tag == VERSION {
        (tag, body, rest) = element(rest)?;
    }
    let _serial = (tag == INTEGER).then_some(body)?;
    let (SEQUENCE, _signature, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, _issuer, rest) = element(rest)? else {
        return None;
    };
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _not_before, rest) = element(validity)?;
    let (tag, not_after, _) = element(rest)?;
    let text = std::str::from_utf8(not_after).ok()?;
    let (year, rest) = match tag {
        // YYMMDDHHMMSSZ: years 50–99 are 19xx (RFC 5280, 4.1.2.5.1).
        UTC_TIME => {
            let yy: i64 = text.get(0..2)?.parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, text.get(2..)?)
        }
        GENERALIZED_TIME => (text.get(0..4)?.parse().ok()?, text.get(4..)?),
        _ => return None,
    };
    if rest.len() != 11 || !rest.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| rest.get(r)?.parse::<i64>().ok();
    crate::text::unix_time(year, n(0..2)?, n(2..4)?, n(4..6)?, n(6..8)?, n(8..10)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER TBSCertificate skeleton around `validity` (serial, empty algorithm and
    /// issuer), with or without the explicit version, wrapped as a certificate whose
    /// outer length takes the long form.
    fn certificate(validity: &[u8], version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend_from_slice(&[VERSION, 3, INTEGER, 1, 2]);
        }
        tbs.extend_from_slice(&[INTEGER, 1, 7, SEQUENCE, 0, SEQUENCE, 0, SEQUENCE]);
        tbs.push(validity.len() as u8);
        tbs.extend_from_slice(validity);
        let mut seq = vec![SEQUENCE, tbs.len() as u8];
        seq.extend_from_slice(&tbs);
        let mut cert = vec![SEQUENCE, 0x82, 0, seq.len() as u8];
        cert.extend_from_slice(&seq);
        cert
    }

    fn time(tag: u8, text: &str) -> Vec<u8> {
        let mut v = vec![tag, text.len() as u8];
        v.extend_from_slice(text.as_bytes());
        v
    }

    #[test]
    fn not_after_in_utc_and_generalized_time() {
        let mut validity = time(UTC_TIME, "261130070000Z");
        validity.extend(time(UTC_TIME, "261201070000Z"));
        assert_eq!(
            not_after(&certificate(&validity, true)),
            Some(1_796_108_400)
        );
        assert_eq!(
            not_after(&certificate(&validity, false)),
            Some(1_796_108_400)
        );
        // UTCTime years from 50 are 19xx.
        let mut validity = time(UTC_TIME, "991231000000Z");
        validity.extend(time(UTC_TIME, "991231235959Z"));
        assert_eq!(not_after(&certificate(&validity, true)), Some(946_684_799));
        let mut validity = time(UTC_TIME, "491231000000Z");
        validity.extend(time(GENERALIZED_TIME, "20500101000000Z"));
        assert_eq!(
            not_after(&certificate(&validity, true)),
            Some(2_524_608_000)
        );
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(b"\x30\x05junk"), None);
        assert_eq!(not_after(b"\x30\x84\xff\xff\xff\xff"), None);
        let mut validity = time(UTC_TIME, "261130070000Z");
        validity.extend(time(UTC_TIME, "2612010700Z"));
        assert_eq!(not_after(&certificate(&validity, true)), None);
    }
}
