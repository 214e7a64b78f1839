//! The YAML configuration file, parsed strictly into validated settings.
//!
//! Every section is optional and has defaults; unknown keys, bad regexes, bad durations
//! and wrong types fail loading with the file, the key and the line/column, never the
//! first scrape. `serde_yaml` is used here and nowhere else.
//!
//! This module only assembles: each section's struct belongs to the code that uses it
//! (a collector's to its file under `collectors/`, a section shared by a collector and a
//! job to its format module under `state/`), and the values they are made of to
//! [`crate::value`]. It sits above both, so neither imports it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::collectors::backuppc::BackuppcConfig;
use crate::collectors::mysql::MysqlConfig;
use crate::collectors::probe::ProbeConfig;
use crate::collectors::textfile::TextfileConfig;
use crate::collectors::weblog::WeblogConfig;
use crate::collectors::{Settings, SystemConfig};
use crate::state::backup::BackupConfig;
use crate::state::job::JobsConfig;
use crate::state::update::UpdatesConfig;
use crate::value::{DurationValue, ListenAddress, TelemetryPath};

pub mod check;
pub mod dashboard;
pub mod webfile;

pub use dashboard::DashboardSpec;

/// Where every command reads its settings when `--config` is not given, so that the
/// exporter, its jobs and an operator's commands read one file. Built-in defaults apply
/// only when neither exists.
pub const DEFAULT_PATH: &str = "/etc/shoehub-exporter/config.yml";

pub use crate::value::DEFAULT_PORT;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
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
    /// URLs of the shop to fetch on every scrape; the probe collector is off while empty.
    pub probes: Vec<ProbeConfig>,
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
    /// Where `check` reaches the exporter, Prometheus and Grafana.
    pub check: check::CheckConfig,
}

/// A config file larger than this is refused before it is parsed.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Nesting deeper than this (block indentation levels, or flow brackets) is refused
/// before parsing: what the YAML parser spends grows much faster than the text with
/// nesting, and no setting needs more than a few levels.
pub const MAX_NESTING: usize = 32;

/// Refuses a YAML text nested deeper than [`MAX_NESTING`], in one pass over it. Quotes
/// and comments are followed line by line, which is enough for a bound.
pub fn check_nesting(text: &str) -> Result<(), String> {
    let too_deep = |line: usize| {
        Err(format!(
            "line {line}: nested deeper than {MAX_NESTING} levels; no setting needs that many"
        ))
    };
    let mut flow = 0usize;
    let mut indents: Vec<usize> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.trim_start_matches([' ', '-']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if flow == 0 {
            let indent = line.len() - content.len();
            while indents.last().is_some_and(|&d| d > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            if indents.len() > MAX_NESTING {
                return too_deep(i + 1);
            }
        }
        let mut quote = None;
        let mut prev = ' ';
        let mut escaped = false;
        for c in line.chars() {
            match quote {
                Some('"') if escaped => escaped = false,
                Some('"') if c == '\\' => escaped = true,
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None => match c {
                    '"' | '\'' => quote = Some(c),
                    '#' if prev == ' ' => break,
                    '[' | '{' => {
                        flow += 1;
                        if flow > MAX_NESTING {
                            return too_deep(i + 1);
                        }
                    }
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
            }
            prev = c;
        }
    }
    Ok(())
}

impl Config {
    /// Loads `path`, or the built-in defaults when there is none.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = crate::regular::read_to_string(path, MAX_FILE_BYTES).map_err(|source| {
            ConfigError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a configuration text; an empty document means all defaults.
    pub fn parse(text: &str) -> Result<Config, String> {
        check_nesting(text)?;
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
        self.web.validate()?;
        for (key, n) in [
            (
                "textfile.max_file_bytes",
                self.textfile.max_file_bytes.get(),
            ),
            (
                "textfile.max_total_bytes",
                self.textfile.max_total_bytes.get(),
            ),
            ("jobs.max_json_bytes", self.jobs.max_json_bytes.get()),
        ] {
            if n == 0 {
                return Err(format!(
                    "{key}: 0 would refuse everything; give a size such as 4MiB"
                ));
            }
        }
        let f = self.backup.space_factor;
        if !(f.is_finite() && f >= 0.0) {
            return Err(format!(
                "backup.space_factor: {f} is not a factor; give a number such as 1.5 (0 turns the check off)"
            ));
        }
        self.backup.validate()?;
        crate::collectors::weblog::validate(&self.weblogs)?;
        crate::collectors::probe::validate(&self.probes)?;
        if let Some(m) = &self.mysql {
            m.validate()?;
        }
        self.check.validate()?;
        self.updates.validate()?;
        Ok(())
    }

    /// The collectors' sections, as the collector table builds from them.
    pub fn collectors(&self) -> Settings<'_> {
        Settings {
            system: &self.system,
            mysql: self.mysql.as_ref(),
            probes: &self.probes,
            jobs: &self.jobs,
            weblogs: &self.weblogs,
            updates: &self.updates,
            backup: &self.backup,
            backuppc: &self.backuppc,
            textfile: &self.textfile,
        }
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
            " (remove the key or fix its spelling; docs/configuration.md lists every key)",
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
    /// How long a response may wait for a client that does not read it.
    pub write_timeout: DurationValue,
    /// How long a kept-alive connection may stay quiet before it is closed.
    pub idle_timeout: DurationValue,
    /// Subtracted from Prometheus' scrape timeout to leave time to answer.
    pub timeout_offset: DurationValue,
}

impl WebConfig {
    /// Bounds that would refuse every connection or cut every answer are mistakes.
    fn validate(&self) -> Result<(), String> {
        for (key, n) in [
            ("web.max_requests", self.max_requests),
            ("web.max_connections", self.max_connections),
        ] {
            if n == 0 {
                return Err(format!(
                    "{key}: 0 would refuse every request; give at least 1"
                ));
            }
        }
        for (key, d) in [
            ("web.header_read_timeout", self.header_read_timeout),
            ("web.write_timeout", self.write_timeout),
            ("web.idle_timeout", self.idle_timeout),
        ] {
            if d.get().is_zero() {
                return Err(format!(
                    "{key}: 0s would cut every connection; give a duration such as 30s"
                ));
            }
        }
        Ok(())
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen_address: ListenAddress(SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))),
            telemetry_path: TelemetryPath("/metrics".to_owned()),
            max_requests: 10,
            max_connections: 256,
            header_read_timeout: DurationValue(Duration::from_secs(5)),
            write_timeout: DurationValue(Duration::from_secs(30)),
            idle_timeout: DurationValue(Duration::from_secs(120)),
            timeout_offset: DurationValue(Duration::from_millis(500)),
        }
    }
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
    /// Share of inodes free below which a filesystem pages.
    pub inodes_free_percent: f64,
    /// Share of the time a disk may be busy, over 30 minutes.
    pub disk_busy_ratio: f64,
    /// Difference between the host's clock and Prometheus' that warns.
    pub clock_skew_seconds: f64,
    /// The shop's certificate warns this many days before it expires...
    pub certificate_warning_days: u64,
    /// ...and pages this many.
    pub certificate_critical_days: u64,
    /// The web page of the runbooks: each alert links here, anchored by its name in
    /// lower case (its section's heading).
    pub runbook_url: String,
}

/// The runbooks' page in the project's repository, which a notification can open
/// wherever it is read; a team with its own copy sets `alerts.runbook_url`.
pub const DEFAULT_RUNBOOK_URL: &str =
    concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/alerts.md");

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
            inodes_free_percent: 5.0,
            disk_busy_ratio: 0.9,
            clock_skew_seconds: 1.0,
            certificate_warning_days: 14,
            certificate_critical_days: 3,
            runbook_url: DEFAULT_RUNBOOK_URL.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(d.rows[0].panels[0].span, dashboard::Span(4));
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
