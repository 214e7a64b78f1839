//! `sockstat`: sockets in use per protocol from /proc/net/sockstat and
//! /proc/net/sockstat6, as node_exporter's sockstat collector names them
//! (`node_sockstat_TCP_inuse`, gauges), with each `mem` count of pages also in bytes
//! (`node_sockstat_TCP_mem_bytes`).

use std::path::Path;

use super::parse::{fields, lines, str_of, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Kind, MetricWriter, Number};
use crate::procfile::SharedProcFile;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Sockets in use per protocol (/proc/net/sockstat, sockstat6).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["sockstat"];

/// Its section, `system.sockstat:`.
pub type Config = super::CollectorToggle;

/// Every family this collector writes starts with this.
pub const PREFIX: &str = "node_sockstat_";

pub static SERVED: Served = Served {
    families: &[],
    prefixes: &[PREFIX],
};

/// Writes one file's `PROTO: key value key value …` lines; `page` is the page size
/// the `mem` counts are in.
pub fn encode(data: &[u8], page: u64, w: &mut MetricWriter<'_>) -> LineErrors {
    let mut errors = LineErrors::default();
    let mut name = String::with_capacity(48);
    let mut help = String::with_capacity(64);
    let mut digits = itoa::Buffer::new();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let Some(proto) = f
            .next()
            .and_then(|p| p.strip_suffix(b":"))
            .and_then(str_of)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        else {
            errors.record(n, "no `PROTO:` prefix");
            continue;
        };
        while let (Some(key), Some(value)) = (f.next(), f.next()) {
            let (Some(key), Some(value)) = (
                str_of(key).filter(|k| k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')),
                u64_of(value),
            ) else {
                errors.record(n, "not `key value` pairs of numbers");
                break;
            };
            let mut family = |suffix: &str, v: u64| {
                name.clear();
                name.push_str(PREFIX);
                name.push_str(proto);
                name.push('_');
                name.push_str(key);
                name.push_str(suffix);
                help.clear();
                if proto == "sockets" {
                    help.push_str("Number of IPv4 sockets in use.");
                } else {
                    help.push_str("Number of ");
                    help.push_str(proto);
                    help.push_str(" sockets in state ");
                    help.push_str(key);
                    help.push_str(suffix);
                    help.push('.');
                }
                w.dynamic_sample(Kind::Gauge, &name, &help, Number::Integer(digits.format(v)));
            };
            family("", value);
            if key == "mem" {
                family("_bytes", value.saturating_mul(page));
            }
        }
    }
    errors
}

pub struct Sockstat {
    files: [SharedProcFile; 2],
    page: u64,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::procfs_only(&s.system.procfs, {
        let net = s.system.procfs.join("net");
        Sockstat {
            files: [
                SharedProcFile::new(net.join("sockstat")),
                SharedProcFile::new(net.join("sockstat6")),
            ],
            page: crate::sys::page_size(),
        }
    })))
}

impl Collector for Sockstat {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut result = Ok(());
        for (i, file) in self.files.iter().enumerate() {
            let r = file.with(|path: &Path, data| match data {
                // No IPv6: no sockstat6, as node_exporter has it.
                Err(e) if i == 1 && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(CollectError::read(path, e)),
                Ok(data) => encode(data, self.page, w).into_result(path),
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    #[test]
    fn sockstat_lines_become_node_exporter_s_gauges() {
        let data = b"sockets: used 10\nTCP: inuse 2 orphan 0 tw 2 alloc 2 mem 312\nFRAG: inuse 0 memory 0\n";
        let mut buf = Vec::new();
        let errors = encode(data, 4096, &mut MetricWriter::new(&mut buf, Format::Text));
        assert!(errors.summary().is_none());
        let text = String::from_utf8(buf).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "node_sockstat_sockets_used 10",
                "node_sockstat_TCP_inuse 2",
                "node_sockstat_TCP_orphan 0",
                "node_sockstat_TCP_tw 2",
                "node_sockstat_TCP_alloc 2",
                "node_sockstat_TCP_mem 312",
                "node_sockstat_TCP_mem_bytes 1277952",
                "node_sockstat_FRAG_inuse 0",
                "node_sockstat_FRAG_memory 0",
            ]
        );
        assert!(text.contains("# TYPE node_sockstat_TCP_mem_bytes gauge\n"));
    }

    #[test]
    fn a_line_without_its_protocol_is_counted() {
        let mut buf = Vec::new();
        let errors = encode(
            b"TCP inuse 2\n",
            4096,
            &mut MetricWriter::new(&mut buf, Format::Text),
        );
        assert_eq!(errors.summary().map(|(line, _, _)| line), Some(1));
        assert!(buf.is_empty());
    }
}
