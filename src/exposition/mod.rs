//! The exposition writer: Prometheus text 0.0.4 and OpenMetrics 1.0 from one API.
//!
//! Collectors describe each metric family once as a `const Family` and write samples
//! through a [`MetricWriter`] straight into a byte buffer: no per-sample allocation, no
//! intermediate registry. Encoding cannot fail; the only fallible part of a scrape is the
//! collectors' reading of their sources.

use std::sync::OnceLock;

mod number;

pub use number::{write_f64, write_quotient, Number};

/// Which exposition format a scrape answers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`, what Prometheus parses when nothing else is asked.
    Text,
    /// `application/openmetrics-text; version=1.0.0` (or 0.0.1, same text for what we emit).
    OpenMetrics { version: &'static str },
}

impl Format {
    /// 0 for the text format, 1 for OpenMetrics: where per-format renderings are kept.
    pub fn slot(self) -> usize {
        match self {
            Format::Text => 0,
            Format::OpenMetrics { .. } => 1,
        }
    }

    pub fn is_open_metrics(self) -> bool {
        matches!(self, Format::OpenMetrics { .. })
    }

    /// The Content-Type header that goes with this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics { version: "0.0.1" } => {
                "application/openmetrics-text; version=0.0.1; charset=utf-8"
            }
            Format::OpenMetrics { .. } => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// Buckets, sum and count; the family name is the base of `_bucket`, `_sum`,
    /// `_count`.
    Histogram,
    /// Quantiles (a `quantile` label), sum and count; only textfiles bring these.
    Summary,
    /// A value of unknown meaning (`untyped` in the text format, `unknown` in
    /// OpenMetrics): what mysqld_exporter reports a generic server status variable as.
    Untyped,
}

/// A metric family, declared once as a `static` at the top of its collector (a
/// `static`, not a `const`: the writer recognises a family by its address).
///
/// `name` is the sample name as PromQL sees it (a counter's includes `_total`);
/// `unit` is the OpenMetrics unit, which the name must end with.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub unit: Option<&'static str>,
    /// The family's metadata lines in each format, rendered on first use: a header is
    /// then one copy instead of half a dozen writes and an escape scan.
    headers: [Rendered; 2],
}

/// Bytes rendered once and kept for the life of the process (families are statics).
#[derive(Debug)]
struct Rendered(OnceLock<Vec<u8>>);

impl Rendered {
    const fn new() -> Rendered {
        Rendered(OnceLock::new())
    }

    fn get_or_init(&self, render: impl FnOnce() -> Vec<u8>) -> &[u8] {
        self.0.get_or_init(render)
    }
}

impl Family {
    pub const fn counter(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: Kind::Counter,
            unit: None,
            headers: [Rendered::new(), Rendered::new()],
        }
    }

    pub const fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: Kind::Gauge,
            unit: None,
            headers: [Rendered::new(), Rendered::new()],
        }
    }

    pub const fn histogram(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: Kind::Histogram,
            unit: None,
            headers: [Rendered::new(), Rendered::new()],
        }
    }

    pub const fn untyped(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind: Kind::Untyped,
            unit: None,
            headers: [Rendered::new(), Rendered::new()],
        }
    }

    /// The same family with an OpenMetrics unit.
    pub const fn unit(mut self, unit: &'static str) -> Family {
        self.unit = Some(unit);
        self
    }

    /// The family name in OpenMetrics: a counter's name without `_total`.
    fn metadata_name(&self, format: Format) -> &'static str {
        match (format, self.kind) {
            (Format::OpenMetrics { .. }, Kind::Counter) => {
                self.name.strip_suffix("_total").unwrap_or(self.name)
            }
            _ => self.name,
        }
    }
}

/// Writes metric families into a byte buffer in one format.
///
/// A family's `# HELP`/`# TYPE` lines are written with its first sample, so families
/// without samples are left out and every family's samples stay together as long as a
/// collector writes them family by family.
pub struct MetricWriter<'a> {
    buf: &'a mut Vec<u8>,
    format: Format,
    current: Option<&'static Family>,
}

impl<'a> MetricWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>, format: Format) -> Self {
        MetricWriter {
            buf,
            format,
            current: None,
        }
    }

    /// The bytes in the buffer so far.
    pub fn written(&self) -> usize {
        self.buf.len()
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Writes one sample with a float value.
    pub fn sample(&mut self, family: &'static Family, labels: &[(&str, &str)], value: f64) {
        self.start(family, labels);
        write_f64(self.buf, value);
        self.buf.push(b'\n');
    }

    /// Writes `count / per` (ticks over ticks per second, say) as the shortest decimal
    /// that reads back as the same float, as [`MetricWriter::sample`] would write the
    /// quotient, but with integer arithmetic when `per` is a power of ten.
    pub fn sample_quotient(
        &mut self,
        family: &'static Family,
        labels: &[(&str, &str)],
        count: u64,
        per: u64,
    ) {
        self.start(family, labels);
        write_quotient(self.buf, count, per);
        self.buf.push(b'\n');
    }

    /// Writes one sample with an integer value (exact, and cheaper than a float).
    pub fn sample_u64(&mut self, family: &'static Family, labels: &[(&str, &str)], value: u64) {
        self.start(family, labels);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes a one-sample gauge family whose name is only known at run time (a
    /// /proc/meminfo field, say).
    pub fn dynamic_gauge(&mut self, name: &str, help: &str, unit: Option<&str>, value: u64) {
        self.gauge_head(name, help, unit);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes a one-sample gauge family up to its value: the metadata lines, then the
    /// sample's name and the space before the value. [`MetricWriter::templated`] later
    /// writes such a head with a value.
    pub fn gauge_head(&mut self, name: &str, help: &str, unit: Option<&str>) {
        self.current = None;
        self.metadata(name, help, Kind::Gauge, unit);
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b' ');
    }

    /// Writes `head` (a family's metadata lines and the sample's name and labels,
    /// rendered earlier by the same writer's format) and then `value`: the fast path of
    /// a collector that keeps its rendered lines between scrapes.
    pub fn templated(&mut self, head: &[u8], value: u64) {
        self.current = None;
        self.buf.extend_from_slice(head);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self.buf.push(b'\n');
    }

    /// Writes a one-sample family of any kind whose name is only known at run time (a
    /// server status variable, say). `value` is a number as a server printed it: an
    /// integer is copied as it is (exact beyond 2^53), anything else goes through f64.
    pub fn dynamic_sample(&mut self, kind: Kind, name: &str, help: &str, value: Number<'_>) {
        self.dynamic_family(kind, name, help);
        self.dynamic_series(name, &[], value);
    }

    /// The part of [`MetricWriter::dynamic_sample`] that does not change from one
    /// scrape to the next (metadata, then the series name up to the value), for a
    /// caller that keeps it and writes samples with [`MetricWriter::prefixed_sample`].
    pub fn dynamic_prefix(&mut self, kind: Kind, name: &str, help: &str) {
        self.dynamic_family(kind, name, help);
        self.series(name, &[]);
    }

    /// A one-sample family from a prefix that [`MetricWriter::dynamic_prefix`] wrote in
    /// this format, and its value: the same bytes as [`MetricWriter::dynamic_sample`].
    pub fn prefixed_sample(&mut self, prefix: &[u8], value: Number<'_>) {
        self.current = None;
        self.buf.extend_from_slice(prefix);
        value.write(self.buf);
        self.buf.push(b'\n');
    }

    /// Starts a family whose name is only known at run time; its samples follow with
    /// [`MetricWriter::dynamic_series`].
    pub fn dynamic_family(&mut self, kind: Kind, name: &str, help: &str) {
        self.current = None;
        self.metadata(name, help, kind, None);
    }

    /// One sample of the family [`MetricWriter::dynamic_family`] started.
    pub fn dynamic_series(&mut self, name: &str, labels: &[(&str, &str)], value: Number<'_>) {
        self.series(name, labels);
        value.write(self.buf);
        self.buf.push(b'\n');
    }

    /// Starts a family read from elsewhere (a textfile) under `name`, which is already
    /// the name this format gives it (see [`Format::is_open_metrics`]); its samples
    /// follow with [`MetricWriter::series_sample`].
    pub fn foreign_family(&mut self, name: &str, help: &str, kind: Kind) {
        self.current = None;
        self.metadata(name, help, kind, None);
    }

    /// One sample whose name and labels were rendered before (`name{k="v",…}`, label
    /// values escaped as both formats escape them), and its value.
    pub fn series_sample(&mut self, series: &[u8], value: f64) {
        self.buf.extend_from_slice(series);
        self.buf.push(b' ');
        write_f64(self.buf, value);
        self.buf.push(b'\n');
    }

    /// Writes one sample whose value is a [`Number`] read from a server.
    pub fn sample_number(
        &mut self,
        family: &'static Family,
        labels: &[(&str, &str)],
        value: Number<'_>,
    ) {
        self.start(family, labels);
        value.write(self.buf);
        self.buf.push(b'\n');
    }

    fn start(&mut self, family: &'static Family, labels: &[(&str, &str)]) {
        if !self.current.is_some_and(|c| std::ptr::eq(c, family)) {
            self.current = Some(family);
            self.header(family);
        }
        self.series(family.name, labels);
    }

    /// `name{k="v",…} ` up to the value.
    fn series(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.series_with(name, "", labels, None);
    }

    /// `name` + `suffix`, the labels and one more label (a histogram's `le`).
    fn series_with(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        extra: Option<(&str, &str)>,
    ) {
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(suffix.as_bytes());
        if !labels.is_empty() || extra.is_some() {
            self.buf.push(b'{');
            for (i, (k, v)) in labels.iter().chain(extra.as_ref()).enumerate() {
                if i > 0 {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(k.as_bytes());
                self.buf.extend_from_slice(b"=\"");
                escape_into(self.buf, v.as_bytes(), true);
                self.buf.push(b'"');
            }
            self.buf.push(b'}');
        }
        self.buf.push(b' ');
    }

    /// One histogram: cumulative counts per upper bound (`+Inf` is added), sum and count.
    pub fn histogram(
        &mut self,
        family: &'static Family,
        labels: &[(&str, &str)],
        bounds: &[f64],
        cumulative: &[u64],
        sum: f64,
        count: u64,
    ) {
        if !self.current.is_some_and(|c| std::ptr::eq(c, family)) {
            self.current = Some(family);
            self.header(family);
        }
        let mut le = Vec::with_capacity(24);
        for (bound, n) in bounds.iter().zip(cumulative) {
            le.clear();
            write_f64(&mut le, *bound);
            // OpenMetrics wants a float in `le`: 1 as 1.0.
            if !le.contains(&b'.') && !le.contains(&b'e') {
                le.extend_from_slice(b".0");
            }
            let le = std::str::from_utf8(&le).unwrap_or("+Inf");
            self.series_with(family.name, "_bucket", labels, Some(("le", le)));
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            self.buf.push(b'\n');
        }
        self.series_with(family.name, "_bucket", labels, Some(("le", "+Inf")));
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        self.buf.push(b'\n');
        self.series_with(family.name, "_sum", labels, None);
        write_f64(self.buf, sum);
        self.buf.push(b'\n');
        self.series_with(family.name, "_count", labels, None);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(count).as_bytes());
        self.buf.push(b'\n');
    }

    fn header(&mut self, family: &Family) {
        let format = self.format;
        let lines = family.headers[format.slot()].get_or_init(|| {
            let mut v = Vec::with_capacity(128);
            let name = family.metadata_name(format);
            metadata(&mut v, format, name, family.help, family.kind, family.unit);
            v
        });
        self.buf.extend_from_slice(lines);
    }

    fn metadata(&mut self, name: &str, help: &str, kind: Kind, unit: Option<&str>) {
        metadata(self.buf, self.format, name, help, kind, unit);
    }
}

/// The `# HELP`, `# TYPE` and (OpenMetrics only) `# UNIT` lines of a family.
fn metadata(
    buf: &mut Vec<u8>,
    format: Format,
    name: &str,
    help: &str,
    kind: Kind,
    unit: Option<&str>,
) {
    let name = name.as_bytes();
    buf.extend_from_slice(b"# HELP ");
    buf.extend_from_slice(name);
    buf.push(b' ');
    // OpenMetrics' HELP is an escaped string like a label value; the text format's
    // knows only `\\` and `\n`, and reads `\"` as an invalid escape.
    escape_into(
        buf,
        help.as_bytes(),
        matches!(format, Format::OpenMetrics { .. }),
    );
    buf.extend_from_slice(b"\n# TYPE ");
    buf.extend_from_slice(name);
    buf.extend_from_slice(match kind {
        Kind::Counter => b" counter\n",
        Kind::Gauge => b" gauge\n",
        Kind::Histogram => b" histogram\n",
        Kind::Summary => b" summary\n",
        Kind::Untyped => match format {
            Format::OpenMetrics { .. } => b" unknown\n",
            Format::Text => b" untyped\n",
        },
    });
    if let (Format::OpenMetrics { .. }, Some(unit)) = (format, unit) {
        buf.extend_from_slice(b"# UNIT ");
        buf.extend_from_slice(name);
        buf.push(b' ');
        buf.extend_from_slice(unit.as_bytes());
        buf.push(b'\n');
    }
}

/// Ends an exposition: OpenMetrics requires `# EOF`, the text format has no terminator.
pub fn finish(buf: &mut Vec<u8>, format: Format) {
    if let Format::OpenMetrics { .. } = format {
        buf.extend_from_slice(b"# EOF\n");
    }
}

/// Escapes `\` and newline (and `"` in label values and OpenMetrics' HELP) as the
/// formats require.
pub fn escape_into(buf: &mut Vec<u8>, s: &[u8], quote: bool) {
    let needs = if quote {
        memchr::memchr3(b'\\', b'\n', b'"', s).is_some()
    } else {
        memchr::memchr2(b'\\', b'\n', s).is_some()
    };
    if !needs {
        buf.extend_from_slice(s);
        return;
    }
    for &b in s {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'"' if quote => buf.extend_from_slice(b"\\\""),
            _ => buf.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CPU: Family = Family::counter(
        "node_cpu_seconds_total",
        "Seconds each CPU spent in each mode.",
    )
    .unit("seconds");
    static MEM: Family = Family::gauge("node_memory_MemTotal_bytes", "Total usable RAM.");

    fn render(format: Format) -> String {
        let mut buf = Vec::new();
        let mut w = MetricWriter::new(&mut buf, format);
        w.sample(&CPU, &[("cpu", "0"), ("mode", "idle")], 12.5);
        w.sample(&CPU, &[("cpu", "0"), ("mode", "user")], 3.0);
        w.sample_u64(&MEM, &[], 1024);
        finish(&mut buf, format);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn text_format_names_counters_with_total() {
        assert_eq!(
            render(Format::Text),
            "# HELP node_cpu_seconds_total Seconds each CPU spent in each mode.\n\
             # TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 3\n\
             # HELP node_memory_MemTotal_bytes Total usable RAM.\n\
             # TYPE node_memory_MemTotal_bytes gauge\n\
             node_memory_MemTotal_bytes 1024\n"
        );
    }

    #[test]
    fn openmetrics_strips_total_from_family_and_ends_with_eof() {
        let out = render(Format::OpenMetrics { version: "1.0.0" });
        assert!(out.starts_with(
            "# HELP node_cpu_seconds Seconds each CPU spent in each mode.\n\
             # TYPE node_cpu_seconds counter\n\
             # UNIT node_cpu_seconds seconds\n\
             node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 12.5\n"
        ));
        assert!(out.ends_with("node_memory_MemTotal_bytes 1024\n# EOF\n"));
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        static F: Family = Family::gauge("x", "a \\ b\nc");
        let mut buf = Vec::new();
        MetricWriter::new(&mut buf, Format::Text).sample(&F, &[("m", "/a \"b\"\\\n")], 1.0);
        let s = String::from_utf8(buf).unwrap();
        assert!(s.contains("# HELP x a \\\\ b\\nc\n"), "{s}");
        assert!(s.contains("x{m=\"/a \\\"b\\\"\\\\\\n\"} 1\n"), "{s}");
    }
}
