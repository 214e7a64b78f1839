//! The alert rules, grouped by area, from the `alerts:` thresholds.
//!
//! Every rule carries `severity`, a summary, a templated description and a
//! `runbook_url` pointing at its section of the runbooks (`alerts.runbook_url`, anchored
//! by the alert's name in lower case). Every series the rules select carries
//! `job` and `instance` as Prometheus stores them for the shipped scrape config, and
//! aggregations keep both, so routing and inhibition can match on them.
//!
//! Freshness that must survive restarts is measured from timestamps and windows
//! (`min_over_time`, `offset`), never from a multi-day `for:`, which restarts whenever
//! the rule's series disappears for a moment.

use crate::config::AlertsConfig;

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: &'static str,
    pub expr: String,
    pub for_: &'static str,
    pub severity: &'static str,
    pub summary: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Clone)]
pub struct Group {
    /// The file is `<name>.rules.yml`; the group `shoehub-<name>`.
    pub name: &'static str,
    pub rules: Vec<Rule>,
}

/// The filesystems the space and inode rules watch: all but those without a size.
const FS: &str = r#"fstype!~"ramfs|squashfs|iso9660""#;

fn r(
    name: &'static str,
    expr: impl Into<String>,
    for_: &'static str,
    severity: &'static str,
    summary: &'static str,
    description: &'static str,
) -> Rule {
    Rule {
        name,
        expr: expr.into(),
        for_,
        severity,
        summary,
        description,
    }
}

pub fn groups(a: &AlertsConfig) -> Vec<Group> {
    let job = &a.job;
    let up = format!(r#"up{{job="{job}"}}"#);
    let secs = |d: &crate::value::DurationValue| d.get().as_secs();
    vec![
        Group {
            name: "exporter",
            rules: vec![
                r(
                    "ShoehubExporterDown",
                    format!("{up} == 0"),
                    "2m",
                    "critical",
                    "The shop host's exporter cannot be scraped.",
                    "Prometheus cannot scrape {{ $labels.instance }}: every other alert about this host is blind.",
                ),
                r(
                    "ShoehubExporterAbsent",
                    format!("absent({up})"),
                    "5m",
                    "critical",
                    "Prometheus scrapes no shoehub exporter at all.",
                    "No target of the Prometheus job {{ $labels.job }} exists: the scrape config or its service discovery lost the shop host, and no other alert about it can fire.",
                ),
                r(
                    "ShoehubCollectorFailing",
                    "min by (job, instance, collector) (shoehub_scrape_collector_success) == 0",
                    "15m",
                    "warning",
                    "A collector of the exporter keeps failing.",
                    "The {{ $labels.collector }} collector on {{ $labels.instance }} has failed for 15 minutes; its metrics are missing or stale. The exporter's log names the cause.",
                ),
                r(
                    "TextfileScrapeError",
                    "node_textfile_scrape_error == 1",
                    "10m",
                    "warning",
                    "A textfile cannot be served.",
                    "A *.prom file in the textfile directory of {{ $labels.instance }} cannot be read or parsed, so the metrics it should give are missing; the exporter's log names the file.",
                ),
                r(
                    "CheckFailing",
                    r#"shoehub_job_last_exit_code{job_name="check"} != 0"#,
                    "0m",
                    "warning",
                    "The daily check found a problem.",
                    "shoehub-exporter check on {{ $labels.instance }} exited with {{ $value }}: journalctl -u shoehub-check names the check that failed.",
                ),
                r(
                    "ShoehubUpdateRunning",
                    r#"shoehub_job_running{job_name="update"} == 1"#,
                    "0m",
                    "info",
                    "An update is being applied.",
                    "update apply runs on {{ $labels.instance }}: the restarts and errors it causes are muted until it ends.",
                ),
                r(
                    "Watchdog",
                    "vector(1)",
                    "0m",
                    "none",
                    "Always firing: proves that rules reach the notifier.",
                    "This alert always fires. A dead-man's switch outside this Prometheus and Alertmanager pages when it stops arriving.",
                ),
            ],
        },
        Group {
            name: "system",
            rules: vec![
                r(
                    "HostHighCpu",
                    format!(
                        r#"100 * (1 - avg by (job, instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m]))) > {}"#,
                        a.cpu_percent
                    ),
                    "15m",
                    "warning",
                    "The shop host's CPUs are busy.",
                    "CPU use on {{ $labels.instance }} has been {{ $value | humanize }}% for 15 minutes.",
                ),
                r(
                    "HostMemoryPressure",
                    format!(
                        "100 * node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < {}",
                        a.memory_available_percent
                    ),
                    "10m",
                    "warning",
                    "The shop host is short of memory.",
                    "Only {{ $value | humanize }}% of memory is available on {{ $labels.instance }}.",
                ),
                r(
                    "HostFilesystemFillsWithin24h",
                    format!(
                        "predict_linear(node_filesystem_avail_bytes{{{FS}}}[6h], 24 * 3600) < 0 and node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}} < 0.2"
                    ),
                    "1h",
                    "warning",
                    "A filesystem will be full within a day.",
                    "At the last 6 hours' rate, {{ $labels.mountpoint }} on {{ $labels.instance }} fills within 24 hours.",
                ),
                r(
                    "HostFilesystemAlmostFull",
                    format!(
                        "100 * node_filesystem_avail_bytes{{{FS}}} / node_filesystem_size_bytes{{{FS}}} < {}",
                        a.filesystem_free_percent
                    ),
                    "5m",
                    "critical",
                    "A filesystem is almost full.",
                    "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanize }}% free.",
                ),
                r(
                    "HostInodesFillWithin24h",
                    format!(
                        "predict_linear(node_filesystem_files_free{{{FS}}}[6h], 24 * 3600) < 0 and node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}} < 0.2"
                    ),
                    "1h",
                    "warning",
                    "A filesystem will run out of inodes within a day.",
                    "At the last 6 hours' rate, {{ $labels.mountpoint }} on {{ $labels.instance }} has no free inode within 24 hours: no file can be created then, whatever the free space.",
                ),
                r(
                    "HostInodesAlmostFull",
                    format!(
                        "100 * node_filesystem_files_free{{{FS}}} / node_filesystem_files{{{FS}}} < {}",
                        a.inodes_free_percent
                    ),
                    "5m",
                    "critical",
                    "A filesystem is almost out of inodes.",
                    "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanize }}% of its inodes free: creating files fails soon, whatever the free space.",
                ),
                r(
                    "HostFilesystemReadOnly",
                    format!(
                        "node_filesystem_readonly{{{FS}}} == 1 and min_over_time(node_filesystem_readonly{{{FS}}}[7d]) == 0 and node_filesystem_avail_bytes > 0"
                    ),
                    "5m",
                    "critical",
                    "A filesystem turned read-only.",
                    "{{ $labels.mountpoint }} on {{ $labels.instance }} was writable and is read-only now (often the kernel's answer to disk errors).",
                ),
                r(
                    "HostFilesystemDeviceError",
                    "node_filesystem_device_error == 1",
                    "10m",
                    "warning",
                    "A filesystem cannot be asked for its usage.",
                    "statvfs of {{ $labels.mountpoint }} on {{ $labels.instance }} fails or hangs: a dead network mount, or a mount the exporter may not enter.",
                ),
                r(
                    "HostDiskIoSaturated",
                    format!(
                        "rate(node_disk_io_time_seconds_total[5m]) > {}",
                        a.disk_busy_ratio
                    ),
                    "30m",
                    "warning",
                    "A disk is busy all the time.",
                    "{{ $labels.device }} on {{ $labels.instance }} has been busy {{ $value | humanizePercentage }} of the time for 30 minutes: requests queue behind it.",
                ),
                r(
                    "HostClockSkew",
                    format!(
                        "abs(node_time_seconds - timestamp(node_time_seconds)) > {}",
                        a.clock_skew_seconds
                    ),
                    "10m",
                    "warning",
                    "The shop host's clock is off.",
                    "The clock of {{ $labels.instance }} differs from Prometheus' by {{ $value | humanizeDuration }}: TLS, backups' ages and logs' times go wrong. Check NTP (timedatectl timesync-status).",
                ),
            ],
        },
        Group {
            name: "web",
            rules: vec![
                r(
                    "ShopDown",
                    "shoehub_probe_success == 0",
                    "2m",
                    "critical",
                    "The shop does not answer as it should.",
                    "The probe {{ $labels.probe }} of {{ $labels.instance }} has failed for 2 minutes: the shop is down, slow or shows the wrong page. shoehub_probe_http_status_code and the exporter's log say which.",
                ),
                r(
                    "ShopNotProbed",
                    format!("{up} == 1 unless on (job, instance) shoehub_probe_success"),
                    "30m",
                    "warning",
                    "Nothing probes the shop.",
                    "The exporter on {{ $labels.instance }} has no probe configured, so a shop that is down goes unseen: add the shop's URL under probes:.",
                ),
                r(
                    "ShopCertificateExpiring",
                    format!(
                        "shoehub_probe_tls_certificate_expiry_timestamp_seconds - time() < {}",
                        a.certificate_warning_days * 86400
                    ),
                    "1h",
                    "warning",
                    "The shop's TLS certificate expires soon.",
                    "The certificate {{ $labels.probe }} gets from {{ $labels.instance }} expires in {{ $value | humanizeDuration }}: renew it.",
                ),
                r(
                    "ShopCertificateExpiring",
                    format!(
                        "shoehub_probe_tls_certificate_expiry_timestamp_seconds - time() < {}",
                        a.certificate_critical_days * 86400
                    ),
                    "10m",
                    "critical",
                    "The shop's TLS certificate expires within days.",
                    "The certificate {{ $labels.probe }} gets from {{ $labels.instance }} expires in {{ $value | humanizeDuration }}: renew it now; browsers refuse the shop after that.",
                ),
                r(
                    "ShopHighHttpErrorRatio",
                    format!(
                        r#"sum by (job, instance) (rate(shoehub_http_requests_total{{code=~"5.."}}[5m])) / sum by (job, instance) (rate(shoehub_http_requests_total[5m])) > {} and sum by (job, instance) (rate(shoehub_http_requests_total[5m])) > 0.1"#,
                        a.http_error_ratio
                    ),
                    "10m",
                    "critical",
                    "The shop answers too many requests with server errors.",
                    "{{ $value | humanizePercentage }} of requests on {{ $labels.instance }} end in a 5xx status.",
                ),
                r(
                    "WeblogParseErrors",
                    "sum by (job, instance, log) (rate(shoehub_weblog_parse_errors_total[10m])) / sum by (job, instance, log) (rate(shoehub_weblog_lines_total[10m])) > 0.01",
                    "10m",
                    "warning",
                    "Access log lines cannot be read.",
                    "{{ $value | humanizePercentage }} of the lines of the {{ $labels.log }} log on {{ $labels.instance }} do not parse: a changed log format blinds the 5xx alert. Set weblogs[].format to the server's LogFormat.",
                ),
            ],
        },
        Group {
            name: "mysql",
            rules: vec![
                r(
                    "MysqlDown",
                    "mysql_up == 0",
                    "2m",
                    "critical",
                    "The shop's database does not answer.",
                    "MySQL/MariaDB on {{ $labels.instance }} is down, hung or refuses the exporter's login.",
                ),
                r(
                    "MysqlRestarted",
                    "mysql_global_status_uptime < max_over_time(mysql_global_status_uptime[10m])",
                    "0m",
                    "warning",
                    "The shop's database restarted.",
                    "MySQL/MariaDB on {{ $labels.instance }} has been up for only {{ $value | humanizeDuration }}: it crashed or was restarted. Its error log says which.",
                ),
                r(
                    "MysqlConnectionsNearLimit",
                    format!(
                        "mysql_global_status_threads_connected / mysql_global_variables_max_connections > {}",
                        a.mysql_connections_ratio
                    ),
                    "5m",
                    "warning",
                    "The database is close to its connection limit.",
                    "{{ $value | humanizePercentage }} of max_connections are in use on {{ $labels.instance }}.",
                ),
                r(
                    "MysqlSlowQueries",
                    "rate(mysql_global_status_slow_queries[5m]) > 0.1",
                    "15m",
                    "warning",
                    "The database logs slow queries.",
                    r#"{{ printf "%.2f" $value }} slow queries per second on {{ $labels.instance }}."#,
                ),
            ],
        },
        Group {
            name: "backup",
            rules: vec![
                r(
                    "BackupTooOld",
                    format!(
                        "time() - shoehub_backup_last_success_timestamp_seconds > {}",
                        secs(&a.backup_max_age)
                    ),
                    "10m",
                    "critical",
                    "The newest backup is too old.",
                    "The newest complete backup on {{ $labels.instance }} is {{ $value | humanizeDuration }} old; the plan backs up daily at 02:00.",
                ),
                r(
                    "BackupJobFailed",
                    r#"shoehub_job_last_exit_code{job_name="backup"} != 0"#,
                    "0m",
                    "critical",
                    "The last backup run failed.",
                    "backup run on {{ $labels.instance }} exited with {{ $value }}; shoehub-exporter backup list and the job's log say why.",
                ),
                r(
                    "BackupRetentionShort",
                    format!(
                        "(time() - shoehub_backup_oldest_timestamp_seconds) < {} and shoehub_backups > 0",
                        secs(&a.backup_retention).saturating_sub(86400)
                    ),
                    "1h",
                    "info",
                    "Fewer days of backups than the retention promises.",
                    "The oldest backup on {{ $labels.instance }} is only {{ $value | humanizeDuration }} old.",
                ),
                r(
                    "BackupNotVerified",
                    format!(
                        "time() - shoehub_backup_last_verified_timestamp_seconds > {}",
                        secs(&a.backup_verify_max_age)
                    ),
                    "1h",
                    "warning",
                    "No backup was verified recently.",
                    "No backup on {{ $labels.instance }} has been restored and checked by backup verify for {{ $value | humanizeDuration }}.",
                ),
                r(
                    "BackupPCHostStale",
                    format!(
                        "time() - shoehub_backuppc_last_good_backup_timestamp_seconds > {}",
                        secs(&a.backup_max_age)
                    ),
                    "10m",
                    "warning",
                    "BackupPC has no recent good backup of a host.",
                    "BackupPC's last good backup of {{ $labels.host }} is {{ $value | humanizeDuration }} old.",
                ),
                r(
                    "BackupPCHostMissing",
                    "max_over_time(shoehub_backuppc_last_good_backup_timestamp_seconds[1d]) unless shoehub_backuppc_last_good_backup_timestamp_seconds",
                    "10m",
                    "warning",
                    "A host vanished from BackupPC.",
                    "BackupPC on {{ $labels.instance }} reported {{ $labels.host }} within the last day and no longer does: its backups list is gone or unreadable.",
                ),
                r(
                    "BackupPCTransferErrors",
                    "shoehub_backuppc_last_backup_xfer_errors > 0",
                    "10m",
                    "warning",
                    "BackupPC's last backup of a host had transfer errors.",
                    "The last BackupPC backup of {{ $labels.host }} had {{ $value }} transfer error(s): some files are missing from it. BackupPC's XferLOG says which.",
                ),
            ],
        },
        Group {
            name: "updates",
            rules: vec![
                r(
                    "UpdateJobFailed",
                    r#"shoehub_job_last_exit_code{job_name="update"} != 0"#,
                    "0m",
                    "warning",
                    "The last update run failed.",
                    "update apply on {{ $labels.instance }} exited with {{ $value }}; see shoehub-exporter update status.",
                ),
                r(
                    "UpdateRolloutStopped",
                    "shoehub_update_rollout_failed == 1",
                    "0m",
                    "critical",
                    "An update failed on a host, and the rollout stopped there.",
                    "The update rolled out from {{ $labels.instance }} failed on {{ $labels.host }} at its {{ $labels.step }} step; the hosts after it were not touched. shoehub-exporter update status says why.",
                ),
                r(
                    "NoSuccessfulUpdate",
                    format!(
                        r#"time() - shoehub_job_last_success_timestamp_seconds{{job_name="update"}} > {max} or on (job, instance) ({up} == 1 and on (job, instance) shoehub_scrape_collector_success{{collector="jobs"}} unless on (job, instance) shoehub_job_last_success_timestamp_seconds{{job_name="update"}})"#,
                        max = secs(&a.update_max_age)
                    ),
                    "1h",
                    "warning",
                    "The weekly update has not succeeded lately.",
                    "No update on {{ $labels.instance }} has succeeded within the last 8 days, or none has run yet: shoehub-exporter update status says where the weekly protocol stopped.",
                ),
                r(
                    "SecurityUpdatesPending",
                    r#"sum by (job, instance) (apt_upgrades_pending{origin=~".*-security.*"}) > 0 and sum by (job, instance) (min_over_time(apt_upgrades_pending{origin=~".*-security.*"}[3d])) > 0 and sum by (job, instance) (apt_upgrades_pending{origin=~".*-security.*"} offset 3d) > 0"#,
                    "0m",
                    "warning",
                    "Security updates have been waiting for days.",
                    "{{ $value }} security update(s) are pending on {{ $labels.instance }}, some of them for more than 3 days.",
                ),
                r(
                    "UpdatePlanAwaitingApproval",
                    "shoehub_update_pending_approval == 1 and on (job, instance) time() - shoehub_update_plan_timestamp_seconds > 2 * 86400",
                    "0m",
                    "info",
                    "An update plan waits for approval.",
                    "The update plan on {{ $labels.instance }} has waited over 2 days: review it with shoehub-exporter update status.",
                ),
                r(
                    "RebootRequired",
                    "node_reboot_required == 1 and min_over_time(node_reboot_required[1d]) == 1 and node_reboot_required offset 1d == 1",
                    "0m",
                    "info",
                    "The shop host needs a reboot.",
                    "A package installed on {{ $labels.instance }} asked for a reboot over a day ago.",
                ),
            ],
        },
    ]
}

/// YAML double-quoted scalar.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Rules files, one document each: Prometheus and promtool read only the first YAML
/// document of a file, so the groups of a file are all in one. Each rule's runbook is
/// `runbook_url` anchored by its name in lower case (its runbook section's heading).
pub fn render(groups: &[Group], runbook_url: &str) -> String {
    let mut out = String::from(
        "# Generated by `shoehub-exporter generate`; edit the alerts: thresholds instead.\ngroups:\n",
    );
    for g in groups {
        out.push_str(&format!("  - name: shoehub-{}\n    rules:\n", g.name));
        for r in &g.rules {
            out.push_str(&format!(
                "      - alert: {}\n        expr: {}\n",
                r.name,
                q(&r.expr)
            ));
            if r.for_ != "0m" {
                out.push_str(&format!("        for: {}\n", r.for_));
            }
            out.push_str(&format!(
                "        labels:\n          severity: {}\n        annotations:\n          summary: {}\n          description: {}\n          runbook_url: {}\n",
                r.severity,
                q(r.summary),
                q(r.description),
                q(&format!("{runbook_url}#{}", r.name.to_ascii_lowercase()))
            ));
        }
    }
    out
}
