//! A day of an operator's life on a real Debian 12 host: a `debootstrap` tree booted with
//! systemd as PID 1 (`systemd-nspawn -b`, its own network namespace; see
//! `common/booted.rs`), with the package that `scripts/build-deb` makes. The README's
//! Install and Configure steps are read from the README and run as written (`sudo` is
//! root here; `sudoedit` is the test writing the passwords), then the backup and its
//! verification through `systemctl start`, the weekly update through its timer's unit
//! and the transient apply unit, a bad config and a reload, the database stopped under
//! the shipped Prometheus rules and Alertmanager config, and a purge.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::alerting::{generated_rules, start_prometheus, Alertmanager, Webhook};
use common::aptrepo::tiny_deb;
use common::booted::{
    as_root, base_tree, build_deb, install_as_readme, publish, readme_sh, shop_deb, text, wait_for,
    with_shop_probe, Host, Shop,
};
use common::{wait_until, Exposition};

pub const EXPORTER_PASSWORD: &str = "exporter-pw-7Qe";
pub const BACKUP_PASSWORD: &str = "backup-pw-9Zt";

/// The configuration edit the README's Configure step 3 asks for: `mysql:` with its
/// `url:` and `password_file:` lines, and the same under `backup:`, uncommented.
fn uncomment_accounts(config: &str) -> String {
    let mut out = Vec::new();
    let mut left = 0;
    for line in config.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("# mysql:") {
            left = 2;
            out.push(format!("{indent}{}", &trimmed[2..]));
        } else if left > 0
            && (trimmed.starts_with("#   url:") || trimmed.starts_with("#   password_file:"))
        {
            left -= 1;
            out.push(format!("{indent}{}", &trimmed[2..]));
        } else {
            out.push(line.to_owned());
        }
    }
    out.join("\n") + "\n"
}

/// Approves the plan whose id `update status` (its output, `status`) names, as alice.
fn approve_current_plan(host: &Host, status: &str) {
    let id = status
        .lines()
        .find_map(|l| l.split("--plan ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no plan id in {status}"));
    host.ok(&format!(
        "shoehub-exporter update approve --plan {id} --by alice --comment 'changelog read'"
    ));
}

/// How long an alert may take to arrive: its `for:` (shortened to 15 s by
/// `generated_rules`), a scrape and an evaluation a second each, Alertmanager's group
/// wait, with other work running beside it.
const ALERT: Duration = Duration::from_secs(90);

/// Every collector's success in one scrape, by name.
fn failing_collectors(m: &Exposition) -> Vec<String> {
    m.family("shoehub_scrape_collector_success")
        .iter()
        .filter(|s| s.value != 1.0)
        .map(|s| s.labels["collector"].clone())
        .collect()
}

#[test]
fn a_day_on_a_debian_host_booted_with_systemd() {
    let deb = build_deb();
    let base = base_tree();
    let host = Host::boot(&base);

    // The shop: its database and files, as the host had them before the package.
    host.ok("systemctl is-active mariadb");
    host.ok("mariadb -e \"CREATE DATABASE shoe_store_hub; \
         CREATE TABLE shoe_store_hub.shoes (id INT PRIMARY KEY, name VARCHAR(64)); \
         INSERT INTO shoe_store_hub.shoes VALUES (1, 'loafer'), (2, 'boot');\"");
    host.ok(
        "mkdir -p /etc/shoe_store_hub /var/www/shoe_store_hub/user_data && \
         echo 'db_host=localhost' > /etc/shoe_store_hub/app.ini && \
         echo avatar > /var/www/shoe_store_hub/user_data/1.png",
    );
    // Its web front, which the exporter's probe and the update's validation ask.
    let shop_dir = tempfile::tempdir().unwrap();
    let shop = shop_deb(shop_dir.path(), "1.0", Shop::Good);
    std::fs::copy(&shop, host.root().join("root/shop.deb")).unwrap();
    host.ok("apt-get install -y -q /root/shop.deb && systemctl is-active shoe-store-hub");

    // Install, as the README says.
    for cmd in install_as_readme(&host, &deb) {
        // What is left to set up: no backup or update has run yet.
        let o = host.sh(&cmd);
        assert!(
            text(&o).contains("no complete backup exists"),
            "{}",
            text(&o)
        );
    }
    host.ok("systemctl is-enabled shoehub-exporter && systemctl is-active shoehub-exporter");
    let timers = host.ok("systemctl list-timers --all --no-pager");
    for t in ["shoehub-update-plan.timer", "shoehub-check.timer"] {
        let line = timers
            .lines()
            .find(|l| l.contains(t))
            .unwrap_or_else(|| panic!("{t}: {timers}"));
        assert!(
            !line.trim_start().starts_with("n/a"),
            "{t} has no next run: {line}"
        );
    }
    let exporter = host.forward(9742);

    // Configure: the accounts with the README's grants, the passwords, the config.
    for (first, password) in [
        ("CREATE USER 'exporter'@'localhost'", EXPORTER_PASSWORD),
        (
            "-- The backup account: backup run and backup verify",
            BACKUP_PASSWORD,
        ),
    ] {
        let sql = common::documented_sql(first, password)
            .replace("'127.0.0.1'", "'localhost'")
            .replace("'<password>'", &format!("'{password}'"));
        std::fs::write(host.root().join("root/grants.sql"), &sql).unwrap();
        host.ok("mariadb < /root/grants.sql");
    }
    let configure = readme_sh("## Configure\n", "## Upgrade\n");
    assert_eq!(configure.len(), 3, "Configure's sh blocks: {configure:?}");
    for line in configure[0].lines() {
        let cmd = as_root(line);
        if let Some(files) = cmd
            .strip_prefix("sudoedit ")
            .or(cmd.strip_prefix("editor "))
        {
            for f in files.split_whitespace() {
                let password = if f.ends_with("mysql.password") {
                    EXPORTER_PASSWORD
                } else {
                    BACKUP_PASSWORD
                };
                host.ok(&format!("printf '%s\\n' '{password}' > {f}"));
            }
            continue;
        }
        host.ok(&cmd);
    }
    let config_path = host.root().join("etc/shoehub-exporter/config.yml");
    let edited = with_shop_probe(&uncomment_accounts(
        &std::fs::read_to_string(&config_path).unwrap(),
    ));
    host.ok(&format!(
        "cat > /etc/shoehub-exporter/config.yml <<'EOF'\n{edited}EOF"
    ));
    for block in &configure[1..] {
        for line in block.lines() {
            host.ok(&as_root(line));
        }
    }
    host.ok("test -n \"$(ls /var/backups/shoe_store_hub)\"");
    host.ok("systemctl is-enabled shoehub-backup.timer shoehub-backup-verify.timer");

    // The packages the weekly update's cases publish.
    let debs = tempfile::tempdir().unwrap();
    let mut cases = common::cases::Cases::new();
    cases.case(
        "every collector succeeds for a minute, systemd and timex included",
        || {
            // Every collector succeeds for a minute of scrapes, systemd and timex included.
            let t = Instant::now();
            let mut scrapes = 0;
            let mut units = 0;
            while scrapes < 10 || t.elapsed() < Duration::from_secs(60) {
                let m = common::scrape_port(exporter);
                let failing = failing_collectors(&m);
                assert!(
                    failing.is_empty(),
                    "scrape {scrapes}: failing {failing:?}: {}",
                    host.ok("journalctl -u shoehub-exporter --no-pager | tail -n 30")
                );
                for c in ["systemd", "timex", "mysql"] {
                    assert_eq!(
                        m.value("shoehub_scrape_collector_success", &[("collector", c)]),
                        Some(1.0),
                        "{c} is not served"
                    );
                }
                units = m.family("node_systemd_unit_state").len();
                scrapes += 1;
                std::thread::sleep(Duration::from_secs(6));
            }
            assert!(units > 50, "{units} unit states");
        },
    );

    cases.case("the verification runs through its unit", || {
        // The verification through its unit.
        host.ok("systemctl start shoehub-backup-verify.service");
    });

    cases.case(
        "the weekly update: refused unapproved, installs 1.1 approved",
        || {
            // The weekly update: the archive offers 1.1 of an installed 1.0.
            let v10 = tiny_deb(debs.path(), "shoehub-canary", "1.0", &[]);
            let v11 = tiny_deb(debs.path(), "shoehub-canary", "1.1", &[]);
            publish(&host, &[&v10]);
            host.ok(
                "echo 'deb [trusted=yes] file:/srv/repo ./' > /etc/apt/sources.list && \
             apt-get update -q && apt-get install -y -q shoehub-canary=1.0",
            );
            publish(&host, &[&v11]);
            let planned = host.sh("systemctl start shoehub-update-plan.service");
            assert!(
                planned.status.success(),
                "the plan failed: {}",
                text(&host.sh("shoehub-exporter update status"))
            );
            let status = host.ok("shoehub-exporter update status");
            assert!(status.contains("shoehub-canary"), "{status}");
            let refused = host.sh("shoehub-exporter update apply");
            assert!(
                !refused.status.success(),
                "an unapproved apply: {}",
                text(&refused)
            );
            assert!(text(&refused).contains("--by NAME"), "{}", text(&refused));
            let status = host.ok("shoehub-exporter update status");
            assert!(status.contains("REFUSED"), "{status}");
            approve_current_plan(&host, &status);
            let applied = host.ok("shoehub-exporter update apply");
            assert!(
                applied.contains("shoehub-update-apply.service"),
                "{applied}"
            );
            let version = host.ok("dpkg-query -W -f '${Version}' shoehub-canary");
            assert_eq!(version.trim(), "1.1");
            let again = host.sh("shoehub-exporter update apply");
            assert!(!again.status.success(), "a second apply: {}", text(&again));
        },
    );

    cases.case(
        "after a backup, its verification and an update, check passes",
        || {
            // With a backup, its verification and an update behind it, the check passes.
            let check = host.sh("shoehub-exporter check");
            assert!(check.status.success(), "check: {}", text(&check));
        },
    );

    cases.case(
        "an update whose package fails to install fails and says so",
        || {
            // An approved update whose package fails to install: apply fails, and says so
            // where the operator looks.
            let broken = tiny_deb(
                debs.path(),
                "shoehub-canary",
                "1.2",
                &[(
                    "preinst",
                    "#!/bin/sh\necho 'canary 1.2 refuses to install' >&2\nexit 1\n",
                )],
            );
            publish(&host, &[&broken]);
            host.ok("systemctl start shoehub-update-plan.service");
            approve_current_plan(&host, &host.ok("shoehub-exporter update status"));
            let failed = host.sh("shoehub-exporter update apply");
            assert!(
                !failed.status.success(),
                "a failing apply: {}",
                text(&failed)
            );
            assert!(text(&failed).contains("failed"), "{}", text(&failed));
            let status = host.ok("shoehub-exporter update status");
            assert!(status.contains("last update run: FAILED"), "{status}");
            let version = host.ok("dpkg-query -W -f '${Version}' shoehub-canary");
            assert_eq!(version.trim(), "1.1", "the failed install left 1.1");
        },
    );

    cases.case("a bad config at reload: the running one stays, the error in -p err", || {
        // A bad config and a reload: the running one stays, the error is in -p err.
        host.ok("cp /etc/shoehub-exporter/config.yml /root/config.good");
        host.ok("echo 'no_such_key: 1' >> /etc/shoehub-exporter/config.yml");
        host.ok("systemctl reload shoehub-exporter");
        wait_until(
            "the failed reload is in the journal at priority err",
            || {
                host.sh("journalctl -u shoehub-exporter -p err --no-pager")
                    .stdout
                    .windows(13)
                    .any(|w| w == b"reload failed")
            },
        );
        let warnings = host.ok("journalctl -u shoehub-exporter -p warning --no-pager -o cat");
        assert!(
            !warnings
                .lines()
                .any(|l| l.starts_with("20") && l.contains('T')),
            "a second timestamp: {warnings}"
        );
        host.ok("cp /root/config.good /etc/shoehub-exporter/config.yml && systemctl reload shoehub-exporter");
    });

    cases.case("a stopped database pages MysqlDown and inhibits the collector alert", || {
        // The database stops: the shipped rules and Alertmanager page MysqlDown, and the
        // mysql collector's failure is inhibited by it.
        let cfg_dir = tempfile::tempdir().unwrap();
        let cfg = cfg_dir.path().join("config.yml");
        std::fs::copy(&config_path, &cfg).unwrap();
        let rules = generated_rules(&cfg);
        let hook = Webhook::start();
        let am = Alertmanager::start(&hook);
        let prometheus = start_prometheus(&format!("127.0.0.1:{exporter}"), am.port, &rules);
        let seen = || {
            let alerts = common::http("GET", prometheus.port, "/api/v1/alerts", &[]);
            format!(
                "Prometheus' alerts: {}\nnotified: {:?}\nmysql_up: {:?}",
                String::from_utf8_lossy(&alerts.body),
                hook.all()
                    .iter()
                    .map(|n| n.name().to_owned())
                    .collect::<Vec<_>>(),
                common::scrape_port(exporter).value("mysql_up", &[])
            )
        };
        // Debian's MariaDB starts on a connection to its socket units too: both go.
        host.ok("systemctl stop mariadb.socket mariadb.service 2>/dev/null || systemctl stop mariadb.service");
        host.ok("! systemctl is-active mariadb.service");
        wait_for(
            "MysqlDown reaches the pager",
            ALERT,
            || {
                hook.all()
                    .iter()
                    .any(|n| n.name() == "MysqlDown" && n.receiver == "operators-pager")
            },
            seen,
        );
        wait_for(
            "the mysql collector's failure reaches Alertmanager, inhibited",
            ALERT,
            || {
                let r = common::http(
                    "GET",
                    am.port,
                    "/api/v2/alerts?filter=alertname%3D%22ShoehubCollectorFailing%22",
                    &[],
                );
                let alerts: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
                alerts.as_array().is_some_and(|a| {
                    a.iter().any(|x| {
                        x["labels"]["collector"] == "mysql"
                            && x["status"]["inhibitedBy"]
                                .as_array()
                                .is_some_and(|i| !i.is_empty())
                    })
                })
            },
            seen,
        );
        assert!(
            !hook
                .all()
                .iter()
                .any(|n| n.name() == "ShoehubCollectorFailing"),
            "{:?}",
            hook.all()
                .iter()
                .map(|n| n.name().to_owned())
                .collect::<Vec<_>>()
        );
        host.ok("systemctl start mariadb.socket mariadb.service 2>/dev/null || systemctl start mariadb.service");
    });

    cases.case(
        "purge leaves only the backups, owned by existing accounts",
        || {
            // Purge: nothing of the package is left but the backups, owned by existing accounts.
            host.ok("apt-get purge -y -q shoehub-exporter");
            let left = host.ok(
                "find /etc /usr /var/lib /run -name '*shoehub*' -not -path '/var/lib/dpkg/*' \
             -not -path '/var/lib/apt/*' -not -path '/srv/*' -not -name 'shoehub-canary*' \
             -not -path '/var/cache/apt/*' 2>/dev/null || true",
            );
            assert_eq!(
                left.trim(),
                "",
                "left after purge; the units: {}",
                text(&host.sh(
                    "systemctl status --no-pager 'shoehub*' 2>&1; systemctl list-units --all --no-pager 'shoehub*'"
                ))
            );
            let unowned =
                host.ok("find /var/backups/shoe_store_hub \\( -nouser -o -nogroup \\) -print");
            assert_eq!(unowned.trim(), "", "kept backups owned by a bare id");
            host.ok("test -n \"$(ls /var/backups/shoe_store_hub)\"");
        },
    );

    cases.finish();
}
