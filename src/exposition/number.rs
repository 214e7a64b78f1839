//! Sample values as both formats write them: integers verbatim, floats in their
//! shortest round-tripping form, and quotients of integer counters written without the
//! float's rounding where the quotient is exact.

/// A sample value read as text from a server, already checked to be a number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Number<'a> {
    /// Decimal digits with an optional leading `-`, copied verbatim.
    Integer(&'a str),
    Float(f64),
}

impl<'a> Number<'a> {
    /// Reads a value as a server prints it: an integer, a decimal, or nothing usable.
    pub fn parse(s: &'a str) -> Option<Number<'a>> {
        let digits = s.strip_prefix('-').unwrap_or(s);
        if !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Some(Number::Integer(s));
        }
        s.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Number::Float)
    }

    pub(super) fn write(self, buf: &mut Vec<u8>) {
        match self {
            Number::Integer(s) => buf.extend_from_slice(s.as_bytes()),
            Number::Float(v) => write_f64(buf, v),
        }
    }
}

/// Formats a float the way Prometheus parses it: integers without a fraction, the
/// shortest round-trip form otherwise, and `NaN`/`+Inf`/`-Inf` spelled as the formats say.
/// `count / per` as [`write_f64`] writes the quotient. With `per` a power of ten up to
/// 10^9 and `count` below 2^51, the float's spacing is below half of 1 / per, so the
/// exact decimal with its trailing zeros dropped is that shortest form: no other decimal
/// with as few fraction digits rounds to the same float.
pub fn write_quotient(buf: &mut Vec<u8>, count: u64, per: u64) {
    const POWERS: [u64; 10] = [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
    ];
    let Some(digits) = POWERS.iter().position(|&p| p == per) else {
        write_f64(buf, count as f64 / per as f64);
        return;
    };
    // Below 1e-4 the float's shortest form may be scientific (`1e-6`); those go through
    // the float.
    if count >= (1u64 << 51) || (count != 0 && count.saturating_mul(10_000) < per) {
        write_f64(buf, count as f64 / per as f64);
        return;
    }
    buf.extend_from_slice(itoa::Buffer::new().format(count / per).as_bytes());
    let mut frac = count % per;
    if frac == 0 {
        return;
    }
    let mut width = digits;
    while frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    buf.push(b'.');
    let mut digits_buf = itoa::Buffer::new();
    let text = digits_buf.format(frac).as_bytes();
    buf.extend(std::iter::repeat_n(b'0', width - text.len()));
    buf.extend_from_slice(text);
}

pub fn write_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        buf.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
    } else {
        buf.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotients_read_as_the_float_would() {
        let mut n: u64 = 0;
        let mut cases = vec![0, 1, 5, 9, 10, 99, 100, 101, 110, 1000, 12_345_678, 1 << 40];
        // Around the limit of the integer path.
        for edge in [(1u64 << 51) - 10, (1 << 51) - 1, 1 << 51, (1 << 53) - 1] {
            cases.extend(edge..edge + 10);
        }
        // A spread of magnitudes, each with every last digit.
        while n < (1 << 50) {
            for d in 0..10 {
                cases.push(n + d);
            }
            n = n * 3 + 7;
        }
        for per in [1, 10, 100, 1000, 1_000_000, 1_000_000_000, 3, 60] {
            for &c in &cases {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                write_quotient(&mut a, c, per);
                write_f64(&mut b, c as f64 / per as f64);
                assert_eq!(
                    String::from_utf8(a).unwrap(),
                    String::from_utf8(b).unwrap(),
                    "{c} / {per}"
                );
            }
        }
    }

    #[test]
    fn floats_round_trip() {
        for v in [0.0, 1.5, 1e-9, 123456789.125, 1e300, -2.0, 0.1 + 0.2] {
            let mut buf = Vec::new();
            write_f64(&mut buf, v);
            let s = String::from_utf8(buf).unwrap();
            assert_eq!(s.parse::<f64>().unwrap(), v, "{s}");
        }
        let mut buf = Vec::new();
        write_f64(&mut buf, f64::NAN);
        write_f64(&mut buf, f64::INFINITY);
        write_f64(&mut buf, f64::NEG_INFINITY);
        assert_eq!(buf, b"NaN+Inf-Inf");
    }
}
