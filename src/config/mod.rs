//! The YAML configuration file, parsed strictly into validated settings.
//!
//! Every section is optional and has defaults; unknown keys, bad regexes, bad durations
//! and wrong types fail loading with the file, the key and the line/column, never the
//! first scrape. `serde_yaml` is used here and nowhere else.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub mod webfile;

/// The default port: clear of node_exporter (9100), mysqld_exporter (9104) and the
/// other exporters listed in Prometheus' default port allocations.
pub const DEFAULT_PORT: u16 = 9742;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub web: WebConfig,
    pub system: SystemConfig,
    /// The MySQL/MariaDB collector; off while the section is absent.
    pub mysql: Option<MysqlConfig>,
    /// Web server access logs to follow; the weblog collector is off while empty.
    pub weblogs: Vec<WeblogConfig>,
    /// Where job runs record their state.
    pub jobs: JobsConfig,
    /// node_exporter-style `*.prom` files to serve.
    pub textfile: TextfileConfig,
    /// Package updates: the apt collector and the update protocol.
    pub updates: UpdatesConfig,
    /// The nightly backup and its freshness metrics.
    pub backup: BackupConfig,
    /// BackupPC's view of its hosts' backups.
    pub backuppc: BackuppcConfig,
    /// The maintenance plan's dashboard spec (rows / panels / span / targets).
    pub dashboard: Option<DashboardSpec>,
    /// Thresholds of the generated alert rules.
    pub alerts: AlertsConfig,
}

impl Config {
    /// Loads `path`, or the built-in defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a configuration text; an empty document means all defaults.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        {
            return Ok(Config::default());
        }
        serde_path_to_error::deserialize::<_, Option<Config>>(serde_yaml::Deserializer::from_str(
            text,
        ))
        .map(Option::unwrap_or_default)
        .map_err(|e| describe_yaml_error(&e))
        .and_then(|c| c.validate().map(|()| c))
    }

    /// Rules that span keys, which serde cannot check one value at a time.
    fn validate(&self) -> Result<(), String> {
        for (i, w) in self.weblogs.iter().enumerate() {
            if w.name.is_empty() {
                return Err(format!("weblogs[{i}].name: must not be empty"));
            }
            if let Some(j) = self.weblogs[..i].iter().position(|o| o.name == w.name) {
                return Err(format!(
                    "weblogs[{i}].name: {:?} is already the name of weblogs[{j}]; each log needs its own (it is the `log` label)",
                    w.name
                ));
            }
        }
        if let Some(m) = &self.mysql {
            if m.password_file.is_some() && m.defaults_file.is_some() {
                return Err(
                    "mysql: password_file and defaults_file are both set; keep one \
                            (the password is read from exactly one place)"
                        .to_owned(),
                );
            }
            if let Some(bad) = m.schemas.iter().find(|s| {
                s.is_empty()
                    || !s
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
            }) {
                return Err(format!(
                    "mysql.schemas: {bad:?} is not a plain schema name (letters, digits, _ and $)"
                ));
            }
            if m.url.is_none() && m.defaults_file.is_none() {
                return Err("mysql: set url (mysql://USER@HOST:PORT/DATABASE) or \
                            defaults_file (a my.cnf-style file with a [client] section)"
                    .to_owned());
            }
        }
        Ok(())
    }
}

/// Names the full key path (serde_yaml alone names only the enclosing map of a value
/// that fails validation) with serde_yaml's line and column, and says what to do for
/// the common case of a misspelt key.
fn describe_yaml_error(e: &serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let path = e.path().to_string();
    let mut inner = e.inner().to_string();
    // serde_yaml prefixes its own, shorter, path: keep one, the full one.
    if let Some((prefix, rest)) = inner.split_once(": ") {
        if path.starts_with(prefix) {
            inner = rest.to_owned();
        }
    }
    let mut msg = if path == "." || path.is_empty() {
        inner
    } else {
        format!("{path}: {inner}")
    };
    if msg.contains("unknown field") {
        msg.push_str(
            " (remove the key or fix its spelling; see the configuration reference in the README)",
        );
    }
    msg
}

/// `web:` — the HTTP server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Address to listen on; `--web.listen-address` overrides it.
    pub listen_address: ListenAddress,
    /// Path of the metrics endpoint; `--web.telemetry-path` overrides it.
    pub telemetry_path: TelemetryPath,
    /// Scrapes answered at once; more get a quick 503.
    pub max_requests: usize,
    /// Open connections at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a client may take to send its request headers.
    pub header_read_timeout: DurationValue,
    /// Subtracted from Prometheus' scrape timeout to leave time to answer.
    pub timeout_offset: DurationValue,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: ListenAddress(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
            telemetry_path: TelemetryPath("/metrics".to_owned()),
            max_requests: 10,
            max_connections: 256,
            header_read_timeout: DurationValue(Duration::from_secs(5)),
            timeout_offset: DurationValue(Duration::from_millis(500)),
        }
    }
}

/// `system:` — the host collectors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Where procfs is mounted (another path for containers or fixtures).
    pub procfs: PathBuf,
    /// The host's root, for statvfs of its mounts from inside a container.
    pub rootfs: PathBuf,
    pub cpu: CollectorToggle,
    pub memory: CollectorToggle,
    pub filesystem: FilesystemConfig,
    pub disk: DiskConfig,
    pub network: NetworkConfig,
    pub host: HostConfig,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            procfs: PathBuf::from("/proc"),
            rootfs: PathBuf::from("/"),
            cpu: CollectorToggle::default(),
            memory: CollectorToggle::default(),
            filesystem: FilesystemConfig::default(),
            disk: DiskConfig::default(),
            network: NetworkConfig::default(),
            host: HostConfig::default(),
        }
    }
}

/// What every collector has: a switch and its own deadline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorToggle {
    pub enabled: bool,
    pub timeout: DurationValue,
}

impl Default for CollectorToggle {
    fn default() -> Self {
        CollectorToggle {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
        }
    }
}

/// `system.filesystem:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub mount_points_exclude: Pattern,
    pub mount_points_include: Option<Pattern>,
    pub fs_types_exclude: Pattern,
    pub fs_types_include: Option<Pattern>,
}

/// node_exporter's default mount-point exclude (1.5).
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default filesystem-type exclude (1.5).
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's default disk device exclude (1.5): RAM disks, loops, floppies and
/// partitions, so whole disks are counted once.
pub const DEFAULT_DISK_DEVICES_EXCLUDE: &str =
    "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";

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

/// `system.disk:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub devices_exclude: Pattern,
    pub devices_include: Option<Pattern>,
}

impl Default for DiskConfig {
    fn default() -> Self {
        DiskConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            devices_exclude: Pattern::builtin(Builtin::DiskDevices),
            devices_include: None,
        }
    }
}

/// `system.network:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub devices_exclude: Option<Pattern>,
    pub devices_include: Option<Pattern>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            devices_exclude: None,
            devices_include: None,
        }
    }
}

/// `system.host:` — load, time, uname and pressure stall information.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    /// Read /proc/pressure (PSI) where the kernel has it.
    pub pressure: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            pressure: true,
        }
    }
}

/// `mysql:` — the MySQL/MariaDB server to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Collect at all (the section can stay in the file while switched off).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `mysql://USER@HOST:PORT/DATABASE`, or `mysql://USER@localhost/DATABASE?socket=PATH`
    /// for a unix socket; never with a password.
    #[serde(default)]
    pub url: Option<MysqlUrl>,
    /// A file holding only the password (trailing newline ignored), mode 0600 or stricter.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A my.cnf-style file whose `[client]` section gives user, password, host, port or
    /// socket; values the URL sets win.
    #[serde(default)]
    pub defaults_file: Option<PathBuf>,
    /// Deadline of one collection (connect and queries); a scrape's may be shorter.
    #[serde(default = "mysql_timeout")]
    pub timeout: DurationValue,
    /// Schemas whose tables get `mysql_info_schema_table_*` series.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// How often table sizes are read again (information_schema.TABLES opens every
    /// table of the schemas; sizes change slowly). `0s` reads them on every scrape.
    #[serde(default = "table_sizes_interval")]
    pub table_sizes_interval: DurationValue,
}

fn table_sizes_interval() -> DurationValue {
    DurationValue(Duration::from_secs(60))
}

fn enabled() -> bool {
    true
}

fn mysql_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(5))
}

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

/// `jobs:` — job state files, written by `job run` (and the backup and update jobs),
/// read by the jobs collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    pub state_dir: PathBuf,
    /// Serve the jobs' metrics.
    pub enabled: bool,
    /// How long a timed-out job gets after SIGTERM before SIGKILL.
    pub kill_grace: DurationValue,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            state_dir: PathBuf::from("/var/lib/shoehub-exporter/jobs"),
            enabled: true,
            kill_grace: DurationValue(Duration::from_secs(10)),
        }
    }
}

/// `backup:` — what `backup run` saves, where, and for how long.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Serve the freshness metrics of `destination`.
    pub enabled: bool,
    pub destination: PathBuf,
    /// Backups older than this are pruned (never the newest `keep_min`).
    pub retention: DurationValue,
    pub keep_min: usize,
    /// Directories archived with each backup.
    pub paths: Vec<PathBuf>,
    /// Databases dumped; by default the database of `mysql.url`.
    pub databases: Vec<String>,
    /// The account that dumps and verifies, as in `mysql:` (url, password_file or
    /// defaults_file); by default the `mysql:` section's. It needs to read everything it
    /// dumps, and `verify` needs to create and drop its scratch database.
    pub mysql: Option<MysqlConfig>,
    /// A dump or archive that takes longer fails the run.
    pub timeout: DurationValue,
    /// Freshness threshold used by alerts.
    pub max_age: DurationValue,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            enabled: true,
            destination: PathBuf::from("/var/backups/shoe_store_hub"),
            retention: DurationValue(Duration::from_secs(30 * 86400)),
            keep_min: 7,
            paths: vec![
                PathBuf::from("/etc/shoe_store_hub"),
                PathBuf::from("/var/www/shoe_store_hub/user_data"),
            ],
            databases: Vec::new(),
            mysql: None,
            timeout: DurationValue(Duration::from_secs(2 * 3600)),
            max_age: DurationValue(Duration::from_secs(26 * 3600)),
        }
    }
}

/// `backuppc:` — where BackupPC keeps its per-host backup lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackuppcConfig {
    pub enabled: bool,
    /// Reads `<top_dir>/pc/<host>/backups`; nothing is reported where it does not exist.
    pub top_dir: PathBuf,
    /// The hosts to report; empty: every host found.
    pub hosts: Vec<String>,
}

impl Default for BackuppcConfig {
    fn default() -> Self {
        BackuppcConfig {
            enabled: true,
            top_dir: PathBuf::from("/var/lib/backuppc"),
            hosts: Vec::new(),
        }
    }
}

/// `updates:` — pending packages and the weekly update protocol.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdatesConfig {
    /// Serve apt's pending, held and autoremovable packages (on hosts with apt).
    pub apt: bool,
    /// How often apt is asked (in the background; a scrape never waits for apt).
    pub apt_interval: DurationValue,
    /// The playbook `update apply` runs.
    pub playbook: Option<PathBuf>,
    /// `update apply` refuses a plan older than this.
    pub max_plan_age: DurationValue,
}

impl Default for UpdatesConfig {
    fn default() -> Self {
        UpdatesConfig {
            apt: true,
            apt_interval: DurationValue(Duration::from_secs(15 * 60)),
            playbook: None,
            max_plan_age: DurationValue(Duration::from_secs(7 * 86400)),
        }
    }
}

/// `textfile:` — a directory of `*.prom` files written by scripts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    pub directory: PathBuf,
    pub enabled: bool,
}

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            directory: PathBuf::from("/var/lib/shoehub-exporter/textfile"),
            enabled: true,
        }
    }
}

/// One entry of `weblogs:` — an access log to follow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeblogConfig {
    /// The `log` label of its series.
    pub name: String,
    pub path: PathBuf,
    #[serde(default)]
    pub format: LogFormat,
    /// Count what the file already holds when the exporter starts; by default only
    /// lines written after the start are counted, so a restart does not count history
    /// again. A file that appears later is always read from its beginning.
    #[serde(default)]
    pub from_beginning: bool,
    /// Longer lines are counted as parse errors and skipped.
    #[serde(default = "max_line_bytes")]
    pub max_line_bytes: usize,
}

fn max_line_bytes() -> usize {
    64 * 1024
}

/// An access log's line format.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// `%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`; nginx's default too.
    #[default]
    Combined,
    /// `%h %l %u %t "%r" %>s %b`
    Common,
    /// `combined` plus Apache's `%D` (microseconds) as the last field.
    CombinedDuration,
}

/// `alerts:` — the thresholds the generated alert rules use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// The Prometheus job that scrapes the exporter.
    pub job: String,
    /// A newer complete backup is due within this (the plan: daily at 02:00).
    pub backup_max_age: DurationValue,
    /// Days of backups the retention promises.
    pub backup_retention: DurationValue,
    /// `backup verify` runs weekly.
    pub backup_verify_max_age: DurationValue,
    /// Share of 5xx answers that pages.
    pub http_error_ratio: f64,
    pub cpu_percent: f64,
    pub memory_available_percent: f64,
    pub filesystem_free_percent: f64,
    pub mysql_connections_ratio: f64,
    /// An update is due weekly.
    pub update_max_age: DurationValue,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            job: "shoehub".to_owned(),
            backup_max_age: DurationValue(Duration::from_secs(26 * 3600)),
            backup_retention: DurationValue(Duration::from_secs(30 * 86400)),
            backup_verify_max_age: DurationValue(Duration::from_secs(8 * 86400)),
            http_error_ratio: 0.05,
            cpu_percent: 90.0,
            memory_available_percent: 10.0,
            filesystem_free_percent: 5.0,
            mysql_connections_ratio: 0.8,
            update_max_age: DurationValue(Duration::from_secs(8 * 86400)),
        }
    }
}

/// `dashboard:` — the maintenance plan's own format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    pub title: String,
    #[serde(default)]
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub title: String,
    #[serde(default)]
    pub panels: Vec<PanelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    pub title: String,
    #[serde(rename = "type", default)]
    pub kind: PanelKind,
    #[serde(default)]
    pub span: Span,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Colour steps above the base green: `[{value: 80, color: red}]`.
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub value: f64,
    pub color: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    #[default]
    Graph,
    Timeseries,
    Stat,
    Gauge,
    Table,
}

/// A panel's width in the plan's 12-column grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub u8);

impl Default for Span {
    fn default() -> Self {
        Span(12)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        if (1..=12).contains(&n) {
            Ok(Span(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "span {n} is out of range: a panel is 1 to 12 columns wide"
            )))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// A catalogue name such as `cpu_usage`.
    #[serde(default)]
    pub target: Option<String>,
    /// Raw PromQL instead of a catalogue name.
    #[serde(default)]
    pub expr: Option<String>,
    #[serde(default)]
    pub legend: Option<String>,
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

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
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
}

impl Pattern {
    fn builtin(b: Builtin) -> Pattern {
        Pattern::Builtin(b)
    }

    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Pattern::Regex(re) => re.is_match(s),
            Pattern::Builtin(Builtin::MountPoints) => mount_point_excluded(s),
            Pattern::Builtin(Builtin::FsTypes) => FS_TYPES_EXCLUDED.contains(&s),
            Pattern::Builtin(Builtin::DiskDevices) => disk_device_excluded(s),
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
        let f = FilesystemConfig::default();
        assert!(f.mount_points_exclude.is_match("/proc/sys"));
        assert!(!f.mount_points_exclude.is_match("/home"));
        assert!(!f.fs_types_exclude.is_match("tmpfs") && f.fs_types_exclude.is_match("overlay"));
        let d = DiskConfig::default();
        assert!(d.devices_exclude.is_match("sda1") && d.devices_exclude.is_match("nvme0n1p2"));
        assert!(!d.devices_exclude.is_match("sda") && !d.devices_exclude.is_match("nvme0n1"));
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
        let d = |s: &str| s.parse::<DurationValue>().map(|d| d.0);
        assert_eq!(d("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(d("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(d("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(d("26h"), Ok(Duration::from_secs(26 * 3600)));
        for bad in ["", "5", "s", "5 s", "1.5s", "5sec", "-1s"] {
            assert!(d(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn empty_and_comment_only_files_are_defaults() {
        assert_eq!(
            Config::parse("").unwrap().web.listen_address.0.port(),
            DEFAULT_PORT
        );
        assert!(Config::parse("# nothing\n").unwrap().dashboard.is_none());
    }

    #[test]
    fn seed_dashboard_section_is_a_valid_config() {
        let c = Config::parse(
            "dashboard:\n  title: Shoe Store Hub Monitoring Dashboard\n  rows:\n    - title: System Metrics\n      panels:\n        - title: CPU Usage\n          type: graph\n          span: 4\n          targets:\n            - target: cpu_usage\n",
        )
        .unwrap();
        let d = c.dashboard.unwrap();
        assert_eq!(d.rows[0].panels[0].span, Span(4));
        assert_eq!(
            d.rows[0].panels[0].targets[0].target.as_deref(),
            Some("cpu_usage")
        );
    }

    #[test]
    fn errors_name_key_and_position() {
        let e = Config::parse("web:\n  listen_adress: x\n").unwrap_err();
        assert!(e.contains("listen_adress") && e.contains("line 2"), "{e}");
        let e = Config::parse("system:\n  filesystem:\n    fs_types_exclude: \"(\"\n").unwrap_err();
        assert!(
            e.contains("system.filesystem.fs_types_exclude") && e.contains("line 3"),
            "{e}"
        );
        let e = Config::parse("web:\n  header_read_timeout: 5 seconds\n").unwrap_err();
        assert!(
            e.contains("invalid duration") && e.contains("line 2"),
            "{e}"
        );
    }
}
