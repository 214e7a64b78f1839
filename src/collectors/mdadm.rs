//! `mdadm`: software RAID arrays from /proc/mdstat, as node_exporter's mdadm collector
//! names them: each array's state, its disks by state, the disks it needs, its size
//! and how far a rebuild or check has come. Without the md driver there is no
//! /proc/mdstat and nothing to report.
//!
//! /proc/mdstat has one section per array (see the kernel's `md_seq_show`):
//!
//! ```text
//! md1 : active raid1 sdb2[1](F) sda2[0]
//!       487253824 blocks super 1.2 [2/1] [U_]
//!       bitmap: 3/4 pages [12KB], 65536KB chunk
//! ```
//!
//! The first line names the array, whether it runs, its level and its members (`(F)`
//! failed, `(S)` spare); the second gives its size in 1 KiB blocks and, for levels with
//! redundancy, `[disks needed/disks working]`; a bitmap line may follow, then a line
//! for a recovery, resync or check under way, with `(done/total)` blocks.

use std::path::PathBuf;

use super::parse::{fields, str_of};
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Software RAID arrays (/proc/mdstat, where the md driver is loaded).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["mdadm"];

/// Its section, `system.mdadm:`.
pub type Config = super::CollectorToggle;

pub static STATE: Family = Family::gauge(
    "node_md_state",
    "Whether the array is in this state (1) or not (0).",
);
pub static DISKS: Family = Family::gauge(
    "node_md_disks",
    "The array's member disks that are working (active), failed or spare.",
);
pub static DISKS_REQUIRED: Family = Family::gauge(
    "node_md_disks_required",
    "Disks the array needs to be complete.",
);
pub static BLOCKS: Family = Family::gauge("node_md_blocks", "The array's size in 1 KiB blocks.");
pub static BLOCKS_SYNCED: Family = Family::gauge(
    "node_md_blocks_synced",
    "Blocks a rebuild, resync or check has gone through (all of them when none runs).",
);

pub static SERVED: Served =
    Served::families(&[&STATE, &DISKS, &DISKS_REQUIRED, &BLOCKS, &BLOCKS_SYNCED]);

/// The states node_exporter reports, each as its own series.
pub const STATES: [&str; 5] = ["active", "inactive", "recovering", "resync", "check"];

/// One array as /proc/mdstat describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Array {
    pub name: String,
    /// One of [`STATES`].
    pub state: &'static str,
    pub active: u64,
    pub failed: u64,
    pub spare: u64,
    pub required: u64,
    pub blocks: u64,
    pub synced: u64,
}

/// The first `[a/b]` in `line`, as (a, b).
fn needed_and_working(line: &str) -> Option<(u64, u64)> {
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        if let Some(close) = after.find(']') {
            if let Some((a, b)) = after[..close].split_once('/') {
                if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                    return Some((a, b));
                }
            }
        }
        rest = after;
    }
    None
}

/// The blocks done of a `(done/total)` progress, as the sync line gives it.
fn blocks_done(line: &str) -> Option<u64> {
    let open = line.find('(')?;
    let (done, _) = line[open + 1..].split_once('/')?;
    done.parse().ok()
}

/// Parses /proc/mdstat. A section that does not have the lines it must have is an
/// error naming its line; the arrays before it are kept.
pub fn parse(data: &[u8]) -> (Vec<Array>, Option<(usize, &'static str)>) {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with([' ', '\t'])
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let words: Vec<&str> = fields(line.as_bytes()).filter_map(str_of).collect();
        if words.len() < 3 {
            return (
                out,
                Some((i + 1, "an array line has fewer than three words")),
            );
        }
        let Some(status) = lines.get(i + 1) else {
            return (out, Some((i + 1, "an array without its status line")));
        };
        let Some(blocks) = status
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
        else {
            return (out, Some((i + 2, "a status line without its block count")));
        };
        let failed = line.matches("(F)").count() as u64;
        let spare = line.matches("(S)").count() as u64;
        let (required, active) = if line.contains("raid0") || line.contains("linear") {
            // No redundancy, no `[n/m]`: every member listed (`sda1[0]`) is needed.
            let members = line.matches('[').count() as u64;
            (members, members)
        } else if words[2] == "inactive" {
            (0, 0)
        } else {
            match needed_and_working(status) {
                Some(v) => v,
                None => {
                    return (
                        out,
                        Some((i + 2, "a status line without `[needed/working]`")),
                    )
                }
            }
        };
        let mut sync = i + 2;
        if lines.get(sync).is_some_and(|l| l.contains("bitmap")) {
            sync += 1;
        }
        let sync_line = lines.get(sync).copied().unwrap_or_default();
        let mut state = if words[2] == "inactive" {
            "inactive"
        } else {
            "active"
        };
        let mut synced = blocks;
        let (recovery, check, resync) = (
            sync_line.contains("recovery"),
            sync_line.contains("check"),
            sync_line.contains("resync"),
        );
        if recovery || check || resync {
            state = if recovery {
                "recovering"
            } else if check {
                "check"
            } else {
                "resync"
            };
            synced = if sync_line.contains("PENDING") || sync_line.contains("DELAYED") {
                0
            } else {
                match blocks_done(sync_line) {
                    Some(v) => v,
                    None => {
                        return (
                            out,
                            Some((sync + 1, "a progress line without `(done/total)`")),
                        )
                    }
                }
            };
        }
        out.push(Array {
            name: words[0].to_owned(),
            state,
            active,
            failed,
            spare,
            required,
            blocks,
            synced,
        });
    }
    (out, None)
}

/// Writes the arrays family by family.
pub fn encode(arrays: &[Array], w: &mut MetricWriter<'_>) {
    for a in arrays {
        for s in STATES {
            w.sample_u64(
                &STATE,
                &[("device", &a.name), ("state", s)],
                u64::from(a.state == s),
            );
        }
    }
    for a in arrays {
        for (state, n) in [
            ("active", a.active),
            ("failed", a.failed),
            ("spare", a.spare),
        ] {
            w.sample_u64(&DISKS, &[("device", &a.name), ("state", state)], n);
        }
    }
    for (family, get) in [
        (
            &DISKS_REQUIRED,
            (|a: &Array| a.required) as fn(&Array) -> u64,
        ),
        (&BLOCKS, |a| a.blocks),
        (&BLOCKS_SYNCED, |a| a.synced),
    ] {
        for a in arrays {
            w.sample_u64(family, &[("device", &a.name)], get(a));
        }
    }
}

pub struct Mdadm {
    path: PathBuf,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::procfs_only(&s.system.procfs, Mdadm {
        path: s.system.procfs.join("mdstat"),
    })))
}

impl Collector for Mdadm {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let data = match crate::regular::read(&self.path, 1 << 20) {
            Ok(d) => d,
            // No md driver: no arrays.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CollectError::read(&self.path, e)),
        };
        let (arrays, malformed) = parse(&data);
        encode(&arrays, w);
        match malformed {
            None => Ok(()),
            Some((line, reason)) => Err(CollectError::Malformed {
                path: self.path.clone(),
                line,
                count: 1,
                reason,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<Array> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mdstat")
            .join(name)
            .join("mdstat");
        let (arrays, malformed) = parse(&std::fs::read(&path).unwrap());
        assert_eq!(malformed, None, "{}", path.display());
        arrays
    }

    fn array(arrays: &[Array], name: &str) -> Array {
        arrays.iter().find(|a| a.name == name).unwrap().clone()
    }

    #[test]
    fn a_degraded_mirror_and_a_rebuilding_raid5() {
        let a = fixture("raid1-failed-raid5-recovering");
        let md1 = array(&a, "md1");
        assert_eq!(
            (md1.state, md1.active, md1.failed, md1.required),
            ("active", 1, 1, 2)
        );
        assert_eq!(md1.synced, md1.blocks);
        let md2 = array(&a, "md2");
        assert_eq!((md2.state, md2.active, md2.required), ("recovering", 3, 4));
        assert!(md2.synced < md2.blocks && md2.synced > 0);
        let md3 = array(&a, "md3");
        assert_eq!((md3.state, md3.spare, md3.required), ("inactive", 1, 0));
    }

    #[test]
    fn checks_resyncs_and_stripes() {
        let a = fixture("raid10-check-raid6-resync-pending-raid0");
        assert_eq!(array(&a, "md0").state, "check");
        let md1 = array(&a, "md1");
        assert_eq!((md1.state, md1.synced), ("resync", 0));
        let md2 = array(&a, "md2");
        assert_eq!((md2.state, md2.active, md2.required), ("active", 2, 2));
    }

    #[test]
    fn a_cut_off_section_names_its_line() {
        let (arrays, malformed) = parse(b"Personalities : [raid1]\nmd0 : active raid1 sda1[0]\n");
        assert!(arrays.is_empty());
        assert_eq!(malformed.map(|m| m.0), Some(3));
        let (_, malformed) = parse(b"md0 : active raid1 sda1[0]\n      100 blocks [2/1] [U_]\n      [=>..]  recovery = 5.0% (x/y)\n");
        assert_eq!(malformed.map(|m| m.0), Some(3));
    }
}
