//! `backup run|verify|prune|list` against a real MariaDB (started by the test) and real
//! files, and the freshness metrics the exporter serves from the destination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::mariadb::MariaDb;
use common::{Exporter, BIN};
use sha2::{Digest, Sha256};

const BACKUP_PASSWORD: &str = "Bk-s3cret pass";

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    /// Config and user-data directories, a backup account on `db`, and a config file.
    fn new(db: &MariaDb) -> Site {
        let s = Site {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(s.path("etc/shoe_store_hub")).unwrap();
        std::fs::write(s.path("etc/shoe_store_hub/app.ini"), "currency = EUR\n").unwrap();
        std::fs::create_dir_all(s.path("www/user_data/avatars")).unwrap();
        for i in 0..20 {
            std::fs::write(
                s.path(&format!("www/user_data/avatars/{i}.png")),
                vec![i as u8; 1000 + i * 37],
            )
            .unwrap();
        }
        // Exactly the README's grants, for the account on 127.0.0.1.
        db.sql(&common::documented_sql(
            "-- The backup account",
            BACKUP_PASSWORD,
        ));
        let pw = s.path("backup.password");
        std::fs::write(&pw, format!("{BACKUP_PASSWORD}\n")).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
        s.write_config(db, "30d", 7);
        s
    }

    fn write_config(&self, db: &MariaDb, retention: &str, keep_min: usize) {
        std::fs::write(
            self.path("config.yml"),
            format!(
                "jobs:\n  state_dir: {state}\nbackup:\n  destination: {dest}\n  retention: {retention}\n  keep_min: {keep_min}\n  paths: [{etc}, {data}]\n  mysql:\n    url: mysql://backup@127.0.0.1:{port}/shoe_store_hub\n    password_file: {pw}\n",
                state = self.path("state").display(),
                dest = self.path("dest").display(),
                etc = self.path("etc/shoe_store_hub").display(),
                data = self.path("www/user_data").display(),
                port = db.port,
                pw = self.path("backup.password").display(),
            ),
        )
        .unwrap();
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("backup")
            .args(args)
            .arg("--config")
            .arg(self.path("config.yml"));
        c
    }

    fn backup(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn list(&self) -> Vec<serde_json::Value> {
        let out = self.backup(&["list", "--format", "json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn complete(&self) -> Vec<String> {
        self.list()
            .iter()
            .filter(|e| e["state"] == "complete")
            .map(|e| e["name"].as_str().unwrap().to_owned())
            .collect()
    }

    fn exporter(&self) -> Exporter {
        Exporter::start(&std::fs::read_to_string(self.path("config.yml")).unwrap())
    }
}

fn shop_data(db: &MariaDb, rows: usize) {
    db.sql("CREATE TABLE shoe_store_hub.reviews (id INT PRIMARY KEY AUTO_INCREMENT, product INT, body TEXT);");
    db.sql(&format!(
        "INSERT INTO shoe_store_hub.products (name, price) VALUES ('boot', 99.5), ('sandal', 30), ('it''s (odd); name', 1);
         INSERT INTO shoe_store_hub.orders (product, qty) SELECT id, 2 FROM shoe_store_hub.products;
         INSERT INTO shoe_store_hub.reviews (product, body)
           SELECT 1, CONCAT('review ', seq, ' with ''quotes'', (parens); and \\\\backslashes')
           FROM shoe_store_hub.seq_1_to_{rows};"
    ));
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The backup in `dir` holds every artifact its manifest lists, with the recorded size
/// and checksum (computed here); its manifest.
fn assert_whole(dir: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    for a in manifest["artifacts"].as_array().unwrap() {
        let f = dir.join(a["file"].as_str().unwrap());
        assert_eq!(
            sha256_hex(&f),
            a["sha256"].as_str().unwrap(),
            "{} is not whole",
            dir.display()
        );
        assert_eq!(
            std::fs::metadata(&f).unwrap().len(),
            a["size"].as_u64().unwrap()
        );
    }
    manifest
}

fn sha256_hex(path: &Path) -> String {
    let mut h = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut h).unwrap();
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_full_run_is_complete_verifiable_and_reported() {
    let db = MariaDb::start();
    shop_data(&db, 500);
    let s = Site::new(&db);
    ok(&s.backup(&["run"]));
    let names = s.complete();
    assert_eq!(names.len(), 1);
    let dir = s.path("dest").join(&names[0]);
    let manifest = assert_whole(&dir);
    let tables = &manifest["databases"][0]["tables"];
    let rows = |t: &str| {
        tables
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["table"] == t)
            .unwrap()["rows"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        (rows("products"), rows("orders"), rows("reviews")),
        (3, 3, 500)
    );
    assert_eq!(manifest["files_archived"], 21);
    assert!(manifest["server_version"]
        .as_str()
        .unwrap()
        .contains("MariaDB"));
    // The archive holds the files.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | tar -t",
            dir.join("files.tar.zst").display()
        ))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("etc/shoe_store_hub/app.ini"), "{listing}");
    assert!(listing.contains("www/user_data/avatars/19.png"));

    let e = s.exporter();
    let m = e.metrics();
    assert_eq!(m.value("shoehub_backups", &[]), Some(1.0));
    assert_eq!(
        m.value("shoehub_backup_last_success_timestamp_seconds", &[]),
        manifest["completed"].as_f64()
    );
    assert_eq!(
        m.value("shoehub_backup_last_verified_timestamp_seconds", &[]),
        Some(0.0)
    );
    assert_eq!(
        m.value("shoehub_job_last_exit_code", &[("job_name", "backup")]),
        Some(0.0)
    );

    let v = s.backup(&["verify"]);
    ok(&v);
    assert!(String::from_utf8_lossy(&v.stdout).contains("3 table(s) restored"));
    let m = e.metrics();
    assert!(
        m.value("shoehub_backup_last_verified_timestamp_seconds", &[])
            .unwrap()
            > 1.7e9
    );
    assert_eq!(
        m.value(
            "shoehub_job_last_exit_code",
            &[("job_name", "backup-verify")]
        ),
        Some(0.0)
    );
    // The scratch database is gone.
    assert!(!db.sql("SHOW DATABASES").contains("shoehub_verify"));

    // A verification whose record cannot be written has failed: the last-verified
    // metric would not move. (A directory where the record goes cannot be replaced.)
    let record = dir.join("verified.json");
    std::fs::remove_file(&record).unwrap();
    std::fs::create_dir_all(record.join("in-the-way")).unwrap();
    let v = s.backup(&["verify"]);
    assert_eq!(
        v.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(String::from_utf8_lossy(&v.stderr).contains("verified.json"));
    assert_eq!(
        e.metrics().value(
            "shoehub_job_last_exit_code",
            &[("job_name", "backup-verify")]
        ),
        Some(1.0)
    );
    std::fs::remove_dir_all(&record).unwrap();

    // A damaged artifact fails verification and is recorded.
    let dump = dir.join(manifest["artifacts"][0]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&dump).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&dump, bytes).unwrap();
    let v = s.backup(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&v.stderr).contains("checksum mismatch"));
    assert_eq!(
        e.metrics().value(
            "shoehub_job_last_exit_code",
            &[("job_name", "backup-verify")]
        ),
        Some(1.0)
    );
}

#[test]
fn a_run_killed_at_any_point_leaves_the_last_good_backup() {
    let db = MariaDb::start();
    // Enough that the dump and the archive each take a while.
    shop_data(&db, 300_000);
    let s = Site::new(&db);
    let mut big = vec![0u8; 64 << 20];
    let mut x: u64 = 88172645463325252;
    for chunk in big.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(s.path("www/user_data/catalog.bin"), &big).unwrap();
    ok(&s.backup(&["run"]));
    let good = s.complete();
    assert_eq!(good.len(), 1);
    let e = s.exporter();
    let before = e.metrics();
    let t = Instant::now();
    ok(&s.backup(&["run"]));
    let full = t.elapsed();
    // Two complete now; remove the second to start from one.
    let second: Vec<String> = s
        .complete()
        .into_iter()
        .filter(|n| !good.contains(n))
        .collect();
    std::fs::remove_dir_all(s.path("dest").join(&second[0])).unwrap();
    let mut landed = 0;
    for fraction in [0.05, 0.2, 0.4, 0.6, 0.8, 0.95] {
        // Names have one-second resolution: never two runs in the same second.
        std::thread::sleep(Duration::from_millis(1100));
        let mut child = s
            .command(&["run"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(fraction));
        if child.try_wait().unwrap().is_some() {
            // A run faster than the measured one ended before the kill: it proves
            // nothing here. Its backup goes, to start from one again.
            for n in s.complete().into_iter().filter(|n| !good.contains(n)) {
                std::fs::remove_dir_all(s.path("dest").join(n)).unwrap();
            }
            continue;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // A kill that came after the rename (the run was pruning or reporting): the new
        // backup is whole, every checksum as its manifest says, and it goes, to start
        // from one again. It proves nothing about a kill within a run.
        let late: Vec<String> = s
            .complete()
            .into_iter()
            .filter(|n| !good.contains(n))
            .collect();
        if !late.is_empty() {
            for n in late {
                let dir = s.path("dest").join(&n);
                assert_whole(&dir);
                std::fs::remove_dir_all(dir).unwrap();
            }
            continue;
        }
        landed += 1;
        // Whatever the run left, nothing new looks complete.
        assert_eq!(s.complete(), good, "after a kill at {fraction} of a run");
        let m = e.metrics();
        for name in [
            "shoehub_backups",
            "shoehub_backup_last_success_timestamp_seconds",
            "shoehub_backup_total_size_bytes",
        ] {
            assert_eq!(
                m.value(name, &[]),
                before.value(name, &[]),
                "{name} after a kill at {fraction}"
            );
        }
    }
    assert!(landed >= 4, "only {landed} kills landed within a run");
    // Killed runs leave no copy of the password behind.
    for e in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        if e.metadata().is_ok_and(|m| m.is_file() && m.len() < 4096) {
            let text = std::fs::read(e.path()).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&text).contains(BACKUP_PASSWORD),
                "{} holds the password",
                e.path().display()
            );
        }
    }
    std::thread::sleep(Duration::from_millis(1100));
    ok(&s.backup(&["run"]));
    let list = s.list();
    assert!(
        list.iter().all(|e| e["state"] == "complete"),
        "leftovers: {list:?}"
    );
    assert_eq!(s.complete().len(), 2);
    assert_eq!(e.metrics().value("shoehub_backups", &[]), Some(2.0));
}

#[test]
fn a_failing_dump_fails_the_run() {
    let mut db = MariaDb::start();
    let s = Site::new(&db);
    // A wrong password.
    std::fs::write(s.path("backup.password"), "not-it\n").unwrap();
    let out = s.backup(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the database server: ") && err.contains("Access denied"),
        "{err}"
    );
    assert!(!err.contains("not-it"));
    std::fs::write(s.path("backup.password"), format!("{BACKUP_PASSWORD}\n")).unwrap();
    // The database stopped.
    db.stop();
    let out = s.backup(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the database server: ") && err.contains("connect"),
        "{err}"
    );
    // A path missing.
    db.restart();
    std::fs::remove_dir_all(s.path("etc/shoe_store_hub")).unwrap();
    let out = s.backup(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("backup.paths:"));
    assert!(s.complete().is_empty());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("state/backup.json")).unwrap()).unwrap();
    assert_eq!(state["runs"], 3);
    assert_eq!(state["failures"], 3);
    assert_eq!(state["last"]["exit_code"], 1);
    let m = s.exporter().metrics();
    assert_eq!(m.value("shoehub_backups", &[]), Some(0.0));
    assert_eq!(
        m.value("shoehub_job_failures_total", &[("job_name", "backup")]),
        Some(3.0)
    );
}

#[test]
fn the_password_never_reaches_a_command_line() {
    let db = MariaDb::start();
    shop_data(&db, 300_000);
    let s = Site::new(&db);
    let mut child = s
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut looked = 0;
    let mut saw_dump = false;
    while child.try_wait().unwrap().is_none() {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                !text.contains(BACKUP_PASSWORD),
                "password on a command line: {text}"
            );
            if text.contains("mariadb-dump") || text.contains("mysqldump") {
                saw_dump = true;
                let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
                assert!(!String::from_utf8_lossy(&environ).contains(BACKUP_PASSWORD));
            }
            looked += 1;
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(
        saw_dump,
        "the dump ran too fast to be seen ({looked} looks)"
    );
}

fn secs_ago(days: f64) -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        - days * 86400.0
}

/// A complete backup completed `days` ago, with one small artifact.
fn fake_backup(dest: &Path, days: f64) -> String {
    let t = secs_ago(days);
    let days_since_epoch = (t as i64).div_euclid(86400);
    // The name is only a label here; the manifest's time is what retention reads.
    let name = format!(
        "2000{:04}T{:06}Z",
        days_since_epoch % 10000,
        (t as i64) % 1_000_000
    );
    let dir = dest.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("files.tar.zst"), b"x").unwrap();
    let manifest = serde_json::json!({
        "format": 1, "name": name, "started": t, "completed": t, "server_version": "x",
        "databases": [], "paths": [], "files_archived": 0,
        "artifacts": [{"file": "files.tar.zst", "size": 1, "sha256": "-"}],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    name
}

#[test]
fn retention_keeps_what_the_policy_says() {
    let db = MariaDb::start();
    let s = Site::new(&db);
    let dest = s.path("dest");
    // One backup a day over 40 days, plus things that are not backups.
    let mut by_age: Vec<(f64, String)> = (0..40)
        .map(|d| (d as f64 + 0.5, fake_backup(&dest, d as f64 + 0.5)))
        .collect();
    std::fs::create_dir_all(dest.join("lost+found")).unwrap();
    std::fs::write(dest.join("README.txt"), "operator notes\n").unwrap();
    std::fs::create_dir_all(dest.join("20200101T000000Z-manual-copy")).unwrap();
    ok(&s.backup(&["prune"]));
    let kept = s.complete();
    by_age.sort_by(|a, b| a.0.total_cmp(&b.0));
    let want: Vec<String> = by_age
        .iter()
        .filter(|(age, _)| *age < 30.0)
        .map(|(_, n)| n.clone())
        .collect();
    let mut kept_sorted = kept.clone();
    kept_sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        kept_sorted, want_sorted,
        "30 days kept, the 10 older pruned"
    );
    assert!(dest.join("lost+found").exists() && dest.join("README.txt").exists());
    assert!(dest.join("20200101T000000Z-manual-copy").exists());

    // When every backup is older than the retention, the newest keep_min stay.
    let old = tempfile::tempdir().unwrap();
    let s2 = Site { dir: old };
    std::fs::create_dir_all(s2.path("etc/shoe_store_hub")).unwrap();
    std::fs::create_dir_all(s2.path("www/user_data")).unwrap();
    std::fs::write(s2.path("backup.password"), "x\n").unwrap();
    std::fs::set_permissions(
        s2.path("backup.password"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    s2.write_config(&db, "30d", 7);
    let mut names: Vec<(f64, String)> = (0..12)
        .map(|d| {
            (
                40.0 + d as f64,
                fake_backup(&s2.path("dest"), 40.0 + d as f64),
            )
        })
        .collect();
    ok(&s2.backup(&["prune"]));
    names.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut want: Vec<String> = names.iter().take(7).map(|(_, n)| n.clone()).collect();
    want.sort();
    let mut kept = s2.complete();
    kept.sort();
    assert_eq!(kept, want, "never fewer than keep_min");
}

#[test]
fn backuppc_hosts_of_both_layouts() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/backuppc");
    let t0 = 1_795_000_000.0;
    let e = Exporter::start(&format!(
        "backuppc:\n  top_dir: {}\n",
        fixtures.join("4.4").display()
    ));
    let m = e.metrics();
    let v = |name: &str, host: &str| m.value(name, &[("host", host)]);
    // db1: the newest good backup is the incremental #3, not the later partial or active.
    assert_eq!(
        v("shoehub_backuppc_last_good_backup_timestamp_seconds", "db1"),
        Some(t0 + 3.0 * 86400.0 + 800.0)
    );
    assert_eq!(
        v("shoehub_backuppc_last_full_backup_timestamp_seconds", "db1"),
        Some(t0 + 3600.0)
    );
    assert_eq!(
        v("shoehub_backuppc_last_backup_size_bytes", "db1"),
        Some(9_300_000.0)
    );
    assert_eq!(
        v("shoehub_backuppc_last_backup_xfer_errors", "db1"),
        Some(3.0)
    );
    for (kind, n) in [
        ("full", 1.0),
        ("incr", 2.0),
        ("partial", 1.0),
        ("active", 1.0),
    ] {
        assert_eq!(
            m.value(
                "shoehub_backuppc_backups",
                &[("host", "db1"), ("type", kind)]
            ),
            Some(n),
            "{kind}"
        );
    }
    assert_eq!(
        v("shoehub_backuppc_last_backup_size_bytes", "web2"),
        Some(42.0)
    );
    // The host without a backups file is an error of its own; the others are served.
    assert!(v(
        "shoehub_backuppc_last_good_backup_timestamp_seconds",
        "broken"
    )
    .is_none());
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "backuppc")]
        ),
        Some(0.0)
    );
    assert!(
        e.stderr().contains("BackupPC hosts failed"),
        "{}",
        e.stderr()
    );

    let e = Exporter::start(&format!(
        "backuppc:\n  top_dir: {}\n  hosts: [shop]\n",
        fixtures.join("4.3").display()
    ));
    let m = e.metrics();
    assert_eq!(
        m.value(
            "shoehub_backuppc_last_good_backup_timestamp_seconds",
            &[("host", "shop")]
        ),
        Some(t0 + 3.0 * 86400.0 + 3000.0)
    );
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", "backuppc")]
        ),
        Some(1.0)
    );
}

#[test]
fn a_hung_dump_is_bounded_and_a_second_run_waits_for_none() {
    let db = MariaDb::start();
    let s = Site::new(&db);
    let cfg = std::fs::read_to_string(s.path("config.yml")).unwrap();
    std::fs::write(
        s.path("config.yml"),
        cfg.replace("backup:\n", "backup:\n  timeout: 2s\n"),
    )
    .unwrap();
    db.signal(shoehub_exporter::sys::SIGSTOP);
    let mut first = s
        .command(&["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // One run at a time.
    let second = s.backup(&["run"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("job backup is already running"));
    let t = Instant::now();
    let status = first.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut first.stderr.take().unwrap(), &mut err).unwrap();
    db.signal(shoehub_exporter::sys::SIGCONT);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("timed out after 2s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("state/backup.json")).unwrap()).unwrap();
    assert_eq!(state["last"]["timed_out"], true);
    assert!(s.complete().is_empty());
}

#[test]
fn a_full_disk_fails_the_run_clearly() {
    // A destination of 256 KiB: a tmpfs mounted by the test (it runs as root, as the
    // test command does).
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        shoehub_exporter::sys::euid(),
        0,
        "this test mounts a tmpfs and must run as root"
    );
    let db = MariaDb::start();
    let s = Site::new(&db);
    std::fs::write(s.path("www/user_data/big.bin"), vec![7u8; 64]).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(s.path("www/user_data/noise.bin"), noise).unwrap();
    let dest = s.path("dest");
    std::fs::create_dir_all(&dest).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k,mode=0750", "tmpfs"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(mount.success(), "cannot mount a tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(dest.clone());
    let out = s.backup(&["run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("files.tar.zst"),
        "{err}"
    );
    assert!(s.complete().is_empty());
    // The failed run's directory is gone at once: the disk is not left full.
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
}

/// What a restore must bring back of the shop's database, as the server reports it:
/// every table's checksum, and every view, routine, trigger and event with its
/// definition, and the shop account's grants.
fn snapshot(db: &MariaDb, name: &str) -> Vec<String> {
    let q = |s: &str| db.sql(&s.replace("DB", name));
    let mut out = Vec::new();
    for t in q("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'DB' AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1").lines() {
        let ident = format!("`{name}`.`{}`", t.replace('`', "``"));
        let rows = db.sql(&format!("SELECT COUNT(*) FROM {ident}"));
        let sum = db.sql(&format!("CHECKSUM TABLE {ident}"));
        let sum = sum.split('\t').nth(1).unwrap_or_default().trim().to_owned();
        out.push(format!("table {t}: {} rows, checksum {sum}", rows.trim()));
    }
    out.push(q("SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = 'DB' ORDER BY 1"));
    out.push(q("SELECT ROUTINE_TYPE, ROUTINE_NAME, ROUTINE_DEFINITION, DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'DB' ORDER BY 1, 2"));
    out.push(q("SELECT TRIGGER_NAME, ACTION_STATEMENT, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'DB' ORDER BY 1"));
    out.push(q("SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'DB' ORDER BY 1"));
    out.push(q("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'DB'"));
    out
}

/// Every file under `root`: path, SHA-256, mode and owner.
fn file_states(root: &Path) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        if m.is_file() {
            out.push(format!(
                "{} {} {:o} {}:{}",
                p.display(),
                sha256_hex(&p),
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        } else if m.is_dir() {
            out.push(format!(
                "{}/ {:o} {}:{}",
                p.display(),
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_disaster_is_survived_by_restore() {
    let db = MariaDb::start();
    shop_data(&db, 200);
    // What a shop's database holds beyond tables, names that need quoting, and the
    // shop's own account.
    db.sql(
        "USE shoe_store_hub;
         CREATE TABLE `odd``name` (id INT PRIMARY KEY, note VARCHAR(20)) DEFAULT CHARSET=latin1;
         INSERT INTO `odd``name` VALUES (1, 'a'), (2, 'b');
         CREATE TABLE `with space ü` (id INT PRIMARY KEY);
         INSERT INTO `with space ü` VALUES (7);
         CREATE PROCEDURE restock(IN p INT) UPDATE products SET price = price WHERE id = p;
         CREATE FUNCTION doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
         CREATE TRIGGER orders_qty BEFORE INSERT ON orders FOR EACH ROW SET NEW.qty = GREATEST(NEW.qty, 1);
         CREATE VIEW order_totals AS SELECT product, SUM(qty) AS total FROM orders GROUP BY product;
         CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders WHERE qty < 0;
         CREATE USER 'shop'@'localhost' IDENTIFIED BY 'shop-pass';
         GRANT SELECT, INSERT, UPDATE, DELETE ON shoe_store_hub.* TO 'shop'@'localhost';",
    );
    let s = Site::new(&db);
    // Files as a live host has them: a private config of another owner, a FIFO and a
    // socket (skipped, and listed).
    let secret = s.path("etc/shoe_store_hub/db.ini");
    std::fs::write(&secret, "db_password=hunter2\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&secret, Some(65534), Some(65534)).unwrap();
    shoehub_exporter::sys::mkfifo(&s.path("www/user_data/queue.fifo"), 0o600).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(s.path("www/user_data/app.sock")).unwrap();

    let before = snapshot(&db, "shoe_store_hub");
    let grants_before = db.sql("SHOW GRANTS FOR 'shop'@'localhost'");
    let files_before: Vec<String> = [s.path("etc/shoe_store_hub"), s.path("www/user_data")]
        .iter()
        .flat_map(|p| file_states(p))
        .filter(|l| !l.contains(".fifo") && !l.contains(".sock"))
        .collect();

    // The run, under a umask that would make everything readable.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 000 && exec {BIN} backup run --config {}",
            s.path("config.yml").display()
        ))
        .output()
        .unwrap();
    ok(&out);
    let names = s.complete();
    assert_eq!(names.len(), 1);
    let dir = s.path("dest").join(&names[0]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let d = &manifest["databases"][0];
    assert_eq!(
        d["routines"],
        serde_json::json!(["FUNCTION doubled", "PROCEDURE restock"])
    );
    assert_eq!(d["triggers"], serde_json::json!(["orders_qty"]));
    assert_eq!(d["views"], serde_json::json!(["order_totals"]));
    assert_eq!(d["events"], serde_json::json!(["nightly_cleanup"]));
    assert!(d["tables"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["table"] == "odd`name" && t["rows"] == 2));
    assert!(d["tables"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["table"] == "with space ü" && t["rows"] == 1));
    assert!(
        !d["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["table"] == "order_totals"),
        "a view counted as a table"
    );
    assert!(!d["charset"].as_str().unwrap().is_empty());
    let skipped: Vec<&str> = manifest["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["kind"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(skipped.contains(&"fifo") && skipped.contains(&"socket"));
    // The shop's account and the exporter's (it holds REFERENCES there), not the
    // backup account itself.
    assert_eq!(
        manifest["accounts"]["accounts"],
        serde_json::json!([
            "'exporter'@'127.0.0.1'",
            "'exporter'@'localhost'",
            "'shop'@'localhost'"
        ])
    );

    let mut cases = common::cases::Cases::new();
    cases.case(
        "No file of the backup can be read by another local user",
        || {
            // No file of the backup can be read by another local user; the exporter's group
            // reads the manifest.
            use std::os::unix::fs::MetadataExt;
            assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o7777, 0o750);
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
                let want = if p.ends_with("manifest.json") {
                    0o640
                } else {
                    0o600
                };
                assert_eq!(mode, want, "{}", p.display());
                let as_nobody = Command::new("setpriv")
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
                    .arg(&p)
                    .output()
                    .unwrap();
                assert!(
                    !as_nobody.status.success(),
                    "{} is readable by nobody",
                    p.display()
                );
            }

            let v = s.backup(&["verify"]);
            ok(&v);
            assert!(
                String::from_utf8_lossy(&v.stdout)
                    .contains("5 view(s), routine(s), trigger(s) and event(s)"),
                "{}",
                String::from_utf8_lossy(&v.stdout)
            );
        },
    );

    cases.case(
        "the bad day: the database, the account and the files go",
        || {
            // The bad day: the database, the account and the files are gone.
            db.sql("DROP DATABASE shoe_store_hub; DROP USER 'shop'@'localhost';");
            std::fs::remove_dir_all(s.path("etc/shoe_store_hub")).unwrap();
            std::fs::remove_dir_all(s.path("www/user_data")).unwrap();
            db.sql(&common::documented_sql(
                "-- For backup restore",
                BACKUP_PASSWORD,
            ));
        },
    );

    cases.case(
        "a dry run changes nothing; the restore brings all back",
        || {
            // A dry run checks and tells, and changes nothing.
            let dry = s.backup(&[
                "restore",
                "--database",
                "shoe_store_hub",
                "--users",
                "--files-to",
                "/",
                "--dry-run",
            ]);
            ok(&dry);
            let plan = String::from_utf8_lossy(&dry.stdout);
            assert!(plan.contains("every checksum matches"), "{plan}");
            assert!(
                plan.contains("database shoe_store_hub -> shoe_store_hub (new)"),
                "{plan}"
            );
            assert!(plan.contains("needs --yes: files go back"), "{plan}");
            assert!(!db.sql("SHOW DATABASES").contains("shoe_store_hub"));
            // Files over / need --yes.
            let refused = s.backup(&[
                "restore",
                "--database",
                "shoe_store_hub",
                "--users",
                "--files-to",
                "/",
            ]);
            assert_eq!(refused.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&refused.stderr).contains("add --yes"));
            assert!(!db.sql("SHOW DATABASES").contains("shoe_store_hub"));

            let r = s.backup(&[
                "restore",
                "--database",
                "shoe_store_hub",
                "--users",
                "--files-to",
                "/",
                "--yes",
            ]);
            ok(&r);
            assert_eq!(snapshot(&db, "shoe_store_hub"), before);
            assert_eq!(db.sql("SHOW GRANTS FOR 'shop'@'localhost'"), grants_before);
            let files_after: Vec<String> = [s.path("etc/shoe_store_hub"), s.path("www/user_data")]
                .iter()
                .flat_map(|p| file_states(p))
                .collect();
            assert_eq!(files_after, files_before);
            // The shop's account works again.
            let shop = Command::new("mariadb")
                .args([
                    "--no-defaults",
                    "--user=shop",
                    "--password=shop-pass",
                    "--batch",
                    "--skip-column-names",
                ])
                .arg(format!("--socket={}", db.socket().display()))
                .args(["--execute", "SELECT COUNT(*) FROM shoe_store_hub.reviews"])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&shop.stdout).trim(), "200");
        },
    );

    cases.case(
        "over an existing database only with --yes; --as beside it",
        || {
            // Over an existing database only with --yes; under another name beside it.
            let refused = s.backup(&["restore", "--database", "shoe_store_hub"]);
            assert_eq!(refused.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&refused.stderr).contains("exists"));
            ok(&s.backup(&[
                "restore",
                "--database",
                "shoe_store_hub",
                "--as",
                "shoe_store_hub_copy",
            ]));
            assert_eq!(snapshot(&db, "shoe_store_hub_copy")[..3], before[..3]);
            // The copy's events are disabled, so the nightly work does not run twice; the
            // original's still run.
            let events = db.sql(
                "SELECT EVENT_SCHEMA, STATUS FROM information_schema.EVENTS \
             WHERE EVENT_NAME = 'nightly_cleanup' ORDER BY 1",
            );
            assert_eq!(
                events.trim(),
                "shoe_store_hub\tENABLED\nshoe_store_hub_copy\tDISABLED",
                "{events}"
            );
            let m = s.exporter().metrics();
            assert_eq!(
                m.value(
                    "shoehub_job_last_exit_code",
                    &[("job_name", "backup-restore")]
                ),
                Some(0.0)
            );
        },
    );

    cases.finish();
}

#[test]
fn a_backup_with_too_few_grants_is_never_reported_complete() {
    let db = MariaDb::start();
    shop_data(&db, 10);
    db.sql("CREATE PROCEDURE shoe_store_hub.restock() SELECT 1;");
    let s = Site::new(&db);
    // The plan's first guess: enough to read the rows, not the routines or views.
    db.sql(
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'backup'@'127.0.0.1';
            GRANT SELECT, LOCK TABLES ON shoe_store_hub.* TO 'backup'@'127.0.0.1';",
    );
    let out = s.backup(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for grant in [
        "SHOW VIEW ON `shoe_store_hub`.*",
        "TRIGGER ON `shoe_store_hub`.*",
        "EVENT ON `shoe_store_hub`.*",
        "SELECT ON `mysql`.*",
    ] {
        assert!(err.contains(grant), "{grant} not named: {err}");
    }
    assert!(err.contains("'backup'@'127.0.0.1'"), "the account: {err}");
    assert_eq!(err.matches("SELECT ON `mysql`.*").count(), 1, "{err}");
    assert!(s.complete().is_empty());
    // Nothing is left behind either.
    let left: Vec<_> = std::fs::read_dir(s.path("dest")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_run_short_of_space_does_not_start_and_a_failed_one_leaves_nothing() {
    let db = MariaDb::start();
    shop_data(&db, 50);
    let s = Site::new(&db);
    ok(&s.backup(&["run"]));
    // Asking for far more room than the disk has.
    let cfg = std::fs::read_to_string(s.path("config.yml")).unwrap();
    std::fs::write(
        s.path("config.yml"),
        cfg.replace("backup:\n", "backup:\n  space_factor: 1000000000\n"),
    )
    .unwrap();
    let out = s.backup(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not enough free space")
            && err.contains("available")
            && err.contains("the last backup took"),
        "{err}"
    );
    assert_eq!(s.complete().len(), 1);
    let partial = std::fs::read_dir(s.path("dest"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".partial-")
        })
        .count();
    assert_eq!(partial, 0);
}

#[test]
fn files_that_change_or_vanish_during_the_run_are_warnings_not_failures() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let db = MariaDb::start();
    let s = Site::new(&db);
    let data = s.path("www/user_data");
    let stop = Arc::new(AtomicBool::new(false));
    // Uploads that come and go, and a log that is written all the time (and cut back
    // when it grows large), while the runs go on: the log is tens of megabytes, so it is
    // written to while it is read.
    let churn = {
        use std::io::Write;
        let stop = Arc::clone(&stop);
        let data = data.clone();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("busy.log"))
            .unwrap();
        log.write_all(&vec![b'l'; 32 << 20]).unwrap();
        std::thread::spawn(move || {
            let mut i = 0u64;
            let chunk = vec![b'l'; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                let p = data.join(format!("upload-{}.tmp", i % 50));
                let _ = std::fs::write(&p, &chunk[..4096]);
                let _ = std::fs::remove_file(data.join(format!("upload-{}.tmp", (i + 25) % 50)));
                let _ = log.write_all(&chunk);
                if log.metadata().map(|m| m.len()).unwrap_or(0) > 96 << 20 {
                    let _ = log.set_len(32 << 20);
                }
                i += 1;
            }
        })
    };
    let mut warned = Vec::new();
    for _ in 0..10 {
        let out = s.backup(&["run"]);
        ok(&out);
        let newest = s.complete().pop().unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(s.path("dest").join(newest).join("manifest.json")).unwrap(),
        )
        .unwrap();
        warned.extend(
            manifest["warnings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w.as_str().unwrap().to_owned()),
        );
        if warned.iter().any(|w| w.contains("busy.log")) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(
        warned
            .iter()
            .any(|w| w.contains("busy.log: changed while it was archived")),
        "{warned:?}"
    );
    // Every archive is whole: tar reads each to its end.
    for name in s.complete() {
        let t = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "zstd -dc {} | tar -t >/dev/null",
                s.path("dest").join(&name).join("files.tar.zst").display()
            ))
            .status()
            .unwrap();
        assert!(t.success(), "{name}'s archive is broken");
    }
}

#[test]
fn a_file_that_cannot_be_read_fails_the_run() {
    use std::os::unix::fs::chown;
    let db = MariaDb::start();
    let s = Site::new(&db);
    // The run as an unprivileged user, to whom one file is closed.
    std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["state", "dest"] {
        std::fs::create_dir_all(s.path(d)).unwrap();
    }
    let chown_all = |p: &Path| {
        let out = Command::new("chown")
            .args(["-R", "65534:65534"])
            .arg(p)
            .status()
            .unwrap();
        assert!(out.success());
    };
    for p in [
        "state",
        "dest",
        "etc",
        "www",
        "backup.password",
        "config.yml",
    ] {
        chown_all(&s.path(p));
    }
    let closed = s.path("www/user_data/closed.bin");
    std::fs::write(&closed, "private").unwrap();
    chown(&closed, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "backup",
            "run",
            "--config",
        ])
        .arg(s.path("config.yml"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("closed.bin") && err.contains("Permission denied"),
        "{err}"
    );
    assert!(s.complete().is_empty());
    assert_eq!(
        std::fs::read_dir(s.path("dest")).unwrap().count(),
        0,
        "the failed run left its directory"
    );
}

#[test]
fn a_restore_checks_every_grant_before_its_first_change() {
    let db = MariaDb::start();
    shop_data(&db, 10);
    db.sql("CREATE VIEW shoe_store_hub.v_orders AS SELECT 1 AS one;");
    let s = Site::new(&db);
    ok(&s.backup(&["run"]));
    let copy_exists = || {
        !db.sql("SHOW DATABASES LIKE 'shoe\\_store\\_hub\\_copy'")
            .trim()
            .is_empty()
    };
    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", "--database", "shoe_store_hub", "--as"];
        args.push("shoe_store_hub_copy");
        args.extend_from_slice(extra);
        s.backup(&args)
    };

    // The backup account alone: the dry run and the real one refuse alike, naming the
    // account and each missing grant, and nothing is created.
    for extra in [&["--dry-run"][..], &[]] {
        let out = restore(extra);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for grant in [
            "CREATE ON `shoe_store_hub_copy`.*",
            "INSERT ON `shoe_store_hub_copy`.*",
            "CREATE VIEW ON `shoe_store_hub_copy`.*",
        ] {
            assert!(err.contains(grant), "{grant} not named: {err}");
        }
        assert!(err.contains("'backup'@'127.0.0.1'"), "{err}");
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(!copy_exists());
    }

    // With the README's restore grants, --users still needs the grant option on the
    // copy's name, which the README gives only on the shop's own name.
    db.sql(&common::documented_sql(
        "-- For backup restore, in addition",
        BACKUP_PASSWORD,
    ));
    let out = restore(&["--users"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GRANT OPTION ON `shoe_store_hub_copy`.*"),
        "{err}"
    );
    assert!(!copy_exists());
    let dry = restore(&["--dry-run"]);
    ok(&dry);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("grants checked"));
    assert!(!copy_exists());
    ok(&restore(&[]));
    assert!(copy_exists());
}

/// A tar header for `name` exactly as given (absolute, with `..`: what `set_path`
/// refuses to write and an attacker writes anyway).
fn raw_header(name: &str, kind: tar::EntryType, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    let field = &mut h.as_old_mut().name;
    assert!(
        name.len() < field.len(),
        "{name} is too long for a plain header"
    );
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
    h
}

/// A backup of nothing but `archive` (a tar stream), compressed, with a manifest whose
/// checksum matches it, as an attacker who can write the destination would make one.
fn forged_backup(dest: &Path, archive: &[u8]) -> String {
    let name = "20261201T020000Z";
    let dir = dest.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let compressed = zstd::encode_all(archive, 3).unwrap();
    std::fs::write(dir.join("files.tar.zst"), &compressed).unwrap();
    let t = secs_ago(1.0);
    let manifest = serde_json::json!({
        "format": 1, "name": name, "started": t, "completed": t, "server_version": "x",
        "databases": [], "paths": ["/etc/shoe_store_hub"], "files_archived": 3,
        "artifacts": [{
            "file": "files.tar.zst",
            "size": compressed.len(),
            "sha256": format!("{:x}", Sha256::digest(&compressed)),
        }],
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    name.to_owned()
}

fn mtime_of(p: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p).unwrap().mtime()
}

/// An archive rewritten by someone who can write the backups (names absolute or with
/// `..`, an absolute directory entry that names a FIFO, links out of the target, a
/// device, a long name), its checksum recomputed: `restore --files-to` changes nothing
/// outside the target, waits on nothing, restores the rest and lists what it skipped.
/// No server is asked: files come back with the database down.
#[test]
fn a_hostile_archive_changes_nothing_outside_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(outside.join("victim_dir")).unwrap();
    std::fs::write(outside.join("victim_file"), "precious\n").unwrap();
    let fifo = outside.join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    let before: Vec<(PathBuf, i64)> = [&outside, &outside.join("victim_dir"), &fifo]
        .iter()
        .map(|p| (p.to_path_buf(), mtime_of(p)))
        .collect();
    let o = outside.display().to_string();

    let mut b = tar::Builder::new(Vec::new());
    let mut raw = |name: &str, kind: tar::EntryType, data: &[u8], f: &dyn Fn(&mut tar::Header)| {
        let mut h = raw_header(name, kind, data.len() as u64, 1_000);
        f(&mut h);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    let none = |_: &mut tar::Header| {};
    raw(
        &format!("{o}/victim_dir/"),
        tar::EntryType::Directory,
        b"",
        &none,
    );
    raw(&format!("{o}/fifo/"), tar::EntryType::Directory, b"", &none);
    raw(
        &format!("{o}/planted_abs"),
        tar::EntryType::Regular,
        b"x\n",
        &none,
    );
    raw("../escape.txt", tar::EntryType::Regular, b"x\n", &none);
    raw(
        "d/../../escape2.txt",
        tar::EntryType::Regular,
        b"x\n",
        &none,
    );
    raw("out", tar::EntryType::Symlink, b"", &|h| {
        h.set_link_name(&outside).unwrap()
    });
    raw(
        "out/planted_through_link",
        tar::EntryType::Regular,
        b"x\n",
        &none,
    );
    raw("hard", tar::EntryType::Link, b"", &|h| {
        h.set_link_name(outside.join("victim_file")).unwrap()
    });
    raw("hard2", tar::EntryType::Link, b"", &|h| {
        h.set_link_name("../outside/victim_file")
            .unwrap_or_else(|_| {
                let field = &mut h.as_old_mut().linkname;
                field[..24].copy_from_slice(b"../outside/victim_file\0\0");
            })
    });
    raw("null", tar::EntryType::Char, b"", &|h| {
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
    });
    raw("d/", tar::EntryType::Directory, b"", &|h| {
        h.set_mtime(1_000_000)
    });
    raw("d/f.txt", tar::EntryType::Regular, b"kept\n", &none);
    // A link that stays inside is followed, as a host's own are under `--files-to /`.
    raw("inlink", tar::EntryType::Symlink, b"", &|h| {
        h.set_link_name("d").unwrap()
    });
    raw("inlink/g.txt", tar::EntryType::Regular, b"through\n", &none);
    let mut b = b;
    let long = format!("{}/{}.txt", "a".repeat(150), "b".repeat(150));
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    h.set_mtime(1_000);
    h.set_uid(0);
    h.set_gid(0);
    b.append_data(&mut h, &long, &b"long\n"[..]).unwrap();
    let archive = b.into_inner().unwrap();

    let dest = dir.path().join("dest");
    forged_backup(&dest, &archive);
    let target = dir.path().join("target");
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "jobs:\n  state_dir: {}\nbackup:\n  destination: {}\n",
            dir.path().join("state").display(),
            dest.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .args(["backup", "restore", "--files-to"])
        .arg(&target)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the restore hung on the archive");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.status.success(), "{stderr}");
    // Nothing outside changed.
    for (p, m) in &before {
        assert_eq!(mtime_of(p), *m, "{} changed", p.display());
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("victim_file")).unwrap(),
        "precious\n"
    );
    let mut outside_now: Vec<String> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside_now.sort();
    assert_eq!(outside_now, ["fifo", "victim_dir", "victim_file"]);
    for p in ["escape.txt", "escape2.txt"] {
        assert!(!dir.path().join(p).exists(), "{p} escaped");
    }
    // What was fit to restore is there, directory times included; no device.
    assert_eq!(
        std::fs::read_to_string(target.join("d/f.txt")).unwrap(),
        "kept\n"
    );
    assert_eq!(
        std::fs::read_to_string(target.join("d/g.txt")).unwrap(),
        "through\n"
    );
    assert_eq!(mtime_of(&target.join("d")), 1_000_000);
    assert_eq!(
        std::fs::read_to_string(target.join(&long)).unwrap(),
        "long\n"
    );
    if let Ok(m) = std::fs::symlink_metadata(target.join("null")) {
        use std::os::unix::fs::FileTypeExt;
        assert!(!m.file_type().is_char_device(), "a device was made");
    }
    // What was skipped is said, each with its name.
    for name in [
        format!("{o}/victim_dir"),
        format!("{o}/fifo"),
        format!("{o}/planted_abs"),
        "../escape.txt".to_owned(),
        "d/../../escape2.txt".to_owned(),
        "hard (a hard link to outside the target)".to_owned(),
        "out/planted_through_link (a link on its path leads out of the target)".to_owned(),
        "hard2 (a hard link to outside the target)".to_owned(),
    ] {
        assert!(
            stderr.contains(&name),
            "{name} not listed as skipped: {stderr}"
        );
    }
    assert!(stderr.contains("skipped"), "{stderr}");
}

/// A small deterministic generator (xorshift), so that a failing round can be run
/// again from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A name from the whole range MariaDB allows in a quoted identifier: 1 to 64
    /// characters of the Basic Multilingual Plane but NUL, not ending in a space; drawn
    /// mostly from the characters that quoting, comments and lines make hard.
    fn name(&mut self) -> String {
        const HARD: &[char] = &[
            '\n', '\t', '\r', '`', '\'', '"', '\\', ';', '*', '/', '-', '#', '(', ')', ' ', '.',
            '@', '%', '_', '$', 'é', 'ß', 'Ж', '尺', '码', '\u{7f}', '\u{1}', '\u{ffff}',
        ];
        let len = 1 + match self.below(4) {
            0 => 63,
            _ => self.below(20),
        };
        let mut s: String = (0..len)
            .map(|_| match self.below(3) {
                0 => HARD[self.below(HARD.len())],
                1 => char::from(b'a' + self.below(26) as u8),
                _ => loop {
                    // Any character of the plane but NUL and the surrogates.
                    let c = 1 + self.below(0xfffe) as u32;
                    if let Some(c) = char::from_u32(c) {
                        break c;
                    }
                },
            })
            .collect();
        while s.ends_with(' ') {
            s.pop();
            s.push('x');
        }
        s
    }
}

/// `s` as a YAML double-quoted scalar: what YAML does not allow as it is (controls,
/// DEL, U+FFFE and U+FFFF) escaped.
fn yaml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\t' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' => out.push(c),
            _ => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn sql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn unhex(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// `db`'s objects as the server lists them, names and definitions read as hex so that
/// no character is lost on the way: each table with its rows and checksum, each view,
/// routine, trigger and event with its definition, and the character set.
fn objects(db: &MariaDb, name: &str) -> Vec<String> {
    let l = sql_literal(name);
    let q = |s: &str| db.sql(&s.replace("DB", &l));
    let mut out = Vec::new();
    for t in q("SELECT HEX(TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DB AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1").lines() {
        let t = unhex(t);
        let full = format!("{}.{}", sql_ident(name), sql_ident(&t));
        let rows = db.sql(&format!("SELECT COUNT(*) FROM {full}"));
        let sum = db.sql(&format!("CHECKSUM TABLE {full}"));
        let sum = sum.trim_end().rsplit('\t').next().unwrap_or_default().to_owned();
        out.push(format!("table {t:?}: {} rows, checksum {sum}", rows.trim()));
    }
    for (what, query) in [
        ("view", "SELECT HEX(TABLE_NAME), HEX(VIEW_DEFINITION) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DB ORDER BY 1"),
        ("routine", "SELECT HEX(ROUTINE_NAME), HEX(ROUTINE_TYPE), HEX(ROUTINE_DEFINITION) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DB ORDER BY 1, 2"),
        ("trigger", "SELECT HEX(TRIGGER_NAME), HEX(EVENT_OBJECT_TABLE), HEX(ACTION_STATEMENT) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DB ORDER BY 1"),
        ("event", "SELECT HEX(EVENT_NAME), HEX(EVENT_DEFINITION), HEX(STATUS) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DB ORDER BY 1"),
        ("charset", "SELECT HEX(DEFAULT_CHARACTER_SET_NAME), HEX(DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DB"),
    ] {
        for line in q(query).lines() {
            let fields: Vec<String> = line.split('\t').map(unhex).collect();
            out.push(format!("{what} {fields:?}"));
        }
    }
    out
}

/// Names of any form: in each round a database, two tables, a view, a procedure, a
/// function, a trigger and an event, each named at random from the whole range MariaDB
/// allows (newlines, backquotes, quotes, backslashes, comment marks, 64 characters,
/// any character of the plane). Each round is backed up, verified, listed in the
/// manifest, dropped and restored, and compared object by object with what it was.
/// The account has every privilege: the grants are another test's; names are this
/// one's. `BACKUP_NAMES_SEED` runs a failed round again; `BACKUP_NAMES_ROUNDS` runs
/// more.
#[test]
fn names_of_any_form_are_backed_up_verified_and_restored() {
    let db = MariaDb::start();
    let seed: u64 = std::env::var("BACKUP_NAMES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let rounds: usize = std::env::var("BACKUP_NAMES_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    eprintln!("names of any form: seed {seed} (BACKUP_NAMES_SEED), {rounds} rounds");
    let mut rng = Rng(seed);
    db.sql(&format!(
        "CREATE USER 'backup'@'127.0.0.1' IDENTIFIED BY {};
         GRANT ALL PRIVILEGES ON *.* TO 'backup'@'127.0.0.1';",
        sql_literal(BACKUP_PASSWORD)
    ));
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("backup.password");
    std::fs::write(&pw, format!("{BACKUP_PASSWORD}\n")).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut round = 0;
    while round < rounds {
        // Distinct names: tables, views share a namespace; so do the routines of a
        // kind. Names are compared as MariaDB compares them (case and accents
        // folded), so a clash makes the round draw again.
        let mut names: Vec<String> = Vec::new();
        while names.len() < 9 {
            let n = rng.name();
            let folded = n.to_lowercase();
            if !names.iter().any(|m| m.to_lowercase() == folded) {
                names.push(n);
            }
        }
        let [d, t1, t2, v, p, f, g, e, value] = names.try_into().unwrap();
        let (di, t1i) = (sql_ident(&d), sql_ident(&t1));
        let setup = format!(
            "CREATE DATABASE {di} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
             USE {di};
             CREATE TABLE {t1i} (id INT PRIMARY KEY, note TEXT) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
             INSERT INTO {t1i} VALUES (1, {val}), (2, {name}), (3, NULL);
             CREATE TABLE {t2i} (id INT PRIMARY KEY);
             CREATE VIEW {vi} AS SELECT id, note AS `no``te` FROM {t1i};
             CREATE PROCEDURE {pi}() SELECT COUNT(*) FROM {t1i};
             CREATE FUNCTION {fi}() RETURNS INT DETERMINISTIC RETURN (SELECT COUNT(*) FROM {t2i});
             CREATE TRIGGER {gi} BEFORE INSERT ON {t1i} FOR EACH ROW SET NEW.note = CONCAT({val}, NEW.note);
             CREATE EVENT {ei} ON SCHEDULE EVERY 1 DAY STARTS '2036-01-01 00:00:00' DO DELETE FROM {t1i} WHERE id < 0;",
            val = sql_literal(&value),
            name = sql_literal(&t1),
            t2i = sql_ident(&t2),
            vi = sql_ident(&v),
            pi = sql_ident(&p),
            fi = sql_ident(&f),
            gi = sql_ident(&g),
            ei = sql_ident(&e),
        );
        if let Err(err) = db.try_sql(&setup) {
            // A name the server refuses (one ending in a blank; one it cannot keep as
            // a file, where every character but a letter or digit takes five bytes):
            // not a name it allows; draw again.
            let refused = err.contains("File name too long")
                || err.contains("Can't create/write to file")
                || (err.contains("Incorrect ") && err.contains(" name "));
            if refused {
                let _ = db.try_sql(&format!("DROP DATABASE IF EXISTS {di}"));
                continue;
            }
            panic!(
                "round {round} (seed {seed}): the server refused the setup: {err}\nnames: {:?}",
                [&d, &t1, &t2, &v, &p, &f, &g, &e, &value]
            );
        }
        let before = objects(&db, &d);
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "jobs:\n  state_dir: {state}\nbackup:\n  destination: {dest}\n  paths: []\n  databases: [{dbname}]\n  mysql:\n    url: mysql://backup@127.0.0.1:{port}/mysql\n    password_file: {pw}\n",
                state = dir.path().join("state").display(),
                dest = dir.path().join(format!("dest{round}")).display(),
                dbname = yaml_string(&d),
                port = db.port,
                pw = pw.display(),
            ),
        )
        .unwrap();
        let run = |args: &[&str]| {
            let out = Command::new(BIN)
                .arg("backup")
                .args(args)
                .arg("--config")
                .arg(&config)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "round {round} (seed {seed}): backup {args:?} failed: {}\nnames: {:?}",
                String::from_utf8_lossy(&out.stderr),
                [&d, &t1, &t2, &v, &p, &f, &g, &e]
            );
            out
        };
        run(&["run"]);
        run(&["verify"]);
        // The manifest lists each object under its name.
        let listed = run(&["list", "--format", "json"]);
        let list: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
        let manifest_path = dir
            .path()
            .join(format!("dest{round}"))
            .join(list[0]["name"].as_str().unwrap())
            .join("manifest.json");
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
        let dump = &manifest["databases"][0];
        assert_eq!(dump["name"], d.as_str());
        let mut tables: Vec<(String, u64)> = dump["tables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["table"].as_str().unwrap().to_owned(),
                    t["rows"].as_u64().unwrap(),
                )
            })
            .collect();
        tables.sort();
        let mut want = vec![(t1.clone(), 3), (t2.clone(), 0)];
        want.sort();
        assert_eq!(tables, want, "round {round} (seed {seed})");
        for (key, name) in [("views", &v), ("triggers", &g), ("events", &e)] {
            assert_eq!(
                dump[key],
                serde_json::json!([name]),
                "{key}, round {round} (seed {seed})"
            );
        }
        // Dropped, then restored under its name: object by object as it was.
        db.sql(&format!("DROP DATABASE {di}"));
        run(&["restore", "--database", &d]);
        assert_eq!(
            objects(&db, &d),
            before,
            "round {round} (seed {seed}): restored objects differ"
        );
        db.sql(&format!("DROP DATABASE {di}"));
        round += 1;
    }
}

/// Each base table of `name` with its rows and checksum, as `snapshot` lists them.
fn tables_of(db: &MariaDb, name: &str) -> Vec<String> {
    snapshot(db, name)
        .into_iter()
        .filter(|l| l.starts_with("table "))
        .collect()
}

/// The databases restores over a live one made: copies and kept originals.
fn beside_databases(db: &MariaDb) -> Vec<String> {
    db.sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'shoehub\\_restore\\_%' ORDER BY 1")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A copy of backup `name` under a later name whose dump fails at its end (a statement
/// the server refuses just before the completion marker), the checksums recomputed: a
/// damaged dump that only the load finds.
fn backup_failing_at_the_end(dest: &Path, name: &str) -> String {
    let forged = "29991231T235959Z";
    let from = dest.join(name);
    let to = dest.join(forged);
    std::fs::create_dir_all(&to).unwrap();
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("manifest.json")).unwrap())
            .unwrap();
    manifest["name"] = forged.into();
    let dump_file = manifest["databases"][0]["file"]
        .as_str()
        .unwrap()
        .to_owned();
    for a in manifest["artifacts"].as_array_mut().unwrap() {
        let file = a["file"].as_str().unwrap().to_owned();
        let mut bytes = std::fs::read(from.join(&file)).unwrap();
        if file == dump_file {
            let text = String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap();
            let at = text.rfind("-- Dump completed").unwrap();
            let broken = format!(
                "{}INSERT INTO `no_such_table` VALUES (1);\n{}",
                &text[..at],
                &text[at..]
            );
            bytes = zstd::encode_all(broken.as_bytes(), 3).unwrap();
        }
        a["size"] = bytes.len().into();
        a["sha256"] = format!("{:x}", Sha256::digest(&bytes)).into();
        std::fs::write(to.join(&file), &bytes).unwrap();
    }
    std::fs::write(to.join("manifest.json"), manifest.to_string()).unwrap();
    forged.to_owned()
}

/// A restore over the live database never loses it. The dump loads beside it and takes
/// the name only whole: a dump that fails at its end leaves the database as it was,
/// compared table by table, and no copy behind; a restore killed at random points
/// leaves the database as it was or, once the tables were swapped, the backup's content
/// under its name and what it held under the kept name; a whole one swaps and keeps the
/// old content with its events disabled.
#[test]
fn a_restore_over_the_live_database_never_loses_it() {
    let db = MariaDb::start();
    shop_data(&db, 20_000);
    db.sql(
        "USE shoe_store_hub;
         CREATE TRIGGER orders_qty BEFORE INSERT ON orders FOR EACH ROW SET NEW.qty = GREATEST(NEW.qty, 1);
         CREATE VIEW order_totals AS SELECT product, SUM(qty) AS total FROM orders GROUP BY product;
         CREATE FUNCTION doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
         CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2036-01-01' DO DELETE FROM orders WHERE qty < 0;",
    );
    let s = Site::new(&db);
    db.sql(&common::documented_sql(
        "-- For backup restore, in addition",
        BACKUP_PASSWORD,
    ));
    ok(&s.backup(&["run"]));
    let name = s.complete()[0].clone();
    let backed_up = snapshot(&db, "shoe_store_hub");
    // The live database moves on after the backup.
    db.sql(
        "INSERT INTO shoe_store_hub.orders (product, qty) VALUES (1, 5), (2, 7);
            UPDATE shoe_store_hub.products SET price = price + 1;",
    );
    let live = snapshot(&db, "shoe_store_hub");
    assert_ne!(live, backed_up);

    // A dump that fails at its end: refused, the live database untouched, no copy.
    let forged = backup_failing_at_the_end(&s.path("dest"), &name);
    let out = s.backup(&[
        "restore",
        "--backup",
        &forged,
        "--database",
        "shoe_store_hub",
        "--yes",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no_such_table") && err.contains("was not touched"),
        "{err}"
    );
    assert_eq!(snapshot(&db, "shoe_store_hub"), live);
    assert_eq!(beside_databases(&db), Vec::<String>::new());
    std::fs::remove_dir_all(s.path("dest").join(&forged)).unwrap();

    // Whole: the backup's content under the name, the old kept, its events off.
    let t = Instant::now();
    let out = s.backup(&["restore", "--database", "shoe_store_hub", "--yes"]);
    ok(&out);
    let whole = t.elapsed();
    assert_eq!(snapshot(&db, "shoe_store_hub"), backed_up);
    let kept = beside_databases(&db);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].ends_with("_was"), "{kept:?}");
    assert_eq!(tables_of(&db, &kept[0]), tables_of_named(&live));
    assert_eq!(
        db.sql(&format!(
            "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{}'",
            kept[0]
        ))
        .trim(),
        "DISABLED"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&kept[0])
            || String::from_utf8_lossy(&out.stdout).contains(&kept[0])
    );
    db.sql(&format!("DROP DATABASE `{}`", kept[0]));

    // Killed at points spread over a whole restore's time, each time from what the
    // database then holds.
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill points from seed {seed}");
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // The live database differs from the backup again.
        db.sql(&format!(
            "INSERT INTO shoe_store_hub.orders (product, qty) VALUES (3, {})",
            round + 10
        ));
        let before = tables_of(&db, "shoe_store_hub");
        assert_ne!(before, tables_of_named(&backed_up));
        let delay = whole.mul_f64((seed % 1000) as f64 / 1000.0 * 1.2);
        let mut child = s
            .command(&["restore", "--database", "shoe_store_hub", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        // Its client may still be at work: what it does must keep the promise too.
        common::wait_until("the killed restore's client to finish", || {
            !Command::new("pgrep")
                .args(["-f", "shoehub_restore_"])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
        });
        let now = tables_of(&db, "shoe_store_hub");
        let beside = beside_databases(&db);
        eprintln!(
            "round {round}: killed after {delay:?}: {}",
            if now == before {
                "as it was"
            } else {
                "swapped"
            }
        );
        if now != before {
            assert_eq!(now, tables_of_named(&backed_up), "round {round}: a mixture");
            let was = beside
                .iter()
                .find(|n| n.ends_with("_was"))
                .unwrap_or_else(|| panic!("round {round}: swapped, and nothing kept: {beside:?}"));
            assert_eq!(tables_of(&db, was), before, "round {round}: the kept copy");
        }
        for n in beside {
            db.sql(&format!("DROP DATABASE `{n}`"));
        }
    }
}

/// The table lines of a `snapshot`.
fn tables_of_named(snapshot: &[String]) -> Vec<String> {
    snapshot
        .iter()
        .filter(|l| l.starts_with("table "))
        .cloned()
        .collect()
}

/// A restore with each documented grant missing in turn, and one short of space: each
/// refuses before its first change (the dry run alike) and names what is missing.
#[test]
fn a_restore_refuses_before_its_first_change_for_each_missing_grant_and_for_space() {
    let db = MariaDb::start();
    shop_data(&db, 10);
    db.sql(
        "USE shoe_store_hub;
         CREATE VIEW v_orders AS SELECT 1 AS one;
         CREATE FUNCTION doubled(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;",
    );
    let s = Site::new(&db);
    ok(&s.backup(&["run"]));
    let block = common::documented_sql("-- For backup restore, in addition", BACKUP_PASSWORD);
    db.sql(&block);
    let live = snapshot(&db, "shoe_store_hub");
    // The privileges a documented GRANT line gives on the pattern `on`.
    let privileges = |on: &str| -> Vec<String> {
        let line = block
            .lines()
            .find(|l| l.starts_with("GRANT ") && l.contains(on))
            .unwrap_or_else(|| panic!("no documented grant on {on}"));
        line["GRANT ".len()..line.find(" ON ").unwrap()]
            .split(", ")
            .map(str::to_owned)
            .collect()
    };
    let unchanged = |what: &str| {
        assert_eq!(snapshot(&db, "shoe_store_hub"), live, "{what}");
        assert!(
            db.sql("SHOW DATABASES LIKE 'shoe\\_store\\_hub\\_copy'")
                .trim()
                .is_empty(),
            "{what}"
        );
        assert_eq!(beside_databases(&db), Vec::<String>::new(), "{what}");
    };
    let refuses = |args: &[&str], names: &str| {
        for dry in [true, false] {
            let mut args = args.to_vec();
            if dry {
                args.push("--dry-run");
            }
            let out = s.backup(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
            assert!(err.contains(names), "{args:?}: {names} not named: {err}");
            assert!(err.contains("nothing was changed"), "{args:?}: {err}");
            unchanged(&format!("{args:?}"));
        }
    };
    let beside = [
        "restore",
        "--database",
        "shoe_store_hub",
        "--as",
        "shoe_store_hub_copy",
    ];
    let over = ["restore", "--database", "shoe_store_hub", "--yes"];
    let account = "'backup'@'127.0.0.1'";
    for (pattern, args, named) in [
        (
            "`shoe\\_store\\_hub\\_%`",
            &beside[..],
            "ON `shoe_store_hub_copy`.*",
        ),
        ("`shoehub\\_restore\\_%`", &over[..], "ON `shoehub_restore_"),
    ] {
        let all = privileges(pattern);
        assert!(all.len() >= 15, "{all:?}");
        for p in &all {
            db.sql(&format!("REVOKE {p} ON {pattern}.* FROM {account}"));
            refuses(args, &format!("{p} {named}"));
            db.sql(&format!("GRANT {p} ON {pattern}.* TO {account}"));
        }
    }
    // The objects' DEFINERs; --users' accounts and their grants.
    db.sql(&format!("REVOKE SET USER ON *.* FROM {account}"));
    refuses(&beside, "SET USER ON *.*");
    db.sql(&format!("GRANT SET USER ON *.* TO {account}"));
    db.sql(&format!("REVOKE CREATE USER ON *.* FROM {account}"));
    let mut users = beside.to_vec();
    users.push("--users");
    refuses(&users, "CREATE USER ON *.*");
    db.sql(&format!("GRANT CREATE USER ON *.* TO {account}"));
    let over_users = [
        "restore",
        "--database",
        "shoe_store_hub",
        "--users",
        "--yes",
    ];
    db.sql(&format!(
        "REVOKE GRANT OPTION ON `shoe_store_hub`.* FROM {account}"
    ));
    refuses(&over_users, "GRANT OPTION ON `shoe_store_hub`.*");
    db.sql(&block);

    // Space: a factor no disk meets.
    let config = std::fs::read_to_string(s.path("config.yml")).unwrap();
    std::fs::write(
        s.path("config.yml"),
        format!("{config}  space_factor: 1000000000000\n"),
    )
    .unwrap();
    refuses(&beside, "the server's data directory");
    refuses(&over, "the server's data directory");
    std::fs::write(s.path("config.yml"), config).unwrap();
    // With everything in place, the dry run passes and says how much room there is.
    let dry = s.backup(&[&beside[..], &["--dry-run"]].concat());
    ok(&dry);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("space: "),
        "{}",
        String::from_utf8_lossy(&dry.stdout)
    );
    ok(&s.backup(&beside));
}
