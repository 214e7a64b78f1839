//! Helpers shared by the integration tests: start the real binary, talk HTTP to it,
//! parse what it serves, and find the real peer tools (a missing one fails the test
//! with what to install).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod alerting;
pub mod apache;
pub mod aptrepo;
pub mod booted;
pub mod cases;
pub mod grafana;
pub mod mariadb;
pub mod tls;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_shoehub-exporter");

/// A free loopback port (bound, then released for the process under test).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A command that runs its arguments as the shipped exporter unit runs the exporter,
/// as far as a test can without systemd, as the user `setpriv_user` gives (setpriv's
/// options): in a mount namespace of its own where
/// - every mount is read-only, as `ProtectSystem=strict`, `ReadOnlyPaths=/`,
///   `ProtectHome=read-only` and `ProtectKernelTunables=` make them (each mount's own
///   flag, in this namespace only);
/// - `/tmp` and `/var/tmp` are empty, writable and its own (`PrivateTmp=`), with the
///   directories of the old `/tmp` bound back read-only (tempfile's, where its config
///   and the files it is told to read are, and a checkout or target directory that may
///   hold the binary itself), as `BindReadOnlyPaths=` would; the old `/tmp` is reached
///   through the working directory, which the mount does not move;
/// - `/dev` holds only the pseudo devices (`PrivateDevices=`): null, zero, full,
///   random, urandom, tty, and a `/dev/shm` of its own;
/// - socket(2) fails for the address families the shipped unit's
///   `RestrictAddressFamilies=` leaves out, through a seccomp filter as systemd installs
///   one (tests/systemd/restrict_address_families.py).
///
/// Then the check that `/` is read-only in there, and the user switch.
pub fn sandbox(setpriv_user: &str) -> Vec<String> {
    sandbox_allowing(setpriv_user, &unit_address_families())
}

/// The address families the shipped exporter unit allows (`RestrictAddressFamilies=`).
pub fn unit_address_families() -> Vec<String> {
    let unit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/shoehub-exporter.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RestrictAddressFamilies="))
        .unwrap_or_else(|| panic!("{} has no RestrictAddressFamilies=", unit.display()));
    line.split_whitespace().map(str::to_owned).collect()
}

/// [`sandbox`], with socket(2) allowed for `families` only.
pub fn sandbox_allowing(setpriv_user: &str, families: &[String]) -> Vec<String> {
    let python = Path::new("/usr/bin/python3");
    let seccomp = Command::new(python)
        .args(["-c", "import seccomp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        seccomp,
        "Debian's python3-seccomp is needed for the unit's RestrictAddressFamilies= \
         (scripts/test installs it)"
    );
    let restrict =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/restrict_address_families.py");
    assert_eq!(
        shoehub_exporter::sys::euid(),
        0,
        "the sandbox needs root (unshare --mount); run the tests as root"
    );
    require_tool("unshare", "util-linux");
    require_tool("setpriv", "util-linux");
    let script = format!(
        "for m in $(awk '{{print $5}}' /proc/self/mountinfo); do \
          mount -o remount,bind,ro \"$m\" 2>/dev/null; done; \
        cd /tmp && mount -t tmpfs -o mode=1777 private-tmp /tmp \
        && mount -t tmpfs -o mode=1777 private-var-tmp /var/tmp \
        && for d in .[!.]* *; do \
          [ -d \"$d\" ] || continue; \
          mkdir \"/tmp/$d\" && mount --no-canonicalize --bind \"$d\" \"/tmp/$d\" \
          && mount -o remount,bind,ro \"/tmp/$d\" || exit 1; done; \
        cd /dev && mount -t tmpfs -o mode=755,nosuid,noexec private-dev /dev \
        && for n in null zero full random urandom tty; do \
          touch \"/dev/$n\" && mount --no-canonicalize --bind \"./$n\" \"/dev/$n\" || exit 1; done \
        && mkdir /dev/shm && mount -t tmpfs -o mode=1777,nosuid,nodev private-shm /dev/shm \
        && [ -c /dev/null ] \
        && cd / && grep -q ' / / ro' /proc/self/mountinfo \
        && exec setpriv {setpriv_user} {python} \"{restrict}\" {families} -- \"$0\" \"$@\"",
        python = python.display(),
        restrict = restrict.display(),
        families = families.join(" "),
    );
    [
        "unshare",
        "--mount",
        "--propagation",
        "slave",
        "sh",
        "-c",
        &script,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Waits (up to twenty seconds) until `done` says yes.
#[allow(dead_code)]
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "waited in vain: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether statfs of `mountpoint` fails on the host for the user `setpriv_user` gives
/// (setpriv's options): a mount below a directory closed to that user fails in the
/// sandbox too, and is not the sandbox's doing.
#[allow(dead_code)]
pub fn statfs_fails_on_host_as(setpriv_user: &str, mountpoint: &str) -> bool {
    let out = Command::new("setpriv")
        .args(setpriv_user.split(' '))
        .args(["stat", "-f", "--", mountpoint])
        .output()
        .unwrap();
    !out.status.success()
}

/// Every collector in `m` succeeded, but the filesystem collector where the mounts it
/// failed on fail on the host too for the same user (`setpriv_user`).
#[allow(dead_code)]
pub fn assert_every_collector_succeeds(m: &Exposition, setpriv_user: &str, log: &str) {
    for s in m.family("shoehub_scrape_collector_success") {
        let name = &s.labels["collector"];
        if s.value == 1.0 {
            continue;
        }
        assert_eq!(name, "filesystem", "{name} failed: {log}");
        for mp in m
            .family("node_filesystem_device_error")
            .into_iter()
            .filter(|s| s.value == 1.0)
        {
            let mp = &mp.labels["mountpoint"];
            assert!(
                statfs_fails_on_host_as(setpriv_user, mp),
                "{mp} fails only in the sandbox: {log}"
            );
        }
    }
}

/// The setpriv options of the sandbox's default user: nobody, in adm as the unit's
/// `SupplementaryGroups=` puts the exporter's user.
pub const SANDBOX_USER: &str = "--reuid=65534 --regid=65534 --groups=4";

/// The uid and gid the sandboxed exporter runs as (`nobody`, `nogroup`).
pub const EXPORTER_UID: u32 = 65534;

/// Creates `dir` as the package's tmpfiles.d entry creates the directories that root's
/// jobs write and the exporter reads: root's, group of the exporter, mode 2750 (setgid,
/// so that what the jobs create in it, mode 0640, is the exporter's group's to read).
#[allow(dead_code)]
pub fn shared_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::os::unix::fs::chown(dir, Some(0), Some(EXPORTER_UID)).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2750)).unwrap();
}

/// The SQL block of the docs (docs/mysql.md, docs/jobs.md) that starts with
/// `first_line`, for an account on 127.0.0.1 with `password`: the grants exactly as the
/// docs give them.
#[allow(dead_code)]
pub fn documented_sql(first_line: &str, password: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs: String = ["docs/mysql.md", "docs/jobs.md"]
        .iter()
        .map(|p| std::fs::read_to_string(root.join(p)).unwrap())
        .collect();
    let start = docs
        .find(&format!("```sql\n{first_line}"))
        .unwrap_or_else(|| panic!("the docs have no SQL block starting {first_line:?}"));
    let block = &docs[start + 7..];
    let block = &block[..block.find("```").unwrap()];
    assert!(!block.contains("GRANT ALL"), "{block}");
    block
        .replace("'localhost'", "'127.0.0.1'")
        .replace("CHANGE-ME", password)
}

/// The binary with `--config CONFIG` and `args`, its clock shifted by `faketime`
/// (libfaketime's offset, such as `-3d`) when given.
#[allow(dead_code)]
pub fn run_at(config: &Path, args: &[&str], faketime: Option<&str>) -> std::process::Output {
    let mut c = match faketime {
        Some(offset) => {
            let mut c = Command::new(require_tool("faketime", "faketime"));
            c.args(["-f", offset]).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    // --config first: what follows `--` belongs to a job's command.
    c.arg("--config").arg(config).args(args).output().unwrap()
}

/// Debian's node_exporter with its default collectors on a free loopback port, once it
/// answers: the process (killed on drop) and its port.
#[allow(dead_code)]
pub fn start_node_exporter() -> (KillOnDrop, u16) {
    start_node_exporter_with(&[])
}

/// node_exporter with these arguments besides its listen address.
#[allow(dead_code)]
pub fn start_node_exporter_with(args: &[&str]) -> (KillOnDrop, u16) {
    start_node_exporter_env(args, &[])
}

/// node_exporter with these arguments and environment variables.
#[allow(dead_code)]
pub fn start_node_exporter_env(args: &[&str], env: &[(&str, &str)]) -> (KillOnDrop, u16) {
    let port = free_port();
    let child = Command::new(require_tool(
        "prometheus-node-exporter",
        "prometheus-node-exporter",
    ))
    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
    .args(args)
    .envs(env.iter().copied())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let node = KillOnDrop(child);
    wait_until("node_exporter answers", || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (node, port)
}

/// A config in `dir` that sets only the job state directory (below `dir`): enough for
/// the commands that read or write job state, and nothing outside `dir`.
#[allow(dead_code)]
pub fn jobs_only_config(dir: &Path) -> PathBuf {
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!("jobs:\n  state_dir: {}\n", dir.join("jobs").display()),
    )
    .unwrap();
    config
}

/// That `collector`'s last run in `m` succeeded; else what the exporter logged.
#[allow(dead_code)]
pub fn assert_collector_succeeded(e: &Exporter, m: &Exposition, collector: &str) {
    assert_eq!(
        m.value(
            "shoehub_scrape_collector_success",
            &[("collector", collector)]
        ),
        Some(1.0),
        "{collector}: {}",
        e.stderr()
    );
}

/// The path of a required tool, or a failure that says how to get it.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "required tool `{name}` is not installed: install Debian's `{package}` package \
         (scripts/test installs it when missing)"
    );
}

/// What a peer exporter on `port` serves now.
#[allow(dead_code)]
pub fn scrape_port(port: u16) -> Exposition {
    Exposition::parse(&String::from_utf8_lossy(
        &http("GET", port, "/metrics", &[]).body,
    ))
}

/// The first line a child prints, read as it arrives (a daemon's address, "ready").
#[allow(dead_code)]
pub fn first_line(child: &mut Child) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout piped")),
        &mut line,
    )
    .unwrap();
    line.trim().to_owned()
}

/// A peer process (node_exporter, mysqld_exporter), killed when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running exporter, killed when dropped.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
    pub stderr_path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Exporter {
    /// Starts the binary with `config` (YAML text) on a free port and waits until it
    /// answers.
    pub fn start(config: &str) -> Exporter {
        Self::start_with_args(config, &[])
    }

    pub fn start_with_args(config: &str, extra: &[&str]) -> Exporter {
        Self::start_under(&[], config, extra)
    }

    /// Starts the binary as the shipped unit runs it, as far as a test can without
    /// systemd: in the [`sandbox`], as the unprivileged user `nobody`. (`mount --bind / /`
    /// would not do for the read-only root: the process's root stays the mount
    /// underneath.) Mounts made on the host later propagate in (slave propagation), as
    /// into a systemd service's namespace. Needs root and util-linux's unshare and
    /// setpriv.
    pub fn start_sandboxed(config: &str) -> Exporter {
        Self::start_sandboxed_behind(&[], config)
    }

    /// As [`Exporter::start_sandboxed`], the binary started by `prefix` (a command that
    /// ends by executing its arguments, such as `faketime -f +30s`).
    pub fn start_sandboxed_behind(prefix: &[&str], config: &str) -> Exporter {
        let wrapper = sandbox(SANDBOX_USER);
        let mut wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        wrapper.extend_from_slice(prefix);
        Self::start_under(&wrapper, config, &[])
    }

    /// Starts the binary behind `wrapper` (a command that ends by executing its
    /// arguments), with `config` and `extra` arguments.
    pub fn start_under(wrapper: &[&str], config: &str, extra: &[&str]) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        if !wrapper.is_empty() {
            // An unprivileged exporter must be able to read its config.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let cfg = dir.path().join("config.yml");
        // apt is asked in the background, which takes seconds of CPU; only the tests
        // that are about it (they say `updates:`) turn it on.
        let config = if config.contains("updates:") {
            config.to_owned()
        } else {
            format!("{config}\nupdates:\n  apt: false\n")
        };
        std::fs::write(&cfg, config).unwrap();
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        argv.push(BIN.to_owned());
        argv.extend(["--config".to_owned(), cfg.display().to_string()]);
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::spawn_listening(dir, &argv, &extra)
    }

    /// Starts `program` (an installed binary) behind `wrapper` with the config file
    /// `config` as it is, only the listen address given on the command line.
    #[allow(dead_code)]
    pub fn start_installed(wrapper: &[String], program: &str, config: &Path) -> Exporter {
        let mut argv = wrapper.to_vec();
        argv.extend([
            program.to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ]);
        Self::spawn_listening(tempfile::tempdir().unwrap(), &argv, &[])
    }

    /// Runs `argv` with a free port's listen address (then `extra`), its stderr in
    /// `dir`, until it listens. A port found free can be taken by another process before
    /// the exporter binds it; the exporter then exits saying so, and is started again on
    /// another.
    fn spawn_listening(dir: tempfile::TempDir, argv: &[String], extra: &[String]) -> Exporter {
        let stderr_path = dir.path().join("stderr.log");
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&argv[0])
                .args(&argv[1..])
                .arg("--web.listen-address")
                .arg(format!("127.0.0.1:{port}"))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&stderr_path).unwrap())
                .spawn()
                .unwrap();
            if wait_listening(&mut child, &stderr_path) {
                return Exporter {
                    child,
                    port,
                    stderr_path,
                    _dir: Some(dir),
                };
            }
        }
        panic!("no free port could be bound in five tries");
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http("GET", self.port, path, headers)
    }

    pub fn metrics(&self) -> Exposition {
        let r = self.get("/metrics", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        Exposition::parse(&r.text())
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Waits until the exporter logs that it listens (its own socket, not another process
/// on the same port); false when it exited because the port was taken.
fn wait_listening(child: &mut Child, stderr_path: &Path) -> bool {
    let t = Instant::now();
    let stderr = || std::fs::read_to_string(stderr_path).unwrap_or_default();
    while t.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().unwrap() {
            let log = stderr();
            if log.contains("cannot listen on") {
                return false;
            }
            panic!("exporter exited early with {status}: {log}");
        }
        if stderr().contains("listening") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("exporter did not listen within 10s: {}", stderr());
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; handles Content-Length and chunked.
pub fn http(method: &str, port: u16, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_response(&raw, method == "HEAD")
}

pub fn parse_response(raw: &[u8], head: bool) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked && !head {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap();
        b = &b[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// A parsed text exposition: family metadata and samples.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: BTreeMap<String, String>,
    pub helps: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Exposition {
    /// The series whose family name starts with one of `prefixes`, each as
    /// `name{labels} value`, sorted: two exporters' lists compare with `assert_eq!`.
    #[allow(dead_code)]
    pub fn series_with_prefix(&self, prefixes: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = self
            .samples
            .iter()
            .filter(|s| prefixes.iter().any(|p| s.name.starts_with(p)))
            .map(|s| format!("{}{:?} {}", s.name, s.labels, s.value))
            .collect();
        v.sort();
        v
    }

    pub fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (n, t) = rest.split_once(' ').unwrap();
                assert!(
                    e.types.insert(n.to_owned(), t.to_owned()).is_none(),
                    "family {n} declared twice"
                );
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                let (n, h) = rest.split_once(' ').unwrap();
                e.helps.insert(n.to_owned(), h.to_owned());
            } else if line.starts_with('#') || line.is_empty() {
                continue;
            } else {
                e.samples.push(parse_sample(line));
            }
        }
        e
    }

    pub fn family(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => {
            let (n, v) = line.split_once(' ').unwrap();
            return Sample {
                name: n.to_owned(),
                labels: BTreeMap::new(),
                value: parse_value(v),
            };
        }
    };
    let mut labels = BTreeMap::new();
    let bytes = rest.as_bytes();
    let mut i = 1;
    while bytes[i] != b'}' {
        let eq = rest[i..].find('=').unwrap() + i;
        let key = rest[i..eq].trim_start_matches(',').to_owned();
        let mut j = eq + 2;
        let mut val = String::new();
        while bytes[j] != b'"' {
            if bytes[j] == b'\\' {
                j += 1;
                val.push(match bytes[j] {
                    b'n' => '\n',
                    c => c as char,
                });
            } else {
                val.push(bytes[j] as char);
            }
            j += 1;
        }
        labels.insert(key, val);
        i = j + 1;
        if bytes[i] == b',' {
            i += 1;
        }
    }
    Sample {
        name: name.to_owned(),
        labels,
        value: parse_value(rest[i + 1..].trim()),
    }
}

fn parse_value(v: &str) -> f64 {
    match v.split(' ').next().unwrap() {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        x => x.parse().unwrap_or_else(|_| panic!("bad value {x:?}")),
    }
}

/// Percent-encodes a query-string value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A real Prometheus server in a temporary directory, killed when dropped.
pub struct Prometheus {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Files the config names (rules), kept for its life.
    _files: Option<tempfile::TempDir>,
}

impl Prometheus {
    /// Starts Debian's prometheus with `scrape_configs` (YAML list items, already
    /// indented by two spaces) and a 1s scrape interval.
    pub fn start(scrape_configs: &str) -> Prometheus {
        Self::start_with_config(
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n{scrape_configs}"
            ),
            None,
            &[],
        )
    }

    /// Starts Debian's prometheus with the whole config `text` and `flags`; `files`
    /// holds what the config names and lives as long as the server.
    pub fn start_with_config(
        text: &str,
        files: Option<tempfile::TempDir>,
        flags: &[&str],
    ) -> Prometheus {
        let bin = require_tool("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, text).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus {
            child,
            port,
            dir,
            _files: files,
        };
        let t = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok()
                && http("GET", port, "/-/ready", &[]).status == 200
            {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "prometheus not ready: {}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        p
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The config file it reads; [`Prometheus::reload`] makes it read it again.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.yml")
    }

    /// SIGHUP: Prometheus reads its config again, as after an operator's edit.
    pub fn reload(&self) {
        shoehub_exporter::sys::kill(self.child.id(), shoehub_exporter::sys::SIGHUP);
    }

    /// An instant query; returns the result vector (or scalar as one element).
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let r = http(
            "GET",
            self.port,
            &format!("/api/v1/query?query={}", urlencode(q)),
            &[],
        );
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("bad JSON for {q}: {e}: {}", r.text()));
        assert_eq!(v["status"], "success", "query {q} failed: {}", r.text());
        match v["data"]["resultType"].as_str() {
            Some("vector") | Some("matrix") => v["data"]["result"].as_array().unwrap().clone(),
            Some("scalar") => {
                let s = &v["data"]["result"];
                if s[1].as_str() == Some("NaN") {
                    vec![]
                } else {
                    vec![s.clone()]
                }
            }
            _ => vec![],
        }
    }

    /// Waits until `q` returns at least one series.
    /// Each target's job, health, last error and scrape duration, for failure messages.
    pub fn targets(&self) -> String {
        let r = http("GET", self.port, "/api/v1/targets", &[]);
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        v["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{} {} {:?} ({}s)",
                    t["labels"]["job"], t["health"], t["lastError"], t["lastScrapeDuration"]
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn wait_for(&self, q: &str, timeout: Duration) -> Vec<serde_json::Value> {
        let t = Instant::now();
        loop {
            let r = self.query(q);
            if !r.is_empty() {
                return r;
            }
            assert!(
                t.elapsed() < timeout,
                "no result for {q} within {timeout:?}; targets: {}; log: {}",
                self.targets(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
