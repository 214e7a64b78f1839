//! A real Prometheus scrapes the real exporter (and, for the community dashboard check,
//! node_exporter next to it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, require_tool, Exporter, Prometheus};

#[test]
fn prometheus_scrapes_the_exporter() {
    // An access log with a duration, so that a histogram and unit metadata are in the
    // OpenMetrics answer Prometheus parses.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    std::fs::write(
        &log,
        "203.0.113.9 - - [25/Nov/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 12 \"-\" \"t\" 1500\n",
    )
    .unwrap();
    // And textfiles with every type, a counter without `_total` among them, which
    // OpenMetrics cannot call a counter.
    let textfiles = dir.path().join("textfile");
    std::fs::create_dir(&textfiles).unwrap();
    std::fs::write(
        textfiles.join("script.prom"),
        "# TYPE script_runs_total counter\nscript_runs_total 3\n# TYPE script_events counter\nscript_events 4\nscript_plain 5\n# TYPE script_lat histogram\nscript_lat_bucket{le=\"0.5\"} 1\nscript_lat_bucket{le=\"+Inf\"} 2\nscript_lat_sum 1.5\nscript_lat_count 2\n",
    )
    .unwrap();
    let e = Exporter::start(&format!(
        "weblogs:\n  - name: shop\n    path: {}\n    format: combined_duration\n    from_beginning: true\ntextfile:\n  directory: {}\n",
        log.display(),
        textfiles.display()
    ));
    let p = Prometheus::start(&format!(
        "  - job_name: shoehub\n    static_configs:\n      - targets: ['{}']\n",
        e.address()
    ));
    p.wait_for("up{job=\"shoehub\"} == 1", Duration::from_secs(20));
    // Prometheus parsed the whole exposition (it asks for OpenMetrics first).
    let failing = p.query("shoehub_scrape_collector_success{job=\"shoehub\"} == 0");
    assert!(failing.is_empty(), "failing collectors: {failing:?}");
    assert_eq!(
        p.query("count(shoehub_scrape_collector_success{job=\"shoehub\"})")[0]["value"][1],
        "11"
    );
    p.wait_for(
        "shoehub_http_request_duration_seconds_bucket{job=\"shoehub\",le=\"0.005\"} == 1",
        Duration::from_secs(10),
    );
    for q in [
        "script_runs_total == 3",
        "script_events == 4",
        "script_plain == 5",
        "script_lat_count == 2",
        "node_textfile_scrape_error == 0",
    ] {
        p.wait_for(q, Duration::from_secs(5));
    }
    assert!(!p
        .query("node_memory_MemTotal_bytes{job=\"shoehub\"}")
        .is_empty());
    let samples = p.wait_for(
        "scrape_samples_scraped{job=\"shoehub\"}",
        Duration::from_secs(5),
    );
    let n: f64 = samples[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n > 100.0, "only {n} samples scraped");
}

fn reference_dashboard(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the reference dashboard {}: {e} (the community dashboards live in shared/reference beside the checkout)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// The panels of the named rows: (row, panel title, PromQL expressions).
fn panels_of_rows(
    dashboard: &serde_json::Value,
    rows: &[&str],
) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut row = String::new();
    for p in dashboard["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            row = p["title"].as_str().unwrap_or_default().to_owned();
            // A collapsed row keeps its panels inside it.
            if rows.contains(&row.as_str()) {
                for inner in p["panels"].as_array().into_iter().flatten() {
                    out.push(panel_entry(&row, inner));
                }
            }
            continue;
        }
        if rows.contains(&row.as_str()) {
            out.push(panel_entry(&row, p));
        }
    }
    out
}

fn panel_entry(row: &str, p: &serde_json::Value) -> (String, String, Vec<String>) {
    let exprs = p["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect();
    (
        row.to_owned(),
        p["title"].as_str().unwrap_or_default().to_owned(),
        exprs,
    )
}

/// Resolves Node Exporter Full's variables the way Grafana does: `job`, then `nodename`
/// from `label_values(node_uname_info{job="$job"}, nodename)`, then `node` from
/// `label_values(node_uname_info{job="$job", nodename="$nodename"}, instance)`.
fn resolve_node_variables(p: &Prometheus, job: &str) -> (String, String) {
    let uname = p.query(&format!("node_uname_info{{job=\"{job}\"}}"));
    assert!(
        !uname.is_empty(),
        "no node_uname_info for job {job}: the dashboard could not pick a host"
    );
    let nodename = uname[0]["metric"]["nodename"].as_str().unwrap().to_owned();
    let inst = p.query(&format!(
        "node_uname_info{{job=\"{job}\", nodename=\"{nodename}\"}}"
    ));
    let instance = inst[0]["metric"]["instance"].as_str().unwrap().to_owned();
    (nodename, instance)
}

#[test]
fn node_exporter_full_quick_and_basic_rows_keep_working() {
    let node_bin = require_tool("prometheus-node-exporter", "prometheus-node-exporter");
    let dashboard = reference_dashboard("node-exporter-full.json");
    let node_port = free_port();
    let mut node = Command::new(node_bin)
        .arg(format!("--web.listen-address=127.0.0.1:{node_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ = node.try_wait();
    let _node = Kill(node);
    let e = Exporter::start("");
    let p = Prometheus::start(&format!(
        "  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n  - job_name: shoehub\n    static_configs:\n      - targets: ['{}']\n",
        e.address()
    ));
    p.wait_for("up{job=\"node\"} == 1", Duration::from_secs(20));
    p.wait_for("up{job=\"shoehub\"} == 1", Duration::from_secs(20));
    // Enough samples for rate() over Grafana's minimum $__rate_interval (4 × 1s scrapes).
    std::thread::sleep(Duration::from_secs(6));

    let panels = panels_of_rows(
        &dashboard,
        &["Quick CPU / Mem / Disk", "Basic CPU / Mem / Net / Disk"],
    );
    assert!(
        panels.len() >= 15,
        "expected the rows' panels, found {}",
        panels.len()
    );
    let has_data = |job: &str, exprs: &[String]| {
        let (nodename, instance) = resolve_node_variables(&p, job);
        exprs.iter().any(|expr| {
            let q = expr
                .replace("$__rate_interval", "4s")
                .replace("$nodename", &nodename)
                .replace("$node", &instance)
                .replace("$job", job);
            !p.query(&q).is_empty()
        })
    };
    let mut with_node = 0;
    let mut missing = Vec::new();
    for (row, title, exprs) in &panels {
        if has_data("node", exprs) {
            with_node += 1;
            if !has_data("shoehub", exprs) {
                missing.push(format!("{row} / {title}"));
            }
        }
    }
    assert!(
        with_node >= 12,
        "node_exporter itself had data in only {with_node} panels"
    );
    assert!(
        missing.is_empty(),
        "panels with data for node_exporter but not for shoehub-exporter: {missing:#?}"
    );
    eprintln!(
        "{with_node} of {} panels have data with both exporters",
        panels.len()
    );
}

/// Every panel of a dashboard, nested rows included: (title, PromQL expressions).
fn all_panels(dashboard: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<(String, Vec<String>)>) {
        for p in panels.as_array().into_iter().flatten() {
            if p["type"] != "row" {
                let (_, title, exprs) = panel_entry("", p);
                out.push((title, exprs));
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut out);
    }
    out
}

#[test]
fn mysqld_mixin_overview_keeps_working() {
    use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
    use std::os::unix::fs::PermissionsExt;

    let mysqld_bin = require_tool("prometheus-mysqld-exporter", "prometheus-mysqld-exporter");
    let dashboard = reference_dashboard("mysqld-mixin-mysql-overview.json");
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("exporter.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser = {EXPORTER_USER}\npassword = \"{EXPORTER_PASSWORD}\"\nhost = 127.0.0.1\nport = {}\n",
            db.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cnf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mysqld_port = free_port();
    let mysqld = Command::new(mysqld_bin)
        .arg(format!("--config.my-cnf={}", cnf.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{mysqld_port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _mysqld = Kill(mysqld);
    let e = Exporter::start(&format!(
        "mysql:\n  defaults_file: {}\n  schemas: [shoe_store_hub]\n",
        cnf.display()
    ));
    let p = Prometheus::start(&format!(
        "  - job_name: mysqld\n    static_configs:\n      - targets: ['127.0.0.1:{mysqld_port}']\n  - job_name: shoehub\n    static_configs:\n      - targets: ['{}']\n",
        e.address()
    ));
    p.wait_for("mysql_up{job=\"mysqld\"} == 1", Duration::from_secs(20));
    p.wait_for("mysql_up{job=\"shoehub\"} == 1", Duration::from_secs(20));
    // Some work for the rate panels, then enough samples for rate() over 4 s.
    for i in 0..20 {
        db.sql(&format!(
            "INSERT INTO shoe_store_hub.products (name, price) VALUES ('p{i}', {i}); SELECT COUNT(*) FROM shoe_store_hub.products;"
        ));
    }
    std::thread::sleep(Duration::from_secs(6));

    let panels = all_panels(&dashboard);
    assert!(panels.len() >= 27, "found only {} panels", panels.len());
    // The dashboard's variables: `job` as chosen, `instance` left at All (`.+`).
    let has_data = |job: &str, exprs: &[String]| {
        exprs.iter().any(|expr| {
            let q = expr
                .replace("$__rate_interval", "4s")
                .replace("$job", job)
                .replace("$instance", ".+");
            !p.query(&q).is_empty()
        })
    };
    let mut with_mysqld = 0;
    let mut missing = Vec::new();
    for (title, exprs) in &panels {
        if has_data("mysqld", exprs) {
            with_mysqld += 1;
            if !has_data("shoehub", exprs) {
                missing.push(title.clone());
            }
        }
    }
    assert!(
        with_mysqld >= 20,
        "mysqld_exporter itself had data in only {with_mysqld} panels"
    );
    assert!(
        missing.is_empty(),
        "panels with data for mysqld_exporter but not for shoehub-exporter: {missing:#?}"
    );
    eprintln!(
        "{with_mysqld} of {} panels have data with both exporters",
        panels.len()
    );
}
