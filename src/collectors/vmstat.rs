//! `vmstat`: paging, swapping, page faults and OOM kills from /proc/vmstat, as
//! node_exporter's vmstat collector names them (`node_vmstat_pgmajfault`, untyped)
//! with its default field filter.

use super::parse::{fields, lines, str_of};
use super::{Run, BuildError, Env, LineErrors, Served, Settings};
use crate::exposition::{Kind, MetricWriter, Number};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Paging, swapping, page faults and OOM kills (/proc/vmstat).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["vmstat"];

/// Its section, `system.vmstat:`.
pub type Config = super::CollectorToggle;

/// Every family this collector writes starts with this.
pub const PREFIX: &str = "node_vmstat_";

pub static SERVED: Served = Served {
    families: &[],
    prefixes: &[PREFIX],
};

/// node_exporter's default `--collector.vmstat.fields`, `^(oom_kill|pgpg|pswp|pg.*fault).*`,
/// matched by hand.
pub fn wanted(field: &str) -> bool {
    field.starts_with("oom_kill")
        || field.starts_with("pgpg")
        || field.starts_with("pswp")
        || (field.starts_with("pg") && field[2..].contains("fault"))
}

/// Writes the wanted `name value` lines.
pub fn encode(data: &[u8], w: &mut MetricWriter<'_>) -> LineErrors {
    let mut errors = LineErrors::default();
    let mut name = String::with_capacity(48);
    let mut help = String::with_capacity(64);
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let (Some(key), Some(value), None) = (f.next().and_then(str_of), f.next(), f.next()) else {
            errors.record(n, "not a `name value` line");
            continue;
        };
        if !wanted(key) {
            continue;
        }
        let Some(value) = str_of(value).and_then(Number::parse) else {
            errors.record(n, "a value that is not a number");
            continue;
        };
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            errors.record(n, "a field name that is not a metric name");
            continue;
        }
        name.clear();
        name.push_str(PREFIX);
        name.push_str(key);
        help.clear();
        help.push_str("/proc/vmstat information field ");
        help.push_str(key);
        help.push('.');
        w.dynamic_sample(Kind::Untyped, &name, &help, value);
    }
    errors
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::OneFile::run(
        &s.system.procfs,
        s.system.procfs.join("vmstat"),
        |path, data, w| encode(data, w).into_result(path),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    #[test]
    fn only_node_exporter_s_default_fields_are_written() {
        let data = b"nr_free_pages 100\npgpgin 5\npgfault 7\npgmajfault 1\npswpout 0\nthp_fault_alloc 3\noom_kill 2\n";
        let mut buf = Vec::new();
        let errors = encode(data, &mut MetricWriter::new(&mut buf, Format::Text));
        assert!(errors.summary().is_none());
        let text = String::from_utf8(buf).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "node_vmstat_pgpgin 5",
                "node_vmstat_pgfault 7",
                "node_vmstat_pgmajfault 1",
                "node_vmstat_pswpout 0",
                "node_vmstat_oom_kill 2",
            ]
        );
        assert!(text.contains("# TYPE node_vmstat_oom_kill untyped\n"));
    }
}
