//! The textfile collector: node_exporter-compatible `*.prom` files from
//! `textfile.directory`, for metrics that scripts write.
//!
//! Each file is read whole at scrape time and parsed in full before anything of it is
//! served: every sample into its name, labels and value, which the exposition writer
//! writes again in the format the scrape negotiated, so no line reaches the answer as
//! it was written. A file that does not parse (as node_exporter reads the format),
//! carries client-side timestamps, declares a family twice, repeats a series, uses a
//! reserved or repeated label name, or names a metric the exporter itself serves is
//! dropped whole and reported (`node_textfile_scrape_error 1`, logged once); the other
//! files are served.
//! Writers should replace files atomically (write a temporary file, rename it over the
//! old one), as node_exporter's documentation says; a file read mid-write is dropped,
//! never half served: one that changed while it was read, or whose last line has no
//! newline (the format ends every line with one), is dropped for that scrape.
//!
//! Only regular files are read (a FIFO or a device named `*.prom` is an error of that
//! file), each up to `max_file_bytes` and all of them up to `max_total_bytes`. Files are
//! checked against each other on parsed series (name and sorted labels), in one pass:
//! a later file that repeats a series of an earlier one (in any label order, with any
//! value), gives a shared family another type or help, or has a family that would be
//! one with an earlier file's in OpenMetrics, is dropped with the reason.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::regular;
use crate::text::excerpt;
use crate::value::{ByteSize, DurationValue};

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{escape_into, Family, Kind, MetricWriter};

/// `textfile:` — a directory of `*.prom` files written by scripts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    pub directory: PathBuf,
    pub enabled: bool,
    /// How long one scrape may read the files.
    pub timeout: DurationValue,
    /// A larger file is not read, and is reported.
    pub max_file_bytes: ByteSize,
    /// Files beyond this much in one scrape (in name order) are not read, and reported.
    pub max_total_bytes: ByteSize,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            directory: PathBuf::from("/var/lib/shoehub-exporter/textfile"),
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            max_file_bytes: ByteSize(4 << 20),
            max_total_bytes: ByteSize(8 << 20),
        }
    }
}

static MTIME: Family = Family::gauge(
    "node_textfile_mtime_seconds",
    "Modification time of each textfile served, Unix time in whole seconds.",
)
.unit("seconds");
static SCRAPE_ERROR: Family = Family::gauge(
    "node_textfile_scrape_error",
    "1 if a textfile could not be read or was dropped in this scrape, else 0.",
);

/// The HELP of a family whose files give none.
const NO_HELP: &str = "Metric read from a textfile.";

/// One family from a file: its metadata and its samples, parsed.
///
/// The samples' rendered series lie end to end in one buffer, not one allocation
/// each: a file of 4 MiB holds some 300,000 samples.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TextFamily {
    pub help: Option<String>,
    /// `None` until a TYPE line or the first sample, which makes it untyped.
    pub kind: Option<Kind>,
    samples: Vec<TextSample>,
    rendered: Vec<u8>,
}

impl TextFamily {
    fn kind(&self) -> Kind {
        self.kind.unwrap_or(Kind::Untyped)
    }

    /// Its samples, in the file's order.
    pub fn samples(&self) -> impl Iterator<Item = Sample<'_>> + '_ {
        self.samples.iter().map(|s| Sample {
            series: &self.rendered[s.start as usize..s.end as usize],
            value: s.value,
            cut: (s.cut.0 as usize, s.cut.1 as usize),
            line: s.line,
        })
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// One sample as kept: where its series lies in the family's buffer, its value.
#[derive(Debug, Clone, PartialEq)]
struct TextSample {
    start: u32,
    end: u32,
    line: u32,
    /// A histogram bucket's `le` or a summary's `quantile` label (with its comma), as a
    /// byte range of the series; (0, 0) for none.
    cut: (u32, u32),
    value: f64,
}

/// One sample, parsed and written again: nothing of a file reaches a scrape unparsed.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// The sample's name and labels as the writer writes them (`name{k="v",…}`, labels
    /// sorted by name, values escaped as both formats escape them): also the series'
    /// identity.
    pub series: &'a [u8],
    pub value: f64,
    cut: (usize, usize),
    line: u32,
}

impl<'a> Sample<'a> {
    fn name(&self) -> &'a [u8] {
        let end = memchr::memchr(b'{', self.series).unwrap_or(self.series.len());
        &self.series[..end]
    }

    /// A histogram bucket's `le` or a summary's `quantile`, if it has one.
    fn bound(&self) -> Option<f64> {
        let label = self
            .series
            .get(self.cut.0..self.cut.1)
            .filter(|l| !l.is_empty())?;
        let value = label.split(|b| *b == b'"').nth(1)?;
        std::str::from_utf8(value).ok()?.parse().ok()
    }

    /// The series without its `le` or `quantile` label: one histogram or summary.
    fn group(&self) -> Vec<u8> {
        let mut g = self.series[..self.cut.0].to_vec();
        g.extend_from_slice(&self.series[self.cut.1..]);
        g
    }
}

/// How much one scrape reads.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub file: u64,
    pub total: u64,
}

pub struct Textfile {
    dir: PathBuf,
    /// Names (and `_`-ended prefixes) the exporter serves itself.
    reserved: Vec<&'static str>,
    bounds: Bounds,
}

impl Textfile {
    pub fn new(dir: PathBuf, reserved: Vec<&'static str>, bounds: Bounds) -> Textfile {
        Textfile {
            dir,
            reserved,
            bounds,
        }
    }

    fn is_reserved(&self, name: &str) -> bool {
        self.reserved.iter().any(|r| {
            if r.ends_with('_') {
                name.starts_with(r)
            } else {
                name == *r
                    || name
                        .strip_prefix(r)
                        .is_some_and(|rest| ["_bucket", "_sum", "_count"].contains(&rest))
            }
        })
    }
}

fn is_name_start(c: u8, metric: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (metric && c == b':')
}

fn is_name_byte(c: u8, metric: bool) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || (metric && c == b':')
}

/// Why `name` is not a metric (`metric`) or label name, quoting only what is valid of
/// it: the file may be anything (a link to `/proc/self/environ`), and a log must not
/// show what follows a variable's name.
fn bad_name(kind: &str, name: &str, metric: bool) -> String {
    let bad = name
        .bytes()
        .enumerate()
        .position(|(i, c)| !(is_name_start(c, metric) || (i > 0 && is_name_byte(c, metric))))
        .unwrap_or(name.len());
    let what = match name[bad..].chars().next() {
        None => return format!("invalid {kind} name: it is empty"),
        Some(c) if c.is_ascii_graphic() => format!("{c:?}"),
        Some(c) => format!("{:?}", c.escape_default().to_string()),
    };
    if bad == 0 {
        format!("invalid {kind} name: it starts with {what}")
    } else {
        format!(
            "invalid {kind} name: {} is followed by {what}",
            excerpt(&name[..bad])
        )
    }
}

/// A cursor over one line of a file. Blanks are spaces and tabs, as in the format.
struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.at += 1;
        }
        yes
    }

    /// The longest name at the cursor, or why there is none.
    fn name(&mut self, kind: &str, metric: bool) -> Result<&'a str, String> {
        let from = self.at;
        let b = self.s.as_bytes();
        if b.get(from).is_some_and(|&c| is_name_start(c, metric)) {
            self.at += 1;
            while b.get(self.at).is_some_and(|&c| is_name_byte(c, metric)) {
                self.at += 1;
            }
            return Ok(&self.s[from..self.at]);
        }
        let word = self.s[from..]
            .split([' ', '\t', '{', '}', '=', ','])
            .next()
            .unwrap_or("");
        Err(bad_name(kind, word, metric))
    }

    /// A token up to the next blank or the end of the line.
    fn word(&mut self) -> &'a str {
        let from = self.at;
        let rest = &self.s.as_bytes()[from..];
        self.at += rest
            .iter()
            .position(|c| matches!(c, b' ' | b'\t'))
            .unwrap_or(rest.len());
        &self.s[from..self.at]
    }

    /// A quoted label value after its `"`, unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let mut value = String::new();
        let mut chars = self.s[self.at..].char_indices();
        loop {
            match chars.next() {
                None => return Err("unterminated label value".to_owned()),
                Some((i, '"')) => {
                    self.at += i + 1;
                    return Ok(value);
                }
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    _ => return Err("invalid escape in a label value".to_owned()),
                },
                Some((_, c)) => value.push(c),
            }
        }
    }
}

/// A sample value: a float as the format writes one (`NaN`, `+Inf`, `-Inf`, decimals
/// and exponents).
fn parse_value(v: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .map_err(|_| format!("invalid value {}", excerpt(v)))
}

/// A sample line's name, labels (sorted by name, unescaped) and value.
type ParsedSample<'a> = (&'a str, Vec<(&'a str, String)>, f64);

/// One sample line, read in full: its name, its labels sorted by name, its value.
fn parse_sample(line: &str) -> Result<ParsedSample<'_>, String> {
    let mut c = Cursor { s: line, at: 0 };
    c.blanks();
    let from = c.at;
    let name = c.name("metric", true)?;
    let mut labels: Vec<(&str, String)> = Vec::new();
    if c.at < line.len() && !matches!(c.peek(), Some(b' ' | b'\t' | b'{')) {
        // A name must be followed by a blank or its labels.
        c.at = from;
        return Err(bad_name("metric", c.word(), true));
    }
    c.blanks();
    if c.eat(b'{') {
        loop {
            c.blanks();
            if c.eat(b'}') {
                break;
            }
            let key = c.name("label", false)?;
            if key.starts_with("__") {
                return Err(format!(
                    "label name {} is reserved (names starting with __ are Prometheus's own)",
                    excerpt(key)
                ));
            }
            c.blanks();
            if !c.eat(b'=') {
                return Err(format!("label {} needs = and a value", excerpt(key)));
            }
            c.blanks();
            if !c.eat(b'"') {
                return Err("a label value must be quoted".to_owned());
            }
            labels.push((key, c.quoted()?));
            c.blanks();
            if !c.eat(b',') {
                c.blanks();
                if !c.eat(b'}') {
                    return Err("labels must be separated by commas".to_owned());
                }
                break;
            }
        }
        c.blanks();
    }
    let value = c.word();
    if value.is_empty() {
        return Err("a sample needs a value".to_owned());
    }
    let value = parse_value(value)?;
    let end = c.at;
    c.blanks();
    if c.at == line.len() && end < line.len() {
        // As node_exporter: a blank after the value announces a timestamp.
        return Err("a blank after the value, and no timestamp".to_owned());
    }
    if c.at < line.len() {
        let rest = c.word();
        return Err(if rest.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            "client-side timestamps are not supported".to_owned()
        } else {
            format!("unexpected {} after the value", excerpt(rest))
        });
    }
    labels.sort_by(|a, b| a.0.cmp(b.0));
    if let Some(w) = labels.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("label {} twice", excerpt(w[0].0)));
    }
    Ok((name, labels, value))
}

/// A HELP text, unescaped: the format knows `\\` and `\n`, nothing else.
fn unescape_help(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            _ => return Err("invalid escape in a HELP text (only \\\\ and \\n)".to_owned()),
        }
    }
    Ok(out)
}

/// The family a sample belongs to, given the declared families: a histogram's or a
/// summary's for `_bucket`, `_sum` and `_count`, else its own.
fn family_of<'a>(name: &'a str, declared: &BTreeMap<String, TextFamily>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if declared
                .get(base)
                .is_some_and(|f| matches!(f.kind, Some(Kind::Histogram | Kind::Summary)))
            {
                return base;
            }
        }
    }
    name
}

/// Renders `name{k="v",…}` at the end of `out` and, for a histogram bucket or a
/// summary quantile, says where its bound's label sits (relative to the series).
fn render(
    out: &mut Vec<u8>,
    name: &str,
    labels: &[(&str, String)],
    bound_label: Option<&str>,
) -> Result<Option<(u32, u32)>, String> {
    let base = out.len();
    out.extend_from_slice(name.as_bytes());
    let mut bound = None;
    if !labels.is_empty() {
        out.push(b'{');
        for (i, (k, v)) in labels.iter().enumerate() {
            let from = out.len();
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_into(out, v.as_bytes(), true);
            out.push(b'"');
            if Some(*k) == bound_label {
                parse_value(v).map_err(|_| format!("{k}=\"{}\" is not a number", excerpt(v)))?;
                // The first label's range takes the comma after it instead.
                let (from, to) = if i == 0 && labels.len() > 1 {
                    (from, out.len() + 1)
                } else {
                    (from, out.len())
                };
                bound = Some(((from - base) as u32, (to - base) as u32));
            }
        }
        out.push(b'}');
    }
    if let Some(label) = bound_label {
        if bound.is_none() {
            out.truncate(base);
            return Err(format!("{} needs a {label} label", excerpt(name)));
        }
    }
    Ok(bound)
}

/// Parses a whole file into families, or says why the file is dropped.
pub fn parse_file(
    text: &str,
    reserved: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, TextFamily>, String> {
    let mut families: BTreeMap<String, TextFamily> = BTreeMap::new();
    let mut allowed: HashSet<String> = HashSet::new();
    let mut typed = BTreeSet::new();
    for (i, line) in text.split('\n').enumerate() {
        let at = |e: String| format!("line {}: {e}", i + 1);
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('#') {
            let mut c = Cursor { s: rest, at: 0 };
            c.blanks();
            let keyword = c.word();
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // a comment
            }
            c.blanks();
            let name = c.name("metric", true).map_err(at)?;
            if c.at < rest.len() && !matches!(c.peek(), Some(b' ' | b'\t')) {
                return Err(at(bad_name("metric", c.word(), true)));
            }
            c.blanks();
            let text = &rest[c.at..];
            let f = families.entry(name.to_owned()).or_default();
            if keyword == "HELP" {
                if f.help.is_some() {
                    return Err(at(format!("second HELP for {}", excerpt(name))));
                }
                f.help = Some(unescape_help(text).map_err(at)?);
                continue;
            }
            let kind = match text.trim_end_matches([' ', '\t']) {
                "counter" => Kind::Counter,
                "gauge" => Kind::Gauge,
                "histogram" => Kind::Histogram,
                "summary" => Kind::Summary,
                "untyped" => Kind::Untyped,
                other => return Err(at(format!("unknown type {}", excerpt(other)))),
            };
            if !typed.insert(name.to_owned()) {
                return Err(at(format!("second TYPE for {}", excerpt(name))));
            }
            if !f.samples.is_empty() {
                return Err(at(format!("TYPE for {} after its samples", excerpt(name))));
            }
            f.kind = Some(kind);
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(at)?;
        let family = family_of(name, &families);
        // Each name is checked once: the reserved list is long, the series many.
        if !allowed.contains(name) {
            if reserved(family) || reserved(name) {
                return Err(at(format!(
                    "{name} is a metric this exporter serves itself; rename it in the file"
                )));
            }
            allowed.insert(name.to_owned());
        }
        let f = families.entry(family.to_owned()).or_default();
        let kind = *f.kind.get_or_insert(Kind::Untyped);
        let bound_label = match (kind, &name[family.len()..]) {
            (Kind::Histogram, "_bucket") => Some("le"),
            (Kind::Summary, "") => Some("quantile"),
            (Kind::Histogram, "") => {
                return Err(at(format!(
                    "{family} is a histogram: its samples are {family}_bucket, {family}_sum and {family}_count"
                )))
            }
            _ => None,
        };
        let start = f.rendered.len();
        let cut = render(&mut f.rendered, name, &labels, bound_label).map_err(at)?;
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        f.samples.push(TextSample {
            start: offset(start),
            end: offset(f.rendered.len()),
            line: offset(i + 1),
            cut: cut.unwrap_or((0, 0)),
            value,
        });
    }
    families.retain(|_, f| !f.samples.is_empty());
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for s in families.values().flat_map(TextFamily::samples) {
        if !seen.insert(s.series) {
            return Err(format!(
                "line {}: {} repeats a series",
                s.line,
                excerpt(&String::from_utf8_lossy(s.name()))
            ));
        }
    }
    Ok(families)
}

/// One histogram's or summary's samples (one label set besides `le` or `quantile`),
/// in the order the files give them.
#[derive(Default)]
struct Group<'a> {
    samples: Vec<Sample<'a>>,
    /// Each bucket's or quantile's bound and value.
    bounds: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: Option<f64>,
}

/// A histogram's or summary's samples by group, groups in order of first appearance:
/// OpenMetrics wants each group's samples together.
fn groups<'a>(base: &str, samples: &[Sample<'a>]) -> Vec<Group<'a>> {
    let mut groups: Vec<Group<'a>> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    for s in samples {
        let name = s.name();
        let suffix = &name[base.len().min(name.len())..];
        let series = s.group();
        // Without the suffix, so that a group's buckets, sum and count meet.
        let key = [&series[..base.len()], &series[name.len()..]].concat();
        let g = *index.entry(key).or_insert_with(|| {
            groups.push(Group::default());
            groups.len() - 1
        });
        let g = &mut groups[g];
        g.samples.push(*s);
        match suffix {
            b"_count" => g.count = Some(s.value),
            b"_sum" => g.sum = Some(s.value),
            _ => {
                if let Some(bound) = s.bound() {
                    g.bounds.push((bound, s.value));
                }
            }
        }
    }
    groups
}

/// Whether a group is valid OpenMetrics as it stands: buckets in order up to `+Inf`,
/// cumulative whole counts, a count that agrees, sum and count together, no NaN or
/// negative where a counter's value goes; quantiles in [0, 1] and not negative.
fn open_metrics_group(kind: Kind, g: &Group<'_>) -> bool {
    let whole = |v: f64| v >= 0.0 && v.fract() == 0.0;
    let counter_like = |v: Option<f64>| v.is_none_or(|v| v >= 0.0);
    let ordered = g.bounds.windows(2).all(|w| w[0].0 < w[1].0);
    let common = ordered
        && counter_like(g.sum)
        && g.count.is_none_or(whole)
        && g.sum.is_some() == g.count.is_some();
    match kind {
        Kind::Histogram => {
            let top = g.bounds.last();
            // `+Inf` written as OpenMetrics writes it (not `Inf` or `+inf`).
            let canonical_top = g
                .samples
                .iter()
                .rev()
                .find(|s| s.bound().is_some())
                .is_some_and(|s| memchr::memmem::find(s.series, b"le=\"+Inf\"").is_some());
            common
                && canonical_top
                && top.is_some_and(|t| t.0 == f64::INFINITY)
                && g.bounds.iter().all(|b| whole(b.1))
                && g.bounds.windows(2).all(|w| w[0].1 <= w[1].1)
                && g.count.is_none_or(|c| Some(c) == top.map(|t| t.1))
                && (g.sum.is_none() || g.bounds.iter().all(|b| b.0 >= 0.0))
        }
        _ => {
            common
                && g.bounds
                    .iter()
                    .all(|b| (0.0..=1.0).contains(&b.0) && (b.1 >= 0.0 || b.1.is_nan()))
        }
    }
}

/// The family's name in OpenMetrics, where a counter's family drops `_total` (and a
/// counter without it cannot be one: it is written as `unknown`).
fn open_metrics_name(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// The names a family takes in OpenMetrics: its family name and every sample name its
/// type allows. Two families of the files that take the same name would be one family
/// there, and are refused.
fn open_metrics_claims(name: &str, kind: Kind) -> Vec<String> {
    let (base, suffixes): (&str, &[&str]) = match kind {
        Kind::Counter => match name.strip_suffix("_total") {
            Some(base) => (base, &["", "_total", "_created"]),
            None => (name, &[""]),
        },
        Kind::Histogram => (name, &["", "_bucket", "_count", "_sum", "_created"]),
        Kind::Summary => (name, &["", "_count", "_sum", "_created"]),
        Kind::Gauge | Kind::Untyped => (name, &[""]),
    };
    suffixes.iter().map(|s| format!("{base}{s}")).collect()
}

/// Writes one family, merged from the files that have it.
pub fn write_family(w: &mut MetricWriter<'_>, name: &str, parts: &[&TextFamily]) {
    let kind = parts[0].kind();
    let help = parts
        .iter()
        .find_map(|f| f.help.as_deref())
        .unwrap_or(NO_HELP);
    let samples = || parts.iter().flat_map(|f| f.samples());
    if !w.format().is_open_metrics() {
        w.foreign_family(name, help, kind);
        for s in samples() {
            w.series_sample(s.series, s.value);
        }
        return;
    }
    let all: Vec<Sample<'_>> = samples().collect();
    let (kind, ordered) = match kind {
        Kind::Counter if name.ends_with("_total") && all.iter().all(|s| s.value >= 0.0) => {
            (Kind::Counter, all)
        }
        Kind::Histogram | Kind::Summary => {
            let groups = groups(name, &all);
            if groups.iter().all(|g| open_metrics_group(kind, g)) {
                (kind, groups.into_iter().flat_map(|g| g.samples).collect())
            } else {
                // Not valid OpenMetrics as it stands: one unknown family per sample
                // name, which keeps every series and its value.
                let mut names: Vec<&[u8]> = Vec::new();
                for s in &all {
                    if !names.contains(&s.name()) {
                        names.push(s.name());
                    }
                }
                for n in names {
                    w.foreign_family(&String::from_utf8_lossy(n), help, Kind::Untyped);
                    for s in all.iter().filter(|s| s.name() == n) {
                        w.series_sample(s.series, s.value);
                    }
                }
                return;
            }
        }
        Kind::Gauge => (Kind::Gauge, all),
        _ => (Kind::Untyped, all),
    };
    w.foreign_family(open_metrics_name(name, kind), help, kind);
    for s in ordered {
        w.series_sample(s.series, s.value);
    }
}

/// A textfile's text and modification time, if it was read whole: a regular file of at
/// most `limit` bytes, unchanged while it was read, and ending in a newline.
fn read_whole(path: &Path, limit: u64) -> Result<(String, SystemTime), String> {
    let file = regular::open(path).map_err(|e| e.to_string())?;
    let stamp = |m: &std::fs::Metadata| {
        use std::os::unix::fs::MetadataExt;
        // Not ctime: a file renamed over this one changes this one's (its link count).
        (m.len(), m.mtime(), m.mtime_nsec())
    };
    let before = file.metadata().map_err(|e| e.to_string())?;
    let bytes = regular::read_bounded(&file, limit).map_err(|e| e.to_string())?;
    // The open file's own: a file renamed over this path meanwhile is the next read's.
    let after = file.metadata().map_err(|e| e.to_string())?;
    if stamp(&before) != stamp(&after) || bytes.len() as u64 != after.len() {
        return Err(
            "changed while it was read (write a temporary file and rename it over this one)"
                .to_owned(),
        );
    }
    if bytes.last().is_some_and(|b| *b != b'\n') {
        return Err("the last line has no newline: the file is being written, or was cut (write a temporary file and rename it over this one)".to_owned());
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let mtime = before.modified().map_err(|e| e.to_string())?;
    Ok((text, mtime))
}

/// The families this collector writes of its own (besides the files').
pub static SERVED: Served = Served::families(&[&MTIME, &SCRAPE_ERROR]);

/// Built last: a textfile may not redefine what the engine or any collector serves.
pub fn build(s: &Settings<'_>, env: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = s.textfile;
    Ok(c.enabled.then(|| {
        let mut reserved = env.reserved.clone();
        reserved.extend(SERVED.names());
        let bounds = Bounds {
            file: c.max_file_bytes.get(),
            total: c.max_total_bytes.get(),
        };
        let run = super::blocking(Textfile::new(c.directory.clone(), reserved, bounds));
        AnyCollector::new("textfile", c.timeout.get(), SERVED, run).node_exporter(&["textfile"])
    }))
}

/// What the files so far have declared, for checking the next file against them.
#[derive(Default)]
struct Merged<'a> {
    /// Each family's type and HELP, by its text-format name.
    families: HashMap<&'a str, (Kind, Option<&'a str>)>,
    /// Each name OpenMetrics reserves for a family (its name, and its samples' names),
    /// and the text-format family that has it.
    claimed: HashMap<String, &'a str>,
    series: HashSet<&'a [u8]>,
}

impl<'a> Merged<'a> {
    /// Why `fams` cannot be served beside what was merged so far, if so.
    fn check(&self, fams: &'a BTreeMap<String, TextFamily>) -> Result<(), String> {
        let mut own: HashMap<String, &str> = HashMap::new();
        for (name, f) in fams {
            if let Some((kind, help)) = self.families.get(name.as_str()) {
                if *kind != f.kind() {
                    return Err(format!(
                        "{} is a {} in another file",
                        excerpt(name),
                        kind_name(*kind)
                    ));
                }
                if let (Some(a), Some(b)) = (help, &f.help) {
                    if a != b {
                        return Err(format!(
                            "{} has another HELP in another file",
                            excerpt(name)
                        ));
                    }
                }
            }
            for claim in open_metrics_claims(name, f.kind()) {
                let other = self.claimed.get(claim.as_str()).or(own.get(claim.as_str()));
                if let Some(other) = other.filter(|o| **o != name) {
                    return Err(format!(
                        "{} and {} clash in OpenMetrics, which reserves {} for one of them; rename one",
                        excerpt(other),
                        excerpt(name),
                        excerpt(&claim)
                    ));
                }
                own.insert(claim, name);
            }
            if let Some(s) = f.samples().find(|s| self.series.contains(s.series)) {
                return Err(format!(
                    "line {}: {} repeats a series of another file",
                    s.line,
                    excerpt(&String::from_utf8_lossy(s.name()))
                ));
            }
        }
        Ok(())
    }

    fn add(&mut self, fams: &'a BTreeMap<String, TextFamily>) {
        for (name, f) in fams {
            let entry = self
                .families
                .entry(name.as_str())
                .or_insert((f.kind(), None));
            if entry.1.is_none() {
                entry.1 = f.help.as_deref();
            }
            for claim in open_metrics_claims(name, f.kind()) {
                self.claimed.insert(claim, name.as_str());
            }
            self.series.extend(f.samples().map(|s| s.series));
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
        Kind::Summary => "summary",
        Kind::Untyped => "untyped",
    }
}

/// Bytes of textfiles read in one scrape above which the memory their parse used is
/// handed back to the system when the scrape ends.
const RELEASE_AFTER: u64 = 1 << 20;

impl Collector for Textfile {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut read = 0;
        let result = self.collect_files(w, &mut read);
        if read > RELEASE_AFTER {
            crate::sys::release_free_memory();
        }
        result
    }
}

impl Textfile {
    fn collect_files(&self, w: &mut MetricWriter<'_>, read: &mut u64) -> Result<(), CollectError> {
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "prom"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                w.sample_u64(&SCRAPE_ERROR, &[], 1);
                return Err(CollectError::read(&self.dir, e));
            }
        };
        paths.sort();
        let mut errors = Vec::new();
        // Read and parse every file first; then check them against each other.
        let mut parsed = Vec::new();
        let mut budget = self.bounds.total;
        for path in &paths {
            let limit = self.bounds.file.min(budget);
            let (text, mtime) = match read_whole(path, limit) {
                Ok(x) => x,
                Err(e) if limit < self.bounds.file && e.starts_with("larger than") => {
                    errors.push(format!(
                        "{}: not read: the files before it use up textfile.max_total_bytes ({})",
                        path.display(),
                        regular::human_bytes(self.bounds.total)
                    ));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            budget -= text.len() as u64;
            *read += text.len() as u64;
            match parse_file(&text, |n| self.is_reserved(n)) {
                Ok(fams) => parsed.push((path, fams, mtime)),
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        let mut merged = Merged::default();
        let mut served: BTreeMap<&str, Vec<&TextFamily>> = BTreeMap::new();
        let mut mtimes = Vec::new();
        for (path, fams, mtime) in &parsed {
            if let Err(e) = merged.check(fams) {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
            merged.add(fams);
            for (name, f) in fams {
                served.entry(name).or_default().push(f);
            }
            let secs = mtime
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            mtimes.push((path.to_string_lossy(), secs));
        }
        for (name, parts) in &served {
            write_family(w, name, parts);
        }
        for (path, secs) in &mtimes {
            w.sample_u64(&MTIME, &[("file", path)], *secs);
        }
        w.sample_u64(&SCRAPE_ERROR, &[], u64::from(!errors.is_empty()));
        match errors.first() {
            None => Ok(()),
            Some(first) => Err(CollectError::Partial {
                what: "textfiles",
                failed: errors.len(),
                total: paths.len(),
                first: first.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no(_: &str) -> bool {
        false
    }

    #[test]
    fn good_file() {
        let f = parse_file(
            "# HELP backup_size_bytes Size.\n# TYPE backup_size_bytes gauge\nbackup_size_bytes{host=\"a\"} 12\nbackup_size_bytes{host=\"b\"} 1.5e3\n# a comment\nplain 1\n# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 0.3\nlat_count 2\n",
            no,
        )
        .unwrap();
        assert_eq!(f["backup_size_bytes"].len(), 2);
        assert_eq!(f["plain"].kind, Some(Kind::Untyped));
        assert_eq!(f["lat"].len(), 4);
    }

    #[test]
    fn bad_files_say_where() {
        let cases = [
            (
                "x{a=\"1\"} 1 1700000000000\n",
                "line 1: client-side timestamps",
            ),
            ("x 1\nx 2\n", "line 2: \"x\" repeats a series"),
            ("x{a=\"1\",a=\"2\"} 1\n", "twice"),
            ("1x 1\n", "invalid metric name"),
            ("x{a=1} 1\n", "must be quoted"),
            ("x{a=\"1} 1\n", "unterminated"),
            ("x one\n", "invalid value"),
            ("# TYPE x gauge\n# TYPE x counter\n", "second TYPE"),
            ("# TYPE x wobbly\n", "unknown type"),
        ];
        for (text, want) in cases {
            let e = parse_file(text, no).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = parse_file("node_cpu_seconds_total{cpu=\"0\"} 1\n", |n| {
            n.starts_with("node_cpu_")
        })
        .unwrap_err();
        assert!(e.contains("serves itself"), "{e}");
    }

    /// The shipped config states the built-in limits (the textfile benchmark reads them
    /// there).
    #[test]
    fn the_shipped_config_states_the_default_limits() {
        let shipped: crate::config::Config =
            serde_yaml::from_str(include_str!("../../packaging/config.yml")).unwrap();
        let d = TextfileConfig::default();
        let t = &shipped.textfile;
        assert_eq!(
            (
                t.max_file_bytes.get(),
                t.max_total_bytes.get(),
                t.timeout.get()
            ),
            (
                d.max_file_bytes.get(),
                d.max_total_bytes.get(),
                d.timeout.get()
            )
        );
    }

    #[test]
    fn reserved_names_and_prefixes() {
        let t = Textfile::new(
            PathBuf::new(),
            vec!["node_memory_", "node_load1", "shoehub_exporter_build_info"],
            Bounds {
                file: 1 << 20,
                total: 1 << 20,
            },
        );
        assert!(t.is_reserved("node_memory_MemTotal_bytes"));
        assert!(t.is_reserved("node_load1"));
        assert!(!t.is_reserved("node_load15_custom"));
        assert!(!t.is_reserved("node_reboot_required"));
    }
}
