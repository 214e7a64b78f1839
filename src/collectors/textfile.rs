//! The textfile collector: node_exporter-compatible `*.prom` files from
//! `textfile.directory`, for metrics that scripts write.
//!
//! Each file is read whole at scrape time and checked before anything of it is served:
//! a file that does not parse, carries client-side timestamps, declares a family twice,
//! repeats a series, or names a metric the exporter itself serves is dropped whole and
//! reported (`node_textfile_scrape_error 1`, logged once); the other files are served.
//! Writers should replace files atomically (write a temporary file, rename it over the
//! old one), as node_exporter's documentation says; a file read mid-write is dropped,
//! never half served: one that changed while it was read, or whose last line has no
//! newline (the format ends every line with one), is dropped for that scrape.
//!
//! Only regular files are read (a FIFO or a device named `*.prom` is an error of that
//! file), each up to `max_file_bytes` and all of them up to `max_total_bytes`. Files are
//! checked against each other on parsed series (name and sorted labels), in one pass:
//! a later file that repeats a series of an earlier one (in any label order, with any
//! value), or gives a shared family another type or help, is dropped with the reason.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::regular;
use crate::text::excerpt;
use crate::value::{ByteSize, DurationValue};

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

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
            max_total_bytes: ByteSize(32 << 20),
        }
    }
}

static MTIME: Family = Family::gauge(
    "node_textfile_mtime_seconds",
    "Modification time of each textfile served, Unix time.",
)
.unit("seconds");
static SCRAPE_ERROR: Family = Family::gauge(
    "node_textfile_scrape_error",
    "1 if a textfile could not be read or was dropped in this scrape, else 0.",
);

/// One family from the files: its metadata and its sample lines, as written.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TextFamily {
    pub help: Option<String>,
    pub kind: String,
    pub samples: Vec<String>,
    /// Each sample's series: its name and sorted labels, one string.
    pub series: Vec<String>,
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

fn valid_metric_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Why `name` is not a metric (`metric`) or label name, quoting only what is valid of
/// it: the file may be anything (a link to `/proc/self/environ`), and a log must not
/// show what follows a variable's name.
fn bad_name(kind: &str, name: &str, metric: bool) -> String {
    let bad = name
        .bytes()
        .enumerate()
        .position(|(i, c)| {
            !(c.is_ascii_alphabetic()
                || c == b'_'
                || (metric && c == b':')
                || (i > 0 && c.is_ascii_digit()))
        })
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

fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The family a sample belongs to, given the declared families.
fn family_of<'a>(name: &'a str, declared: &BTreeMap<String, TextFamily>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count", "_created"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if declared
                .get(base)
                .is_some_and(|f| f.kind == "histogram" || f.kind == "summary")
            {
                return base;
            }
        }
    }
    name
}

/// Parses one sample line: (metric name, canonical label set) or why not.
fn parse_sample(line: &str) -> Result<(String, String), String> {
    let name_end = line.find(['{', ' ', '\t']).unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_metric_name(name) {
        return Err(bad_name("metric", name, true));
    }
    if name_end == line.len() {
        return Err("a sample needs a value".to_owned());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut s = body;
        loop {
            s = s.trim_start();
            if let Some(after) = s.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = s.find('=').ok_or("a label needs =")?;
            let key = s[..eq].trim();
            if !valid_label_name(key) {
                return Err(bad_name("label", key, false));
            }
            s = s[eq + 1..].trim_start();
            s = s.strip_prefix('"').ok_or("a label value must be quoted")?;
            let mut value = String::new();
            let mut chars = s.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".to_owned()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        _ => return Err("invalid escape in a label value".to_owned()),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((key.to_owned(), value));
            s = s[end + 1..].trim_start();
            if let Some(after) = s.strip_prefix(',') {
                s = after;
            } else if !s.starts_with('}') {
                return Err("labels must be separated by commas".to_owned());
            }
        }
    }
    let fields: Vec<&str> = rest.split_whitespace().collect();
    match fields.as_slice() {
        [v] => {
            let ok = matches!(*v, "NaN" | "+Inf" | "-Inf" | "Inf") || v.parse::<f64>().is_ok();
            if !ok {
                return Err(format!("invalid value {}", excerpt(v)));
            }
        }
        [_, _] => return Err("client-side timestamps are not supported".to_owned()),
        _ => return Err("a sample is a name, labels and one value".to_owned()),
    }
    labels.sort();
    let mut seen = BTreeSet::new();
    for (k, _) in &labels {
        if !seen.insert(k) {
            return Err(format!("label {} twice", excerpt(k)));
        }
    }
    Ok((name.to_owned(), format!("{labels:?}")))
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

/// Parses a whole file into families, or says why the file is dropped.
pub fn parse_file(
    text: &str,
    reserved: impl Fn(&str) -> bool,
) -> Result<BTreeMap<String, TextFamily>, String> {
    let mut families: BTreeMap<String, TextFamily> = BTreeMap::new();
    let mut series = HashSet::new();
    let mut allowed: HashSet<String> = HashSet::new();
    let mut typed = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", i + 1);
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let mut parts = rest.trim_start().splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), help) => {
                    if !valid_metric_name(name) {
                        return Err(at(bad_name("metric", name, true)));
                    }
                    let f = families.entry(name.to_owned()).or_default();
                    if f.help.is_some() {
                        return Err(at(format!("second HELP for {}", excerpt(name))));
                    }
                    f.help = Some(help.unwrap_or("").to_owned());
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    let kind = kind.trim();
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {}", excerpt(kind))));
                    }
                    if !typed.insert(name.to_owned()) {
                        return Err(at(format!("second TYPE for {}", excerpt(name))));
                    }
                    let f = families.entry(name.to_owned()).or_default();
                    if !f.samples.is_empty() {
                        return Err(at(format!("TYPE for {} after its samples", excerpt(name))));
                    }
                    f.kind = kind.to_owned();
                }
                _ => {} // other comments
            }
            continue;
        }
        let (name, labels) = parse_sample(line).map_err(at)?;
        let family = family_of(&name, &families).to_owned();
        // Each name is checked once: the reserved list is long, the series many.
        if !allowed.contains(&name) {
            if reserved(&family) || reserved(&name) {
                return Err(at(format!(
                    "{name} is a metric this exporter serves itself; rename it in the file"
                )));
            }
            allowed.insert(name.clone());
        }
        let key = format!("{name}{labels}");
        if !series.insert(key.clone()) {
            return Err(at(format!("{} repeats a series", excerpt(&name))));
        }
        let f = families.entry(family).or_default();
        if f.kind.is_empty() {
            f.kind = "untyped".to_owned();
        }
        f.samples.push(line.to_owned());
        f.series.push(key);
    }
    families.retain(|_, f| !f.samples.is_empty());
    Ok(families)
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
        AnyCollector::new("textfile", c.timeout.get(), SERVED, run)
    }))
}

impl Collector for Textfile {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
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
        let mut merged: BTreeMap<String, TextFamily> = BTreeMap::new();
        // Every series served so far, and the file it came from.
        let mut served: HashSet<String> = HashSet::new();
        let mut mtimes = Vec::new();
        let mut errors = Vec::new();
        let mut budget = self.bounds.total;
        for path in &paths {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
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
            let parsed = parse_file(&text, |n| self.is_reserved(n)).and_then(|fams| {
                // Families shared with an earlier file must agree, and not repeat series.
                for (name, f) in &fams {
                    if let Some(prev) = merged.get(name) {
                        if prev.kind != f.kind {
                            return Err(format!(
                                "{} is a {} in another file",
                                excerpt(name),
                                prev.kind
                            ));
                        }
                        if f.help.is_some() && prev.help.is_some() && prev.help != f.help {
                            return Err(format!(
                                "{} has another HELP in another file",
                                excerpt(name)
                            ));
                        }
                    }
                    if f.series.iter().any(|s| served.contains(s)) {
                        return Err(format!(
                            "{} repeats a series of another file",
                            excerpt(name)
                        ));
                    }
                }
                Ok(fams)
            });
            match parsed {
                Ok(fams) => {
                    for (name, f) in fams {
                        let m = merged.entry(name).or_insert_with(|| TextFamily {
                            help: None,
                            kind: f.kind.clone(),
                            samples: Vec::new(),
                            series: Vec::new(),
                        });
                        if m.help.is_none() {
                            m.help = f.help;
                        }
                        served.extend(f.series);
                        m.samples.extend(f.samples);
                    }
                    let secs = mtime
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0);
                    mtimes.push((file, secs));
                }
                Err(e) => errors.push(format!("{}: {e}", path.display())),
            }
        }
        for (name, f) in &merged {
            let help = f.help.as_deref().unwrap_or("Metric read from a textfile.");
            w.raw_family(name, help, &f.kind, &f.samples);
        }
        for (file, secs) in &mtimes {
            w.sample(&MTIME, &[("file", file)], *secs);
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
        assert_eq!(f["backup_size_bytes"].samples.len(), 2);
        assert_eq!(f["plain"].kind, "untyped");
        assert_eq!(f["lat"].samples.len(), 4);
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
