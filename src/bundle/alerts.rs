//! The alert rules, grouped by area, from the `alerts:` thresholds.

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

pub fn groups(a: &AlertsConfig) -> Vec<Group> {
    let r = |name, expr: String, for_, severity, summary, description| Rule {
        name,
        expr,
        for_,
        severity,
        summary,
        description,
    };
    let job = &a.job;
    vec![
        Group {
            name: "exporter",
            rules: vec![
                r(
                    "ShoehubExporterDown",
                    format!(r#"up{{job="{job}"}} == 0"#),
                    "5m",
                    "critical",
                    "The shop host's exporter cannot be scraped.",
                    "Prometheus has not scraped {{ $labels.instance }} for 5 minutes: every other alert about this host is blind.",
                ),
                r(
                    "ShoehubCollectorFailing",
                    "min by (instance, collector) (shoehub_scrape_collector_success) == 0".into(),
                    "15m",
                    "warning",
                    "A collector of the exporter keeps failing.",
                    "The {{ $labels.collector }} collector on {{ $labels.instance }} has failed for 15 minutes; its metrics are missing or stale. The exporter's log names the cause.",
                ),
            ],
        },
        Group {
            name: "system",
            rules: vec![
                r(
                    "HostHighCpu",
                    format!(
                        r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle"}}[5m]))) > {}"#,
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
                    r#"predict_linear(node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"}[6h], 24 * 3600) < 0 and node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"} < 0.2"#.into(),
                    "1h",
                    "warning",
                    "A filesystem will be full within a day.",
                    "At the last 6 hours' rate, {{ $labels.mountpoint }} on {{ $labels.instance }} fills within 24 hours.",
                ),
                r(
                    "HostFilesystemAlmostFull",
                    format!(
                        r#"100 * node_filesystem_avail_bytes{{fstype!~"tmpfs|ramfs"}} / node_filesystem_size_bytes{{fstype!~"tmpfs|ramfs"}} < {}"#,
                        a.filesystem_free_percent
                    ),
                    "5m",
                    "critical",
                    "A filesystem is almost full.",
                    "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanize }}% free.",
                ),
                r(
                    "HostFilesystemReadOnly",
                    r#"node_filesystem_readonly{fstype!~"tmpfs|ramfs|squashfs|iso9660"} == 1 and node_filesystem_avail_bytes > 0"#.into(),
                    "5m",
                    "critical",
                    "A filesystem is read-only.",
                    "{{ $labels.mountpoint }} on {{ $labels.instance }} is mounted read-only (often the kernel's answer to disk errors).",
                ),
                r(
                    "HostNetworkErrors",
                    r#"(rate(node_network_receive_errs_total{device!="lo"}[5m]) + rate(node_network_transmit_errs_total{device!="lo"}[5m])) / (rate(node_network_receive_packets_total{device!="lo"}[5m]) + rate(node_network_transmit_packets_total{device!="lo"}[5m])) > 0.01"#.into(),
                    "15m",
                    "warning",
                    "Network errors on the shop host.",
                    "{{ $value | humanizePercentage }} of packets on {{ $labels.device }} of {{ $labels.instance }} are errors.",
                ),
            ],
        },
        Group {
            name: "web",
            rules: vec![r(
                "ShopHighHttpErrorRatio",
                format!(
                    r#"sum by (instance) (rate(shoehub_http_requests_total{{code=~"5.."}}[5m])) / sum by (instance) (rate(shoehub_http_requests_total[5m])) > {} and sum by (instance) (rate(shoehub_http_requests_total[5m])) > 0.1"#,
                    a.http_error_ratio
                ),
                "10m",
                "critical",
                "The shop answers too many requests with server errors.",
                "{{ $value | humanizePercentage }} of requests on {{ $labels.instance }} end in a 5xx status.",
            )],
        },
        Group {
            name: "mysql",
            rules: vec![
                r(
                    "MysqlDown",
                    "mysql_up == 0".into(),
                    "2m",
                    "critical",
                    "The shop's database does not answer.",
                    "MySQL/MariaDB on {{ $labels.instance }} is down, hung or refuses the exporter's login.",
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
                    "rate(mysql_global_status_slow_queries[5m]) > 0.1".into(),
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
                        a.backup_max_age.get().as_secs()
                    ),
                    "10m",
                    "critical",
                    "The newest backup is too old.",
                    "The newest complete backup on {{ $labels.instance }} is {{ $value | humanizeDuration }} old; the plan backs up daily at 02:00.",
                ),
                r(
                    "BackupJobFailed",
                    r#"shoehub_job_last_exit_code{job="backup"} != 0"#.into(),
                    "0m",
                    "critical",
                    "The last backup run failed.",
                    "backup run on {{ $labels.instance }} exited with {{ $value }}; shoehub-exporter backup list and the job's log say why.",
                ),
                r(
                    "BackupRetentionShort",
                    format!(
                        "(time() - shoehub_backup_oldest_timestamp_seconds) < {} and shoehub_backups > 0",
                        a.backup_retention.get().as_secs().saturating_sub(86400)
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
                        a.backup_verify_max_age.get().as_secs()
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
                        a.backup_max_age.get().as_secs()
                    ),
                    "10m",
                    "warning",
                    "BackupPC has no recent good backup of a host.",
                    "BackupPC's last good backup of {{ $labels.host }} is {{ $value | humanizeDuration }} old.",
                ),
            ],
        },
        Group {
            name: "updates",
            rules: vec![
                r(
                    "UpdateJobFailed",
                    r#"shoehub_job_last_exit_code{job="update"} != 0"#.into(),
                    "0m",
                    "warning",
                    "The last update run failed.",
                    "update apply on {{ $labels.instance }} exited with {{ $value }}; see shoehub-exporter update status.",
                ),
                r(
                    "NoSuccessfulUpdate",
                    format!(
                        r#"time() - shoehub_job_last_success_timestamp_seconds{{job="update"}} > {}"#,
                        a.update_max_age.get().as_secs()
                    ),
                    "1h",
                    "warning",
                    "The weekly update has not succeeded lately.",
                    "No update on {{ $labels.instance }} has succeeded for {{ $value | humanizeDuration }}.",
                ),
                r(
                    "SecurityUpdatesPending",
                    r#"sum by (instance) (apt_upgrades_pending{origin=~".*-security.*"}) > 0"#.into(),
                    "3d",
                    "warning",
                    "Security updates have been waiting for days.",
                    "{{ $value }} security update(s) have been pending on {{ $labels.instance }} for 3 days.",
                ),
                r(
                    "UpdatePlanAwaitingApproval",
                    "shoehub_update_pending_approval == 1".into(),
                    "2d",
                    "info",
                    "An update plan waits for approval.",
                    "The update plan on {{ $labels.instance }} has waited 2 days: review it with shoehub-exporter update status.",
                ),
                r(
                    "RebootRequired",
                    "node_reboot_required == 1".into(),
                    "1d",
                    "info",
                    "The shop host needs a reboot.",
                    "A package installed on {{ $labels.instance }} asked for a reboot a day ago.",
                ),
            ],
        },
    ]
}

/// YAML double-quoted scalar.
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One rules file.
pub fn render(g: &Group) -> String {
    let mut out = format!(
        "# Generated by `shoehub-exporter generate bundle`; edit the alerts: thresholds instead.\ngroups:\n  - name: shoehub-{}\n    rules:\n",
        g.name
    );
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
            "        labels:\n          severity: {}\n        annotations:\n          summary: {}\n          description: {}\n",
            r.severity,
            q(r.summary),
            q(r.description)
        ));
    }
    out
}
