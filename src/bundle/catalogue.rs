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
}

#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    pub queries: &'static [Query],
    /// Grafana's unit id.
    pub unit: &'static str,
    pub description: &'static str,
}

const fn q(expr: &'static str, legend: &'static str) -> Query {
    Query { expr, legend }
}

pub const CATALOGUE: &[Target] = &[
    Target {
        name: "cpu_usage",
        queries: &[q(
            r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{SEL, mode="idle"}[$__rate_interval])))"#,
            "{{instance}}",
        )],
        unit: "percent",
        description: "Share of CPU time not idle, all CPUs together.",
    },
    Target {
        name: "memory_usage",
        queries: &[q(
            r#"100 * (1 - node_memory_MemAvailable_bytes{SEL} / node_memory_MemTotal_bytes{SEL})"#,
            "{{instance}}",
        )],
        unit: "percent",
        description: "Share of memory in use: what the kernel could not give a new program without swapping.",
    },
    Target {
        name: "disk_usage",
        queries: &[q(
            r#"100 * (1 - node_filesystem_avail_bytes{SEL, fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{SEL, fstype!~"tmpfs|ramfs"})"#,
            "{{mountpoint}}",
        )],
        unit: "percent",
        description: "Share of each filesystem in use, as an unprivileged user sees it.",
    },
    Target {
        name: "network_traffic",
        queries: &[
            q(
                r#"sum by (instance, device) (rate(node_network_receive_bytes_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} in",
            ),
            q(
                r#"sum by (instance, device) (rate(node_network_transmit_bytes_total{SEL, device!="lo"}[$__rate_interval]))"#,
                "{{device}} out",
            ),
        ],
        unit: "Bps",
        description: "Bytes per second received and sent on each network device but loopback.",
    },
    Target {
        name: "error_rate",
        queries: &[q(
            r#"sum by (instance) (rate(shoehub_http_requests_total{SEL, code=~"5.."}[$__rate_interval])) / sum by (instance) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))"#,
            "{{instance}}",
        )],
        unit: "percentunit",
        description: "Share of requests in the access logs answered with a 5xx status.",
    },
    Target {
        name: "http_requests",
        queries: &[q(
            r#"sum by (code) (rate(shoehub_http_requests_total{SEL}[$__rate_interval]))"#,
            "{{code}}",
        )],
        unit: "reqps",
        description: "Requests per second in the access logs, by status code.",
    },
    Target {
        name: "mysql_up",
        queries: &[q(r#"mysql_up{SEL}"#, "{{instance}}")],
        unit: "none",
        description: "1 when the database answered the last scrape, 0 when it was down, hung or refused the login.",
    },
    Target {
        name: "mysql_connections",
        queries: &[
            q(r#"mysql_global_status_threads_connected{SEL}"#, "connected"),
            q(r#"mysql_global_variables_max_connections{SEL}"#, "max_connections"),
        ],
        unit: "short",
        description: "Client connections open, against the server's max_connections.",
    },
    Target {
        name: "mysql_queries",
        queries: &[q(
            r#"rate(mysql_global_status_questions{SEL}[$__rate_interval])"#,
            "{{instance}}",
        )],
        unit: "qps",
        description: "Statements per second sent by clients (Questions).",
    },
    Target {
        name: "mysql_slow_queries",
        queries: &[q(
            r#"rate(mysql_global_status_slow_queries{SEL}[$__rate_interval])"#,
            "{{instance}}",
        )],
        unit: "qps",
        description: "Statements per second that took longer than long_query_time.",
    },
    Target {
        name: "mysql_buffer_pool",
        queries: &[q(
            r#"100 * sum by (instance) (mysql_global_status_buffer_pool_pages{SEL, state="data"}) / sum by (instance) (mysql_global_status_buffer_pool_pages{SEL, state=~"data|free|misc"})"#,
            "{{instance}}",
        )],
        unit: "percent",
        description: "Share of the InnoDB buffer pool holding data pages.",
    },
    Target {
        name: "backup_age",
        queries: &[q(
            r#"time() - shoehub_backup_last_success_timestamp_seconds{SEL}"#,
            "{{instance}}",
        )],
        unit: "s",
        description: "Time since the newest complete backup was completed (the plan: daily at 02:00).",
    },
    Target {
        name: "backup_size",
        queries: &[
            q(r#"shoehub_backup_last_size_bytes{SEL}"#, "last"),
            q(r#"shoehub_backup_total_size_bytes{SEL}"#, "all kept"),
        ],
        unit: "bytes",
        description: "Size of the newest complete backup and of all backups kept.",
    },
    Target {
        name: "backuppc_age",
        queries: &[q(
            r#"time() - shoehub_backuppc_last_good_backup_timestamp_seconds{SEL}"#,
            "{{host}}",
        )],
        unit: "s",
        description: "Time since each BackupPC host's last good (full or incremental) backup ended.",
    },
    Target {
        name: "job_status",
        queries: &[q(r#"shoehub_job_last_exit_code{SEL}"#, "{{job_name}}")],
        unit: "none",
        description: "Exit code of each job's last run (0: success; 128 + N: ended by signal N).",
    },
    Target {
        name: "job_duration",
        queries: &[q(r#"shoehub_job_last_duration_seconds{SEL}"#, "{{job_name}}")],
        unit: "s",
        description: "How long each job's last run took.",
    },
    Target {
        name: "updates_pending",
        queries: &[q(r#"sum by (instance) (apt_upgrades_pending{SEL})"#, "{{instance}}")],
        unit: "short",
        description: "Packages an upgrade would install.",
    },
    Target {
        name: "security_updates_pending",
        queries: &[q(
            r#"sum by (instance) (apt_upgrades_pending{SEL, origin=~".*-security.*"})"#,
            "{{instance}}",
        )],
        unit: "short",
        description: "Packages an upgrade would install from security archives.",
    },
    Target {
        name: "update_pending_approval",
        queries: &[q(r#"shoehub_update_pending_approval{SEL}"#, "{{instance}}")],
        unit: "none",
        description: "1 while the weekly update plan waits for approval.",
    },
    Target {
        name: "reboot_required",
        queries: &[q(r#"node_reboot_required{SEL}"#, "{{instance}}")],
        unit: "none",
        description: "1 when an installed package asks for a reboot.",
    },
    Target {
        name: "collector_health",
        queries: &[q(r#"shoehub_scrape_collector_success{SEL}"#, "{{collector}}")],
        unit: "none",
        description: "1 for each collector that succeeded in the last scrape, 0 for one that failed or ran out of time.",
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
                // Every `{` opens a selector with both matchers.
                assert_eq!(
                    e.matches('{').count(),
                    e.matches(r#"job=~"$job", instance=~"$instance""#).count(),
                    "{}: {e}",
                    t.name
                );
            }
        }
    }
}
