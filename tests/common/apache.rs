//! Debian's apache2 on a loopback port with its own configuration in a directory of the
//! test's: the shop's web server as operators run it, plain or with TLS (mod_ssl).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require_tool};

pub struct Apache {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    conf: PathBuf,
}

/// A certificate and its key, for mod_ssl.
pub struct Tls<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Apache {
    /// Serves `<h1>Shoe Store Hub</h1>` over HTTP, logging to `log` with `%D`.
    pub fn start(dir: &Path, log: &Path) -> Apache {
        Self::start_with(dir, log, None)
    }

    /// The same over HTTPS.
    pub fn start_tls(dir: &Path, log: &Path, tls: Tls<'_>) -> Apache {
        Self::start_with(dir, log, Some(tls))
    }

    fn start_with(dir: &Path, log: &Path, tls: Option<Tls<'_>>) -> Apache {
        require_tool("apache2", "apache2");
        let port = free_port();
        let docs = dir.join("htdocs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("index.html"), "<h1>Shoe Store Hub</h1>\n").unwrap();
        let modules = Path::new("/usr/lib/apache2/modules");
        let ssl = match &tls {
            None => String::new(),
            Some(t) => format!(
                "LoadModule socache_shmcb_module {m}/mod_socache_shmcb.so\n\
                 LoadModule ssl_module {m}/mod_ssl.so\n\
                 SSLSessionCache \"shmcb:{root}/ssl_scache(51200)\"\n\
                 SSLEngine on\n\
                 SSLCertificateFile \"{cert}\"\n\
                 SSLCertificateKeyFile \"{key}\"\n",
                m = modules.display(),
                root = dir.display(),
                cert = t.cert.display(),
                key = t.key.display(),
            ),
        };
        let conf = dir.join("httpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"ServerRoot "{root}"
ServerName localhost
Listen 127.0.0.1:{port}
PidFile "{root}/httpd.pid"
ErrorLog "{root}/error.log"
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule alias_module {m}/mod_alias.so
LoadModule dir_module {m}/mod_dir.so
LoadModule mime_module {m}/mod_mime.so
{ssl}TypesConfig /etc/mime.types
DocumentRoot "{docs}"
DirectoryIndex index.html
<Directory "{docs}">
  Require all granted
</Directory>
Redirect 302 /old-shoes /index.html
Redirect 503 /checkout
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{{Referer}}i\" \"%{{User-agent}}i\" %D" combined_duration
CustomLog "{log}" combined_duration
"#,
                root = dir.display(),
                m = modules.display(),
                docs = docs.display(),
                log = log.display(),
            ),
        )
        .unwrap();
        let mut a = Apache {
            child: None,
            port,
            dir: dir.to_owned(),
            conf,
        };
        a.launch();
        a
    }

    fn launch(&mut self) {
        let bin = require_tool("apache2", "apache2");
        let child = Command::new(bin)
            .args(["-f", self.conf.to_str().unwrap(), "-DFOREGROUND"])
            .env("APACHE_RUN_DIR", &self.dir)
            .env("APACHE_LOCK_DIR", &self.dir)
            .env("APACHE_LOG_DIR", &self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "apache2 exited ({status}): {}",
                    std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "apache2 did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it as its init script would (SIGTERM: the parent stops its workers
    /// first), so the port refuses connections afterwards. SIGKILL would leave the
    /// workers serving.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            shoehub_exporter::sys::kill(c.id(), shoehub_exporter::sys::SIGTERM);
            let t = Instant::now();
            while c.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
            let t = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "apache2's workers still listen after it stopped"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        self.stop();
    }
}
