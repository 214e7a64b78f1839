//! `memory`: every /proc/meminfo field, named as node_exporter names it.
//!
//! `MemTotal: 16384 kB` becomes `node_memory_MemTotal_bytes 16777216`; fields without a
//! unit (`HugePages_Total`) keep their count; `Active(anon)` becomes `Active_anon`.

use std::path::Path;
use std::time::Duration;

use super::parse::{fields, lines, str_of, u64_of};
use super::{CollectError, Collector, LineErrors};
use crate::exposition::MetricWriter;
use crate::procfile::{Render, SharedProcFile};

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
    let (name, paren) = match key.split_once('(') {
        Some((name, inner)) => (name, Some(inner.trim_end_matches(')'))),
        None => (key, None),
    };
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
    timeout: Duration,
}

impl Memory {
    pub fn new(procfs: &Path, timeout: Duration) -> Self {
        let on_procfs = super::is_procfs(procfs);
        Memory {
            on_procfs,
            meminfo: SharedProcFile::new(procfs.join("meminfo"))
                .rendered(Render::Whole.if_procfs(on_procfs)),
            timeout,
        }
    }
}

/// Writes /proc/meminfo's fields; returns the malformed lines.
pub fn encode(data: &[u8], w: &mut MetricWriter<'_>) -> LineErrors {
    let mut errors = LineErrors::default();
    let mut name = String::with_capacity(64);
    let mut help = String::with_capacity(96);
    for (n, line) in lines(data) {
        let Some(f) = parse_line(line) else {
            errors.record(n, "not a `Name: value [kB]` line");
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
        w.dynamic_gauge(&name, &help, f.bytes.then_some("bytes"), f.value);
    }
    errors
}

impl Collector for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn serves(&self) -> &'static [&'static str] {
        &["node_memory_"]
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.meminfo.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            encode(data, w).into_result(path)
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
