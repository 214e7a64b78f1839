//! The generated dashboard as Grafana renders it. Grafana cannot be installed here, but
//! its data library can: `@grafana/data` (installed with npm by scripts/test) runs each
//! panel's transformations and display processing (`tests/grafana/panels.cjs`) on the
//! data frames Grafana's Prometheus datasource makes of the answers of a real
//! Prometheus, scraping the real exporter on a test deployment: MariaDB, the shop behind
//! Apache with its access log, backups made by `backup run`, a private apt repository.
//!
//! What the operator sees is asserted: the top row green on a healthy host, red for a
//! stale backup and for a stopped database, tables with a row per series, units Grafana
//! knows, thresholds equal to the alert rules'.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::alerting::{start_prometheus, Alertmanager, Webhook};
use common::apache::Apache;
use common::aptrepo::AptRepo;
use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
use common::{http, require_tool, urlencode, wait_until, Exporter, Prometheus, BIN};
use serde_json::{json, Value};

const BACKUP_PASSWORD: &str = "Bk-s3cret pass";

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// A query as Grafana sends it with the dashboard's variables at "All" (`.+`) and
/// `$__rate_interval` at four scrape intervals of the test's Prometheus, and a little more.
fn resolved(expr: &str) -> String {
    expr.replace("$job", ".+")
        .replace("$instance", ".+")
        .replace("$__rate_interval", "10s")
}

fn api(prometheus: &Prometheus, path: &str) -> Value {
    let r = http("GET", prometheus.port, path, &[]);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["status"], "success", "{path}: {}", r.text());
    v["data"]["result"].clone()
}

/// Every panel's queries answered by Prometheus: table panels as instant queries, the
/// others over the last minute, as the panels ask.
fn answers(prometheus: &Prometheus, dashboard: &Value) -> Value {
    // The range ends at the next whole second, so that it takes in the last scrape.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let mut out = serde_json::Map::new();
    for p in dashboard["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        let mut list = Vec::new();
        for t in p["targets"].as_array().unwrap() {
            let q = urlencode(&resolved(t["expr"].as_str().unwrap()));
            let (format, result) = if t["instant"] == true {
                (
                    t["format"].as_str().unwrap_or("time_series"),
                    api(prometheus, &format!("/api/v1/query?query={q}")),
                )
            } else {
                (
                    "time_series",
                    api(
                        prometheus,
                        &format!(
                            "/api/v1/query_range?query={q}&start={}&end={now}&step=2",
                            now - 60
                        ),
                    ),
                )
            };
            list.push(json!({
                "refId": t["refId"], "format": format, "legend": t["legendFormat"], "result": result
            }));
        }
        out.insert(p["id"].to_string(), Value::Array(list));
    }
    Value::Object(out)
}

/// The panels as `@grafana/data` renders them, by title.
fn render(prometheus: &Prometheus, dashboard: &Value) -> Value {
    let modules = repo("target/typecheck/node_modules");
    assert!(
        modules.join("@grafana/data").exists(),
        "@grafana/data is not installed in {}: run scripts/test, which installs it with npm",
        modules.display()
    );
    let node = require_tool("node", "nodejs");
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        input.path(),
        serde_json::to_vec(
            &json!({"dashboard": dashboard, "answers": answers(prometheus, dashboard)}),
        )
        .unwrap(),
    )
    .unwrap();
    if let Some(keep) = std::env::var_os("SHOEHUB_KEEP_PANEL_INPUT") {
        std::fs::copy(input.path(), keep).unwrap();
    }
    let out = Command::new(node)
        .env("NODE_PATH", &modules)
        .arg(repo("tests/grafana/panels.cjs"))
        .arg(input.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "panels.cjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["unknownUnits"], json!([]), "units Grafana does not know");
    let mut by_title = serde_json::Map::new();
    for p in v["panels"].as_array().unwrap() {
        by_title.insert(p["title"].as_str().unwrap().to_owned(), p.clone());
    }
    Value::Object(by_title)
}

/// The top row: each stat's colour and text.
fn top_row(rendered: &Value, dashboard: &Value) -> Vec<(String, String, String)> {
    let panels = dashboard["panels"].as_array().unwrap();
    let second_row = panels
        .iter()
        .skip(1)
        .position(|p| p["type"] == "row")
        .unwrap()
        + 1;
    panels[1..second_row]
        .iter()
        .map(|p| {
            let title = p["title"].as_str().unwrap();
            let stat = &rendered[title]["stat"];
            assert_eq!(
                stat.as_array().map_or(0, Vec::len),
                1,
                "{title} shows no single value: {stat}"
            );
            (
                title.to_owned(),
                stat[0]["color"].as_str().unwrap().to_owned(),
                stat[0]["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_dashboard_renders_as_grafana_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = |p: &str| dir.path().join(p);
    let mut db = MariaDb::start();
    db.sql(&common::documented_sql(
        "-- The backup account",
        BACKUP_PASSWORD,
    ));
    let secret = |name: &str, text: &str| {
        let p = path(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let backup_pw = secret("backup.password", BACKUP_PASSWORD);
    let exporter_pw = secret("exporter.password", EXPORTER_PASSWORD);
    std::fs::create_dir_all(path("data")).unwrap();
    std::fs::write(path("data/a.txt"), "a").unwrap();
    let log = path("access.log");
    let shop = Apache::start(&path("apache"), &log);
    // apt answers from a repository of its own: nothing pending, as on an updated host.
    let apt = AptRepo::new();
    let config = format!(
        "jobs:\n  state_dir: {state}\n\
         backup:\n  destination: {dest}\n  paths: [{data}]\n  mysql:\n    url: mysql://backup@127.0.0.1:{port}/shoe_store_hub\n    password_file: {bpw}\n\
         mysql:\n  url: mysql://{EXPORTER_USER}@127.0.0.1:{port}/shoe_store_hub\n  password_file: {epw}\n\
         probes:\n  - name: shop\n    url: http://127.0.0.1:{shop}/\n\
         weblogs:\n  - name: shop\n    path: {log}\n    format: combined_duration\n\
         updates:\n  apt: true\n  apt_interval: 1s\n\
         backuppc:\n  enabled: false\n\
         textfile:\n  directory: {textfiles}\n",
        state = path("state").display(),
        dest = path("dest").display(),
        data = path("data").display(),
        port = db.port,
        bpw = backup_pw.display(),
        epw = exporter_pw.display(),
        shop = shop.port,
        log = log.display(),
        textfiles = path("textfile").display(),
    );
    std::fs::create_dir_all(path("textfile")).unwrap();
    // A deploy script's record, as the README shows it.
    std::fs::write(
        path("textfile/deploy.prom"),
        "shoehub_deploy_timestamp_seconds 1796000000\n",
    )
    .unwrap();
    std::fs::write(path("config.yml"), &config).unwrap();
    let run = |args: &[&str], faketime: Option<&str>| {
        let out = common::run_at(&path("config.yml"), args, faketime);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // The backup and its verify of three days ago, and this week's update.
    run(&["backup", "run"], Some("-3d"));
    run(&["backup", "verify"], Some("-3d"));
    run(&["job", "run", "update", "--", "true"], None);

    let apt_config = format!("APT_CONFIG={}", apt.config().display());
    let exporter = Exporter::start_under(&["env", &apt_config], &config, &[]);
    let hook = Webhook::start();
    let am = Alertmanager::start(&hook);
    // The rules as `generate alerts` writes them: nothing of a healthy host fires.
    let rules = Command::new(BIN)
        .args(["generate", "alerts", "--config"])
        .arg(path("config.yml"))
        .output()
        .unwrap();
    let rules = String::from_utf8(rules.stdout).unwrap();
    let prometheus = start_prometheus(&exporter.address(), am.port, &rules);
    let dashboard: Value = serde_json::from_slice(
        &Command::new(BIN)
            .args(["generate", "dashboard", "--config"])
            .arg(path("config.yml"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // Shop traffic, scraped for a while (the panels ask for the last minute), so that
    // rates and the latency have data.
    wait_until("Prometheus has scraped the exporter 15 times", || {
        !prometheus.query("count_over_time(up[1m]) >= 15").is_empty()
    });
    wait_until("Prometheus has rates of the shop's requests", || {
        for _ in 0..5 {
            assert_eq!(http("GET", shop.port, "/", &[]).status, 200);
        }
        !prometheus
            .query("histogram_quantile(0.95, sum by (le) (rate(shoehub_http_request_duration_seconds_bucket[10s]))) >= 0")
            .is_empty()
            && !prometheus.query("apt_upgrades_pending").is_empty()
    });

    // Each event's annotation query, as the dashboard has it.
    let annotation = |name: &str| -> String {
        let a = dashboard["annotations"]["list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("no annotation {name}"));
        resolved(a["target"]["expr"].as_str().unwrap()).replace("[2m]", "[1m]")
    };
    let mut cases = common::cases::Cases::new();
    cases.case("the host's own disks may be rightly red", || {
        // The host's own disks are part of the deployment: below the alert's limit the panel
        // is rightly red, so say so instead of failing on the colour.
        let full = prometheus.query(
            r#"min(100 * node_filesystem_avail_bytes{fstype!~"tmpfs|ramfs"} / node_filesystem_size_bytes{fstype!~"tmpfs|ramfs"}) < 5"#,
        );
        assert!(
            full.is_empty(),
            "this host's fullest filesystem is under alerts.filesystem_free_percent (5 % free): {full:?}; \
             free disk space and run again"
        );
    });

    cases.case("a stale backup turns only Backup Age red", || {
        // A stale backup: only Backup Age is red.
        let rendered = render(&prometheus, &dashboard);
        for (title, colour, text) in top_row(&rendered, &dashboard) {
            let want = if title == "Backup Age" {
                "red"
            } else {
                "green"
            };
            assert_eq!(colour, want, "{title} shows {text}");
        }
    });

    cases.case("tonight's backup turns the top row green", || {
        // Tonight's backup: the whole top row green.
        run(&["backup", "run"], None);
        wait_until("Prometheus sees the new backup", || {
            !prometheus
                .query("time() - shoehub_backup_last_success_timestamp_seconds < 3600")
                .is_empty()
        });
        let rendered = render(&prometheus, &dashboard);
        let top = top_row(&rendered, &dashboard);
        assert_eq!(top.len(), 9, "{top:?}");
        for (title, colour, text) in &top {
            assert_eq!(colour, "green", "{title} shows {text}");
        }
        let text = |title: &str| top.iter().find(|t| t.0 == title).unwrap().2.clone();
        assert_eq!(text("Shop Up"), "Up");
        assert_eq!(text("MySQL Up"), "Up");
        assert_eq!(text("Security Updates"), "0");
        assert_eq!(text("Alerts Firing"), "0");
    });

    cases.case("tables: a row per series, labels as columns", || {
        let rendered = render(&prometheus, &dashboard);
        // Tables: a row per series, labels as columns, no internals, coloured values.
        let collectors = prometheus.query("shoehub_scrape_collector_success");
        let table = &rendered["Collectors"]["frames"];
        assert_eq!(table.as_array().unwrap().len(), 1, "{table}");
        let fields: Vec<&str> = table[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        for hidden in ["Time", "__name__", "job"] {
            assert!(!fields.contains(&hidden), "{hidden} is shown: {fields:?}");
        }
        assert!(
            fields.contains(&"collector") && fields.contains(&"instance"),
            "{fields:?}"
        );
        let value = table[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "Value")
            .unwrap();
        assert_eq!(value["values"].as_array().unwrap().len(), collectors.len());
        for d in value["display"].as_array().unwrap() {
            assert_eq!(d["color"], "green", "{value}");
        }
        let jobs = &rendered["Job Exit Codes"]["frames"][0]["fields"];
        let names = jobs
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "job_name")
            .unwrap();
        assert_eq!(
            names["values"],
            json!(["backup", "backup-verify", "update"])
        );
    });

    cases.case("the thresholds are the alert rules'", || {
        // The thresholds are the alert rules': Backup Age turns red where BackupTooOld
        // fires, Lowest Free Disk where HostFilesystemAlmostFull does.
        let steps = |title: &str| {
            let p = dashboard["panels"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["title"] == title)
                .unwrap();
            p["fieldConfig"]["defaults"]["thresholds"]["steps"].clone()
        };
        let rule = |name: &str| {
            let start = rules.find(&format!("- alert: {name}\n")).unwrap();
            let expr = &rules[start..];
            let expr = &expr[expr.find("expr: ").unwrap() + 6..];
            expr[..expr.find('\n').unwrap()].to_owned()
        };
        let limit = |rule_name: &str, op: &str| -> f64 {
            let expr = rule(rule_name);
            let after = &expr[expr.find(op).unwrap() + op.len()..];
            let number = after.split_whitespace().next().unwrap();
            number.trim_end_matches('"').parse().unwrap()
        };
        assert_eq!(
            limit("BackupTooOld", "> "),
            steps("Backup Age")[1]["value"].as_f64().unwrap()
        );
        assert_eq!(
            limit("HostFilesystemAlmostFull", "< "),
            steps("Lowest Free Disk")[1]["value"].as_f64().unwrap()
        );
        assert_eq!(
            limit("ShopHighHttpErrorRatio", "> "),
            steps("5xx")[1]["value"].as_f64().unwrap()
        );
    });

    cases.case("panels with an alert link to its runbook", || {
        // Every panel with an alert behind it links to the runbook section of that alert;
        // a stat, gauge or table with one has colours.
        let runbooks = std::fs::read_to_string(repo("docs/alerts.md")).unwrap();
        for p in dashboard["panels"].as_array().unwrap() {
            let Some(link) = p["links"].as_array().and_then(|l| l.first()) else {
                continue;
            };
            let title = p["title"].as_str().unwrap();
            let d = &p["fieldConfig"]["defaults"];
            assert!(
                p["type"] == "timeseries"
                    || d["thresholds"]["steps"].as_array().unwrap().len() >= 2
                    || !d["mappings"].as_array().unwrap().is_empty(),
                "{title} has an alert but no colours"
            );
            let anchor = link["url"].as_str().unwrap().rsplit('#').next().unwrap();
            assert!(
                runbooks.lines().any(|l| l
                    .strip_prefix("### ")
                    .is_some_and(|h| h.to_lowercase() == anchor)),
                "{title} links to #{anchor}, which docs/alerts.md lacks"
            );
        }
    });

    cases.case("every two-state stat has both colours", || {
        // Every stat with a good and a bad state has colours for both.
        for p in dashboard["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap();
            if p["type"] != "stat"
                || [
                    "Requests/s",
                    "p95 Latency",
                    "Pending Updates",
                    "Backup Size",
                ]
                .contains(&title)
            {
                continue;
            }
            let d = &p["fieldConfig"]["defaults"];
            assert!(
                d["thresholds"]["steps"].as_array().unwrap().len() >= 2
                    || !d["mappings"].as_array().unwrap().is_empty(),
                "{title} shows every value in one colour"
            );
        }
    });

    cases.case("shares run from none to all", || {
        // Shares run from none to all.
        for p in dashboard["panels"].as_array().unwrap() {
            let d = &p["fieldConfig"]["defaults"];
            match d["unit"].as_str() {
                Some("percent") => assert_eq!(
                    (d["min"].clone(), d["max"].clone()),
                    (json!(0), json!(100)),
                    "{}",
                    p["title"]
                ),
                Some("percentunit") => assert_eq!(
                    (d["min"].clone(), d["max"].clone()),
                    (json!(0), json!(1)),
                    "{}",
                    p["title"]
                ),
                _ => {}
            }
        }
    });

    cases.case("the time series have their series on this host", || {
        let rendered = render(&prometheus, &dashboard);
        // The time series panels have their series on this host.
        for (title, at_least) in [
            ("CPU Usage", 1),
            ("Memory Usage", 1),
            ("Network Traffic", 2),
            ("Requests by Status Class", 1),
            ("Error Ratio", 1),
            ("Latency", 3),
            ("Load per Core", 1),
            ("Disk Busy", 1),
            ("Inodes Used", 1),
            ("Network Errors", 2),
            ("Connections", 2),
        ] {
            let n = rendered[title]["frames"].as_array().unwrap().len();
            assert!(n >= at_least, "{title}: {n} series");
        }
    });

    cases.case("what goes out is drawn below the axis", || {
        // What goes out is drawn below the axis.
        let traffic = dashboard["panels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == "Network Traffic")
            .unwrap();
        assert_eq!(
            traffic["fieldConfig"]["overrides"][0],
            json!({"matcher": {"id": "byFrameRefID", "options": "B"}, "properties": [{"id": "custom.transform", "value": "negative-Y"}]})
        );
    });

    cases.case("the links reach the community dashboards", || {
        // The links reach the community dashboards: Node Exporter Full by its tag, the
        // mysqld overview by its uid.
        let reference = |name: &str| -> Value {
            serde_json::from_str(
                &std::fs::read_to_string(repo(&format!("../shared/reference/{name}"))).unwrap(),
            )
            .unwrap()
        };
        let links = dashboard["links"].as_array().unwrap();
        let node_full = reference("node-exporter-full.json");
        assert!(links.iter().any(|l| l["type"] == "dashboards"
            && l["keepTime"] == true
            && l["includeVars"] == true
            && l["tags"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| node_full["tags"].as_array().unwrap().contains(t))));
        let mysqld = reference("mysqld-mixin-mysql-overview.json");
        let uid = mysqld["uid"].as_str().unwrap();
        assert!(links
            .iter()
            .any(|l| l["url"] == format!("/d/{uid}") && l["keepTime"] == true));
    });

    cases.case("each annotation finds its induced event", || {
        // Annotations: each of its events, induced, is found by its query.
        wait_until("the backup's annotation", || {
            !prometheus.query(&annotation("Backups")).is_empty()
        });
        std::fs::write(
            path("textfile/deploy.prom"),
            "shoehub_deploy_timestamp_seconds 1796000100\n",
        )
        .unwrap();
        wait_until("the deploy's annotation", || {
            !prometheus.query(&annotation("Deploys")).is_empty()
        });
    });

    cases.case(
        "a stopped database turns MySQL Up red; its restart is an annotation",
        || {
            // The database stops: MySQL Up turns red and says so.
            db.stop();
            wait_until("Prometheus sees the database down", || {
                !prometheus.query("mysql_up == 0").is_empty()
            });
            let rendered = render(&prometheus, &dashboard);
            let top = top_row(&rendered, &dashboard);
            let mysql = top.iter().find(|t| t.0 == "MySQL Up").unwrap();
            assert_eq!((mysql.1.as_str(), mysql.2.as_str()), ("red", "Down"));
            // ...and starts again: the restart is an annotation.
            db.restart();
            wait_until("the restart's annotation", || {
                !prometheus.query(&annotation("MySQL Restarts")).is_empty()
            });
        },
    );

    cases.finish();
}
