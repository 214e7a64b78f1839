//! `filesystem`: statvfs of every mount, as node_exporter's filesystem collector.
//!
//! The mount table is PID 1's (/proc/1/mountinfo, as node_exporter reads it): the
//! exporter's own namespace is its sandbox's, where every mount looks read-only. It is
//! parsed only when it changes: the file is kept open and polled for POLLPRI, which the
//! kernel raises on every mount or unmount. A mount is read-only when its own options
//! or its superblock's say so. statvfs of a
//! network mount can block forever; a mount whose statvfs has not returned is skipped
//! by later scrapes (`node_filesystem_device_error 1`) until it does, so one dead NFS
//! server costs one blocked thread, not every scrape.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::parse::{fields, lines};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::ProcFile;
use crate::sys::{statvfs, FsUsage as Usage};
use crate::value::{Builtin, DurationValue, NameFilter, Pattern};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Size, free space and inodes of every mount (statvfs(2)), read-only and device errors.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["filesystem"];

/// Its section, `system.filesystem:`.
pub type Config = FilesystemConfig;

/// `system.filesystem:`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub mount_points_exclude: Pattern,
    pub mount_points_include: Option<Pattern>,
    pub fs_types_exclude: Pattern,
    pub fs_types_include: Option<Pattern>,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            mount_points_exclude: Pattern::builtin(Builtin::MountPoints),
            mount_points_include: None,
            fs_types_exclude: Pattern::builtin(Builtin::FsTypes),
            fs_types_include: None,
        }
    }
}

pub static SIZE: Family =
    Family::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.").unit("bytes");
pub static FREE: Family = Family::gauge(
    "node_filesystem_free_bytes",
    "Filesystem free space in bytes.",
)
.unit("bytes");
pub static AVAIL: Family = Family::gauge(
    "node_filesystem_avail_bytes",
    "Filesystem space available to non-root users in bytes.",
)
.unit("bytes");
pub static FILES: Family = Family::gauge("node_filesystem_files", "Filesystem total file nodes.");
pub static FILES_FREE: Family =
    Family::gauge("node_filesystem_files_free", "Filesystem free file nodes.");
pub static READONLY: Family = Family::gauge(
    "node_filesystem_readonly",
    "Whether the filesystem is mounted read-only (1) or not (0).",
);
pub static DEVICE_ERROR: Family = Family::gauge(
    "node_filesystem_device_error",
    "Whether statvfs of the mount failed or is still blocked (1) or not (0).",
);

/// One line of mountinfo, octal escapes decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    pub device: String,
    pub fstype: String,
    pub mountpoint: String,
    pub readonly: bool,
}

impl MountEntry {
    /// Its label set: mount point, device, type.
    fn labels(&self) -> (&str, &str, &str) {
        (&self.mountpoint, &self.device, &self.fstype)
    }
}

/// Parses /proc/<pid>/mountinfo (`proc(5)`): mount point is field 5, per-mount options
/// field 6, and after the ` - ` separator come fstype, source and the superblock's
/// options. A mount is read-only when either its own options or its superblock's say
/// `ro`: the kernel makes a filesystem read-only after an error by the superblock flag,
/// which only the super options show.
pub fn parse_mountinfo(data: &[u8], errors: &mut LineErrors) -> Vec<MountEntry> {
    let mut out = Vec::new();
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let (Some(_id), Some(_parent), Some(_devno), Some(_root), Some(mp), Some(opts)) =
            (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            errors.record(n, "fewer than six fields");
            continue;
        };
        // Optional fields (shared:N, master:N, …) end at the lone "-".
        let mut rest = f.skip_while(|x| *x != b"-");
        let (Some(_dash), Some(fstype), Some(source)) = (rest.next(), rest.next(), rest.next())
        else {
            errors.record(n, "no ` - fstype source` part");
            continue;
        };
        let ro = |o: &[u8]| o.split(|&b| b == b',').any(|o| o == b"ro");
        out.push(MountEntry {
            // As node_exporter labels it: the kernel's escaped form (`my\040disk`).
            device: String::from_utf8_lossy(source).into_owned(),
            fstype: unescape(fstype),
            mountpoint: unescape(mp),
            readonly: ro(opts) || rest.next().is_some_and(ro),
        });
    }
    out
}

/// Decodes mountinfo's `\ooo` octal escapes (space, tab, newline, backslash).
fn unescape(s: &[u8]) -> String {
    if !s.contains(&b'\\') {
        return String::from_utf8_lossy(s).into_owned();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 3 < s.len()
            && s[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A mount this collector reports, with what statvfs needs and the state that makes a
/// blocked statvfs visible to later scrapes.
#[derive(Debug)]
struct Mount {
    entry: MountEntry,
    path: CString,
    /// Unix milliseconds at which a statvfs of this mount started and has not returned;
    /// 0 when none is outstanding. Shared across mount-table reloads.
    busy_since: Arc<AtomicU64>,
}

#[derive(Debug)]
struct MountTable {
    file: ProcFile,
    /// True when the file is a real procfs file whose POLLPRI says when it changed; a
    /// fixture file is re-read every scrape.
    pollable: bool,
    mounts: Arc<Vec<Mount>>,
    loaded: bool,
    /// Malformed lines of the last load, reported with every scrape until it changes.
    malformed: Option<(usize, usize, &'static str)>,
}

pub struct Filesystem {
    table: Mutex<MountTable>,
    /// Whether the current mount table has a mount whose statvfs can wait on a network
    /// or a user-space server; local filesystems answer statvfs from memory.
    has_remote: AtomicBool,
    rootfs: PathBuf,
    mounts: NameFilter,
    fs_types: NameFilter,
}

impl Filesystem {
    pub fn new(procfs: &Path, rootfs: &Path, cfg: &FilesystemConfig) -> Self {
        // PID 1's mount table, as node_exporter reads it: the exporter's own is its
        // sandbox's, where ProtectSystem= shows every mount read-only. Its own only when
        // PID 1's cannot be read (hidepid, a PID namespace without it).
        let pid1 = procfs.join("1/mountinfo");
        let path = if std::fs::File::open(&pid1).is_ok() {
            pid1
        } else {
            procfs.join("self/mountinfo")
        };
        Filesystem {
            table: Mutex::new(MountTable {
                pollable: super::is_procfs(procfs),
                file: ProcFile::new(path),
                mounts: Arc::new(Vec::new()),
                loaded: false,
                malformed: None,
            }),
            has_remote: AtomicBool::new(true),
            rootfs: rootfs.to_owned(),
            mounts: NameFilter::new(
                cfg.mount_points_include.clone(),
                Some(cfg.mount_points_exclude.clone()),
            ),
            fs_types: NameFilter::new(
                cfg.fs_types_include.clone(),
                Some(cfg.fs_types_exclude.clone()),
            ),
        }
    }

    /// The current mount list, re-read only when the kernel says it changed.
    fn mounts(&self) -> Result<(Arc<Vec<Mount>>, Option<CollectError>), CollectError> {
        let mut t = match self.table.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        let changed = !t.loaded || !t.pollable || mount_table_changed(&t.file);
        if changed {
            let path = t.file.path().to_owned();
            let data = t.file.read().map_err(|e| CollectError::read(&path, e))?;
            let mut errors = LineErrors::default();
            let entries = parse_mountinfo(data, &mut errors);
            let old = Arc::clone(&t.mounts);
            // The last list's mounts by their labels, and this list's labels so far:
            // one lookup per entry, so that a table of thousands costs its length.
            let before: HashMap<(&str, &str, &str), &Mount> =
                old.iter().map(|m| (m.entry.labels(), m)).collect();
            let mut seen: HashSet<(String, String, String)> = HashSet::new();
            let mut mounts: Vec<Mount> = Vec::new();
            for entry in entries {
                if !self.mounts.accepts(&entry.mountpoint) || !self.fs_types.accepts(&entry.fstype)
                {
                    continue;
                }
                // Mounts stacked on one mount point each keep their series, as in
                // node_exporter: statvfs sees the top one for all of them. A mount
                // listed twice with the same labels is one series.
                let (m, d, f) = entry.labels();
                if !seen.insert((m.to_owned(), d.to_owned(), f.to_owned())) {
                    continue;
                }
                let full = join_root(&self.rootfs, &entry.mountpoint);
                let Ok(path) = CString::new(full.as_os_str().as_bytes()) else {
                    continue;
                };
                let busy_since = before
                    .get(&entry.labels())
                    .map(|m| Arc::clone(&m.busy_since))
                    .unwrap_or_default();
                mounts.push(Mount {
                    entry,
                    path,
                    busy_since,
                });
            }
            self.has_remote.store(
                !t.pollable || mounts.iter().any(|m| may_block_fs(&m.entry.fstype)),
                Ordering::Relaxed,
            );
            t.mounts = Arc::new(mounts);
            t.loaded = true;
            t.malformed = errors.summary();
        }
        let malformed = t
            .malformed
            .map(|(line, count, reason)| CollectError::Malformed {
                path: t.file.path().to_owned(),
                line,
                count,
                reason,
            });
        Ok((Arc::clone(&t.mounts), malformed))
    }
}

/// Filesystem types whose statvfs goes to a server (network filesystems, FUSE) and
/// so can block for as long as the server does not answer.
fn may_block_fs(fstype: &str) -> bool {
    const REMOTE: [&str; 14] = [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "glusterfs",
        "9p",
        "afs",
        "lustre",
        "gfs2",
        "ocfs2",
        "davfs",
        "sshfs",
    ];
    fstype.starts_with("fuse") || REMOTE.contains(&fstype)
}

fn join_root(rootfs: &Path, mountpoint: &str) -> PathBuf {
    if rootfs == Path::new("/") {
        PathBuf::from(mountpoint)
    } else {
        rootfs.join(mountpoint.trim_start_matches('/'))
    }
}

/// Asks the kernel, without blocking, whether the mount table changed since last asked.
fn mount_table_changed(file: &ProcFile) -> bool {
    file.fd().is_none_or(crate::sys::poll_priority)
}

/// A family and how to read its value from a [`Usage`].
type UsageColumn = (&'static Family, fn(&Usage) -> u64);

/// How long a statvfs may be outstanding before later scrapes skip its mount.
const STUCK_AFTER_MS: u64 = 1000;

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(1)
        .max(1)
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[
    &SIZE,
    &FREE,
    &AVAIL,
    &FILES,
    &FILES_FREE,
    &READONLY,
    &DEVICE_ERROR,
]);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.filesystem;
    Ok(Some(super::blocking(Filesystem::new(&s.system.procfs, &s.system.rootfs, c))))
}

impl Collector for Filesystem {
    fn reentrant(&self) -> bool {
        true
    }

    fn may_block(&self) -> bool {
        self.has_remote.load(Ordering::Relaxed)
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let (mounts, malformed) = self.mounts()?;
        let mut results: Vec<Option<Usage>> = Vec::with_capacity(mounts.len());
        let mut failed = 0;
        let mut first_failure = String::new();
        for m in mounts.iter() {
            let now = now_millis();
            let since = m.busy_since.load(Ordering::Acquire);
            let outcome = if since != 0 && now.saturating_sub(since) >= STUCK_AFTER_MS {
                Err(format!(
                    "{}: statvfs blocked for {}s",
                    m.entry.mountpoint,
                    now.saturating_sub(since) / 1000
                ))
            } else {
                // Concurrent scrapes may stat the same mount at once; the one that finds
                // it free marks it, so a call that never returns leaves its mark behind.
                let marked = m
                    .busy_since
                    .compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                let r = statvfs(&m.path);
                if marked {
                    m.busy_since.store(0, Ordering::Release);
                }
                r.map_err(|e| format!("{}: statvfs: {e}", m.entry.mountpoint))
            };
            match outcome {
                Ok(u) => results.push(Some(u)),
                Err(msg) => {
                    failed += 1;
                    if first_failure.is_empty() {
                        first_failure = msg;
                    }
                    results.push(None);
                }
            }
        }
        let label_sets: Vec<[(&str, &str); 3]> = mounts
            .iter()
            .map(|m| {
                [
                    ("device", m.entry.device.as_str()),
                    ("fstype", m.entry.fstype.as_str()),
                    ("mountpoint", m.entry.mountpoint.as_str()),
                ]
            })
            .collect();
        let fams: [UsageColumn; 5] = [
            (&SIZE, |u| u.size),
            (&FREE, |u| u.free),
            (&AVAIL, |u| u.avail),
            (&FILES, |u| u.files),
            (&FILES_FREE, |u| u.files_free),
        ];
        for (family, get) in fams {
            for (labels, r) in label_sets.iter().zip(&results) {
                if let Some(u) = r {
                    w.sample_u64(family, labels, get(u));
                }
            }
        }
        // A mount whose statvfs failed has only its device error, as in node_exporter.
        for ((labels, m), r) in label_sets.iter().zip(mounts.iter()).zip(&results) {
            if r.is_some() {
                w.sample_u64(&READONLY, labels, u64::from(m.entry.readonly));
            }
        }
        for (labels, r) in label_sets.iter().zip(&results) {
            w.sample_u64(&DEVICE_ERROR, labels, u64::from(r.is_none()));
        }
        if failed > 0 {
            return Err(CollectError::Partial {
                what: "mounts",
                failed,
                total: mounts.len(),
                first: first_failure,
            });
        }
        malformed.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/self/mountinfo excerpt from a Debian 12 host with an NFS mount and a
    /// mount point containing a space.
    const DEBIAN12_MOUNTINFO: &[u8] =
        b"22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
45 22 0:40 / /mnt/my\\040disk ro,relatime shared:30 master:2 - vfat /dev/sdb1 ro
46 22 0:41 / /srv/nfs rw,relatime shared:31 - nfs4 fileserver:/export rw,vers=4.2
garbage
47 22 8:33 / /srv/data rw,relatime shared:32 - ext4 /dev/sdc1 ro,errors=remount-ro
";

    #[test]
    fn parses_mountinfo_with_escapes_and_optional_fields() {
        let mut e = LineErrors::default();
        let m = parse_mountinfo(DEBIAN12_MOUNTINFO, &mut e);
        assert_eq!(m.len(), 5);
        assert_eq!(
            m[2],
            MountEntry {
                device: "/dev/sdb1".into(),
                fstype: "vfat".into(),
                mountpoint: "/mnt/my disk".into(),
                readonly: true
            }
        );
        assert_eq!(m[3].device, "fileserver:/export");
        // A device name keeps the kernel's escapes, as node_exporter labels it.
        let tmpfs = b"48 22 0:42 / /srv/shop\\040data rw - tmpfs shop\\040data rw\n";
        let t = parse_mountinfo(tmpfs, &mut LineErrors::default());
        assert_eq!(t[0].device, "shop\\040data");
        assert_eq!(t[0].mountpoint, "/srv/shop data");
        assert!(!m[0].readonly);
        // Mounted rw, but the kernel turned the superblock read-only after an error.
        assert_eq!(m[4].mountpoint, "/srv/data");
        assert!(m[4].readonly);
        let err = e
            .into_result(Path::new("mountinfo"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("first at line 5"), "{err}");
    }

    #[test]
    fn remote_filesystems_may_block() {
        assert!(may_block_fs("nfs4") && may_block_fs("fuse.sshfs") && may_block_fs("cifs"));
        assert!(!may_block_fs("ext4") && !may_block_fs("tmpfs") && !may_block_fs("xfs"));
    }

    #[test]
    fn joins_rootfs() {
        assert_eq!(join_root(Path::new("/"), "/var"), PathBuf::from("/var"));
        assert_eq!(
            join_root(Path::new("/host"), "/var"),
            PathBuf::from("/host/var")
        );
        assert_eq!(join_root(Path::new("/host"), "/"), PathBuf::from("/host/"));
    }
}
