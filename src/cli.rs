//! The command line: clap derive, one `Args` struct per subcommand.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::value::{DurationValue, ListenAddress, TelemetryPath};

/// Prometheus exporter for the Shoe Store Hub host: system, database, web-error,
/// backup and job metrics on one scrape target, and the backup, update and bundle
/// commands that go with it.
///
/// With no subcommand it serves metrics (`serve`). Every command reads its settings from
/// --config FILE; without it, from /etc/shoehub-exporter/config.yml when that exists;
/// without either, built-in defaults apply: every host collector on, MySQL off,
/// listening on 0.0.0.0:9742.
#[derive(Debug, Parser)]
#[command(name = "shoehub-exporter", version)]
pub struct Cli {
    /// Read the settings from this YAML file [default: /etc/shoehub-exporter/config.yml
    /// when it exists, else built-in defaults].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics over HTTP until SIGTERM or SIGINT (the default).
    Serve(ServeArgs),
    /// Check the configuration file (--config, or the default one) and exit: 0 when
    /// it is valid.
    CheckConfig(CheckConfigArgs),
    /// Run maintenance commands as jobs that report themselves as metrics.
    #[command(subcommand)]
    Job(JobCommand),
    /// The weekly update with its review step: plan, approve, apply, status.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// The nightly backup: run, verify, prune, list.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The Grafana dashboard, alert rules and provisioning, from the config.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// The maintenance plan's validation steps: does the monitoring, the backup and the
    /// update protocol work? Exits 0 when no check failed, 1 when one did.
    ///
    /// Checks: exporter (answers with its TLS and basic auth; every collector succeeds),
    /// probes (each shop probe succeeds now; certificates valid for more than
    /// alerts.certificate_warning_days), backups (the newest complete backup younger than
    /// backup.max_age and whole; a verify within alerts.backup_verify_max_age; BackupPC hosts
    /// fresh), updates (an update succeeded within alerts.update_max_age; no approved plan
    /// older than updates.max_plan_age; a plan waiting over 2 days is a warning), prometheus
    /// (with check.prometheus_url: the target up, the generated rules loaded and healthy, an
    /// Alertmanager ready, the Watchdog firing) and grafana (with check.grafana_url and
    /// check.grafana_token_file: the dashboard as generated, its datasource healthy).
    ///
    /// Each says ok, warning or failed, with what it found and what to do. Exit code: 0 when
    /// none failed, 1 when one did (or a warning, with --strict), 78 for a bad config.
    Check(CheckArgs),
}

#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Print the Grafana dashboard JSON (from dashboard:, or the default one).
    Dashboard,
    /// Print the Prometheus alert rules (from the alerts: thresholds), every group in
    /// one rules file: `generate alerts > /etc/prometheus/shoehub.rules.yml`.
    Alerts,
    /// Write grafana/dashboards, grafana/provisioning and alerts/ under DIR.
    Bundle(BundleArgs),
    /// Write the manual pages (one per command, section 1) under DIR.
    Man(BundleArgs),
    /// Write the reference generated from the collectors' own definitions
    /// (collectors.md: sections, keys, defaults, metrics) under DIR: `--out docs`.
    Docs(BundleArgs),
    /// Print the completion script for SHELL:
    /// `generate completions bash > /usr/share/bash-completion/completions/shoehub-exporter`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// The directory to write into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Dump the databases and archive backup.paths into a new backup in
    /// backup.destination, then prune. Complete only once its manifest is in place.
    Run,
    /// Restore the newest complete backup into a scratch database, compare every table's
    /// rows, view, routine, trigger and event with the manifest, drop the scratch
    /// database.
    Verify,
    /// Restore a backup: its databases, its files, its accounts. Checks the checksums
    /// first and says what it will do; nothing is replaced without --yes.
    ///
    /// Without --database, --files-to or --users, every database of the backup is
    /// restored under its own name (which needs --yes when it exists).
    Restore(RestoreArgs),
    /// Remove backups older than backup.retention (never the newest backup.keep_min) and
    /// leftovers of killed runs.
    Prune,
    /// Show the backups with time, size and state.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (a name from `backup list`); default: the newest complete
    /// one.
    #[arg(long, value_name = "ID")]
    pub backup: Option<String>,
    /// Restore this database of the backup (repeat for more). Any name the server
    /// allows, one that starts with `-` included.
    #[arg(long, value_name = "NAME", allow_hyphen_values = true)]
    pub database: Vec<String>,
    /// Restore the one --database under this new name, leaving the original alone.
    #[arg(
        long = "as",
        value_name = "NEW_NAME",
        requires = "database",
        allow_hyphen_values = true
    )]
    pub as_name: Option<String>,
    /// Unpack the archived files under DIR, with owners, modes and times (/ puts them
    /// back where they were, and needs --yes).
    #[arg(long, value_name = "DIR")]
    pub files_to: Option<PathBuf>,
    /// Create the backed-up accounts again and give them their grants.
    #[arg(long)]
    pub users: bool,
    /// Check the backup and say what would be done; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Replace what exists: a database of the same name, files under /.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Refresh apt's lists and record what an update would install now (every package,
    /// from -> to, origin, security), fetch those versions' files for `apply` and, with
    /// updates.playbook, its
    /// `ansible-playbook -i updates.inventory --check --diff` run with exactly those
    /// packages. Prints the plan and its id.
    Plan,
    /// Record who approved the plan --plan names, which must be the current one (--by,
    /// or $SUDO_USER), and why; prints the plan first. A new plan voids the approval.
    Approve(ApproveArgs),
    /// Install exactly the approved plan's package files (fetched by `plan`, checked
    /// against their SHA-256) with updates.playbook, as the job `update`; refuses a plan
    /// not approved, applied, failed (approve it again), older than
    /// updates.max_plan_age, with an edited playbook, file it reads or inventory, or with
    /// an altered file. Where systemd runs, it goes on as shoehub-update-apply.service,
    /// which a lost terminal does not stop.
    Apply(ApplyArgs),
    /// Show the current plan (packages, the check run's diff), its approval and the
    /// last update run.
    Status,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The id `update plan` printed and `update status` shows (required): approval
    /// fails if the plan changed meanwhile, so nothing is approved unseen.
    #[arg(long, value_name = "ID", required = true)]
    pub plan: Option<String>,
    /// Who approves (required; under sudo, $SUDO_USER is taken).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Why, or what was checked: shown by `update status`.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Stop the playbook when it runs longer, e.g. 2h.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationValue>,
    /// Run here, attached to this terminal, even where systemd would run it as
    /// shoehub-update-apply.service.
    #[arg(long)]
    pub foreground: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Run COMMAND as the job NAME and record the run for the exporter.
    ///
    /// The command's output passes through; start, end, duration, exit code (128+N for
    /// signal N), the last lines of output and an Ansible PLAY RECAP go to
    /// <jobs.state_dir>/NAME.json, which the exporter serves as shoehub_job_* metrics.
    /// One run of a job at a time: a second one exits with code 75. Exits with the
    /// command's own exit code.
    ///
    /// Example: shoehub-exporter job run update --timeout 2h -- ansible-playbook update.yml
    Run(JobRunArgs),
}

#[derive(Debug, Args)]
pub struct JobRunArgs {
    /// The job's name: the `job` label and the state file's name.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Stop the command (its whole process group: SIGTERM, then SIGKILL after
    /// jobs.kill_grace) when it runs longer, e.g. 30m, 2h.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<DurationValue>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this address, HOST:PORT [config: web.listen_address; default 0.0.0.0:9742].
    #[arg(long = "web.listen-address", value_name = "ADDR")]
    pub listen_address: Option<ListenAddress>,
    /// Serve metrics on this path [config: web.telemetry_path; default /metrics].
    #[arg(long = "web.telemetry-path", value_name = "PATH")]
    pub telemetry_path: Option<TelemetryPath>,
    /// TLS, basic authentication and response headers, from a web config file in the
    /// Prometheus exporter-toolkit's format (the one node_exporter takes) [default: none,
    /// plain HTTP without authentication].
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
    /// Log only messages at this level or more severe (logs go to stderr).
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

#[derive(Debug, Args)]
pub struct CheckConfigArgs {
    /// Also check this web config file, certificates and keys included.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,
}

/// `check`: which checks, how deep, how shown.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Output: one line per check (text), or {"checks": [{name, status, detail, hint}]}
    /// (json).
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
    /// Run only these checks (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', value_name = "NAME,...")]
    pub only: Vec<CheckName>,
    /// Also read every backup artifact and compare its checksum (reads the whole
    /// backup; needs root's access to it).
    #[arg(long)]
    pub deep: bool,
    /// Warnings fail too (exit 1).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckName {
    Exporter,
    Probes,
    Backups,
    Updates,
    Prometheus,
    Grafana,
}

impl CheckName {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckName::Exporter => "exporter",
            CheckName::Probes => "probes",
            CheckName::Backups => "backups",
            CheckName::Updates => "updates",
            CheckName::Prometheus => "prometheus",
            CheckName::Grafana => "grafana",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl ServeArgs {
    /// The flag given, if any: the serve flags without a subcommand (or after `serve`)
    /// only, so that `--web.listen-address X backup run` is an error, not ignored.
    pub fn given(&self) -> Option<&'static str> {
        if self.listen_address.is_some() {
            Some("--web.listen-address")
        } else if self.telemetry_path.is_some() {
            Some("--web.telemetry-path")
        } else if self.web_config_file.is_some() {
            Some("--web.config.file")
        } else if self.log_level != LogLevel::Info {
            Some("--log.level")
        } else {
            None
        }
    }
}

impl LogLevel {
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_work_with_and_without_the_subcommand() {
        let c = Cli::try_parse_from(["x", "--web.listen-address", "127.0.0.1:1234"]).unwrap();
        assert_eq!(c.serve.listen_address.unwrap().0.port(), 1234);
        let c = Cli::try_parse_from([
            "x",
            "serve",
            "--web.telemetry-path",
            "/m",
            "--log.level",
            "debug",
        ])
        .unwrap();
        let Some(Command::Serve(a)) = c.command else {
            panic!()
        };
        assert_eq!(a.telemetry_path.unwrap().0, "/m");
        assert!(Cli::try_parse_from(["x", "--web.listen-address", "nope"]).is_err());
    }

    #[test]
    fn config_is_global() {
        for args in [
            &["x", "--config", "/c.yml", "backup", "run"][..],
            &["x", "backup", "run", "--config", "/c.yml"],
            &[
                "x",
                "update",
                "approve",
                "--plan",
                "0123456789abcdef",
                "--by",
                "ann",
                "--config",
                "/c.yml",
            ],
            &["x", "--config", "/c.yml"],
        ] {
            let c = Cli::try_parse_from(args).unwrap();
            assert_eq!(
                c.config.as_deref(),
                Some(std::path::Path::new("/c.yml")),
                "{args:?}"
            );
        }
    }
}
