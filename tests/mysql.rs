//! The mysql collector against a real MariaDB server that each test starts itself
//! (Debian's `mariadb-server`; scripts/test installs it when missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
use common::{Exporter, Exposition, BIN};

/// A private password file in `dir`.
fn password_file(dir: &Path, password: &str) -> PathBuf {
    let p = dir.join("mysql.password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn config(db: &MariaDb, password_file: &Path, timeout: &str) -> String {
    format!(
        "mysql:\n  url: \"mysql://{EXPORTER_USER}@127.0.0.1:{}/shoe_store_hub\"\n  \
         password_file: {}\n  timeout: {timeout}\n  schemas: [shoe_store_hub]\n",
        db.port,
        password_file.display()
    )
}

fn scrape(e: &Exporter) -> Exposition {
    e.metrics()
}

fn mysql_up(m: &Exposition) -> f64 {
    m.value("mysql_up", &[]).expect("mysql_up is always there")
}

fn success(m: &Exposition) -> f64 {
    m.value(
        "shoehub_scrape_collector_success",
        &[("collector", "mysql")],
    )
    .unwrap()
}

/// Scrapes until `mysql_up` is `want`, for at most `within`.
fn wait_up(e: &Exporter, want: f64, within: Duration) -> Exposition {
    let t = Instant::now();
    loop {
        let m = scrape(e);
        if mysql_up(&m) == want {
            return m;
        }
        assert!(
            t.elapsed() < within,
            "mysql_up did not become {want} within {within:?}; log:\n{}",
            e.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn values_agree_with_the_server() {
    let db = MariaDb::start();
    db.sql(
        "INSERT INTO shoe_store_hub.products (name, price) VALUES ('boot', 99.5), ('sandal', 30), ('sneaker', 75);
         INSERT INTO shoe_store_hub.orders (product, qty) SELECT id, 2 FROM shoe_store_hub.products;
         ANALYZE TABLE shoe_store_hub.products, shoe_store_hub.orders;",
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &db,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    let m = scrape(&e);
    assert_eq!(mysql_up(&m), 1.0, "{}", e.stderr());
    assert_eq!(success(&m), 1.0, "{}", e.stderr());

    // The test's own client is one connection while it reads; the exporter keeps its
    // pooled connection open between scrapes, so the server counts one more while the
    // test reads than while the exporter does.
    let before = db.status("Threads_connected");
    let m = scrape(&e);
    let after = db.status("Threads_connected");
    assert_eq!(before, after, "the connection count moved during the test");
    assert_eq!(
        m.value("mysql_global_status_threads_connected", &[]),
        Some(before - 1.0)
    );
    assert_eq!(
        m.value("mysql_global_variables_max_connections", &[]),
        Some(50.0)
    );
    let uptime = m.value("mysql_global_status_uptime", &[]).unwrap();
    let server_uptime = db.status("Uptime");
    assert!(
        (server_uptime - uptime).abs() <= 2.0,
        "{uptime} vs {server_uptime}"
    );

    // Table sizes as information_schema has them.
    let rows = db.sql(
        "SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH, INDEX_LENGTH, DATA_FREE FROM information_schema.TABLES
         WHERE TABLE_SCHEMA = 'shoe_store_hub' ORDER BY TABLE_NAME",
    );
    let mut tables = 0;
    for line in rows.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (table, n) = (f[0], f[1].parse::<f64>().unwrap());
        let labels = [("schema", "shoe_store_hub"), ("table", table)];
        assert_eq!(
            m.value("mysql_info_schema_table_rows", &labels),
            Some(n),
            "{table}"
        );
        for (component, v) in [
            ("data_length", f[2]),
            ("index_length", f[3]),
            ("data_free", f[4]),
        ] {
            let l = [
                ("schema", "shoe_store_hub"),
                ("table", table),
                ("component", component),
            ];
            assert_eq!(
                m.value("mysql_info_schema_table_size", &l),
                Some(v.parse::<f64>().unwrap()),
                "{table} {component}"
            );
        }
        tables += 1;
    }
    assert_eq!(tables, 2);
    assert_eq!(
        m.value(
            "mysql_info_schema_table_rows",
            &[("schema", "shoe_store_hub"), ("table", "orders")]
        ),
        Some(3.0)
    );

    // mysqld_exporter's names and types, which the mysqld mixin queries.
    for (name, kind) in [
        ("mysql_up", "gauge"),
        ("mysql_global_status_uptime", "untyped"),
        ("mysql_global_status_questions", "untyped"),
        ("mysql_global_status_slow_queries", "untyped"),
        ("mysql_global_status_bytes_received", "untyped"),
        (
            "mysql_global_status_innodb_buffer_pool_read_requests",
            "untyped",
        ),
        ("mysql_global_status_commands_total", "counter"),
        ("mysql_global_status_handlers_total", "counter"),
        ("mysql_global_status_buffer_pool_pages", "gauge"),
        ("mysql_global_status_connection_errors_total", "counter"),
        ("mysql_global_variables_innodb_buffer_pool_size", "gauge"),
        ("mysql_version_info", "gauge"),
        ("mysql_info_schema_table_size", "gauge"),
    ] {
        assert_eq!(m.types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    assert!(m
        .value(
            "mysql_global_status_commands_total",
            &[("command", "select")]
        )
        .is_some_and(|v| v > 0.0));
    assert!(m
        .value(
            "mysql_global_status_buffer_pool_pages",
            &[("state", "data")]
        )
        .is_some_and(|v| v > 0.0));
    assert_eq!(
        m.value("mysql_global_variables_innodb_buffer_pool_size", &[]),
        Some(32.0 * 1024.0 * 1024.0)
    );
    let version = db.sql("SELECT @@version");
    assert!(m.family("mysql_version_info").iter().any(|s| s
        .labels
        .get("version")
        .map(String::as_str)
        == Some(version.trim())));
    // The README's grants leave out PROCESS: no compression tables, and no failure.
    assert!(m
        .family("mysql_info_schema_innodb_cmp_compress_ops_total")
        .is_empty());
    // Not a replica: no replication series, and no failure for it.
    assert!(m.family("mysql_slave_status_slave_io_running").is_empty());
    // The host collectors are still there.
    assert!(!m.family("node_cpu_seconds_total").is_empty());
}

#[test]
fn server_down_then_back_without_restarting_the_exporter() {
    let mut db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &db,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    assert_eq!(mysql_up(&scrape(&e)), 1.0, "{}", e.stderr());
    db.stop();
    for _ in 0..5 {
        let t = Instant::now();
        let m = scrape(&e);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "a refused connection is quick"
        );
        assert_eq!(mysql_up(&m), 0.0);
        assert_eq!(success(&m), 0.0);
        assert!(!m.family("node_cpu_seconds_total").is_empty());
        assert!(m.family("mysql_global_status_uptime").is_empty());
    }
    // Logged once for the change of state, not once per scrape.
    let log = e.stderr();
    assert_eq!(
        log.matches("collector failed").count(),
        1,
        "expected one failure line:\n{log}"
    );
    assert!(log.contains("cannot connect"), "{log}");
    db.restart();
    let m = wait_up(&e, 1.0, Duration::from_secs(5));
    assert_eq!(success(&m), 1.0);
    assert!(e.stderr().contains("collector recovered"), "{}", e.stderr());
}

#[test]
fn frozen_server_cannot_stall_the_scrape() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &db,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    assert_eq!(mysql_up(&scrape(&e)), 1.0, "{}", e.stderr());
    db.signal(shoehub_exporter::sys::SIGSTOP);
    // Prometheus' timeout of 2 s minus the 0.5 s offset: the answer comes at 1.5 s.
    for _ in 0..3 {
        let t = Instant::now();
        let r = e.get("/metrics", &[("X-Prometheus-Scrape-Timeout-Seconds", "2")]);
        let took = t.elapsed();
        assert_eq!(r.status, 200);
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_millis(1900),
            "answered after {took:?}"
        );
        let m = Exposition::parse(&r.text());
        assert_eq!(mysql_up(&m), 0.0);
        assert_eq!(success(&m), 0.0);
        assert!(!m.family("node_memory_MemTotal_bytes").is_empty());
    }
    assert!(
        e.stderr().contains("did not answer within"),
        "{}",
        e.stderr()
    );
    db.signal(shoehub_exporter::sys::SIGCONT);
    wait_up(&e, 1.0, Duration::from_secs(10));
}

#[test]
fn wrong_password_is_down_and_the_password_never_shows() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "not-the-Pa55word";
    let e = Exporter::start_with_args(
        &config(&db, &password_file(dir.path(), wrong), "5s"),
        &["--log.level", "debug"],
    );
    let body = e.get("/metrics", &[]).text();
    let m = Exposition::parse(&body);
    assert_eq!(mysql_up(&m), 0.0);
    assert_eq!(success(&m), 0.0);
    let log = e.stderr();
    assert!(log.contains("Access denied"), "{log}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", e.child.id())).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", e.child.id())).unwrap();
    for (what, text) in [
        ("log", log.into_bytes()),
        ("metrics", body.into_bytes()),
        ("cmdline", cmdline),
        ("environ", environ),
    ] {
        let text = String::from_utf8_lossy(&text);
        assert!(!text.contains(wrong), "the password is in the {what}");
    }
}

#[test]
fn the_right_password_never_shows_either() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start_with_args(
        &config(&db, &password_file(dir.path(), EXPORTER_PASSWORD), "5s"),
        &["--log.level", "debug"],
    );
    let body = e.get("/metrics", &[]).text();
    assert_eq!(mysql_up(&Exposition::parse(&body)), 1.0, "{}", e.stderr());
    // A failure path too: the server goes away, the log talks about it.
    drop(db);
    let _ = e.get("/metrics", &[]).text();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", e.child.id())).unwrap();
    for (what, text) in [
        ("log", e.stderr().into_bytes()),
        ("metrics", body.into_bytes()),
        ("cmdline", cmdline),
    ] {
        assert!(
            !String::from_utf8_lossy(&text).contains(EXPORTER_PASSWORD),
            "the password is in the {what}"
        );
    }
}

/// `check-config` and `serve` both refuse the file, with exit code 78 and a message
/// that contains `needle`.
fn refused(config_text: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config_text).unwrap();
    for args in [
        vec!["check-config", "--config", cfg.to_str().unwrap()],
        vec![
            "--config",
            cfg.to_str().unwrap(),
            "--web.listen-address",
            "127.0.0.1:0",
        ],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in: {err}"
        );
        assert!(!err.contains("S3cr3t"), "the password is echoed: {err}");
    }
}

#[test]
fn unusable_credentials_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.password");
    refused(
        &format!(
            "mysql:\n  url: mysql://exporter@127.0.0.1:3306/\n  password_file: {}\n",
            missing.display()
        ),
        &format!("cannot read mysql.password_file {}", missing.display()),
    );
    let open = dir.path().join("open.password");
    std::fs::write(&open, "S3cr3t\n").unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    refused(
        &format!(
            "mysql:\n  url: mysql://exporter@127.0.0.1:3306/\n  password_file: {}\n",
            open.display()
        ),
        "can be read by group or others (mode 0644); it holds a password, so make it private: chmod 600",
    );
    refused(
        "mysql:\n  url: mysql://exporter:S3cr3t@127.0.0.1:3306/shoe_store_hub\n",
        "mysql.url: the URL contains a password; remove it from the URL and put it in mysql.password_file",
    );
    refused(
        "mysql:\n  url: mysql://exporter@127.0.0.1:3306/\n  schemas: [\"x'; DROP TABLE y\"]\n",
        "mysql.schemas",
    );
}

#[test]
fn defaults_file_and_unix_socket() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let cnf = dir.path().join("exporter.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[client]\nuser = {EXPORTER_USER}\npassword = \"{EXPORTER_PASSWORD}\"\nsocket = {}\n",
            db.socket().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cnf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let e = Exporter::start(&format!("mysql:\n  defaults_file: {}\n", cnf.display()));
    let m = scrape(&e);
    assert_eq!(mysql_up(&m), 1.0, "{}", e.stderr());
    // Over the socket: the server sees the account from localhost, not 127.0.0.1.
    let hosts = db.sql(&format!(
        "SELECT HOST FROM information_schema.PROCESSLIST WHERE USER = '{EXPORTER_USER}'"
    ));
    assert_eq!(hosts.trim(), "localhost");
}

#[test]
fn a_thousand_scrapes_use_at_most_the_pool() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &db,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    let connections_before = db.status("Connections");
    let reads_before = db.status("Com_show_status");
    let port = e.port;
    // Four clients at once, 250 scrapes each.
    let clients: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let r = common::http("GET", port, "/metrics", &[]);
                    assert_eq!(r.status, 200);
                    let m = Exposition::parse(&r.text());
                    assert_eq!(m.value("mysql_up", &[]), Some(1.0));
                }
            })
        })
        .collect();
    let mut most = 0;
    // The test's own reads of the server log in too: counted, so that only the
    // exporter's logins are judged.
    let mut own_logins = 0.0;
    while clients.iter().any(|c| !c.is_finished()) {
        own_logins += 1.0;
        let n: usize = db
            .sql(&format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{EXPORTER_USER}'"
            ))
            .trim()
            .parse()
            .unwrap();
        most = most.max(n);
        std::thread::sleep(Duration::from_millis(20));
    }
    for c in clients {
        c.join().unwrap();
    }
    // The test's own status reads are connections too: one per db.sql call is not
    // the exporter's, so count only the exporter's account.
    let opened = db
        .sql(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{EXPORTER_USER}'"
        ))
        .trim()
        .parse::<usize>()
        .unwrap();
    assert!(most <= 2, "the exporter held {most} connections at once");
    assert!(opened <= 2, "{opened} connections left open");
    assert!(most >= 1, "the sampling saw no exporter connection at all");
    // Reused, not reopened: the server's Connections counter moved by the pool's
    // logins and the test's own status reads, not by a thousand.
    own_logins += 2.0;
    let connections_after = db.status("Connections");
    let exporter_logins = connections_after - connections_before - own_logins;
    assert!(
        exporter_logins < 20.0,
        "the exporter logged in {exporter_logins} times for 1000 scrapes ({connections_before} -> {connections_after}, {own_logins} of them the test's)"
    );
    // Scrapes that arrive while a read is under way share it: four clients at once
    // cost the server fewer reads than scrapes.
    let reads = db.status("Com_show_status") - reads_before;
    eprintln!("1000 scrapes, {reads} reads of the server's status");
    assert!(reads < 900.0, "{reads} status reads for 1000 scrapes");
}

#[test]
fn a_missing_replication_grant_costs_only_the_replication_series() {
    let db = MariaDb::start();
    db.sql(
        "CREATE USER 'narrow'@'127.0.0.1' IDENTIFIED BY 'narrow-pw';
         GRANT PROCESS, SELECT ON *.* TO 'narrow'@'127.0.0.1';",
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&format!(
        "mysql:\n  url: mysql://narrow@127.0.0.1:{}/\n  password_file: {}\n  schemas: [shoe_store_hub]\n  grants_recheck: 2s\n",
        db.port,
        password_file(dir.path(), "narrow-pw").display()
    ));
    let m = scrape(&e);
    assert_eq!(mysql_up(&m), 1.0, "{}", e.stderr());
    assert_eq!(success(&m), 0.0, "the refused statement is reported");
    assert!(m.value("mysql_global_status_uptime", &[]).is_some());
    assert!(m
        .value("mysql_global_variables_max_connections", &[])
        .is_some());
    assert_eq!(
        m.family("mysql_info_schema_table_rows").len(),
        2,
        "table sizes are still read"
    );
    let log = e.stderr();
    assert!(
        log.contains("reading replication status") && log.contains("grants"),
        "{log}"
    );
    // The grant is added: the collector recovers by itself, on a new login (the server
    // gives an open connection the global grants it logged in with), no reload.
    db.sql("GRANT REPLICA MONITOR ON *.* TO 'narrow'@'127.0.0.1';");
    let granted = std::time::Instant::now();
    common::wait_until("the collector succeeds once the grant is there", || {
        success(&scrape(&e)) == 1.0
    });
    eprintln!("recovered {:?} after the grant", granted.elapsed());
}

#[test]
fn compression_tables_are_read_once_process_is_granted() {
    let db = MariaDb::start();
    db.sql(&format!(
        "GRANT PROCESS ON *.* TO '{EXPORTER_USER}'@'127.0.0.1';
         CREATE TABLE shoe_store_hub.archive (id INT PRIMARY KEY, note TEXT)
           ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=4;
         INSERT INTO shoe_store_hub.archive
           SELECT seq, REPEAT('shoe', 200) FROM shoe_store_hub.seq_1_to_2000;"
    ));
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &db,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    let m = scrape(&e);
    assert_eq!(success(&m), 1.0, "{}", e.stderr());
    // One series per row of the tables, with the server's numbers.
    let server = |sql: &str| -> Vec<Vec<String>> {
        db.sql(sql)
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    };
    let cmp = server("SELECT page_size, compress_ops FROM information_schema.INNODB_CMP");
    assert!(cmp.len() >= 4, "{cmp:?}");
    for row in &cmp {
        let ours = m.value(
            "mysql_info_schema_innodb_cmp_compress_ops_total",
            &[("page_size", &row[0])],
        );
        // The server's counter only grows between its read and the scrape's.
        assert!(ours.is_some_and(|v| v >= 0.0), "page size {}", row[0]);
    }
    let four_k = m
        .value(
            "mysql_info_schema_innodb_cmp_compress_ops_total",
            &[("page_size", "4096")],
        )
        .unwrap();
    assert!(four_k > 0.0, "the 4 KiB pages of the compressed table");
    let cmpmem = server(
        "SELECT page_size, buffer_pool_instance, pages_used FROM information_schema.INNODB_CMPMEM",
    );
    assert!(!cmpmem.is_empty());
    for row in &cmpmem {
        let labels = [
            ("page_size", row[0].as_str()),
            ("buffer_pool", row[1].as_str()),
        ];
        assert!(
            m.value("mysql_info_schema_innodb_cmpmem_pages_used_total", &labels)
                .is_some(),
            "{row:?}"
        );
        assert!(m
            .value(
                "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
                &labels
            )
            .is_some());
    }
}

#[test]
fn variables_are_reread_at_their_interval_and_the_alerted_ones_every_scrape() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let pw = password_file(dir.path(), EXPORTER_PASSWORD);
    let every = Exporter::start(&format!(
        "{}  variables_interval: 0s\n",
        config(&db, &pw, "5s")
    ));
    let cached = Exporter::start(&config(&db, &pw, "5s"));
    let value = |e: &Exporter, name: &str| scrape(e).value(name, &[]).unwrap();
    for e in [&every, &cached] {
        assert_eq!(value(e, "mysql_global_variables_wait_timeout"), 28800.0);
        assert_eq!(value(e, "mysql_global_variables_read_only"), 0.0);
    }
    db.sql("SET GLOBAL wait_timeout = 1234; SET GLOBAL read_only = ON;");
    // read_only is read with every scrape; wait_timeout at the interval.
    for e in [&every, &cached] {
        assert_eq!(value(e, "mysql_global_variables_read_only"), 1.0);
    }
    assert_eq!(value(&every, "mysql_global_variables_wait_timeout"), 1234.0);
    assert_eq!(
        value(&cached, "mysql_global_variables_wait_timeout"),
        28800.0,
        "read again before its interval"
    );
    // Between full reads the series are all still there.
    let m = scrape(&cached);
    assert!(m.family("mysql_global_variables_innodb_io_capacity").len() == 1);
    assert!(
        m.samples
            .iter()
            .filter(|s| s.name.starts_with("mysql_global_variables_"))
            .count()
            > 300
    );
    db.sql("SET GLOBAL read_only = OFF;");
}

#[test]
fn table_sizes_are_reread_at_their_interval() {
    let db = MariaDb::start();
    let dir = tempfile::tempdir().unwrap();
    let pw = password_file(dir.path(), EXPORTER_PASSWORD);
    let every = Exporter::start(&format!(
        "{}  table_sizes_interval: 0s\n",
        config(&db, &pw, "5s")
    ));
    let cached = Exporter::start(&config(&db, &pw, "5s"));
    let rows = |e: &Exporter| {
        scrape(e)
            .value(
                "mysql_info_schema_table_rows",
                &[("schema", "shoe_store_hub"), ("table", "products")],
            )
            .unwrap()
    };
    assert_eq!(rows(&every), 0.0);
    assert_eq!(rows(&cached), 0.0);
    db.sql(
        "INSERT INTO shoe_store_hub.products (name) VALUES ('a'), ('b'), ('c'), ('d');
         ANALYZE TABLE shoe_store_hub.products;",
    );
    assert_eq!(rows(&every), 4.0);
    assert_eq!(rows(&cached), 0.0, "read again before its interval");
}

#[test]
fn replication_status_of_a_real_replica() {
    let primary = MariaDb::start_with(&["--log-bin=primary-bin", "--server-id=1"]);
    let replica = MariaDb::start_with(&["--server-id=2"]);
    primary.sql(
        "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw';
         GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1';",
    );
    // From the primary's current position: what it did before (its own set-up, which
    // the replica has too) is not replayed.
    let status = primary.sql("SHOW MASTER STATUS");
    let f: Vec<&str> = status.split('\t').collect();
    replica.sql(&format!(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, MASTER_USER='repl',
         MASTER_PASSWORD='repl-pw', MASTER_LOG_FILE='{}', MASTER_LOG_POS={}, MASTER_CONNECT_RETRY=1;
         START SLAVE;",
        primary.port,
        f[0],
        f[1].trim()
    ));
    let dir = tempfile::tempdir().unwrap();
    let e = Exporter::start(&config(
        &replica,
        &password_file(dir.path(), EXPORTER_PASSWORD),
        "5s",
    ));
    let labels = [("master_host", "127.0.0.1"), ("connection_name", "")];
    let running =
        |m: &Exposition, col: &str| m.value(&format!("mysql_slave_status_{col}"), &labels);
    let t = Instant::now();
    let m = loop {
        let m = scrape(&e);
        if running(&m, "slave_io_running") == Some(1.0)
            && running(&m, "slave_sql_running") == Some(1.0)
        {
            break m;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "replication did not start: {:?} {:?}\n{}",
            running(&m, "slave_io_running"),
            running(&m, "slave_sql_running"),
            replica.sql("SHOW SLAVE STATUS\\G")
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(success(&m), 1.0, "{}", e.stderr());
    assert_eq!(running(&m, "seconds_behind_master"), Some(0.0));
    assert_eq!(
        m.types
            .get("mysql_slave_status_slave_io_running")
            .map(String::as_str),
        Some("untyped")
    );
    // A statement on the primary arrives on the replica.
    primary.sql("INSERT INTO shoe_store_hub.products (name) VALUES ('replicated')");
    let t = Instant::now();
    while replica
        .sql("SELECT COUNT(*) FROM shoe_store_hub.products")
        .trim()
        != "1"
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the row did not replicate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The primary goes away: the IO thread stops running (it keeps trying to connect).
    drop(primary);
    let t = Instant::now();
    loop {
        let m = scrape(&e);
        if running(&m, "slave_io_running") == Some(0.0) {
            assert_eq!(running(&m, "slave_sql_running"), Some(1.0));
            assert_eq!(mysql_up(&m), 1.0);
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the IO thread still looks running"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
