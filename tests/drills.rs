//! Fault drills through the shipped chain: the exporter as its unit runs it (as
//! `nobody`, every mount read-only in its namespace), Prometheus from the shipped
//! `prometheus.yml`, the rules from `generate alerts` (every `for:` sixty times shorter
//! but 15 s at least, a day of history ten seconds), and Alertmanager from the shipped
//! `alertmanager.yml` with its receivers
//! pointed at a local webhook. Each drill induces a real fault and waits for the alert
//! to reach the webhook, routed and rendered as a pager would get it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::alerting::{generated_rules, start_prometheus, Alertmanager, Notified, Webhook};
use common::apache::{Apache, Tls};
use common::aptrepo::{AptRepo, SECURITY};
use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
use common::shared_dir;
use common::tls::issue_for;
use common::{Exporter, Prometheus, BIN};

/// A drill's deadline for one alert to arrive: scrape, evaluation and grouping take
/// seconds; the margin is for a busy machine.
const ARRIVAL: Duration = Duration::from_secs(60);

/// One drill at a time: three chains at once on two cores would make CPU alerts of
/// their own.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The runbooks the alerts link to.
const RUNBOOKS: &str = include_str!("../docs/alerts.md");

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shop host and the whole alerting chain in front of it.
struct Chain {
    site: tempfile::TempDir,
    exporter: Option<Exporter>,
    prometheus: Prometheus,
    _alertmanager: Alertmanager,
    hook: Webhook,
}

impl Chain {
    /// `config` is the exporter's YAML; `site` holds what it names.
    fn start(site: tempfile::TempDir, config: &str) -> Chain {
        Self::start_behind(site, config, &[])
    }

    /// As [`Chain::start`], the exporter started by `prefix` (see
    /// [`Exporter::start_sandboxed_behind`]).
    fn start_behind(site: tempfile::TempDir, config: &str, prefix: &[&str]) -> Chain {
        // Mounts made later under the site reach the exporter's namespace, as the host's
        // mounts reach a systemd service's (systemd makes / shared at boot; this machine's
        // may be private, so the site is made a shared mount of its own).
        for args in [
            &[
                "--bind",
                site.path().to_str().unwrap(),
                site.path().to_str().unwrap(),
            ][..],
            &["--make-shared", site.path().to_str().unwrap()],
        ] {
            assert!(Command::new("mount").args(args).status().unwrap().success());
        }
        let exporter = Exporter::start_sandboxed_behind(prefix, config);
        let cfg = site.path().join("config-for-rules.yml");
        std::fs::write(&cfg, config).unwrap();
        let rules = generated_rules(&cfg);
        let hook = Webhook::start();
        let alertmanager = Alertmanager::start(&hook);
        let prometheus = start_prometheus(&exporter.address(), alertmanager.port, &rules);
        Chain {
            site,
            exporter: Some(exporter),
            prometheus,
            _alertmanager: alertmanager,
            hook,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.site.path().join(p)
    }

    /// Waits for `alert` to arrive firing (with `labels` among its labels) and checks
    /// what the operator reads: routed to `receiver`, every annotation rendered, a
    /// runbook link to its section of docs/alerts.md.
    fn expect(&self, alert: &str, labels: &[(&str, &str)], receiver: &str) -> Notified {
        self.expect_within(ARRIVAL, alert, labels, receiver)
    }

    /// As [`Chain::expect`], for an alert whose `for:` alone takes `wait` minus the
    /// margin.
    fn expect_within(
        &self,
        wait: Duration,
        alert: &str,
        labels: &[(&str, &str)],
        receiver: &str,
    ) -> Notified {
        let t = Instant::now();
        loop {
            let found = self.hook.all().into_iter().find(|n| {
                n.name() == alert
                    && n.status == "firing"
                    && labels
                        .iter()
                        .all(|(k, v)| n.labels.get(*k).map(String::as_str) == Some(*v))
            });
            if let Some(n) = found {
                assert_eq!(n.receiver, receiver, "{alert} went to {}", n.receiver);
                for key in ["summary", "description", "runbook_url"] {
                    let text = n.annotations.get(key).map_or("", String::as_str);
                    assert!(!text.is_empty(), "{alert} has no {key}: {n:?}");
                    assert!(!text.contains("<no value>"), "{alert} {key}: {text}");
                }
                // A web address a notification can open, at the alert's own section.
                let anchor = alert.to_ascii_lowercase();
                assert_eq!(
                    n.annotations["runbook_url"],
                    format!("{}#{anchor}", shoehub_exporter::config::DEFAULT_RUNBOOK_URL),
                    "{:?}",
                    n.annotations
                );
                assert!(
                    RUNBOOKS.lines().any(|l| l
                        .strip_prefix("### ")
                        .is_some_and(|h| h.to_ascii_lowercase() == anchor)),
                    "docs/alerts.md has no runbook section for {alert}"
                );
                return n;
            }
            assert!(
                t.elapsed() < wait,
                "{alert} {labels:?} did not reach the webhook within {wait:?}; it got {:?}\nin Prometheus: {:?}\nthe exporter's log: {}",
                self.hook.all().iter().map(|n| (n.name().to_owned(), n.status.clone())).collect::<Vec<_>>(),
                self.prometheus.query(&format!("ALERTS{{alertname=\"{alert}\"}}")),
                self.exporter.as_ref().map(Exporter::stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The names of every alert that reached the webhook firing so far.
    fn fired(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .hook
            .all()
            .iter()
            .filter(|n| n.status == "firing")
            .map(|n| n.name().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Waits until Prometheus has evaluated every rule group `n` more times (their
    /// `lastEvaluation` in the rules API).
    fn evaluations(&self, n: usize) {
        let stamps = || -> Vec<String> {
            let r = common::http("GET", self.prometheus.port, "/api/v1/rules", &[]);
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| g["lastEvaluation"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let mut seen: Vec<std::collections::BTreeSet<String>> = Vec::new();
        let t = Instant::now();
        loop {
            let now = stamps();
            seen.resize(now.len(), Default::default());
            for (set, stamp) in seen.iter_mut().zip(now) {
                set.insert(stamp);
            }
            if !seen.is_empty() && seen.iter().all(|s| s.len() > n) {
                return;
            }
            assert!(t.elapsed() < ARRIVAL, "the rules are not evaluated");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        drop(self.exporter.take());
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.site.path())
            .status();
    }
}

/// A directory the unprivileged exporter can read.
fn site() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for sub in ["textfile", "state", "dest"] {
        shared_dir(&d.path().join(sub));
    }
    d
}

fn job_run(config: &Path, name: &str, command: &[&str]) -> std::process::ExitStatus {
    Command::new(BIN)
        .args(["job", "run", name, "--config"])
        .arg(config)
        .arg("--")
        .args(command)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

/// A tmpfs mounted for the life of a drill (in the host's namespace: the exporter sees
/// it through PID 1's mount table).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "drill"])
            .arg(at)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs needs root");
        Tmpfs(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Files, jobs, textfiles, the web server and its certificate, filesystems.
#[test]
fn drills_on_the_host_the_shop_and_the_jobs() {
    let _one = serial();
    let site = site();
    let s = site.path();
    // The shop over HTTPS with a certificate that expires in two days.
    issue_for(s, "shop", 2);
    let log = s.join("access.log");
    std::fs::write(&log, "").unwrap();
    let mut apache = Apache::start_tls(
        &s.join("apache"),
        &log,
        Tls {
            cert: &s.join("shop.pem"),
            key: &s.join("shop.key"),
        },
    );
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "jobs:\n  state_dir: {state}\ntextfile:\n  directory: {text}\nbackup:\n  destination: {dest}\n\
         probes:\n  - name: shop\n    url: https://localhost:{port}/\n    expect_body: Shoe Store Hub\n    tls_ca_file: {ca}\n\
         weblogs:\n  - name: apache\n    path: {log}\n    format: combined_duration\n\
         backuppc:\n  top_dir: {pc}\n",
        state = s.join("state").display(),
        text = s.join("textfile").display(),
        dest = s.join("dest").display(),
        port = apache.port,
        ca = s.join("shop-ca.pem").display(),
        log = log.display(),
        pc = s.join("backuppc").display(),
    );
    // BackupPC's view, as BackupPC writes it: db1 backed up an hour ago, cleanly; web1
    // last backed up two days ago; shop an hour ago with three transfer errors.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (host, ended, errors) in [
        ("db1", now - 3600, 0),
        ("web1", now - 2 * 86400, 0),
        ("shop", now - 3600, 3),
    ] {
        let dir = s.join("backuppc/pc").join(host);
        std::fs::create_dir_all(&dir).unwrap();
        let row = format!(
            "0\tfull\t{}\t{ended}\t1200\t5000000\t1100\t4999000\t100\t1000\t{errors}\t0\t0\t0\t3\t1666666\t400\t0\t-1\t1\trsync\t0\t\t4.3.2\t5120\n",
            ended - 600
        );
        std::fs::write(dir.join("backups"), row).unwrap();
    }
    let cfg = s.join("config.yml");
    std::fs::write(&cfg, &config).unwrap();
    let chain = Chain::start(site, &config);

    // Filesystems filling steadily: 1 MiB tmpfs, 90 KiB (and 9 inodes of 100) more every
    // second, to stop 10% short of full: at that pace they are full within a day. The
    // alerts need their for: (a minute here) of it; they are looked for at the end.
    let filling = Tmpfs::mount(&chain.path("filling"), "size=1m,nr_inodes=100");
    for step in 0..10 {
        std::fs::write(filling.0.join(format!("part{step}")), vec![7u8; 90 * 1024]).unwrap();
        for i in 0..8 {
            std::fs::write(filling.0.join(format!("small{step}-{i}")), "").unwrap();
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    // A plan that has waited three days for approval (its record dated back).
    let plan_dir = chain.path("state/update");
    std::fs::create_dir_all(&plan_dir).unwrap();
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3 * 86400;
    std::fs::write(
        plan_dir.join("plan.json"),
        format!(r#"{{"id": "drill", "created": {created}, "packages": []}}"#),
    )
    .unwrap();

    let mut cases = common::cases::Cases::new();
    cases.case("the Watchdog reaches the dead-man's switch only", || {
        // Always: the Watchdog, to the dead-man's switch only.
        chain.expect("Watchdog", &[], "deadmans-switch");
        chain.expect("UpdatePlanAwaitingApproval", &[], "operators-digest");
        // A fresh install without a backup or an update: expected, and listed in the README.
        chain.expect("BackupTooOld", &[], "operators-pager");
        chain.expect("BackupNotVerified", &[], "operators");
        chain.expect("NoSuccessfulUpdate", &[], "operators");
    });

    cases.case(
        "BackupPC: a stale host, transfer errors, a vanished host",
        || {
            // BackupPC: a stale host, transfer errors, then a host that vanishes.
            chain.expect("BackupPCHostStale", &[("host", "web1")], "operators");
            chain.expect("BackupPCTransferErrors", &[("host", "shop")], "operators");
            std::fs::remove_dir_all(chain.path("backuppc/pc/db1")).unwrap();
            chain.expect("BackupPCHostMissing", &[("host", "db1")], "operators");
        },
    );

    cases.case(
        "a certificate expiring within 3 days pages critical only",
        || {
            // The certificate expires within 3 days: critical, which silences the warning.
            chain.expect(
                "ShopCertificateExpiring",
                &[("severity", "critical"), ("probe", "shop")],
                "operators-pager",
            );
        },
    );

    cases.case("A failed backup run", || {
        // A failed backup run.
        assert!(!job_run(&cfg, "backup", &["false"]).success());
        chain.expect(
            "BackupJobFailed",
            &[("job_name", "backup")],
            "operators-pager",
        );
    });

    cases.case("a failed update run; an update under way", || {
        // A failed update run; an update under way.
        assert!(!job_run(&cfg, "update", &["sh", "-c", "exit 2"]).success());
        let n = chain.expect("UpdateJobFailed", &[("job_name", "update")], "operators");
        assert!(
            n.annotations["description"].contains("exited with 2"),
            "{n:?}"
        );
        let mut running = Command::new(BIN)
            .args(["job", "run", "update", "--config"])
            .arg(&cfg)
            .args(["--", "sleep", "60"])
            .spawn()
            .unwrap();
        chain.expect("ShoehubUpdateRunning", &[], "operators-digest");
        // SIGTERM: the runner stops its command's whole group and records the run.
        shoehub_exporter::sys::kill(running.id(), shoehub_exporter::sys::SIGTERM);
        running.wait().unwrap();
    });

    cases.case(
        "A textfile a script left half-written, and hostile ones",
        || {
            // A textfile a script left half-written, and lines that once reached the answer
            // as they were and made Prometheus (asking for OpenMetrics) refuse all of it.
            std::fs::write(
                chain.path("textfile/deploy.prom"),
                "shop_deploy_timestamp{ 1\n",
            )
            .unwrap();
            for (name, line) in [
                ("name_label", "t3{__name__=\"x\"} 1"),
                ("no_blank", "t14{a=\"b\"}1"),
                ("trailing_comma", "t15{a=\"b\",} 1"),
                ("tab", "t16\t1"),
                ("two_spaces", "t17  1"),
                ("blanks", "v7{ a = \"b\" } 1"),
                ("help", "# HELP t18 A \"quoted\" help.\nt18 1"),
            ] {
                std::fs::write(
                    chain.path(&format!("textfile/{name}.prom")),
                    format!("{line}\n"),
                )
                .unwrap();
            }
            chain.expect("TextfileScrapeError", &[], "operators");
            chain.expect(
                "ShoehubCollectorFailing",
                &[("collector", "textfile")],
                "operators",
            );
            // Prometheus kept reading every answer: the target is up, the readable lines
            // are there as series, and the exporter's own series with them.
            for q in [
                "up{job=\"shoehub\"} == 1",
                "t14{a=\"b\"} == 1",
                "t15{a=\"b\"} == 1",
                "v7{a=\"b\"} == 1",
                "t18 == 1",
                "node_load1",
            ] {
                chain.prometheus.wait_for(q, Duration::from_secs(30));
            }
            assert!(
                chain
                    .prometheus
                    .query("up{job=\"shoehub\"} == 0")
                    .is_empty(),
                "the target went down"
            );
            for name in [
                "name_label",
                "no_blank",
                "trailing_comma",
                "tab",
                "two_spaces",
                "blanks",
                "help",
            ] {
                std::fs::remove_file(chain.path(&format!("textfile/{name}.prom"))).unwrap();
            }
        },
    );

    cases.case("the shop answers its checkout with 503s", || {
        // The shop answers its checkout with 503s, for as long as the outage lasts. A
        // burst alone would not do: a `503` series first seen after the burst has no
        // increase for rate() to measure.
        let outage = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let clients = {
            let outage = std::sync::Arc::clone(&outage);
            let url = format!("https://localhost:{}/checkout", apache.port);
            std::thread::spawn(move || {
                let mut sent = 0u64;
                while outage.load(std::sync::atomic::Ordering::Relaxed) {
                    let st = Command::new("curl")
                        .args([
                            "-sk",
                            "-o",
                            "/dev/null",
                            "-o",
                            "/dev/null",
                            "-o",
                            "/dev/null",
                        ])
                        .args([&url, &url, &url])
                        .status()
                        .unwrap();
                    assert!(st.success());
                    sent += 3;
                }
                sent
            })
        };
        chain.expect("ShopHighHttpErrorRatio", &[], "operators-pager");
        outage.store(false, std::sync::atomic::Ordering::Relaxed);
        assert!(clients.join().unwrap() > 0);
    });

    cases.case("Garbage appended to the access log", || {
        // Garbage appended to the access log.
        let mut garbage = String::new();
        for _ in 0..200 {
            garbage.push_str("\u{1}\u{2} not a log line at all\n");
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .and_then(|mut f| std::io::Write::write_all(&mut f, garbage.as_bytes()))
            .unwrap();
        chain.expect("WeblogParseErrors", &[("log", "apache")], "operators");
    });

    cases.case(
        "a filesystem full of space, of inodes, read-only, unreadable",
        || {
            // A small tmpfs filled: space, then inodes; one mounted read-only; one the exporter
            // may not enter.
            let full = Tmpfs::mount(&chain.path("full"), "size=1m");
            std::fs::write(full.0.join("fill"), vec![1u8; 1000 * 1024]).unwrap();
            let mp = full.0.display().to_string();
            chain.expect(
                "HostFilesystemAlmostFull",
                &[("mountpoint", &mp)],
                "operators-pager",
            );
            let inodes = Tmpfs::mount(&chain.path("inodes"), "size=1m,nr_inodes=100");
            for i in 0..98 {
                std::fs::write(inodes.0.join(i.to_string()), "").unwrap();
            }
            let mp = inodes.0.display().to_string();
            chain.expect(
                "HostInodesAlmostFull",
                &[("mountpoint", &mp)],
                "operators-pager",
            );
            // Writable first, as Prometheus sees; then the kernel's remount read-only.
            let ro = Tmpfs::mount(&chain.path("ro"), "size=1m");
            let mp = ro.0.display().to_string();
            chain.prometheus.wait_for(
                &format!("node_filesystem_readonly{{mountpoint=\"{mp}\"}} == 0"),
                ARRIVAL,
            );
            let st = Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&ro.0)
                .status()
                .unwrap();
            assert!(st.success());
            chain.expect(
                "HostFilesystemReadOnly",
                &[("mountpoint", &mp)],
                "operators-pager",
            );
            let closed = chain.path("closed");
            std::fs::create_dir(&closed).unwrap();
            std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
            let hidden = Tmpfs::mount(&closed.join("inside"), "size=1m");
            let mp = hidden.0.display().to_string();
            chain.expect(
                "HostFilesystemDeviceError",
                &[("mountpoint", &mp)],
                "operators",
            );
        },
    );

    cases.case("The web server stops", || {
        // The web server stops.
        apache.stop();
        chain.expect("ShopDown", &[("probe", "shop")], "operators-pager");
    });

    cases.case("A complete backup appears", || {
        // A complete backup appears: one day of backups where the retention promises 30.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let name = shoehub_exporter::state::backup::name_for(now as i64);
        let backup = chain.path("dest").join(&name);
        std::fs::create_dir(&backup).unwrap();
        std::fs::write(backup.join("files.tar.zst"), b"archive").unwrap();
        std::fs::write(
            backup.join("manifest.json"),
            format!(
                r#"{{"format": 1, "name": "{name}", "started": {now}, "completed": {now}, "server_version": "", "databases": [], "paths": [], "files_archived": 0, "artifacts": [{{"file": "files.tar.zst", "size": 7, "sha256": ""}}]}}"#
            ),
        )
        .unwrap();
        // Its for: is a minute here.
        chain.expect_within(2 * ARRIVAL, "BackupRetentionShort", &[], "operators-digest");
    });

    cases.case("The filesystems that kept filling", || {
        // The filesystems that kept filling.
        let mp = filling.0.display().to_string();
        chain.expect(
            "HostFilesystemFillsWithin24h",
            &[("mountpoint", &mp)],
            "operators",
        );
        chain.expect(
            "HostInodesFillWithin24h",
            &[("mountpoint", &mp)],
            "operators",
        );
    });

    cases.case("What did not reach the pager", || {
        // What did not reach the pager: the certificate's warning, silenced by the critical.
        assert!(
            !chain
                .hook
                .all()
                .iter()
                .any(|n| n.name() == "ShopCertificateExpiring"
                    && n.labels.get("severity").map(String::as_str) == Some("warning")),
            "the warning was not inhibited"
        );
    });

    cases.finish();
}

/// The exporter itself: killed, and a healthy host that pages nothing but the Watchdog.
#[test]
fn a_healthy_host_pages_nothing_and_a_dead_exporter_pages() {
    let _one = serial();
    let site = site();
    let s = site.path();
    let mut apache = Apache::start(&s.join("apache"), &s.join("access.log"));
    let db = MariaDb::start();
    // The database over its socket, as on the shop host.
    db.open_socket_dir();
    // The access log as Debian's logrotate leaves it: root's, readable by adm, which
    // the unit gives the exporter.
    let log = s.join("access.log");
    std::os::unix::fs::chown(&log, Some(0), Some(4)).unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).unwrap();
    // apt has nothing to offer: every package is at its latest version.
    let mut repo = AptRepo::new();
    let current = repo.build("shoehub-test-libssl", "1.1", None);
    repo.install(&current);
    repo.publish(&[&current], &SECURITY);
    let apt_config = format!("APT_CONFIG={}", repo.config().display());
    let pw = s.join("mysql.password");
    std::fs::write(&pw, EXPORTER_PASSWORD).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&pw, Some(65534), Some(65534)).unwrap();
    let config = format!(
        "jobs:\n  state_dir: {state}\ntextfile:\n  directory: {text}\nbackup:\n  destination: {dest}\n  enabled: false\n\
         mysql:\n  url: mysql://{EXPORTER_USER}@localhost/shoe_store_hub?socket={sock}\n  password_file: {pw}\n\
         probes:\n  - name: shop\n    url: http://127.0.0.1:{port}/\n    expect_body: Shoe Store Hub\n\
         weblogs:\n  - name: apache\n    path: {log}\n    format: combined_duration\n\
         updates:\n  apt_interval: 2s\n",
        state = s.join("state").display(),
        text = s.join("textfile").display(),
        dest = s.join("dest").display(),
        sock = db.socket().display(),
        pw = pw.display(),
        port = apache.port,
        log = log.display(),
    );
    let cfg = s.join("config.yml");
    std::fs::write(&cfg, &config).unwrap();
    // The weekly update has run.
    assert!(job_run(&cfg, "update", &["true"]).success());
    let mut chain = Chain::start_behind(site, &config, &["env", &apt_config]);
    chain.expect("Watchdog", &[], "deadmans-switch");
    // Long enough for every rule to have been evaluated on real data many times over.
    chain.evaluations(15);
    // Every collector succeeds in the unit's sandbox: apt was asked and answered, the
    // database reached over its socket, the log read through adm.
    let m = chain.exporter.as_ref().unwrap().metrics();
    let outcomes = m.family("shoehub_scrape_collector_success");
    for want in [
        "apt",
        "mysql",
        "weblog",
        "probe",
        "jobs",
        "textfile",
        "filesystem",
    ] {
        assert!(
            outcomes.iter().any(|s| s.labels["collector"] == want),
            "{want} is not running"
        );
    }
    common::assert_every_collector_succeeds(
        &m,
        common::SANDBOX_USER,
        &chain.exporter.as_ref().unwrap().stderr(),
    );
    assert_eq!(m.value("mysql_up", &[]), Some(1.0));
    assert_eq!(m.value("node_reboot_required", &[]), Some(0.0));
    // CPU, memory and disk load come from whatever else this machine runs, not from a
    // fault of the host: they are not counted against it.
    const LOAD: [&str; 3] = ["HostHighCpu", "HostMemoryPressure", "HostDiskIoSaturated"];
    let paged: Vec<String> = chain
        .fired()
        .into_iter()
        .filter(|n| !LOAD.contains(&n.as_str()))
        .collect();
    assert_eq!(
        paged,
        vec!["Watchdog".to_owned()],
        "a healthy host paged; firing in Prometheus: {:?}",
        chain.prometheus.query("ALERTS")
    );

    // The exporter dies: Prometheus cannot scrape it.
    drop(chain.exporter.take());
    let n = chain.expect("ShoehubExporterDown", &[], "operators-pager");
    assert!(n.labels.contains_key("instance") && n.labels["job"] == "shoehub");

    // The host is lost from the scrape config: no target of the job at all.
    let path = chain.prometheus.config_path();
    let cfg = std::fs::read_to_string(&path).unwrap();
    let target = format!("['{}']", n.labels["instance"]);
    assert!(cfg.contains(&target), "{cfg}");
    std::fs::write(&path, cfg.replace(&target, "[]")).unwrap();
    chain.prometheus.reload();
    chain.expect(
        "ShoehubExporterAbsent",
        &[("job", "shoehub")],
        "operators-pager",
    );
    apache.stop();
}

/// The database: stopped, then restarted.
#[test]
fn drills_on_the_database() {
    let _one = serial();
    let site = site();
    let s = site.path();
    let mut db = MariaDb::start();
    let pw = s.join("mysql.password");
    std::fs::write(&pw, EXPORTER_PASSWORD).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&pw, Some(65534), Some(65534)).unwrap();
    let config = format!(
        "jobs:\n  enabled: false\ntextfile:\n  enabled: false\nbackup:\n  enabled: false\n\
         mysql:\n  url: mysql://{EXPORTER_USER}@127.0.0.1:{}/shoe_store_hub\n  password_file: {}\n\
         alerts:\n  cpu_percent: 0\n  memory_available_percent: 100\n  disk_busy_ratio: 0\n",
        db.port,
        pw.display()
    );
    // The exporter's clock 30 s ahead of Prometheus' (libfaketime, preloaded: its
    // wrapper needs a writable /dev/shm, which the sandbox does not have).
    common::require_tool("faketime", "faketime");
    let lib = std::fs::read_dir("/usr/lib")
        .unwrap()
        .flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketimeMT.so.1 (Debian: faketime)");
    let preload = format!("LD_PRELOAD={}", lib.display());
    let chain = Chain::start_behind(
        site,
        &config,
        &[
            "env",
            &preload,
            "FAKETIME=+30s",
            "FAKETIME_DONT_FAKE_MONOTONIC=1",
        ],
    );
    chain.expect("HostClockSkew", &[], "operators");
    // Load thresholds at their extremes (alerts: above), so that this machine's own load
    // fires them: the chain from metric to pager is what is drilled.
    chain.expect("HostHighCpu", &[], "operators");
    chain.expect("HostMemoryPressure", &[], "operators");
    let st = Command::new("dd")
        .args(["if=/dev/zero", "bs=1M", "count=64", "oflag=direct"])
        .arg(format!("of={}", chain.path("io").display()))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    chain.expect("HostDiskIoSaturated", &[], "operators");
    chain.expect("Watchdog", &[], "deadmans-switch");
    // Nothing probes the shop in this config: said so.
    chain.expect("ShopNotProbed", &[], "operators");

    // Every query of a new session is slow now; the shop keeps querying.
    db.sql("SET GLOBAL long_query_time = 0");
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Bounded too, so that a drill that fails does not leave it running.
            let t = Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && t.elapsed() < 2 * ARRIVAL {
                db.sql("SELECT COUNT(*) FROM shoe_store_hub.products");
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        chain.expect("MysqlSlowQueries", &[], "operators");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    db.sql("SET GLOBAL long_query_time = 10");

    // Ten connections allowed, nine held.
    db.sql("SET GLOBAL max_connections = 10");
    let held: Vec<_> = (0..9)
        .map(|_| {
            Command::new("mariadb")
                .arg(format!("--socket={}", db.socket().display()))
                .args(["-e", "SELECT SLEEP(120)"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .map(common::KillOnDrop)
        .collect();
    chain.expect("MysqlConnectionsNearLimit", &[], "operators");
    drop(held);
    chain.evaluations(3);
    db.stop();
    chain.expect("MysqlDown", &[], "operators-pager");
    db.restart();
    chain.expect("MysqlRestarted", &[], "operators");
}

/// The reboot flag Debian's packages raise, removed again when the drill ends.
const REBOOT_FLAG: &str = "/run/reboot-required";

struct RebootFlag;

impl Drop for RebootFlag {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(REBOOT_FLAG);
        let _ = std::fs::remove_file(format!("{REBOOT_FLAG}.pkgs"));
    }
}

/// apt, through a local repository read with a private apt configuration (the host's
/// own sources are not read): a security update published and left pending, then a
/// package installed whose maintainer script asks for a reboot, as kernel packages do.
#[test]
fn drills_on_security_updates_and_reboots() {
    let _one = serial();
    assert!(
        !Path::new(REBOOT_FLAG).exists(),
        "{REBOOT_FLAG} exists: this machine asks for a reboot already, so the drill could not tell its own fault from it"
    );
    let mut repo = AptRepo::new();
    let installed = repo.build("shoehub-test-libssl", "1.0", None);
    let fixed = repo.build("shoehub-test-libssl", "1.1", None);
    repo.install(&installed);
    repo.publish(&[&installed, &fixed], &SECURITY);
    let pending = repo
        .apt_get()
        .args(["--just-print", "dist-upgrade"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&pending.stdout)
            .contains("Inst shoehub-test-libssl [1.0] (1.1 Debian-Security:12/stable-security"),
        "apt does not offer the security update: {}",
        String::from_utf8_lossy(&pending.stdout)
    );
    let site = site();
    let config = format!(
        "jobs:\n  state_dir: {}\ntextfile:\n  enabled: false\nbackup:\n  enabled: false\n\
         updates:\n  apt_interval: 2s\n",
        site.path().join("state").display()
    );
    let apt_config = format!("APT_CONFIG={}", repo.config().display());
    let chain = Chain::start_behind(site, &config, &["env", &apt_config]);
    let n = chain.expect("SecurityUpdatesPending", &[], "operators");
    assert!(
        n.annotations["description"].starts_with("1 security update(s)"),
        "{:?}",
        n.annotations
    );

    // A kernel-like package: its postinst raises the flag, as Debian's kernel hooks do.
    let _flag = RebootFlag;
    let kernel = repo.build(
        "shoehub-test-kernel",
        "6.1",
        Some(
            "#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n  touch /run/reboot-required\n  echo shoehub-test-kernel >> /run/reboot-required.pkgs\nfi\n",
        ),
    );
    repo.install(&kernel);
    assert!(Path::new(REBOOT_FLAG).exists());
    chain.expect("RebootRequired", &[], "operators-digest");
}
