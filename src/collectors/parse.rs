//! Allocation-free helpers for the kernel's whitespace-separated text files.

/// Splits a line into fields separated by ASCII spaces and tabs.
pub fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
}

/// Parses an unsigned decimal integer; `None` on anything else (including overflow).
pub fn u64_of(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

/// Parses a decimal number such as `0.52` (loadavg's format).
pub fn f64_of(s: &[u8]) -> Option<f64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Iterates over a file's lines with their 1-based numbers.
pub fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, l))
}

/// A field as text; kernel names are ASCII, anything else is refused.
pub fn str_of(s: &[u8]) -> Option<&str> {
    std::str::from_utf8(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(u64_of(b"0"), Some(0));
        assert_eq!(u64_of(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(u64_of(b"18446744073709551616"), None);
        assert_eq!(u64_of(b"12a"), None);
        assert_eq!(u64_of(b""), None);
        assert_eq!(u64_of(b"-1"), None);
    }

    #[test]
    fn splitting() {
        let f: Vec<&[u8]> = fields(b"  cpu0 1\t2  3 ").collect();
        assert_eq!(f, [&b"cpu0"[..], b"1", b"2", b"3"]);
        let l: Vec<usize> = lines(b"a\n\nb\n").map(|(n, _)| n).collect();
        assert_eq!(l, [1, 3]);
    }
}
