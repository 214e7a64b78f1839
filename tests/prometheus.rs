//! A real Prometheus scrapes the real exporter (and, for the community dashboard check,
//! node_exporter next to it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
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
    // Every collector the exporter runs, as it reports them itself.
    let collectors = e.metrics().family("shoehub_scrape_collector_success").len();
    assert!(collectors > 20, "{collectors} collectors");
    assert_eq!(
        p.query("count(shoehub_scrape_collector_success{job=\"shoehub\"})")[0]["value"][1],
        collectors.to_string()
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

/// node_exporter (job `node`) and this exporter with its defaults (job `shoehub`) on one
/// Prometheus, both scraped often enough for rate() over 4 s.
fn beside_node_exporter() -> (common::KillOnDrop, Exporter, Prometheus) {
    let (node, node_port) = common::start_node_exporter();
    let e = Exporter::start("");
    let p = Prometheus::start(&format!(
        "  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node_port}']\n  - job_name: shoehub\n    static_configs:\n      - targets: ['{}']\n",
        e.address()
    ));
    p.wait_for("up{job=\"node\"} == 1", Duration::from_secs(20));
    p.wait_for("up{job=\"shoehub\"} == 1", Duration::from_secs(20));
    common::wait_until("both targets scraped for rates over 4 s", || {
        p.query("count_over_time(up[1m]) >= 6").len() == 2
    });
    (node, e, p)
}

#[test]
fn node_exporter_full_quick_and_basic_rows_keep_working() {
    let dashboard = reference_dashboard("node-exporter-full.json");
    let (_node, _e, p) = beside_node_exporter();

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
    // PROCESS, as mysqld_exporter's README grants it, for the compression tables; the
    // exporter reads them only when the account has it.
    db.sql(&format!(
        "GRANT PROCESS ON *.* TO '{EXPORTER_USER}'@'127.0.0.1'"
    ));
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
    let _mysqld = common::KillOnDrop(mysqld);
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
    // Every system variable mysqld_exporter exports, this exporter exports too.
    let names = |job: &str| -> std::collections::BTreeSet<String> {
        p.query(&format!(
            "count by (__name__) ({{job=\"{job}\", __name__=~\"mysql_global_variables_.+\"}})"
        ))
        .iter()
        .map(|s| s["metric"]["__name__"].as_str().unwrap().to_owned())
        .collect()
    };
    // Families whose label values must be the peer's.
    let compression = [
        "mysql_info_schema_innodb_cmp_compress_ops_total",
        "mysql_info_schema_innodb_cmp_compress_ops_ok_total",
        "mysql_info_schema_innodb_cmp_compress_time_seconds_total",
        "mysql_info_schema_innodb_cmp_uncompress_ops_total",
        "mysql_info_schema_innodb_cmp_uncompress_time_seconds_total",
        "mysql_info_schema_innodb_cmpmem_pages_used_total",
        "mysql_info_schema_innodb_cmpmem_pages_free_total",
        "mysql_info_schema_innodb_cmpmem_relocation_ops_total",
        "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
    ];
    for family in [
        "mysql_transaction_isolation",
        "mysql_global_status_performance_schema_lost_total",
    ]
    .into_iter()
    .chain(compression)
    {
        let series = |job: &str| label_sets(&p, family, job);
        let (peer, ours) = (series("mysqld"), series("shoehub"));
        assert!(!ours.is_empty(), "no {family}");
        if !peer.is_empty() || compression.contains(&family) {
            assert_eq!(
                peer, ours,
                "{family}: mysqld_exporter's, then this exporter's"
            );
        }
    }
    // The series the mysqld mixin's alerts read (its metric names; the selectors are
    // this suite's): where mysqld_exporter has them here, with the same label sets.
    let mut compared = 0;
    for (alerts, selectors) in [
        ("MySQLDown", &["mysql_up"][..]),
        (
            "MySQLReplicationNotRunning, MySQLReplicationLag",
            &[
                "mysql_slave_status_slave_io_running",
                "mysql_slave_status_slave_sql_running",
                "mysql_slave_status_seconds_behind_master",
                "mysql_slave_status_sql_delay",
            ][..],
        ),
        (
            "MySQLInnoDBLogWaits",
            &["mysql_global_status_innodb_log_waits"][..],
        ),
        ("MySQLRestarted", &["mysql_global_status_uptime"][..]),
        (
            "MySQLGaleraNotReady, MySQLGaleraOutOfSync, MySQLGaleraDonorFallingBehind",
            &[
                "mysql_global_status_wsrep_ready",
                "mysql_global_status_wsrep_local_state",
                "mysql_global_variables_wsrep_desync",
                "mysql_global_status_wsrep_local_send_queue",
            ][..],
        ),
    ] {
        for selector in selectors {
            let series = |job: &str| label_sets(&p, selector, job);
            let peer = series("mysqld");
            if peer.is_empty() {
                continue;
            }
            compared += 1;
            assert_eq!(peer, series("shoehub"), "{alerts}: {selector}");
        }
    }
    assert!(
        compared >= 4,
        "only {compared} mysqld mixin selectors compared"
    );
    let (peer_vars, our_vars) = (names("mysqld"), names("shoehub"));
    let lacking: Vec<&String> = peer_vars.difference(&our_vars).collect();
    assert!(
        peer_vars.len() > 100 && lacking.is_empty(),
        "of mysqld_exporter's {} system variables, this exporter lacks {lacking:?}",
        peer_vars.len()
    );
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

/// The generated bundle end to end: a real Prometheus scrapes the exporter with every
/// collector fed (a MariaDB, an access log, job state files, a backup, a BackupPC tree,
/// apt on this host) and loads the generated rules; every panel query of the default
/// dashboard returns data and every alert expression evaluates.
#[test]
fn every_panel_has_data_and_every_alert_evaluates() {
    use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
    use std::os::unix::fs::PermissionsExt;

    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = d.join("mysql.password");
    std::fs::write(&pw, format!("{EXPORTER_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    // An access log with successes and server errors.
    let log = d.join("access.log");
    let mut lines = String::new();
    for (i, code) in [200, 200, 302, 404, 500, 503].iter().enumerate() {
        lines.push_str(&format!(
            "203.0.113.{i} - - [25/Nov/2026:10:00:0{i} +0000] \"GET /p/{i} HTTP/1.1\" {code} 512 \"-\" \"t\" 2500\n"
        ));
    }
    std::fs::write(&log, lines).unwrap();
    // Job state files, from real runs.
    let state = d.join("state");
    let cfg_path = d.join("config.yml");
    let backups = d.join("backups");
    let backuppc = d.join("backuppc");
    std::fs::create_dir_all(backuppc.join("pc/shop")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backuppc/4.3/pc/shop/backups"),
        backuppc.join("pc/shop/backups"),
    )
    .unwrap();
    // A complete backup in the destination (its manifest and artifact).
    let b = backups.join("20261125T020000Z");
    std::fs::create_dir_all(&b).unwrap();
    std::fs::write(b.join("files.tar.zst"), b"x").unwrap();
    std::fs::write(
        b.join("manifest.json"),
        r#"{"format":1,"name":"20261125T020000Z","started":1795600000,"completed":1795600100,"server_version":"x","databases":[],"paths":[],"files_archived":0,"artifacts":[{"file":"files.tar.zst","size":1,"sha256":"-"}]}"#,
    )
    .unwrap();
    // The shop, probed.
    let shop = common::apache::Apache::start(&d.join("apache"), &d.join("apache.log"));
    let config = format!(
        "probes:\n  - name: shop\n    url: http://127.0.0.1:{}/\nmysql:\n  url: mysql://{EXPORTER_USER}@127.0.0.1:{}/shoe_store_hub\n  password_file: {}\n  schemas: [shoe_store_hub]\nweblogs:\n  - name: shop\n    path: {}\n    format: combined_duration\n    from_beginning: true\njobs:\n  state_dir: {}\nbackup:\n  destination: {}\nbackuppc:\n  top_dir: {}\nupdates:\n  apt: true\n",
        shop.port,
        db.port,
        pw.display(),
        log.display(),
        state.display(),
        backups.display(),
        backuppc.display()
    );
    std::fs::write(&cfg_path, &config).unwrap();
    for (job, cmd) in [("backup", "true"), ("update", "true")] {
        let out = Command::new(common::BIN)
            .args(["job", "run", job, "--config"])
            .arg(&cfg_path)
            .args(["--", cmd])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let e = Exporter::start(&config);
    // The generated rules, loaded by Prometheus.
    let rules: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("alerts"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
    let mut scrape = format!(
        "  - job_name: shoehub\n    static_configs:\n      - targets: ['{}']\nrule_files:\n",
        e.address()
    );
    for r in &rules {
        scrape.push_str(&format!("  - {}\n", r.display()));
    }
    let p = Prometheus::start(&scrape);
    p.wait_for("mysql_up{job=\"shoehub\"} == 1", Duration::from_secs(20));
    // apt's first answer takes a few seconds.
    p.wait_for(
        "apt_upgrades_pending{job=\"shoehub\"}",
        Duration::from_secs(60),
    );
    std::thread::sleep(Duration::from_secs(5));

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboards/shoehub-overview.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut empty = Vec::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            // As Grafana sends them: the job chosen, instance All, the rate interval
            // four scrape intervals.
            let q = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "4s")
                .replace("$job", "shoehub")
                .replace("$instance", ".+");
            queries += 1;
            if p.query(&q).is_empty() {
                empty.push(format!("{}: {q}", panel["title"]));
            }
        }
    }
    assert!(queries > 20);
    assert!(empty.is_empty(), "panel queries without data: {empty:#?}");
    // Every alert expression evaluates (the helper fails on a query error), and the
    // rules loaded.
    let mut alerts = 0;
    for r in &rules {
        for line in std::fs::read_to_string(r).unwrap().lines() {
            if let Some(expr) = line.trim().strip_prefix("expr: ") {
                let expr: String = serde_json::from_str(expr).unwrap();
                p.query(&expr);
                alerts += 1;
            }
        }
    }
    assert!(alerts > 30, "{alerts} alerts");
    let r = common::http("GET", p.port, "/api/v1/rules", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let loaded: usize = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, alerts);
    for g in v["data"]["groups"].as_array().unwrap() {
        for rule in g["rules"].as_array().unwrap() {
            assert_eq!(rule["health"], "ok", "{rule}");
        }
    }
}

/// The whole of Node Exporter Full, every row, with the variables resolved as Grafana
/// resolves them: the panels node_exporter fills on this host, and how many of them this
/// exporter fills too.
#[test]
fn node_exporter_full_whole_dashboard() {
    let dashboard = reference_dashboard("node-exporter-full.json");
    let (_node, _e, p) = beside_node_exporter();
    let panels = all_panels(&dashboard);
    let has_data = |job: &str, exprs: &[String]| {
        let (nodename, instance) = resolve_node_variables(&p, job);
        exprs.iter().any(|expr| {
            let q = expr
                .replace("$__rate_interval", "4s")
                .replace("$__interval", "1s")
                .replace("$nodename", &nodename)
                .replace("$node", &instance)
                .replace("$job", job);
            !p.query(&q).is_empty()
        })
    };
    let mut with_node = 0;
    let mut with_both = 0;
    let mut missing = Vec::new();
    for (title, exprs) in &panels {
        if has_data("node", exprs) {
            with_node += 1;
            if has_data("shoehub", exprs) {
                with_both += 1;
            } else {
                missing.push(title.clone());
            }
        }
    }
    eprintln!(
        "Node Exporter Full: {with_node} of {} panels have data with node_exporter, {with_both} of them with shoehub-exporter too; missing: {missing:#?}",
        panels.len()
    );
    assert!(
        with_node >= 100,
        "node_exporter filled only {with_node} panels"
    );
    assert!(
        with_both >= MIN_NODE_EXPORTER_FULL_PANELS,
        "only {with_both} of the {with_node} panels node_exporter fills have data with shoehub-exporter; missing: {missing:#?}"
    );
}

/// Panels of Node Exporter Full with data from this exporter, of those node_exporter
/// fills: raised as collectors are added.
const MIN_NODE_EXPORTER_FULL_PANELS: usize = 106;

/// The label sets (without job and instance) of what `selector` (`name` or
/// `name{matchers}`) selects in `job`.
fn label_sets(p: &Prometheus, selector: &str, job: &str) -> std::collections::BTreeSet<String> {
    let q = match selector.split_once('{') {
        Some((name, rest)) => format!("{name}{{job=\"{job}\",{rest}"),
        None => format!("{selector}{{job=\"{job}\"}}"),
    };
    p.query(&q)
        .iter()
        .map(|s| {
            let mut m = s["metric"].clone();
            for k in ["job", "instance"] {
                m.as_object_mut().unwrap().remove(k);
            }
            m.to_string()
        })
        .collect()
}

/// The series each node-mixin alert reads, by alert: the metric names are the mixin's
/// (its rules are not vendored here, and the test machines cannot fetch them), the
/// selectors this suite's. Where node_exporter has series for a selector on this host,
/// this exporter must have the same label sets. What this host cannot produce (RAID,
/// failed systemd units) is compared with node_exporter on fixtures in
/// tests/exporter.rs and tests/systemd.rs.
const NODE_MIXIN_INPUTS: &[(&str, &[&str])] = &[
    (
        "NodeFilesystemSpaceFillingUp, NodeFilesystemAlmostOutOfSpace",
        &[
            "node_filesystem_avail_bytes{fstype!=\"\",mountpoint!=\"\"}",
            "node_filesystem_size_bytes{fstype!=\"\",mountpoint!=\"\"}",
            "node_filesystem_readonly{fstype!=\"\",mountpoint!=\"\"}",
        ],
    ),
    (
        "NodeFilesystemFilesFillingUp, NodeFilesystemAlmostOutOfFiles",
        &[
            "node_filesystem_files_free{fstype!=\"\",mountpoint!=\"\"}",
            "node_filesystem_files{fstype!=\"\",mountpoint!=\"\"}",
        ],
    ),
    (
        "NodeNetworkReceiveErrs, NodeNetworkTransmitErrs",
        &[
            "node_network_receive_errs_total",
            "node_network_receive_packets_total",
            "node_network_transmit_errs_total",
            "node_network_transmit_packets_total",
        ],
    ),
    (
        "NodeHighNumberConntrackEntriesUsed",
        &[
            "node_nf_conntrack_entries",
            "node_nf_conntrack_entries_limit",
        ],
    ),
    (
        "NodeTextFileCollectorScrapeError",
        &["node_textfile_scrape_error"],
    ),
    (
        "NodeClockSkewDetected, NodeClockNotSynchronising",
        &[
            "node_timex_offset_seconds",
            "node_timex_sync_status",
            "node_timex_maxerror_seconds",
        ],
    ),
    (
        "NodeRAIDDegraded, NodeRAIDDiskFailure",
        &["node_md_disks_required", "node_md_disks"],
    ),
    (
        "NodeFileDescriptorLimit",
        &["node_filefd_allocated", "node_filefd_maximum"],
    ),
    (
        "NodeCPUHighUsage, NodeSystemSaturation",
        &["node_cpu_seconds_total", "node_load1"],
    ),
    (
        "NodeMemoryMajorPagesFaults, OOM kills",
        &["node_vmstat_pgmajfault", "node_vmstat_oom_kill"],
    ),
    (
        "NodeMemoryHighUtilization",
        &[
            "node_memory_MemAvailable_bytes",
            "node_memory_MemTotal_bytes",
        ],
    ),
    (
        "NodeDiskIOSaturation",
        &["node_disk_io_time_weighted_seconds_total"],
    ),
    (
        "NodeSystemdServiceFailed, NodeSystemdServiceCrashlooping",
        &[
            "node_systemd_unit_state{state=\"failed\"}",
            "node_systemd_service_restart_total",
        ],
    ),
    ("NodeNetworkInterfaceFlapping", &["node_network_up"]),
];

#[test]
fn node_mixin_alert_inputs_have_the_peers_series() {
    let (_node, _e, p) = beside_node_exporter();
    let label_sets = |selector: &str, job: &str| label_sets(&p, selector, job);
    let mut compared = 0;
    let mut lacking = Vec::new();
    for (alerts, selectors) in NODE_MIXIN_INPUTS {
        for selector in *selectors {
            let peer = label_sets(selector, "node");
            if peer.is_empty() {
                continue;
            }
            compared += 1;
            let ours = label_sets(selector, "shoehub");
            let missing: Vec<&String> = peer.difference(&ours).collect();
            if !missing.is_empty() {
                lacking.push(format!("{alerts}: {selector}: {missing:?}"));
            }
        }
    }
    eprintln!("{compared} selectors of the node mixin's alerts have node_exporter series here");
    assert!(compared >= 20, "only {compared} selectors compared");
    assert!(
        lacking.is_empty(),
        "series node_exporter has and this exporter lacks: {lacking:#?}"
    );
}
