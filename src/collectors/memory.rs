//! `memory`: every /proc/meminfo field, named as node_exporter names it.
//!
//! `MemTotal: 16384 kB` becomes `node_memory_MemTotal_bytes 16777216`; fields without a
//! unit (`HugePages_Total`) keep their count; `Active(anon)` becomes `Active_anon`.

use std::path::Path;
use std::sync::Mutex;

use super::parse::{fields, lines, str_of, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::MetricWriter;
use crate::procfile::{Render, SharedProcFile};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Every /proc/meminfo field.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["meminfo"];

/// Its section, `system.memory:`.
pub type Config = super::CollectorToggle;

/// The prefix of every family this collector writes.
pub const PREFIX: &str = "node_memory_";

/// One /proc/meminfo line: the sanitised field name, its value in bytes (or count),
/// and whether it had the `kB` unit.
#[derive(Debug, PartialEq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub paren: Option<&'a str>,
    pub value: u64,
    pub bytes: bool,
}

/// Parses one /proc/meminfo line such as `Active(anon):  123 kB`.
pub fn parse_line(line: &[u8]) -> Option<Field<'_>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let key = str_of(&line[..colon])?;
    let mut rest = fields(&line[colon + 1..]);
    let value = u64_of(rest.next()?)?;
    let bytes = match rest.next() {
        None => false,
        Some(b"kB") => true,
        Some(_) => return None,
    };
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_()".contains(&b))
    {
        return None;
    }
    // `Name` or `Name(inner)`, nothing else: the parts become a metric name.
    let (name, paren) = match key.split_once('(') {
        Some((name, inner)) => {
            let inner = inner.strip_suffix(')')?;
            if inner.is_empty() || inner.contains(['(', ')']) {
                return None;
            }
            (name, Some(inner))
        }
        None if key.contains(')') => return None,
        None => (key, None),
    };
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name,
        paren,
        value: if bytes {
            value.saturating_mul(1024)
        } else {
            value
        },
        bytes,
    })
}

pub struct Memory {
    on_procfs: bool,
    meminfo: SharedProcFile,
    /// Each line's family as written, per format (text, OpenMetrics), kept between
    /// scrapes: /proc/meminfo lists the same fields in the same order every time.
    kept: Mutex<[Vec<KeptLine>; 2]>,
}

/// One /proc/meminfo field as last written: the text before its colon, whether its
/// value is in kB, and its metadata lines and sample name up to the value.
#[derive(Debug)]
pub struct KeptLine {
    key: Box<[u8]>,
    /// The family's name, to refuse a field that would repeat it.
    name: Box<str>,
    kb: bool,
    head: Box<[u8]>,
}

impl Memory {
    pub fn new(procfs: &Path) -> Self {
        let on_procfs = super::is_procfs(procfs);
        Memory {
            on_procfs,
            meminfo: SharedProcFile::new(procfs.join("meminfo"))
                .rendered(Render::Whole.if_procfs(on_procfs)),
            kept: Mutex::new([Vec::new(), Vec::new()]),
        }
    }
}

/// Writes /proc/meminfo's fields; returns the malformed lines.
pub fn encode(data: &[u8], w: &mut MetricWriter<'_>) -> LineErrors {
    encode_with(data, w, None)
}

/// [`encode`], reusing the lines `kept` (when given) from the last scrape in this format
/// and renewing those that changed: a line whose field is the one rendered at its place
/// costs a copy and its number.
pub fn encode_with(
    data: &[u8],
    w: &mut MetricWriter<'_>,
    mut kept: Option<&mut Vec<KeptLine>>,
) -> LineErrors {
    let mut errors = LineErrors::default();
    let mut name = String::with_capacity(64);
    let mut help = String::with_capacity(96);
    // The names rendered afresh in this scrape (the kept ones are in `kept`).
    let mut fresh: Vec<String> = Vec::new();
    let format = w.format();
    for (i, (n, line)) in lines(data).enumerate() {
        if let Some(r) = kept.as_deref().and_then(|k| k.get(i)) {
            if let Some(value) = known_value(line, r) {
                w.templated(&r.head, value);
                continue;
            }
        }
        let Some(f) = parse_line(line) else {
            errors.record(n, "not a `Name: value [kB]` line");
            // Later lines are at other places than last time: render them afresh.
            if let Some(k) = kept.as_deref_mut() {
                k.truncate(i);
            }
            continue;
        };
        name.clear();
        name.push_str(PREFIX);
        name.push_str(f.name);
        if let Some(p) = f.paren {
            name.push('_');
            name.push_str(p);
        }
        help.clear();
        help.push_str("/proc/meminfo field ");
        help.push_str(f.name);
        if let Some(p) = f.paren {
            help.push('(');
            help.push_str(p);
            help.push(')');
        }
        if f.bytes {
            name.push_str("_bytes");
            help.push_str(", in bytes.");
        } else {
            help.push('.');
        }
        // A field twice (not in a kernel's file, but in a copy or a fixture) would be a
        // family twice, which no parser accepts: the first one stands.
        let repeated = fresh.contains(&name)
            || kept
                .as_deref()
                .is_some_and(|k| k[..i.min(k.len())].iter().any(|r| *r.name == *name));
        if repeated {
            errors.record(n, "repeats an earlier field");
            if let Some(k) = kept.as_deref_mut() {
                k.truncate(i);
            }
            continue;
        }
        fresh.push(name.clone());
        w.dynamic_gauge(&name, &help, f.bytes.then_some("bytes"), f.value);
        if let Some(kept) = kept.as_deref_mut().filter(|k| k.len() >= i) {
            kept.truncate(i);
            let mut head = Vec::with_capacity(160);
            MetricWriter::new(&mut head, format).gauge_head(
                &name,
                &help,
                f.bytes.then_some("bytes"),
            );
            let colon = line.iter().position(|&b| b == b':').unwrap_or(0);
            kept.push(KeptLine {
                key: line[..colon].into(),
                name: name.as_str().into(),
                kb: f.bytes,
                head: head.into(),
            });
        }
    }
    errors
}

/// The value of `line` when it is the field `r` was rendered for, with the same unit.
fn known_value(line: &[u8], r: &KeptLine) -> Option<u64> {
    let rest = line.strip_prefix(&*r.key)?.strip_prefix(b":")?;
    let mut f = fields(rest);
    let value = u64_of(f.next()?)?;
    match (f.next(), r.kb) {
        (None, false) => Some(value),
        (Some(b"kB"), true) if f.next().is_none() => Some(value.saturating_mul(1024)),
        _ => None,
    }
}

/// Every /proc/meminfo field becomes a family named after it.
pub static SERVED: Served = Served {
    families: &[],
    prefixes: &["node_memory_"],
};

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::blocking(Memory::new(&s.system.procfs))))
}

impl Collector for Memory {
    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.meminfo.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            let errors = match self.kept.try_lock() {
                Ok(mut kept) => {
                    let slot = w.format().slot();
                    encode_with(data, w, Some(&mut kept[slot]))
                }
                // Another scrape is writing this file's lines: render them here.
                Err(_) => encode(data, w),
            };
            errors.into_result(path)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    /// Excerpt of /proc/meminfo from a Debian 12 host (kernel 6.1).
    const DEBIAN12_MEMINFO: &[u8] = b"MemTotal:       24681712 kB
MemFree:        22913876 kB
MemAvailable:   23809548 kB
Active(anon):     123456 kB
SwapTotal:             0 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
";

    #[test]
    fn names_and_units_follow_node_exporter() {
        let mut buf = Vec::new();
        let e = encode(
            DEBIAN12_MEMINFO,
            &mut MetricWriter::new(&mut buf, Format::Text),
        );
        assert!(e.into_result(Path::new("meminfo")).is_ok());
        let out = String::from_utf8(buf).unwrap();
        assert!(
            out.contains("\nnode_memory_MemTotal_bytes 25274073088\n"),
            "{out}"
        );
        assert!(out.contains("\nnode_memory_Active_anon_bytes 126418944\n"));
        assert!(out.contains("\nnode_memory_HugePages_Total 0\n"));
        assert!(out.contains("# TYPE node_memory_SwapTotal_bytes gauge\n"));
    }

    #[test]
    fn kept_lines_write_what_a_fresh_render_writes() {
        let plain = |data: &[u8], format| {
            let mut buf = Vec::new();
            encode(data, &mut MetricWriter::new(&mut buf, format));
            buf
        };
        let kept = |data: &[u8], format, r: &mut Vec<KeptLine>| {
            let mut buf = Vec::new();
            encode_with(data, &mut MetricWriter::new(&mut buf, format), Some(r));
            buf
        };
        let later = b"MemTotal:       24681712 kB
MemFree:        22000000 kB
MemAvailable:   23000000 kB
Active(anon):     999999 kB
SwapTotal:             0 kB
HugePages_Total:       4
Hugepagesize:       2048 kB
";
        // A field gone, one new, one whose unit changed, a malformed line.
        let changed = b"MemTotal:       24681712 kB
Active(anon):     999999 kB
Zswap:                 7 kB
SwapTotal:             0
Bad line
HugePages_Total:       4
";
        for format in [Format::Text, Format::OpenMetrics { version: "1.0.0" }] {
            let mut r = Vec::new();
            for data in [DEBIAN12_MEMINFO, &later[..], &changed[..], DEBIAN12_MEMINFO] {
                assert_eq!(
                    String::from_utf8(kept(data, format, &mut r)).unwrap(),
                    String::from_utf8(plain(data, format)).unwrap()
                );
            }
            assert_eq!(r.len(), 7, "every line of the last read is kept");
        }
    }

    #[test]
    fn malformed_line_is_skipped() {
        let mut buf = Vec::new();
        let e = encode(
            b"MemTotal: 12 kB\nGarbage line\nMemFree: x kB\nBad Name: 1\n",
            &mut MetricWriter::new(&mut buf, Format::Text),
        );
        let err = e.into_result(Path::new("m")).unwrap_err().to_string();
        assert!(err.contains("3 malformed"), "{err}");
        assert!(String::from_utf8(buf)
            .unwrap()
            .contains("node_memory_MemTotal_bytes 12288\n"));
    }
}
