//! The Debian package as an operator meets it: built by `scripts/build-deb`, checked by
//! lintian, installed with `dpkg -i` on the host that runs the tests (run them on a host
//! you can throw away; the package is named shoehub-exporter), run as its unit runs it,
//! upgraded, and purged. What systemd would start is checked where dpkg leaves it (the
//! enablement links), and the exporter is run in the unit's sandbox by the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use common::{assert_every_collector_succeeds, require_tool, sandbox, wait_until, Exporter};

const PACKAGE: &str = "shoehub-exporter";
const EXPORTER_USER: &str = "--reuid=shoehub-exporter --regid=shoehub-exporter --init-groups";

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn ok(program: &str, args: &[&str]) -> String {
    let o = run(program, args);
    assert!(o.status.success(), "{program} {args:?}: {}", text(&o));
    text(&o)
}

/// Purges the package whatever happens to the test.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run("dpkg", &["--purge", PACKAGE]);
    }
}

/// Mode (with setuid/setgid bits), owner and group of `path`.
fn owned(path: &str) -> (u32, String, String) {
    let m = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let name = |db: &str, id: u32| {
        let o = run("getent", &[db, &id.to_string()]);
        String::from_utf8_lossy(&o.stdout)
            .split(':')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    (
        m.mode() & 0o7777,
        name("passwd", m.uid()),
        name("group", m.gid()),
    )
}

fn build() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(Path::new(root).join("scripts/build-deb"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-deb: {}", text(&out));
    let rel = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    Path::new(root).join(rel).display().to_string()
}

/// The exposure score `systemd-analyze security --offline` gives an installed unit.
fn exposure(unit: &str) -> f64 {
    let out = ok(
        "systemd-analyze",
        &[
            "security",
            "--offline=yes",
            &format!("/usr/lib/systemd/system/{unit}"),
        ],
    );
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("{out}"));
    let after = line.split(": ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn the_package_installs_serves_refuses_links_upgrades_and_purges() {
    for (tool, package) in [
        ("dpkg", "dpkg"),
        ("dpkg-deb", "dpkg"),
        ("lintian", "lintian"),
        ("systemd-analyze", "systemd"),
        ("systemd-sysusers", "systemd"),
        ("deb-systemd-helper", "init-system-helpers"),
    ] {
        require_tool(tool, package);
    }
    assert_eq!(
        shoehub_exporter::sys::euid(),
        0,
        "installing a package needs root; run the tests as root"
    );
    let deb = build();

    let mut cases = common::cases::Cases::new();
    cases.case("lintian finds no error", || {
        // lintian: warnings are shown, errors fail.
        let lint = run("lintian", &["--tag-display-limit", "0", &deb]);
        let report = text(&lint);
        let errors: Vec<&str> = report.lines().filter(|l| l.starts_with("E:")).collect();
        assert!(errors.is_empty(), "lintian: {report}");
        assert!(
            !report.contains("statically-linked-binary"),
            "lintian: {report}"
        );
    });

    cases.case(
        "the binary is PIE, against the system's glibc, hardened",
        || {
            // The binary is built as Debian expects: position-independent, against the
            // system's glibc (its package a dependency), hardened.
            let unpacked = tempfile::tempdir().unwrap();
            ok("dpkg-deb", &["-x", &deb, unpacked.path().to_str().unwrap()]);
            let bin = unpacked.path().join("usr/bin/shoehub-exporter");
            let bin = bin.to_str().unwrap();
            let header = ok("readelf", &["-hW", bin]);
            assert!(
                header
                    .lines()
                    .any(|l| l.trim_start().starts_with("Type:") && l.contains("DYN")),
                "{header}"
            );
            let dynamic = ok("readelf", &["-dW", bin]);
            assert!(dynamic.contains("Shared library: [libc.so.6]"), "{dynamic}");
            let control = ok("dpkg-deb", &["-f", &deb, "Depends"]);
            assert!(control.contains("libc6 (>= 2."), "Depends: {control}");
            let hardening = run(
                &require_tool("hardening-check", "devscripts")
                    .display()
                    .to_string(),
                &["--nostackprotector", "--nofortify", "--nocfprotection", bin],
            );
            let said = text(&hardening);
            for check in [
                "Position Independent Executable: yes",
                "Read-only relocations: yes",
                "Immediate binding: yes",
            ] {
                assert!(said.contains(check), "hardening-check: {said}");
            }
            assert!(hardening.status.success(), "hardening-check: {said}");
        },
    );

    // A run that was killed may have left the package behind.
    let _ = run("dpkg", &["--purge", PACKAGE]);
    ok("dpkg", &["-i", &deb]);
    let _installed = Installed;
    let root = "root".to_owned();
    let group = PACKAGE.to_owned();
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/config.yml"))
            .unwrap();
    let wants = Path::new("/etc/systemd/system/multi-user.target.wants/shoehub-exporter.service");
    // The installed binary with the installed config, as the unit runs it.
    let config = Path::new("/etc/shoehub-exporter/config.yml");
    let e = Exporter::start_installed(&sandbox(EXPORTER_USER), "/usr/bin/shoehub-exporter", config);

    cases.case(
        "files, owners, modes, the user and what starts at boot",
        || {
            // Files, owners and modes.
            for (path, mode, g) in [
                ("/usr/bin/shoehub-exporter", 0o755, &root),
                ("/etc/shoehub-exporter", 0o750, &group),
                ("/etc/shoehub-exporter/config.yml", 0o640, &group),
                ("/etc/shoehub-exporter/update.yml", 0o640, &group),
                ("/etc/shoehub-exporter/inventory.ini", 0o640, &group),
                ("/var/lib/shoehub-exporter", 0o755, &root),
                ("/var/lib/shoehub-exporter/jobs", 0o2750, &group),
                ("/var/lib/shoehub-exporter/textfile", 0o2750, &group),
                ("/var/backups/shoe_store_hub", 0o2750, &group),
                (
                    "/usr/lib/systemd/system/shoehub-exporter.service",
                    0o644,
                    &root,
                ),
                ("/usr/lib/systemd/system/shoehub-backup.timer", 0o644, &root),
                ("/usr/lib/sysusers.d/shoehub-exporter.conf", 0o644, &root),
                ("/usr/lib/tmpfiles.d/shoehub-exporter.conf", 0o644, &root),
                ("/usr/share/man/man1/shoehub-exporter.1.gz", 0o644, &root),
                (
                    "/usr/share/man/man1/shoehub-exporter-backup-run.1.gz",
                    0o644,
                    &root,
                ),
                (
                    "/usr/share/bash-completion/completions/shoehub-exporter",
                    0o644,
                    &root,
                ),
                (
                    "/usr/share/zsh/vendor-completions/_shoehub-exporter",
                    0o644,
                    &root,
                ),
                (
                    "/usr/share/fish/vendor_completions.d/shoehub-exporter.fish",
                    0o644,
                    &root,
                ),
                ("/usr/share/shoehub-exporter/grafana", 0o755, &root),
                ("/usr/share/shoehub-exporter/alerts", 0o755, &root),
                (
                    "/usr/share/shoehub-exporter/prometheus/prometheus.yml",
                    0o644,
                    &root,
                ),
                (
                    "/usr/share/shoehub-exporter/alertmanager/alertmanager.yml",
                    0o644,
                    &root,
                ),
                (
                    "/usr/share/shoehub-exporter/ansible/update.yml",
                    0o644,
                    &root,
                ),
                ("/usr/share/doc/shoehub-exporter/copyright", 0o644, &root),
                ("/usr/share/doc/shoehub-exporter/changelog.gz", 0o644, &root),
                ("/usr/share/doc/shoehub-exporter/README.md", 0o644, &root),
            ] {
                assert_eq!(owned(path), (mode, root.clone(), g.clone()), "{path}");
            }
            // Every page of docs/, beside the README whose links lead to them.
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
            let mut pages = 0;
            for page in std::fs::read_dir(&docs).unwrap() {
                let name = page.unwrap().file_name().into_string().unwrap();
                let installed = format!("/usr/share/doc/shoehub-exporter/docs/{name}");
                assert_eq!(
                    owned(&installed),
                    (0o644, root.clone(), root.clone()),
                    "{installed}"
                );
                pages += 1;
            }
            assert!(pages >= 10, "{pages} pages under docs/");
            assert_eq!(
                std::fs::read_to_string("/etc/shoehub-exporter/config.yml").unwrap(),
                shipped
            );
            // The user: no login, no home, in adm for the logs.
            let passwd = ok("getent", &["passwd", PACKAGE]);
            assert!(
                passwd
                    .trim_end()
                    .ends_with(":/nonexistent:/usr/sbin/nologin"),
                "{passwd}"
            );
            let groups = ok("id", &["-Gn", PACKAGE]);
            assert!(groups.split_whitespace().any(|g| g == "adm"), "{groups}");
            // What systemd starts at boot: the exporter, the update plan and the check; the
            // backup timers wait for a database.
            assert!(
                wants.symlink_metadata().is_ok(),
                "the exporter is not enabled"
            );
            let timers = Path::new("/etc/systemd/system/timers.target.wants");
            for timer in ["shoehub-update-plan.timer", "shoehub-check.timer"] {
                assert!(
                    timers.join(timer).symlink_metadata().is_ok(),
                    "{timer} is not enabled"
                );
            }
            assert!(timers
                .join("shoehub-backup.timer")
                .symlink_metadata()
                .is_err());
        },
    );

    cases.case(
        "the installed units verify and are hardened as documented",
        || {
            // The installed units: verified (their man: links resolve) and hardened.
            let units: Vec<String> = std::fs::read_dir("/usr/lib/systemd/system")
                .unwrap()
                .map(|e| e.unwrap().path().display().to_string())
                .filter(|p| p.contains("/shoehub-"))
                .collect();
            assert!(units.len() >= 9, "{units:?}");
            let mut args = vec!["verify"];
            args.extend(units.iter().map(String::as_str));
            let verify = run("systemd-analyze", &args);
            let said = text(&verify);
            let ours: Vec<&str> = said.lines().filter(|l| l.contains("shoehub-")).collect();
            assert!(ours.is_empty(), "{said}");
            let exporter = exposure("shoehub-exporter.service");
            assert!(exporter <= 2.5, "the exporter's unit is exposed {exporter}");
            for unit in [
                "shoehub-backup.service",
                "shoehub-backup-verify.service",
                "shoehub-check.service",
            ] {
                let e = exposure(unit);
                assert!(e <= 5.0, "{unit} is exposed {e}");
            }
            // docs/security.md's table of exposure figures is what systemd-analyze says, unit
            // by unit.
            let doc = std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/security.md"),
            )
            .unwrap();
            let mut stated = 0;
            for line in doc.lines() {
                let cells: Vec<&str> = line
                    .trim()
                    .trim_matches('|')
                    .split('|')
                    .map(str::trim)
                    .collect();
                if let [unit, figure] = cells[..] {
                    let unit = unit.trim_matches('`');
                    if unit.starts_with("shoehub-") && unit.ends_with(".service") {
                        let figure: f64 = figure.parse().unwrap();
                        assert_eq!(
                            exposure(unit),
                            figure,
                            "docs/security.md's figure for {unit}"
                        );
                        stated += 1;
                    }
                }
            }
            assert_eq!(stated, 5, "docs/security.md's exposure table");
        },
    );

    cases.case(
        "the installed binary and config: every collector succeeds, reload works",
        || {
            // The installed binary with the installed config, as the unit runs it: every
            // collector succeeds.
            let m = e.metrics();
            let outcomes = m.family("shoehub_scrape_collector_success");
            for want in [
                "cpu",
                "memory",
                "filesystem",
                "disk",
                "network",
                "host",
                "jobs",
                "apt",
                "backups",
                "textfile",
            ] {
                assert!(
                    outcomes.iter().any(|s| s.labels["collector"] == want),
                    "{want} is not running: {}",
                    e.stderr()
                );
            }
            assert_every_collector_succeeds(&m, EXPORTER_USER, &e.stderr());
            // systemctl reload: SIGHUP.
            shoehub_exporter::sys::kill(e.child.id(), shoehub_exporter::sys::SIGHUP);
            wait_until("the reload", || {
                e.stderr().contains("configuration reloaded")
            });
        },
    );

    cases.case(
        "root's jobs refuse planted links and unsafe directories",
        || {
            // Root's jobs with the installed config: a planted link is refused, not followed.
            let elsewhere = tempfile::tempdir().unwrap();
            let victim = elsewhere.path().join("victim");
            std::fs::write(&victim, "keep\n").unwrap();
            let jobs = Path::new("/var/lib/shoehub-exporter/jobs");
            std::os::unix::fs::symlink(&victim, jobs.join("drill.lock")).unwrap();
            // Under the units' UMask=0077, as systemd starts a job.
            let job = |args: &[&str]| {
                let mut all = vec![
                    "-c",
                    "umask 0077 && exec \"$0\" \"$@\"",
                    "/usr/bin/shoehub-exporter",
                    "job",
                    "run",
                    "drill",
                    "--",
                ];
                all.extend_from_slice(args);
                run("sh", &all)
            };
            let refused = job(&["true"]);
            assert!(!refused.status.success());
            assert!(
                text(&refused).contains("drill.lock is a symbolic link"),
                "{}",
                text(&refused)
            );
            std::fs::remove_file(jobs.join("drill.lock")).unwrap();
            std::os::unix::fs::symlink(&victim, jobs.join("drill.json")).unwrap();
            let done = job(&["true"]);
            assert!(done.status.success(), "{}", text(&done));
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
            assert_eq!(
                owned("/var/lib/shoehub-exporter/jobs/drill.json"),
                (0o640, root.clone(), group.clone())
            );
            // ...and the exporter, as its own user, reads what root wrote.
            wait_until("the job's state in the metrics", || {
                e.metrics()
                    .value("shoehub_job_last_exit_code", &[("job_name", "drill")])
                    == Some(0.0)
            });
            // A state directory the group can write is refused, by name.
            std::fs::set_permissions(jobs, std::fs::Permissions::from_mode(0o2770)).unwrap();
            let refused = job(&["true"]);
            std::fs::set_permissions(jobs, std::fs::Permissions::from_mode(0o2750)).unwrap();
            assert!(!refused.status.success());
            let said = text(&refused);
            assert!(
                said.contains("refusing to write into /var/lib/shoehub-exporter/jobs")
                    && said.contains("chmod go-w"),
                "{said}"
            );
            // Stopped as systemd stops the unit: every process of its cgroup, the apt run the
            // exporter may have under way included.
            drop(e);
            let _ = run("pkill", &["-KILL", "-u", PACKAGE]);
            wait_until("the exporter's processes to end", || {
                !run("pgrep", &["-u", PACKAGE]).status.success()
            });
        },
    );

    cases.case("an upgrade keeps the operator's config", || {
        // Upgrade (the same package again): the operator's config stays.
        let mut edited = shipped.clone();
        edited.push_str("# edited by the operator\n");
        std::fs::write(config, &edited).unwrap();
        ok("dpkg", &["-i", &deb]);
        assert_eq!(std::fs::read_to_string(config).unwrap(), edited);
        assert_eq!(owned("/etc/shoehub-exporter/config.yml").0, 0o640);
    });

    cases.case("purge leaves only the backups, with their owners", || {
        // Purge: the config and the state go; the backups stay, with the user and group
        // that own them (a removed group's bare GID would pass to the next group made).
        let kept = Path::new("/var/backups/shoe_store_hub/operator-notes.txt");
        std::fs::write(kept, "keep\n").unwrap();
        ok("dpkg", &["--purge", PACKAGE]);
        assert!(!Path::new("/etc/shoehub-exporter").exists());
        assert!(!Path::new("/var/lib/shoehub-exporter").exists());
        assert!(!Path::new("/usr/bin/shoehub-exporter").exists());
        assert!(
            run("getent", &["passwd", PACKAGE]).status.success(),
            "the user was removed"
        );
        assert_eq!(
            owned("/var/backups/shoe_store_hub").2,
            PACKAGE,
            "the kept backups' group"
        );
        assert!(wants.symlink_metadata().is_err());
        assert_eq!(std::fs::read_to_string(kept).unwrap(), "keep\n");
        std::fs::remove_file(kept).unwrap();
        let _ = std::fs::remove_dir("/var/backups/shoe_store_hub");
    });

    cases.finish();
}
