//! Values the configuration is made of, each validated while it is parsed: durations
//! in Prometheus' notation, listen addresses, paths, MySQL URLs and name patterns. A bad
//! value fails loading with its key and position, never the first scrape.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The default port: clear of node_exporter (9100), mysqld_exporter (9104) and the
/// other exporters listed in Prometheus' default port allocations.
pub const DEFAULT_PORT: u16 = 9742;

/// node_exporter's default mount-point exclude (1.5).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default filesystem-type exclude (1.5).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's default disk device exclude (1.5): RAM disks, loops, floppies and
/// partitions, so whole disks are counted once.
pub const DEFAULT_DISK_DEVICES_EXCLUDE: &str =
    "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

/// node_exporter's default systemd unit exclude (1.5), anchored as it anchors it:
/// automounts, devices, mounts, scopes, slices and targets.
pub const DEFAULT_SYSTEMD_UNITS_EXCLUDE: &str =
    "^.+\\.(automount|device|mount|scope|slice|target)$";

/// A MySQL connection URL without a password, checked while the file is loaded.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlUrl(pub String);

impl fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for MysqlUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Parsed here first, so that no message below can ever echo a password.
        let url = url::Url::parse(s).map_err(|e| format!("invalid MySQL URL: {e}"))?;
        if url.password().is_some() {
            return Err(
                "the URL contains a password; remove it from the URL and put it in \
                        mysql.password_file (a file only the exporter's user can read) or in \
                        the [client] section of mysql.defaults_file"
                    .to_owned(),
            );
        }
        if url.scheme() != "mysql" {
            return Err(format!(
                "unsupported URL scheme {:?}: use mysql://USER@HOST:PORT/DATABASE",
                url.scheme()
            ));
        }
        mysql_async::Opts::from_url(s).map_err(|e| format!("invalid MySQL URL: {e}"))?;
        Ok(MysqlUrl(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for MysqlUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// An address to listen on, `HOST:PORT` (`:PORT` means every IPv4 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenAddress(pub SocketAddr);

impl std::str::FromStr for ListenAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let full;
        let s = if s.starts_with(':') {
            full = format!("0.0.0.0{s}");
            full.as_str()
        } else {
            s
        };
        s.parse::<SocketAddr>().map(ListenAddress).map_err(|_| {
            format!("invalid listen address {s:?}: expected HOST:PORT such as 0.0.0.0:{DEFAULT_PORT} or [::1]:{DEFAULT_PORT}")
        })
    }
}

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The metrics path: absolute, and not one of the server's own paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryPath(pub String);

impl std::str::FromStr for TelemetryPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.starts_with('/') || s == "/" || s.starts_with("/-/") || s.contains(['?', '#', ' ']) {
            return Err(format!(
                "invalid telemetry path {s:?}: expected an absolute path such as /metrics, other than / and /-/…"
            ));
        }
        Ok(TelemetryPath(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for TelemetryPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A duration in Prometheus' notation: `500ms`, `5s`, `1h30m`, `26h`, `30d`, `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationValue(pub Duration);

impl DurationValue {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::str::FromStr for DurationValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(DurationValue).ok_or_else(|| {
            format!("invalid duration {s:?}: expected a number and a unit (ms, s, m, h, d, w, y), such as 500ms, 5s, 1h30m or 30d")
        })
    }
}

/// As the configuration file writes it (`5s`, `1h30m`).
impl serde::Serialize for DurationValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A size in bytes from the config: a whole number and an optional binary unit
/// (`1048576`, `512KiB`, `4MiB`, `1GiB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::regular::human_bytes(self.0))
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        let unit: u64 = match t[digits..].trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => 0,
        };
        t[..digits]
            .parse::<u64>()
            .ok()
            .filter(|_| unit > 0)
            .and_then(|n| n.checked_mul(unit))
            .map(ByteSize)
            .ok_or_else(|| {
                format!("invalid size {s:?}: expected a whole number of bytes, or one with KiB, MiB or GiB, such as 4MiB")
            })
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(ByteSize(n)),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total_ms: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u128 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let ms_per: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            "y" => 31_536_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms = total_ms.checked_add(n.checked_mul(ms_per)?)?;
    }
    Some(Duration::from_millis(u64::try_from(total_ms).ok()?))
}

/// A name pattern: a regular expression from the config file, compiled while it is
/// loaded, or one of node_exporter's default excludes.
///
/// The defaults are matched by hand rather than by compiling their regular expressions:
/// an exporter left at its defaults then never runs the regex compiler, which keeps some
/// 200 KB of compiled automata off the heap and the compiler's code out of resident
/// memory. A unit test checks that each gives the same answers as its expression.
#[derive(Debug, Clone)]
pub enum Pattern {
    Regex(regex::Regex),
    Builtin(Builtin),
}

/// node_exporter's default excludes (see the `DEFAULT_*` expressions above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    MountPoints,
    FsTypes,
    DiskDevices,
    SystemdUnits,
}

impl Pattern {
    pub fn builtin(b: Builtin) -> Pattern {
        Pattern::Builtin(b)
    }

    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Regex(re) => re.is_match(s),
            Pattern::Builtin(Builtin::MountPoints) => mount_point_excluded(s),
            Pattern::Builtin(Builtin::FsTypes) => FS_TYPES_EXCLUDED.contains(&s),
            Pattern::Builtin(Builtin::DiskDevices) => disk_device_excluded(s),
            Pattern::Builtin(Builtin::SystemdUnits) => systemd_unit_excluded(s),
        }
    }
}

/// [`DEFAULT_FS_TYPES_EXCLUDE`]'s alternatives.
const FS_TYPES_EXCLUDED: [&str; 24] = [
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// [`DEFAULT_MOUNT_POINTS_EXCLUDE`]: `/dev`, `/proc`, `/sys` and what is below them, and
/// what is below `/run/credentials`, `/var/lib/docker` and `/var/lib/containers/storage`.
fn mount_point_excluded(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('/') else {
        return false;
    };
    let whole = |dir: &str| {
        rest.strip_prefix(dir)
            .is_some_and(|r| r.is_empty() || r.starts_with('/'))
    };
    // `dir/.+($|/)`: at least one character (`.` is anything but a line break) up to
    // the end or a `/`.
    let below = |dir: &str| {
        rest.strip_prefix(dir).is_some_and(|r| {
            let line = r.split('\n').next().unwrap_or_default();
            (!line.is_empty() && line.len() == r.len())
                || line.char_indices().any(|(i, c)| i > 0 && c == '/')
        })
    };
    whole("dev")
        || whole("proc")
        || whole("sys")
        || below("run/credentials/")
        || below("var/lib/docker/")
        || below("var/lib/containers/storage/")
}

/// [`DEFAULT_SYSTEMD_UNITS_EXCLUDE`].
fn systemd_unit_excluded(s: &str) -> bool {
    ["automount", "device", "mount", "scope", "slice", "target"]
        .iter()
        .any(|kind| {
            s.rsplit_once('.')
                .is_some_and(|(name, k)| !name.is_empty() && k == *kind)
        })
}

/// [`DEFAULT_DISK_DEVICES_EXCLUDE`]: `ram0`, `loop1`, `fd0`, partitions such as `sda1`,
/// `vdb2`, `xvda1` and `nvme0n1p1`. Device names are ASCII, as the kernel makes them.
fn disk_device_excluded(s: &str) -> bool {
    fn digits(s: &str) -> Option<&str> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        (end > 0).then(|| &s[end..])
    }
    let ends_in_number = |r: &str| digits(r) == Some("");
    for prefix in ["ram", "loop", "fd"] {
        if s.strip_prefix(prefix).is_some_and(ends_in_number) {
            return true;
        }
    }
    for prefix in ["hd", "sd", "vd", "xvd"] {
        if let Some(r) = s.strip_prefix(prefix) {
            let mut chars = r.chars();
            if chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && ends_in_number(chars.as_str())
            {
                return true;
            }
        }
    }
    // nvme\d+n\d+p\d+
    s.strip_prefix("nvme")
        .and_then(digits)
        .and_then(|r| r.strip_prefix('n'))
        .and_then(digits)
        .and_then(|r| r.strip_prefix('p'))
        .is_some_and(ends_in_number)
}

impl Builtin {
    /// The regular expression it matches as.
    pub fn expression(self) -> &'static str {
        match self {
            Builtin::MountPoints => DEFAULT_MOUNT_POINTS_EXCLUDE,
            Builtin::FsTypes => DEFAULT_FS_TYPES_EXCLUDE,
            Builtin::DiskDevices => DEFAULT_DISK_DEVICES_EXCLUDE,
            Builtin::SystemdUnits => DEFAULT_SYSTEMD_UNITS_EXCLUDE,
        }
    }
}

/// As the configuration file writes it: the regular expression.
impl serde::Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Pattern::Regex(re) => s.serialize_str(re.as_str()),
            Pattern::Builtin(b) => s.serialize_str(b.expression()),
        }
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex::Regex::new(&s).map(Pattern::Regex).map_err(|e| {
            // regex draws a multi-line caret diagram; its last line says what is wrong.
            let text = e.to_string();
            let what = text.lines().last().unwrap_or_default();
            let what = what.trim().trim_start_matches("error: ");
            serde::de::Error::custom(format!("invalid regular expression {s:?}: {what}"))
        })
    }
}

/// A name filter from an include and an exclude pattern: included (or no include) and
/// not excluded.
///
/// With a regular expression among the patterns, answers are remembered per name: device
/// names repeat every scrape, and a regex run costs time and, on each thread that runs
/// it, a search cache of its own. The built-in patterns are cheaper than the lookup.
#[derive(Debug)]
pub struct NameFilter {
    include: Option<Pattern>,
    exclude: Option<Pattern>,
    answers: std::sync::Mutex<std::collections::HashMap<Box<str>, bool>>,
}

/// Names remembered at most; past that (device churn) the memory starts over.
const FILTER_MEMORY: usize = 1024;

impl NameFilter {
    pub fn new(include: Option<Pattern>, exclude: Option<Pattern>) -> Self {
        NameFilter {
            include,
            exclude,
            answers: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn accepts(&self, name: &str) -> bool {
        let regex = |p: &Option<Pattern>| matches!(p, Some(Pattern::Regex(_)));
        if !regex(&self.include) && !regex(&self.exclude) {
            return self.decide(name);
        }
        let Ok(mut answers) = self.answers.try_lock() else {
            // Another scrape is asking: answer without the memory.
            return self.decide(name);
        };
        if let Some(&a) = answers.get(name) {
            return a;
        }
        let a = self.decide(name);
        if answers.len() >= FILTER_MEMORY {
            answers.clear();
        }
        answers.insert(name.into(), a);
        a
    }

    fn decide(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|p| p.is_match(name))
            && !self.exclude.as_ref().is_some_and(|p| p.is_match(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_patterns_answer_as_their_expressions() {
        let mounts = [
            "/",
            "/dev",
            "/dev/",
            "/dev/shm",
            "/devices",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/process",
            "/sys",
            "/sys/kernel/debug",
            "/system",
            "/run",
            "/run/credentials",
            "/run/credentials/",
            "/run/credentials/x",
            "/run/credentials/getty@tty1.service",
            "/run/credentials/a/b",
            "/run/credentials/\n",
            "/run/credentials/a\nb",
            "/run/credentials/a/\nb",
            "/run/credentials/\n/x",
            "/var/lib/docker",
            "/var/lib/docker/",
            "/var/lib/docker/overlay2/abc/merged",
            "/var/lib/dockerd",
            "/var/lib/containers/storage/overlay",
            "/var/lib/containers/storage",
            "/home",
            "/boot/efi",
            "dev",
            "",
            "/srv/dev",
            "/mnt/proc",
        ];
        let fs_types = [
            "ext4",
            "xfs",
            "tmpfs",
            "autofs",
            "cgroup",
            "cgroup2",
            "cgroup3",
            "proc",
            "procfs",
            "proc2",
            "overlay",
            "overlayfs",
            "fuse.sshfs",
            "nfs4",
            "squashfs",
            "sysfs",
            "",
            "bpf",
            "xbpf",
            "tracefs",
            "binfmt_misc",
        ];
        let disks = [
            "sda",
            "sda1",
            "sdb12",
            "vda",
            "vda1",
            "xvda",
            "xvda1",
            "hdc3",
            "sdaa1",
            "sd1",
            "nvme0n1",
            "nvme0n1p1",
            "nvme10n2p15",
            "nvme0n1p",
            "nvmen1p1",
            "loop",
            "loop0",
            "loop12",
            "ram0",
            "ram",
            "fd0",
            "zram0",
            "dm-0",
            "md0",
            "sr0",
            "mmcblk0p1",
            "loop0a",
            "sda1b",
            "",
            "sdA1",
        ];
        let units = [
            "ssh.service",
            "home.mount",
            "-.mount",
            "user.slice",
            "session-2.scope",
            "dev-sda1.device",
            "proc-sys-fs-binfmt_misc.automount",
            ".mount",
            "mount",
            "a.mount.service",
            "a.service.mount",
            "logrotate.timer",
            "a.slices",
            "multi-user.target",
        ];
        for (builtin, re, names) in [
            (
                Builtin::MountPoints,
                DEFAULT_MOUNT_POINTS_EXCLUDE,
                &mounts[..],
            ),
            (Builtin::FsTypes, DEFAULT_FS_TYPES_EXCLUDE, &fs_types[..]),
            (
                Builtin::DiskDevices,
                DEFAULT_DISK_DEVICES_EXCLUDE,
                &disks[..],
            ),
            (
                Builtin::SystemdUnits,
                DEFAULT_SYSTEMD_UNITS_EXCLUDE,
                &units[..],
            ),
        ] {
            let re = regex::Regex::new(re).unwrap();
            let p = Pattern::builtin(builtin);
            for name in names {
                assert_eq!(
                    p.is_match(name),
                    re.is_match(name),
                    "{builtin:?} on {name:?}"
                );
            }
        }
        let mounts = Pattern::builtin(Builtin::MountPoints);
        assert!(mounts.is_match("/proc/sys"));
        assert!(!mounts.is_match("/home"));
        let types = Pattern::builtin(Builtin::FsTypes);
        assert!(!types.is_match("tmpfs") && types.is_match("overlay"));
        let disks = Pattern::builtin(Builtin::DiskDevices);
        assert!(disks.is_match("sda1") && disks.is_match("nvme0n1p2"));
        assert!(!disks.is_match("sda") && !disks.is_match("nvme0n1"));
    }

    #[test]
    fn name_filter_answers_the_same_from_memory() {
        let f = NameFilter::new(
            Some(Pattern::Regex(regex::Regex::new("^(eth|lo)").unwrap())),
            Some(Pattern::Regex(regex::Regex::new("^lo$").unwrap())),
        );
        for _ in 0..2 {
            assert!(f.accepts("eth0"));
            assert!(!f.accepts("lo"));
            assert!(!f.accepts("wlan0"));
        }
        assert_eq!(f.answers.lock().unwrap().len(), 3);
        assert!(NameFilter::new(None, None).accepts("anything"));
    }

    #[test]
    fn durations_in_prometheus_notation() {
        let b = |s: &str| s.parse::<ByteSize>().map(|b| b.0);
        assert_eq!(b("4MiB"), Ok(4 << 20));
        assert_eq!(b("512 KiB"), Ok(512 << 10));
        assert_eq!(b("100"), Ok(100));
        assert!(b("4MB").unwrap_err().contains("such as 4MiB"));
        assert!(b("MiB").is_err());
        let d = |s: &str| s.parse::<DurationValue>().map(|d| d.0);
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(d("26h"), Ok(Duration::from_secs(26 * 3600)));
        for bad in ["", "5", "s", "5 s", "1.5s", "5sec", "-1s"] {
            assert!(d(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
