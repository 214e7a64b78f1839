//! A day of an operator's life on a real Debian 12 host: a `debootstrap` tree booted with
//! systemd as PID 1 (`systemd-nspawn -b`, its own network namespace), with the package
//! that `scripts/build-deb` makes. The README's Install and Configure steps are read
//! from the README and run as written (`sudo` is root here; `sudoedit` is the test
//! writing the passwords), then the backup and its verification through `systemctl
//! start`, the weekly update through its timer's unit and the transient apply unit, a
//! bad config and a reload, the database stopped under the shipped Prometheus rules and
//! Alertmanager config, and a purge.
//!
//! The base tree is made once and kept in `/var/cache/shoehub-exporter-tests`
//! (debootstrap from the mirror of the test runner's own apt sources, then the shop's
//! database server, zstd and Ansible); each run boots it through an overlay that is
//! thrown away, and leaves no mount or process behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// setns(2) for the forwarder's thread and flock(2) on the cache: calls std lacks.
#![allow(unsafe_code)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::alerting::{generated_rules, start_prometheus, Alertmanager, Webhook};
use common::aptrepo::tiny_deb;
use common::{require_tool, wait_until, Exposition};

/// Bumped whenever the base tree's contents change, so that a cached one is made again.
const BASE: &str = "bookworm-2";
const CACHE: &str = "/var/cache/shoehub-exporter-tests";
/// What the tree has beside the minimal base: a stock host with the shop's database
/// server, and what the package recommends (Ansible's apt module needs python3-apt).
const BASE_PACKAGES: &str = "systemd,systemd-sysv,dbus,ca-certificates,curl,procps,iproute2";
const EXTRA_PACKAGES: &[&str] = &[
    "mariadb-server",
    "mariadb-client",
    "zstd",
    "ansible-core",
    "python3-apt",
];
const EXPORTER_PASSWORD: &str = "exporter-pw-7Qe";
const BACKUP_PASSWORD: &str = "backup-pw-9Zt";

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", text(&o));
    o
}

/// The Debian mirror the test runner's own apt sources name.
fn mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                texts.push(t);
            }
        }
    }
    for t in &texts {
        for line in t.lines() {
            let line = line.trim();
            let url = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                None
            };
            if let Some(u) = url {
                if u.trim_end_matches('/').ends_with("/debian") {
                    return u.to_owned();
                }
            }
        }
    }
    panic!("no Debian mirror (a URI ending in /debian) in /etc/apt/sources.list or sources.list.d");
}

/// The cached base tree, made when missing (under a lock, into a temporary directory
/// renamed into place only once complete).
fn base_tree() -> PathBuf {
    let cache = Path::new(CACHE);
    let tree = cache.join(BASE);
    if tree.join(".complete").exists() {
        return tree;
    }
    std::fs::create_dir_all(cache).unwrap();
    let lock = std::fs::File::create(cache.join(".lock")).unwrap();
    // SAFETY: flock(2) on a descriptor this function owns; it blocks until the lock is
    // had, which another run making the tree holds until it is done.
    let r = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(r, 0, "flock: {}", std::io::Error::last_os_error());
    if tree.join(".complete").exists() {
        return tree;
    }
    // Trees of earlier versions of this list are not booted again.
    for e in std::fs::read_dir(cache).unwrap().flatten() {
        if e.file_name() != ".lock" && e.path().is_dir() {
            let _ = Command::new("rm").arg("-rf").arg(e.path()).status();
        }
    }
    let debootstrap = require_tool("debootstrap", "debootstrap");
    let partial = cache.join(format!("{BASE}.partial"));
    let _ = Command::new("rm").arg("-rf").arg(&partial).status();
    let _ = Command::new("rm").arg("-rf").arg(&tree).status();
    eprintln!(
        "making the base tree {} (once; later runs reuse it)",
        tree.display()
    );
    run(Command::new(debootstrap)
        .args([
            "--variant=minbase",
            &format!("--include={BASE_PACKAGES}"),
            "bookworm",
        ])
        .arg(&partial)
        .arg(mirror()));
    // Services are not started while the tree is made (there is no systemd yet); they
    // are enabled as on any host, and start when it boots.
    let policy = partial.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n").unwrap();
    run(Command::new("chmod").arg("755").arg(&policy));
    std::fs::copy("/etc/resolv.conf", partial.join("etc/resolv.conf")).unwrap();
    run(Command::new("chroot")
        .arg(&partial)
        .args([
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "-q",
        ])
        .arg("--no-install-recommends")
        .args(EXTRA_PACKAGES));
    run(Command::new("chroot")
        .arg(&partial)
        .args(["apt-get", "clean"]));
    std::fs::remove_file(&policy).unwrap();
    std::fs::write(partial.join(".complete"), "").unwrap();
    std::fs::rename(&partial, &tree).unwrap();
    tree
}

/// A booted host: an overlay over the base tree, systemd-nspawn booting it, and the
/// PID of its systemd (in the test runner's PID namespace) to enter it by.
struct Host {
    nspawn: std::process::Child,
    leader: u32,
    dir: tempfile::TempDir,
    console: PathBuf,
}

impl Host {
    fn boot(base: &Path) -> Host {
        let nspawn = require_tool("systemd-nspawn", "systemd-container");
        require_tool("nsenter", "util-linux");
        let dir = tempfile::tempdir().unwrap();
        let (upper, work, root) = (
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("root"),
        );
        for d in [&upper, &work, &root] {
            std::fs::create_dir(d).unwrap();
        }
        run(Command::new("mount")
            .args(["-t", "overlay", "shoehub-test", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                base.display(),
                upper.display(),
                work.display()
            ))
            .arg(&root));
        let console = dir.path().join("console.log");
        let name = format!("shoehub-test-{}", std::process::id());
        let child = Command::new(nspawn)
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .arg("-D")
            .arg(&root)
            .args(["-b", "--private-network", "-M", &name])
            .args(["--register=no", "--keep-unit", "--console=pipe"])
            // nspawn's own filter denies clock_adjtime(2) to a container without
            // CAP_SYS_TIME, even the read a host allows everyone; allowed here, the
            // container still cannot set the clock (it has no CAP_SYS_TIME), and the
            // exporter meets only its unit's filter, as on a host.
            .arg("--system-call-filter=clock_adjtime")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&console).unwrap())
            .stderr(std::fs::File::create(dir.path().join("nspawn.log")).unwrap())
            .spawn()
            .unwrap();
        let mut host = Host {
            nspawn: child,
            leader: 0,
            dir,
            console,
        };
        let nspawn_pid = host.nspawn.id();
        let t = Instant::now();
        loop {
            if let Some(pid) = container_init(nspawn_pid) {
                host.leader = pid;
                break;
            }
            if let Ok(Some(s)) = host.nspawn.try_wait() {
                panic!("systemd-nspawn exited ({s}): {}", host.logs());
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no container init after a minute: {}",
                host.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Until its manager listens, systemctl cannot connect ("offline", or no bus
        // socket yet); once it can, `--wait` waits for the boot to end.
        let t = Instant::now();
        let state = loop {
            let state = text(&host.sh("timeout 180 systemctl is-system-running --wait || true"));
            let booted = state.contains("running") || state.contains("degraded");
            if booted || t.elapsed() > Duration::from_secs(120) {
                break state;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(
            state.contains("running") || state.contains("degraded"),
            "the host did not boot: {state}\n{}",
            host.logs()
        );
        host
    }

    fn logs(&self) -> String {
        format!(
            "console: {}\nnspawn: {}",
            std::fs::read_to_string(&self.console).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("nspawn.log")).unwrap_or_default()
        )
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `script` run by /bin/sh inside the host, as root, in every one of its namespaces.
    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args([
                "-t",
                &self.leader.to_string(),
                "-a",
                "--",
                "/bin/sh",
                "-c",
                script,
            ])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LANG", "C.UTF-8")
            .env("HOME", "/root")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// As [`Host::sh`], and the script must succeed; its output.
    fn ok(&self, script: &str) -> String {
        let o = self.sh(script);
        if !o.status.success() {
            let journal = text(&self.sh("journalctl -n 60 --no-pager -o cat"));
            panic!(
                "`{script}` failed ({}): {}\nthe journal's last lines:\n{journal}",
                o.status,
                text(&o)
            );
        }
        text(&o)
    }

    /// A port on the test runner's loopback that reaches `port` on the booted host's
    /// loopback.
    fn forward(&self, port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap().port();
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.leader)).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns(2) on a descriptor of a network namespace changes only this
            // thread's namespace, which the sockets it creates from then on belong to.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            for outer in listener.incoming() {
                let Ok(outer) = outer else { continue };
                let Ok(inner) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                pipe(outer.try_clone().unwrap(), inner.try_clone().unwrap());
                pipe(inner, outer);
            }
        });
        local
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// The container's PID 1 as the test runner's PID namespace numbers it: the descendant
/// of systemd-nspawn whose innermost PID is 1.
fn container_init(nspawn: u32) -> Option<u32> {
    let mut frontier = vec![nspawn];
    while let Some(pid) = frontier.pop() {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let innermost = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|v| v.split_whitespace().last().map(str::to_owned));
        if pid != nspawn && innermost.as_deref() == Some("1") {
            return Some(pid);
        }
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .flatten()
        {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            frontier.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
    }
    None
}

impl Drop for Host {
    fn drop(&mut self) {
        // SIGTERM asks systemd-nspawn to power the container off in order.
        let _ = Command::new("kill")
            .args(["-TERM", &self.nspawn.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
        let root = self.root();
        if Command::new("umount")
            .arg(&root)
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            let _ = Command::new("umount").arg("-l").arg(&root).status();
        }
    }
}

/// The `sh` blocks of the README between the headings `from` and `to`, in order.
fn readme_sh(from: &str, to: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(from)
        .unwrap_or_else(|| panic!("README: no {from:?}"));
    let end = start + readme[start..].find(to).unwrap();
    let mut blocks = Vec::new();
    let mut rest = &readme[start..end];
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let j = body.find("```").unwrap();
        blocks.push(
            body[..j]
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        rest = &body[j + 3..];
    }
    blocks
}

/// An operator's command line from the README, as root runs it on the host: `sudo `
/// dropped, a trailing comment removed.
fn as_root(line: &str) -> String {
    let line = match line.find("  #") {
        Some(i) => &line[..i],
        None => line,
    };
    line.trim().replace("sudo ", "")
}

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

fn build_deb() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/build-deb"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-deb: {}", text(&out));
    root.join(String::from_utf8_lossy(&out.stdout).trim())
}

/// The host's apt repository `/srv/repo` offers exactly `debs`.
fn publish(host: &Host, debs: &[&Path]) {
    let repo = host.root().join("srv/repo");
    let _ = std::fs::remove_dir_all(&repo);
    std::fs::create_dir_all(&repo).unwrap();
    for deb in debs {
        std::fs::copy(deb, repo.join(deb.file_name().unwrap())).unwrap();
    }
    let packages = run(Command::new(require_tool("apt-ftparchive", "apt-utils"))
        .args(["packages", "."])
        .current_dir(&repo));
    std::fs::write(repo.join("Packages"), packages.stdout).unwrap();
    let release = run(Command::new("apt-ftparchive")
        .args(["-oAPT::FTPArchive::Release::Origin=Debian", "release", "."])
        .current_dir(&repo));
    std::fs::write(repo.join("Release"), release.stdout).unwrap();
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

/// Waits (up to `limit`) until `done` says yes; `state` says what was seen instead.
fn wait_for(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
    state: impl Fn() -> String,
) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < limit,
            "waited {limit:?} in vain: {what}\n{}",
            state()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

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
    let deb_name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&deb, host.root().join("root").join(&deb_name)).unwrap();

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

    // Install, as the README says.
    let install = readme_sh("## Install\n", "## Configure\n");
    assert!(!install.is_empty(), "the README's Install has no sh block");
    for block in &install {
        for line in block.lines() {
            let cmd = as_root(line);
            if cmd.starts_with("scripts/build-deb") {
                continue; // built above, by the test
            }
            let cmd = cmd.replace(
                &format!("./target/deb/{deb_name}"),
                &format!("/root/{deb_name}"),
            );
            if cmd.starts_with("shoehub-exporter check") {
                // What is left to set up: no backup or update has run yet.
                let o = host.sh(&cmd);
                assert!(
                    text(&o).contains("no complete backup exists"),
                    "{}",
                    text(&o)
                );
                continue;
            }
            host.ok(&cmd);
        }
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
    let edited = uncomment_accounts(&std::fs::read_to_string(&config_path).unwrap());
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
            assert_eq!(left.trim(), "", "left after purge");
            let unowned =
                host.ok("find /var/backups/shoe_store_hub \\( -nouser -o -nogroup \\) -print");
            assert_eq!(unowned.trim(), "", "kept backups owned by a bare id");
            host.ok("test -n \"$(ls /var/backups/shoe_store_hub)\"");
        },
    );

    cases.finish();
}
