//! `os`: the distribution from os-release, as node_exporter's os collector names it:
//! `node_os_info` (its fields as labels) and `node_os_version` (major.minor of
//! VERSION_ID). The file is read again only when it changes.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "The distribution, from os-release.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["os"];

/// Its section, `system.os:`.
pub type Config = super::CollectorToggle;

pub static INFO: Family = Family::gauge(
    "node_os_info",
    "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
);
pub static VERSION: Family = Family::gauge(
    "node_os_version",
    "Metric containing the major.minor part of the OS version.",
);

pub static SERVED: Served = Served::families(&[&INFO, &VERSION]);

/// The os-release fields the labels come from, in label order.
const FIELDS: &[(&str, &str)] = &[
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// `KEY=value` lines, values unquoted as a shell would (single or double quotes,
/// backslash escapes inside double quotes).
pub fn parse(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let value = if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            let mut v = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(next) = chars.next() {
                        v.push(next);
                    }
                } else {
                    v.push(c);
                }
            }
            v
        } else if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            inner.to_owned()
        } else {
            raw.to_owned()
        };
        out.push((key.to_owned(), value));
    }
    out
}

/// The major.minor part of a version such as `12`, `22.04` or `3.18.2`.
pub fn major_minor(version_id: &str) -> Option<f64> {
    let mut parts = version_id.split('.');
    let major = parts.next()?;
    let text = match parts.next() {
        Some(minor) if !minor.is_empty() => format!("{major}.{minor}"),
        _ => major.to_owned(),
    };
    text.parse().ok()
}

/// The file read last: its path, modification time and fields.
type Read = Option<(PathBuf, SystemTime, Vec<(String, String)>)>;

pub struct Os {
    files: [PathBuf; 2],
    read: Mutex<Read>,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let root = &s.system.rootfs;
    Ok(Some(super::blocking(Os {
        files: [root.join("etc/os-release"), root.join("usr/lib/os-release")],
        read: Mutex::new(None),
    })))
}

impl Collector for Os {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut last_error = None;
        let mut found = None;
        for f in &self.files {
            match std::fs::metadata(f).and_then(|m| m.modified()) {
                Ok(t) => {
                    found = Some((f, t));
                    break;
                }
                Err(e) => last_error = Some((f, e)),
            }
        }
        let Some((path, modified)) = found else {
            return match last_error {
                Some((f, e)) => Err(CollectError::read(f, e)),
                None => Ok(()),
            };
        };
        let mut read = match self.read.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let fresh = read
            .as_ref()
            .is_some_and(|(p, t, _)| p == path && *t == modified);
        if !fresh {
            let text = crate::regular::read_to_string(path, 64 << 10)
                .map_err(|e| CollectError::read(path, e))?;
            *read = Some((path.clone(), modified, parse(&text)));
        }
        let Some((_, _, fields)) = read.as_ref() else {
            return Ok(());
        };
        let get = |key: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map_or("", |(_, v)| v.as_str())
        };
        let labels: Vec<(&str, &str)> = FIELDS.iter().map(|(l, k)| (*l, get(k))).collect();
        w.sample_u64(&INFO, &labels, 1);
        if let Some(v) = major_minor(get("VERSION_ID")) {
            w.sample(
                &VERSION,
                &[
                    ("id", get("ID")),
                    ("id_like", get("ID_LIKE")),
                    ("name", get("NAME")),
                ],
                v,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_is_read_as_a_shell_would() {
        let f = parse("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# comment\nNAME='Debian'\nX=\"a \\\"b\\\"\"\n");
        assert_eq!(
            f[0],
            (
                "PRETTY_NAME".to_owned(),
                "Debian GNU/Linux 12 (bookworm)".to_owned()
            )
        );
        assert_eq!(f[1], ("ID".to_owned(), "debian".to_owned()));
        assert_eq!(f[2], ("NAME".to_owned(), "Debian".to_owned()));
        assert_eq!(f[3].1, "a \"b\"");
    }

    #[test]
    fn versions_keep_major_and_minor() {
        assert_eq!(major_minor("12"), Some(12.0));
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("3.18.2"), Some(3.18));
        assert_eq!(major_minor(""), None);
    }
}
