//! The alerting chain as an operator deploys it from the shipped files: Prometheus from
//! `packaging/prometheus/prometheus.yml` and Alertmanager from
//! `packaging/alertmanager/alertmanager.yml`, with only addresses, paths and intervals
//! substituted, the rules from `generate alerts`, and every receiver pointed at a local
//! webhook that records what a pager would get.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{free_port, http, require_tool, Prometheus, BIN};

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// One alert as a webhook notification carries it.
#[derive(Debug, Clone)]
pub struct Notified {
    pub receiver: String,
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Notified {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// A webhook receiver on loopback: every alert of every notification, in order.
pub struct Webhook {
    pub port: u16,
    pub got: Arc<Mutex<Vec<Notified>>>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::clone(&got);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                let mut path = String::new();
                let mut length = 0usize;
                let mut first = true;
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    let l = line.trim_end().to_owned();
                    line.clear();
                    if first {
                        path = l.split(' ').nth(1).unwrap_or("").to_owned();
                        first = false;
                    } else if l.is_empty() {
                        break;
                    } else if let Some((k, v)) = l.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    continue;
                };
                let strings = |o: &serde_json::Value| -> BTreeMap<String, String> {
                    o.as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let receiver = path.trim_start_matches('/').to_owned();
                let mut g = store.lock().unwrap();
                for a in v["alerts"].as_array().into_iter().flatten() {
                    g.push(Notified {
                        receiver: receiver.clone(),
                        status: a["status"].as_str().unwrap_or("").to_owned(),
                        labels: strings(&a["labels"]),
                        annotations: strings(&a["annotations"]),
                    });
                }
            }
        });
        Webhook { port, got }
    }

    pub fn all(&self) -> Vec<Notified> {
        self.got.lock().unwrap().clone()
    }
}

/// Debian's Alertmanager with the shipped configuration, every receiver a webhook to
/// `hook` (at `/<receiver name>`), and the grouping waits shortened to a second.
pub struct Alertmanager {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    pub fn start(hook: &Webhook) -> Alertmanager {
        let bin = require_tool("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let shipped =
            std::fs::read_to_string(repo("packaging/alertmanager/alertmanager.yml")).unwrap();
        let mut cfg: serde_yaml::Value = serde_yaml::from_str(&shipped).unwrap();
        // Receivers: the same names, each delivering to the webhook.
        for r in cfg["receivers"].as_sequence_mut().unwrap() {
            let name = r["name"].as_str().unwrap().to_owned();
            let mut m = serde_yaml::Mapping::new();
            m.insert("name".into(), name.clone().into());
            let hookcfg: serde_yaml::Value = serde_yaml::from_str(&format!(
                "[{{url: 'http://127.0.0.1:{}/{name}', send_resolved: true}}]",
                hook.port
            ))
            .unwrap();
            m.insert("webhook_configs".into(), hookcfg);
            *r = serde_yaml::Value::Mapping(m);
        }
        // Timings: a second instead of minutes, everywhere they are set.
        fn shorten(v: &mut serde_yaml::Value) {
            if let Some(m) = v.as_mapping_mut() {
                for (k, val) in m.iter_mut() {
                    match k.as_str() {
                        Some("group_wait") | Some("group_interval") => *val = "1s".into(),
                        Some("repeat_interval") => *val = "1m".into(),
                        _ => shorten(val),
                    }
                }
            } else if let Some(s) = v.as_sequence_mut() {
                s.iter_mut().for_each(shorten);
            }
        }
        shorten(&mut cfg["route"]);
        let path = dir.path().join("alertmanager.yml");
        std::fs::write(&path, serde_yaml::to_string(&cfg).unwrap()).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let am = Alertmanager {
            child,
            port,
            _dir: dir,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || http("GET", port, "/-/ready", &[]).status != 200
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "alertmanager not ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        am
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rules `generate alerts` writes for `config` (the exporter's YAML), every `for:`
/// shortened sixty times (minutes become seconds, 15 s at least), as a drill cannot wait
/// for minutes.
pub fn generated_rules(config: &Path) -> String {
    let out = Command::new(BIN)
        .args(["generate", "alerts", "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(d) => {
                let indent = &l[..l.len() - l.trim_start().len()];
                let (n, unit) = d.split_at(d.len() - 1);
                let n: u64 = n.parse().unwrap();
                let secs = match unit {
                    "m" => n,
                    "h" => n * 60,
                    "d" => n * 1440,
                    _ => panic!("a for: of {d}"),
                };
                // Never under 15 s: Prometheus starting on a busy machine can take
                // seconds to scrape a target at all, which `absent()` would count.
                let secs = if secs == 0 { 0 } else { secs.max(15) };
                format!("{indent}for: {secs}s")
            }
            None if l.contains(" offset ") => shorten_days(l),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A rule that compares now with days ago (`[3d]`, `offset 3d`) gets ten seconds for
/// each day, so that a drill sees it fire within a minute.
fn shorten_days(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (n, after) = tail.split_at(digits);
        let word_before = head.ends_with('[') || head.ends_with("offset ");
        match after.strip_prefix('d') {
            Some(after) if word_before => {
                let days: u64 = n.parse().unwrap();
                out.push_str(&format!("{}s", days * 10));
                rest = after;
            }
            _ => {
                out.push_str(n);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Prometheus from the shipped config: the exporter's address for `shop-host:9742`,
/// Alertmanager's for `localhost:9093`, the rules file, and 1 s intervals.
pub fn start_prometheus(exporter: &str, alertmanager: u16, rules: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("shoehub.rules.yml");
    std::fs::write(&rules_path, rules).unwrap();
    let mut cfg = std::fs::read_to_string(repo("packaging/prometheus/prometheus.yml")).unwrap();
    for (from, to) in [
        ("shop-host:9742", exporter.to_owned()),
        ("localhost:9093", format!("127.0.0.1:{alertmanager}")),
        (
            "/etc/prometheus/shoehub/*.rules.yml",
            rules_path.display().to_string(),
        ),
        ("scrape_interval: 15s", "scrape_interval: 1s".to_owned()),
        ("scrape_timeout: 10s", "scrape_timeout: 1s".to_owned()),
        (
            "evaluation_interval: 15s",
            "evaluation_interval: 1s".to_owned(),
        ),
    ] {
        assert!(
            cfg.contains(from),
            "packaging/prometheus/prometheus.yml no longer has {from:?}: update the drills"
        );
        cfg = cfg.replace(from, &to);
    }
    // Alerts that fire before the notifier has found Alertmanager are sent again after
    // the resend delay (a minute by default): a second here.
    Prometheus::start_with_config(&cfg, Some(dir), &["--rules.alert.resend-delay=1s"])
}
