//! The named targets a dashboard spec may use (`target: cpu_usage`), each as PromQL over
//! the exporter's metrics with its unit and description.
//!
//! `SEL` in an expression stands for the dashboard's `job` and `instance` matchers, so
//! that every selector is filtered by them; `$__rate_interval` is Grafana's.

/// One query of a target, with its legend.
#[derive(Debug, Clone, Copy)]
pub struct Query {
    pub expr: &'static str,
    pub legend: &'static str,
    /// Drawn below the axis (what goes out, against what comes in above it).
    pub below: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub queries: &'static [Query],
    /// Grafana's unit id.
    pub unit: &'static str,
    /// Which values are good and which bad: the panel's colours.
    pub health: Health,
    /// The alert that fires on the same condition: its runbook is the panel's link.
    pub alert: Option<&'static str>,
    pub description: &'static str,
}

/// What a target's values mean for the operator: the colours and words a panel gives
/// them. Limits come from the `alerts:` thresholds, so a panel turns red exactly when
/// the matching alert's condition holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Health {
    /// No good or bad value (a rate, a size).
    Neutral,
    /// 1 is up (green), 0 is down (red).
    UpDown,
    /// 0 is no (green), 1 is yes (orange: something to do, not an outage).
    Flag,
    /// 0 is good (green); anything more is `color`.
    Zero(&'static str),
    /// Below the limit is green; at or above it, red.
    Max(Limit),
    /// Above the limit is green; at or below it, red.
    Min(Limit),
}

/// An `alerts:` threshold, in the unit of the target's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `alerts.backup_max_age`, seconds.
    BackupMaxAge,
    /// `alerts.http_error_ratio`, a ratio.
    HttpErrorRatio,
    /// `alerts.cpu_percent`.
    CpuPercent,
    /// 100 - `alerts.memory_available_percent`: memory in use.
    MemoryUsedPercent,
    /// 100 - `alerts.filesystem_free_percent`: space in use.
    DiskUsedPercent,
    /// `alerts.filesystem_free_percent`: space free.
    DiskFreePercent,
    /// 100 - `alerts.inodes_free_percent`: inodes in use.
    InodesUsedPercent,
    /// `alerts.disk_busy_ratio`: the share of time a disk is busy.
    DiskBusyRatio,
}

impl Limit {
    pub fn value(self, a: &crate::config::AlertsConfig) -> f64 {
        match self {
            Limit::BackupMaxAge => a.backup_max_age.get().as_secs_f64(),
            Limit::HttpErrorRatio => a.http_error_ratio,
            Limit::CpuPercent => a.cpu_percent,
            Limit::MemoryUsedPercent => 100.0 - a.memory_available_percent,
            Limit::DiskUsedPercent => 100.0 - a.filesystem_free_percent,
            Limit::DiskFreePercent => a.filesystem_free_percent,
            Limit::InodesUsedPercent => 100.0 - a.inodes_free_percent,
            Limit::DiskBusyRatio => a.disk_busy_ratio,
        }
    }
}

const fn q(expr: &'static str, legend: &'static str) -> Query {
    Query {
        expr,
        legend,
        below: false,
    }
}

/// A query drawn below the axis.
const fn below(expr: &'static str, legend: &'static str) -> Query {
    Query {
        expr,
        legend,
        below: true,
    }
}

pub const CATALOGUE: &[Target] = &[
    Target {
        name: "cpu_usage",
        queries: &[q(
            r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{SEL, mode="idle"}[$__rate_interval])))"#,
            "{{instance}}",
        )],
        unit: "percent",
        health: Health::Max(Limit::CpuPercent),
        alert: Some("HostHighCpu"),
        description: "Share of CPU time not idle, all CPUs together.",
    },
    Target {
        name: "memory_usage",
        queries: &[q(
            r#"100 * (1 - node_memory_MemAvailable_bytes{SEL} / node_memory_MemTotal_bytes{SEL})"#,
            "{{instance}}",
        )],
        unit: "percent",
        health: Health::Max(Limit::MemoryUsedPercent),
        alert: Some("HostMemoryPressure"),
        description: "Share of memory in use: what the kernel could not give a new program without swapping.",
    },
    Target {
        name: "disk_usage",
        queries: &[q(
            r#"100 * (1 - node_filesystem_avail_bytes{SEL, fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{SEL, fstype!~"tmpfs|ramfs"})"#,
            "{{mountpoint}}",
        )],
        unit: "percent",
        health: Health::Max(Limit::DiskUsedPercent),
        alert: Some("HostFilesystemAlmostFull"),
        description: "Share of each filesystem in use, as an unprivileged user sees it.",
    },
    Target {
        name: "network_traffic",
        queries: &[
            q(
                r#"sum by (instance, device) (rate(node_network_receive_bytes_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} in",
            ),
            below(
                r#"sum by (instance, device) (rate(node_network_transmit_bytes_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} out",
            ),
        ],
        unit: "Bps",
        health: Health::Neutral,
        alert: None,
        description: "Bytes per second received and sent on each network device but loopback.",
    },
    Target {
        name: "error_rate",
        queries: &[q(
            r#"(sum by (instance) (rate(shoehub_http_requests_total{SEL, code=~"5.."}[$__rate_interval])) or 0 * sum by (instance) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))) / sum by (instance) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))"#,
            "{{instance}}",
        )],
        unit: "percentunit",
        health: Health::Max(Limit::HttpErrorRatio),
        alert: Some("ShopHighHttpErrorRatio"),
        description: "Share of requests in the access logs answered with a 5xx status (0 when none was; no data when there were no requests).",
    },
    Target {
        name: "http_requests",
        queries: &[q(
            r#"sum by (code) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))"#,
            "{{code}}",
        )],
        unit: "reqps",
        health: Health::Neutral,
        alert: None,
        description: "Requests per second in the access logs, by status code.",
    },
    Target {
        name: "mysql_up",
        queries: &[q(r#"mysql_up{SEL}"#, "{{instance}}")],
        unit: "none",
        health: Health::UpDown,
        alert: Some("MysqlDown"),
        description: "1 when the database answered the last scrape, 0 when it was down, hung or refused the login.",
    },
    Target {
        name: "mysql_connections",
        queries: &[
            q(r#"mysql_global_status_threads_connected{SEL}"#, "connected"),
            q(r#"mysql_global_variables_max_connections{SEL}"#, "max_connections"),
        ],
        unit: "short",
        health: Health::Neutral,
        alert: Some("MysqlConnectionsNearLimit"),
        description: "Client connections open, against the server's max_connections.",
    },
    Target {
        name: "mysql_queries",
        queries: &[q(
            r#"rate(mysql_global_status_questions{SEL}[$__rate_interval])"#,
            "{{instance}}",
        )],
        unit: "ops",
        health: Health::Neutral,
        alert: None,
        description: "Statements per second sent by clients (Questions).",
    },
    Target {
        name: "mysql_slow_queries",
        queries: &[q(
            r#"rate(mysql_global_status_slow_queries{SEL}[$__rate_interval])"#,
            "{{instance}}",
        )],
        unit: "ops",
        health: Health::Neutral,
        alert: Some("MysqlSlowQueries"),
        description: "Statements per second that took longer than long_query_time.",
    },
    Target {
        name: "mysql_buffer_pool",
        queries: &[q(
            r#"100 * sum by (instance) (mysql_global_status_buffer_pool_pages{SEL, state="data"}) / sum by (instance) (mysql_global_status_buffer_pool_pages{SEL, state=~"data|free|misc"})"#,
            "{{instance}}",
        )],
        unit: "percent",
        health: Health::Neutral,
        alert: None,
        description: "Share of the InnoDB buffer pool holding data pages.",
    },
    Target {
        name: "backup_age",
        queries: &[q(
            r#"time() - shoehub_backup_last_success_timestamp_seconds{SEL}"#,
            "{{instance}}",
        )],
        unit: "s",
        health: Health::Max(Limit::BackupMaxAge),
        alert: Some("BackupTooOld"),
        description: "Time since the newest complete backup was completed (the plan: daily at 02:00).",
    },
    Target {
        name: "backup_size",
        queries: &[
            q(r#"shoehub_backup_last_size_bytes{SEL}"#, "last"),
            q(r#"shoehub_backup_total_size_bytes{SEL}"#, "all kept"),
        ],
        unit: "bytes",
        health: Health::Neutral,
        alert: None,
        description: "Size of the newest complete backup and of all backups kept.",
    },
    Target {
        name: "backuppc_age",
        queries: &[q(
            r#"time() - shoehub_backuppc_last_good_backup_timestamp_seconds{SEL}"#,
            "{{host}}",
        )],
        unit: "s",
        health: Health::Max(Limit::BackupMaxAge),
        alert: Some("BackupPCHostStale"),
        description: "Time since each BackupPC host's last good (full or incremental) backup ended.",
    },
    Target {
        name: "job_status",
        queries: &[q(r#"shoehub_job_last_exit_code{SEL}"#, "{{job_name}}")],
        unit: "none",
        health: Health::Zero("red"),
        alert: Some("BackupJobFailed"),
        description: "Exit code of each job's last run (0: success; 128 + N: ended by signal N).",
    },
    Target {
        name: "job_duration",
        queries: &[q(r#"shoehub_job_last_duration_seconds{SEL}"#, "{{job_name}}")],
        unit: "s",
        health: Health::Neutral,
        alert: None,
        description: "How long each job's last run took.",
    },
    Target {
        name: "updates_pending",
        queries: &[q(r#"sum by (instance) (apt_upgrades_pending{SEL})"#, "{{instance}}")],
        unit: "short",
        health: Health::Neutral,
        alert: None,
        description: "Packages an upgrade would install.",
    },
    Target {
        name: "security_updates_pending",
        queries: &[q(
            r#"sum by (instance) (apt_upgrades_pending{SEL, origin=~".*-security.*"}) or sum by (instance) (apt_upgrades_pending{SEL}) * 0"#,
            "{{instance}}",
        )],
        unit: "short",
        health: Health::Zero("orange"),
        alert: Some("SecurityUpdatesPending"),
        description: "Packages an upgrade would install from security archives.",
    },
    Target {
        name: "update_pending_approval",
        queries: &[q(r#"shoehub_update_pending_approval{SEL}"#, "{{instance}}")],
        unit: "none",
        health: Health::Flag,
        alert: Some("UpdatePlanAwaitingApproval"),
        description: "1 while the weekly update plan waits for approval.",
    },
    Target {
        name: "reboot_required",
        queries: &[q(r#"node_reboot_required{SEL}"#, "{{instance}}")],
        unit: "none",
        health: Health::Flag,
        alert: Some("RebootRequired"),
        description: "1 when an installed package asks for a reboot.",
    },
    Target {
        name: "collector_health",
        queries: &[q(r#"shoehub_scrape_collector_success{SEL}"#, "{{collector}}")],
        unit: "none",
        health: Health::UpDown,
        alert: Some("ShoehubCollectorFailing"),
        description: "1 for each collector that succeeded in the last scrape, 0 for one that failed or ran out of time.",
    },
    Target {
        name: "shop_up",
        queries: &[q(r#"min by (instance) (shoehub_probe_success{SEL})"#, "{{instance}}")],
        unit: "none",
        health: Health::UpDown,
        alert: Some("ShopDown"),
        description: "1 when every probe of the shop got the expected answer in the last scrape, 0 when one did not.",
    },
    Target {
        name: "request_rate",
        queries: &[q(
            r#"sum by (instance) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))"#,
            "{{instance}}",
        )],
        unit: "reqps",
        health: Health::Neutral,
        alert: None,
        description: "Requests per second in the access logs.",
    },
    Target {
        name: "latency_p95",
        queries: &[q(
            r#"histogram_quantile(0.95, sum by (instance, le) (rate(shoehub_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
            "{{instance}}",
        )],
        unit: "s",
        health: Health::Neutral,
        alert: None,
        description: "The time 95 % of the requests took at most (access logs with a duration).",
    },
    Target {
        name: "disk_free_lowest",
        queries: &[q(
            r#"min by (instance) (100 * node_filesystem_avail_bytes{SEL, fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{SEL, fstype!~"tmpfs|ramfs"})"#,
            "{{instance}}",
        )],
        unit: "percent",
        health: Health::Min(Limit::DiskFreePercent),
        alert: Some("HostFilesystemAlmostFull"),
        description: "Free space on the fullest filesystem, as an unprivileged user sees it.",
    },
    Target {
        name: "alerts_firing",
        queries: &[q(
            r#"count by (instance) (ALERTS{SEL, alertstate="firing", severity=~"warning|critical"}) or sum by (instance) (up{SEL}) * 0"#,
            "{{instance}}",
        )],
        unit: "short",
        health: Health::Zero("red"),
        alert: None,
        description: "Warning and critical alerts firing now for the host (Prometheus' ALERTS series).",
    },
    Target {
        name: "requests_by_class",
        queries: &[q(
            r#"sum by (class) (label_replace(rate(shoehub_http_requests_total{SEL}[$__rate_interval]), "class", "${1}xx", "code", "([0-9]).."))"#,
            "{{class}}",
        )],
        unit: "reqps",
        health: Health::Neutral,
        alert: None,
        description: "Requests per second in the access logs, by status class (2xx, 3xx, 4xx, 5xx).",
    },
    Target {
        name: "latency",
        queries: &[
            q(
                r#"histogram_quantile(0.5, sum by (instance, le) (rate(shoehub_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                "p50",
            ),
            q(
                r#"histogram_quantile(0.95, sum by (instance, le) (rate(shoehub_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                "p95",
            ),
            q(
                r#"histogram_quantile(0.99, sum by (instance, le) (rate(shoehub_http_request_duration_seconds_bucket{SEL}[$__rate_interval])))"#,
                "p99",
            ),
        ],
        unit: "s",
        health: Health::Neutral,
        alert: None,
        description: "The time half, 95 % and 99 % of the requests took at most (access logs with a duration).",
    },
    Target {
        name: "load_per_core",
        queries: &[q(
            r#"node_load1{SEL} / on (job, instance) count by (job, instance) (rate(node_cpu_seconds_total{SEL, mode="idle"}[$__rate_interval]))"#,
            "{{instance}}",
        )],
        unit: "short",
        health: Health::Neutral,
        alert: None,
        description: "The 1-minute load average per CPU: above 1, work waits for a CPU (saturation).",
    },
    Target {
        name: "pressure",
        queries: &[
            q(r#"rate(node_pressure_cpu_waiting_seconds_total{SEL}[$__rate_interval])"#, "cpu"),
            q(r#"rate(node_pressure_memory_waiting_seconds_total{SEL}[$__rate_interval])"#, "memory"),
            q(r#"rate(node_pressure_io_waiting_seconds_total{SEL}[$__rate_interval])"#, "io"),
        ],
        unit: "percentunit",
        health: Health::Neutral,
        alert: None,
        description: "Share of time some task waited for CPU, memory or IO (pressure stall information; kernels with /proc/pressure).",
    },
    Target {
        name: "swap_usage",
        queries: &[q(
            r#"100 * (node_memory_SwapTotal_bytes{SEL} - node_memory_SwapFree_bytes{SEL}) / clamp_min(node_memory_SwapTotal_bytes{SEL}, 1)"#,
            "{{instance}}",
        )],
        unit: "percent",
        health: Health::Neutral,
        alert: None,
        description: "Share of swap in use (0 on a host without swap).",
    },
    Target {
        name: "inode_usage",
        queries: &[q(
            r#"100 * (1 - node_filesystem_files_free{SEL, fstype!~"tmpfs|ramfs"} / node_filesystem_files{SEL, fstype!~"tmpfs|ramfs"})"#,
            "{{mountpoint}}",
        )],
        unit: "percent",
        health: Health::Max(Limit::InodesUsedPercent),
        alert: Some("HostInodesAlmostFull"),
        description: "Share of each filesystem's inodes in use: a filesystem out of inodes is full whatever its free space.",
    },
    Target {
        name: "disk_io_time",
        queries: &[q(
            r#"rate(node_disk_io_time_seconds_total{SEL}[$__rate_interval])"#,
            "{{device}}",
        )],
        unit: "percentunit",
        health: Health::Max(Limit::DiskBusyRatio),
        alert: Some("HostDiskIoSaturated"),
        description: "Share of time each disk was busy with IO (saturation).",
    },
    Target {
        name: "network_errors",
        queries: &[
            q(
                r#"sum by (instance, device) (rate(node_network_receive_errs_total{SEL, device!="lo"}[$__rate_interval]) + rate(node_network_receive_drop_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} in",
            ),
            below(
                r#"sum by (instance, device) (rate(node_network_transmit_errs_total{SEL, device!="lo"}[$__rate_interval]) + rate(node_network_transmit_drop_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} out",
            ),
        ],
        unit: "pps",
        health: Health::Neutral,
        alert: None,
        description: "Packets per second with errors or dropped, received and sent, on each device but loopback.",
    },
];

pub fn find(name: &str) -> Option<&'static Target> {
    CATALOGUE.iter().find(|t| t.name == name)
}

/// The known name closest to `name` (edit distance), for "did you mean".
pub fn nearest(name: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .map(|t| (levenshtein(name, t.name), t.name))
        .filter(|(d, _)| *d <= name.len().max(3) / 2 + 1)
        .min()
        .map(|(_, n)| n)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The dashboard's matchers in place of `SEL`.
pub fn expand(expr: &str) -> String {
    expr.replace("{SEL}", r#"{job=~"$job", instance=~"$instance"}"#)
        .replace("{SEL, ", r#"{job=~"$job", instance=~"$instance", "#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_required_names_are_there() {
        for n in [
            "cpu_usage",
            "memory_usage",
            "disk_usage",
            "network_traffic",
            "error_rate",
            "http_requests",
            "mysql_up",
            "mysql_connections",
            "mysql_queries",
            "mysql_slow_queries",
            "mysql_buffer_pool",
            "backup_age",
            "backup_size",
            "backuppc_age",
            "job_status",
            "job_duration",
            "updates_pending",
            "security_updates_pending",
            "update_pending_approval",
            "reboot_required",
            "collector_health",
        ] {
            assert!(find(n).is_some(), "{n}");
        }
        assert_eq!(nearest("cpu_usge"), Some("cpu_usage"));
        assert_eq!(nearest("mysql_conections"), Some("mysql_connections"));
        assert_eq!(nearest("zzzzzzzzzzzz"), None);
    }

    #[test]
    fn every_selector_is_filtered() {
        for t in CATALOGUE {
            for q in t.queries {
                let e = expand(q.expr);
                assert!(!e.contains("SEL"), "{}", t.name);
                // Every `{` opens a selector with both matchers (`${1}` in a
                // label_replace replacement is no selector).
                assert_eq!(
                    e.matches('{').count() - e.matches("${").count(),
                    e.matches(r#"job=~"$job", instance=~"$instance""#).count(),
                    "{}: {e}",
                    t.name
                );
            }
        }
    }
}
