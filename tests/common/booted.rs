//! Debian 12 hosts booted with systemd as PID 1, for the tests that need a real host:
//! a `debootstrap` tree made once and kept in `/var/cache/shoehub-exporter-tests`
//! (from the mirror of the test runner's own apt sources, with the shop's database
//! server, zstd, Ansible and an SSH server), booted by `systemd-nspawn -b` through an
//! overlay that is thrown away. A host has a network of its own: loopback alone, or a
//! zone (a bridge) it shares with the other hosts of one test, at an address of its
//! own. Nothing is left behind: no mount, process or link.
// setns(2) for the forwarder's thread and flock(2) on the cache: calls std lacks.
#![allow(unsafe_code, dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::require_tool;

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

pub fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", text(&o));
    o
}

/// Bumped whenever the base tree's contents change, so that a cached one is made again.
pub const BASE: &str = "bookworm-4";
pub const CACHE: &str = "/var/cache/shoehub-exporter-tests";
/// What the tree has beside the minimal base: a stock host with the shop's database
/// server, what the package recommends (Ansible's apt module needs python3-apt), and an
/// SSH server and sudo for the hosts a controller's Ansible reaches.
pub const BASE_PACKAGES: &str = "systemd,systemd-sysv,dbus,ca-certificates,curl,procps,iproute2";
pub const EXTRA_PACKAGES: &[&str] = &[
    "mariadb-server",
    "mariadb-client",
    "zstd",
    "ansible-core",
    "python3-apt",
    "openssh-server",
    "sudo",
];

/// The Debian mirror the test runner's own apt sources name.
pub fn mirror() -> String {
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
pub fn base_tree() -> PathBuf {
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
pub struct Host {
    nspawn: std::process::Child,
    leader: u32,
    dir: tempfile::TempDir,
    console: PathBuf,
}

impl Host {
    /// A host with a network of its own that has loopback alone.
    pub fn boot(base: &Path) -> Host {
        Host::boot_with(base, None)
    }

    /// A host on the zone `zone` (the bridge `vz-<zone>` on the test runner, shared by
    /// every host booted into it) at `address` (IPv4, on a /24), named `name`.
    pub fn boot_in_zone(base: &Path, zone: &str, address: &str, name: &str) -> Host {
        let host = Host::boot_with(base, Some((zone, name)));
        // The bridge is made by the first host's nspawn, down.
        run(Command::new(require_tool("ip", "iproute2")).args([
            "link",
            "set",
            &format!("vz-{zone}"),
            "up",
        ]));
        host.ok(&format!(
            "ip link set host0 up && ip addr add {address}/24 dev host0"
        ));
        host
    }

    fn boot_with(base: &Path, zone: Option<(&str, &str)>) -> Host {
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
        let name = match zone {
            Some((_, name)) => format!("shoehub-{}-{name}", std::process::id()),
            None => format!("shoehub-test-{}", std::process::id()),
        };
        let network = match zone {
            Some((zone, _)) => format!("--network-zone={zone}"),
            None => "--private-network".to_owned(),
        };
        let child = Command::new(nspawn)
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .arg("-D")
            .arg(&root)
            .args(["-b", &network, "-M", &name])
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

    pub fn logs(&self) -> String {
        format!(
            "console: {}\nnspawn: {}",
            std::fs::read_to_string(&self.console).unwrap_or_default(),
            std::fs::read_to_string(self.dir.path().join("nspawn.log")).unwrap_or_default()
        )
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `script` run by /bin/sh inside the host, as root, in every one of its namespaces.
    pub fn sh(&self, script: &str) -> Output {
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
    pub fn ok(&self, script: &str) -> String {
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
    pub fn forward(&self, port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let local = listener.local_addr().unwrap().port();
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.leader)).unwrap();
        std::thread::spawn(move || {
            // SAFETY: setns(2) on a descriptor of a network namespace changes only this
            // thread's namespace, which the sockets it creates from then on belong to.
            let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            relay(&listener, port);
        });
        local
    }
}

/// Each connection `listener` accepts, relayed to `port` on loopback (of the network
/// namespace the calling thread is in).
fn relay(listener: &TcpListener, port: u16) {
    for outer in listener.incoming() {
        let Ok(outer) = outer else { continue };
        let Ok(inner) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        pipe(outer.try_clone().unwrap(), inner.try_clone().unwrap());
        pipe(inner, outer);
    }
}

/// Copies `from` to `to` on a thread of its own until either side closes.
pub fn pipe(mut from: TcpStream, mut to: TcpStream) {
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
pub fn container_init(nspawn: u32) -> Option<u32> {
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

pub fn build_deb() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/build-deb"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(out.status.success(), "scripts/build-deb: {}", text(&out));
    root.join(String::from_utf8_lossy(&out.stdout).trim())
}

/// The host's apt repository `/srv/repo` offers exactly `debs`.
pub fn publish(host: &Host, debs: &[&Path]) {
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

/// Waits (up to `limit`) until `done` says yes; `state` says what was seen instead.
pub fn wait_for(
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

/// The `sh` blocks of the README between the headings `from` and `to`, in order.
pub fn readme_sh(from: &str, to: &str) -> Vec<String> {
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
pub fn as_root(line: &str) -> String {
    let line = match line.find("  #") {
        Some(i) => &line[..i],
        None => line,
    };
    line.trim().replace("sudo ", "")
}

/// Installs the package `deb` (built by [`build_deb`]) on `host` as the README's Install
/// step says, line by line (the build itself left out); the step's `shoehub-exporter
/// check` lines are not run but given back, for the caller to run and judge.
pub fn install_as_readme(host: &Host, deb: &Path) -> Vec<String> {
    let deb_name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(deb, host.root().join("root").join(&deb_name)).unwrap();
    let install = readme_sh("## Install\n", "## Configure\n");
    assert!(!install.is_empty(), "the README's Install has no sh block");
    let mut checks = Vec::new();
    for block in &install {
        for line in block.lines() {
            let cmd = as_root(line);
            if cmd.starts_with("scripts/build-deb") {
                continue; // built by the test
            }
            let cmd = cmd.replace(
                &format!("./target/deb/{deb_name}"),
                &format!("/root/{deb_name}"),
            );
            if cmd.starts_with("shoehub-exporter check") {
                checks.push(cmd);
                continue;
            }
            host.ok(&cmd);
        }
    }
    checks
}

/// How the shop of a [`shop_deb`] answers.
#[derive(Clone, Copy)]
pub enum Shop {
    /// Its page, always.
    Good,
    /// 500, always.
    Broken,
    /// Its page for this many seconds after it starts, then 500 (a leak that breaks
    /// it after a while).
    BreaksAfter(u64),
}

/// The shop: a service on the host's port 8080 that answers as `shop` says.
pub fn shop_deb(dir: &Path, version: &str, shop: Shop) -> PathBuf {
    let good_for = match shop {
        Shop::Good => "None".to_owned(),
        Shop::Broken => "0".to_owned(),
        Shop::BreaksAfter(s) => s.to_string(),
    };
    let app = format!(
        "#!/usr/bin/python3\n\
         import http.server, time\n\
         START = time.monotonic()\n\
         GOOD_FOR = {good_for}\n\
         class Shop(http.server.BaseHTTPRequestHandler):\n\
         \x20   def do_GET(self):\n\
         \x20       good = GOOD_FOR is None or time.monotonic() - START < GOOD_FOR\n\
         \x20       body = b'Shoe Store Hub {version}' if good else b'Internal Server Error'\n\
         \x20       self.send_response(200 if good else 500)\n\
         \x20       self.send_header('Content-Length', str(len(body)))\n\
         \x20       self.end_headers()\n\
         \x20       self.wfile.write(body)\n\
         \x20   def log_message(self, *args):\n\
         \x20       pass\n\
         http.server.ThreadingHTTPServer(('127.0.0.1', 8080), Shop).serve_forever()\n"
    );
    let unit = "[Unit]\nDescription=The Shoe Store Hub shop\n\n\
                [Service]\nExecStart=/usr/lib/shoe-store-hub/shop.py\n\n\
                [Install]\nWantedBy=multi-user.target\n";
    // As Debian's packages do with their services: enabled, and restarted on upgrade.
    let postinst = "#!/bin/sh\nset -e\n\
                    if [ -d /run/systemd/system ]; then\n\
                    \x20 systemctl daemon-reload\n\
                    \x20 systemctl enable shoe-store-hub.service\n\
                    \x20 systemctl restart shoe-store-hub.service\n\
                    fi\n";
    super::aptrepo::tiny_deb(
        dir,
        "shoe-store-hub",
        version,
        &[
            ("usr/lib/shoe-store-hub/shop.py", &app),
            ("lib/systemd/system/shoe-store-hub.service", unit),
            ("postinst", postinst),
        ],
    )
}

/// `config` (the shipped config's text) with the shop's probe filled in under
/// `probes:`, as the README's Configure step asks.
pub fn with_shop_probe(config: &str) -> String {
    let probes = "probes:\n  - name: shop\n    url: http://127.0.0.1:8080/\n    \
                  expect_body: \"Shoe Store Hub\"\n";
    assert!(
        config.contains("\n# probes:"),
        "the shipped config has no probes"
    );
    config.replacen("\n# probes:", &format!("\n{probes}# probes:"), 1)
}

/// A port on `address` (of the test runner) that reaches `port` on its loopback: how
/// the booted hosts of a zone reach a service the test runs.
pub fn forward_to_loopback(address: &str, port: u16) -> u16 {
    let listener = TcpListener::bind((address, 0)).unwrap();
    let local = listener.local_addr().unwrap().port();
    std::thread::spawn(move || relay(&listener, port));
    local
}

/// A network zone's bridge (`vz-<name>`), deleted when this is dropped: after the hosts
/// booted into it, when it is made before them.
pub struct Zone(pub String);

impl Drop for Zone {
    fn drop(&mut self) {
        let link = format!("vz-{}", self.0);
        if Path::new("/sys/class/net").join(&link).exists() {
            let _ = Command::new("ip").args(["link", "del", &link]).status();
        }
    }
}
