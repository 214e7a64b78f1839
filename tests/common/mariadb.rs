//! A real MariaDB server for the tests: `mariadb-install-db` once into a template data
//! directory, then one private copy per server, started with `mariadbd --no-defaults`
//! on a free loopback port and a socket in its own directory. The server is the
//! Debian `mariadb-server` package's; a missing one fails with what to install.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, require_tool};

/// The account the exporter logs in with, and its password.
pub const EXPORTER_USER: &str = "exporter";
pub const EXPORTER_PASSWORD: &str = "Ex-p0rt3r secret!";

pub struct MariaDb {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

/// The OS user the server runs as, which `mariadb-install-db` also makes a
/// socket-authenticated administrator.
fn os_user() -> String {
    // SAFETY: geteuid has no preconditions.
    if shoehub_exporter::sys::euid() == 0 {
        "root".to_owned()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "root".to_owned())
    }
}

/// A data directory with the system tables, made once per test binary run.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let install = require_tool("mariadb-install-db", "mariadb-server");
        require_tool("mariadb", "mariadb-client");
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Templates of test processes that have ended.
        for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("mariadb-template-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let base = tmp.join(format!("mariadb-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let out = Command::new(install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", base.display()))
            .arg(format!("--user={}", os_user()))
            .arg("--auth-root-authentication-method=socket")
            .arg("--skip-test-db")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb-install-db failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        base
    })
}

impl MariaDb {
    /// A fresh server with a `shoe_store_hub` schema of two tables and the exporter's
    /// account with exactly the README's grants for MariaDB (so the tests prove they
    /// suffice).
    pub fn start() -> MariaDb {
        Self::start_with(&[])
    }

    /// [`MariaDb::start`] with more `mariadbd` options (`--log-bin`, `--server-id=2`).
    pub fn start_with(extra: &[&str]) -> MariaDb {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template())
            .arg(&data)
            .status()
            .unwrap();
        assert!(status.success(), "cannot copy the template data directory");
        let mut db = MariaDb {
            dir,
            port: free_port(),
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        db.launch_first();
        db.sql(&format!(
            "CREATE DATABASE shoe_store_hub;
             CREATE USER '{EXPORTER_USER}'@'localhost' IDENTIFIED BY '{EXPORTER_PASSWORD}' WITH MAX_USER_CONNECTIONS 3;
             CREATE USER '{EXPORTER_USER}'@'127.0.0.1' IDENTIFIED BY '{EXPORTER_PASSWORD}' WITH MAX_USER_CONNECTIONS 3;
             GRANT SLAVE MONITOR ON *.* TO '{EXPORTER_USER}'@'localhost';
             GRANT SLAVE MONITOR ON *.* TO '{EXPORTER_USER}'@'127.0.0.1';
             GRANT REFERENCES ON shoe_store_hub.* TO '{EXPORTER_USER}'@'localhost';
             GRANT REFERENCES ON shoe_store_hub.* TO '{EXPORTER_USER}'@'127.0.0.1';
             CREATE TABLE shoe_store_hub.products (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), price DECIMAL(8,2)) ENGINE=InnoDB;
             CREATE TABLE shoe_store_hub.orders (id INT PRIMARY KEY AUTO_INCREMENT, product INT, qty INT, KEY (product)) ENGINE=InnoDB;"
        ));
        db
    }

    /// Lets every user reach the socket, as `/run/mysqld` (0755) does.
    #[allow(dead_code)]
    pub fn open_socket_dir(&self) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The first start. The port was free when it was chosen, but on a busy machine a
    /// client's connection elsewhere can take it as its own port before mariadbd binds
    /// it: then the server starts again on another.
    fn launch_first(&mut self) {
        for _ in 0..4 {
            // Each attempt's own log: a failed one's lines are not read as the next's.
            let _ = std::fs::remove_file(self.dir.path().join("error.log"));
            match self.try_launch() {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") => self.port = free_port(),
                Err(log) => panic!("{log}"),
            }
        }
        self.launch();
    }

    fn launch(&mut self) {
        if let Err(log) = self.try_launch() {
            panic!("{log}");
        }
    }

    /// Starts the server and waits until it answers; the error log when it exits first.
    fn try_launch(&mut self) -> Result<(), String> {
        let server = require_tool("mariadbd", "mariadb-server");
        let log = self.dir.path().join("error.log");
        // Its temporary tables in a directory of its own, not the shared /tmp, where a
        // concurrent test's cleanup must not reach them.
        let tmp = self.dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--datadir={}", self.data_dir().display()))
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!(
                "--pid-file={}",
                self.dir.path().join("mysqld.pid").display()
            ))
            .arg(format!("--log-error={}", log.display()))
            .arg(format!("--user={}", os_user()))
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--skip-name-resolve")
            .arg("--max-connections=50")
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        loop {
            if self.try_sql("SELECT 1").is_ok() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "mariadbd exited at start ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ));
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "mariadbd did not start within 60 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs statements as the administrator over the socket; the rows come back
    /// tab-separated, one line each, without a header.
    pub fn sql(&self, statements: &str) -> String {
        self.try_sql(statements)
            .unwrap_or_else(|e| panic!("SQL failed: {e}\n{statements}"))
    }

    pub fn try_sql(&self, statements: &str) -> Result<String, String> {
        let out = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.socket().display()))
            .arg(format!("--user={}", os_user()))
            .args(["--batch", "--skip-column-names", "--execute", statements])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// One value of `SHOW GLOBAL STATUS`.
    pub fn status(&self, name: &str) -> f64 {
        let out = self.sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"));
        out.split('\t')
            .nth(1)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no status {name}: {out:?}"))
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("server running").id() as i32
    }

    /// Stops the server (SIGTERM, then waits for it to exit).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            shoehub_exporter::sys::kill(child.id(), shoehub_exporter::sys::SIGTERM);
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.launch();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server process.
    pub fn signal(&self, sig: shoehub_exporter::sys::Signal) {
        shoehub_exporter::sys::kill(self.pid() as u32, sig);
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        // A failing test shows what the server said, which is where a lost connection
        // or a crash is explained.
        if std::thread::panicking() {
            let log =
                std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!(
                "--- the end of mariadbd's error log (port {}) ---",
                self.port
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        if let Some(mut child) = self.child.take() {
            shoehub_exporter::sys::kill(child.id(), shoehub_exporter::sys::SIGCONT);
            shoehub_exporter::sys::kill(child.id(), shoehub_exporter::sys::SIGKILL);
            let _ = child.wait();
        }
    }
}
