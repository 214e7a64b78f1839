//! The checks that ask a server: the exporter itself (as Prometheus reaches it, with
//! the web config's TLS and basic auth), the shop's probes, Prometheus with its rules
//! and Alertmanager, and Grafana through its HTTP API.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use super::scraped::{self, Limits};
use super::{combine, Check, CheckConfig, Report};
use crate::collectors::probe::{http::Prober, ProbeConfig, ProbeUrl, Redirects};
use crate::config::Config;

/// The most of an answer a check reads (Prometheus' rules are the largest).
const MAX_ANSWER: usize = 32 << 20;

/// A file holding a secret: private to its owner, one line.
fn read_secret(key: &str, path: &Path) -> Result<String, String> {
    let file = crate::regular::open(path)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{key} {p} can be read by group or others (mode {:04o}); it holds a secret, so make it private: chmod 600 {p}",
            meta.mode() & 0o7777,
            p = path.display()
        ));
    }
    let bytes = crate::regular::read_bounded(&file, 64 << 10)
        .map_err(|e| format!("cannot read {key} {}: {e}", path.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{key} {}: not UTF-8 text", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.is_empty() || secret.contains('\n') {
        return Err(format!(
            "{key} {}: it must hold the secret alone, on one line",
            path.display()
        ));
    }
    Ok(secret.to_owned())
}

/// A GET of `url` with `headers`: status and body.
async fn get(
    url: &url::Url,
    headers: &BTreeMap<String, String>,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<(u16, Vec<u8>), String> {
    let cfg = ProbeConfig {
        name: "check".to_owned(),
        url: ProbeUrl(url.clone()),
        expect_status: Vec::new(),
        expect_body: None,
        timeout: crate::value::DurationValue(timeout),
        tls_ca_file: ca_file.map(Path::to_owned),
        insecure_skip_verify: false,
        headers: headers.clone(),
        method: Default::default(),
        follow_redirects: Redirects::None,
    };
    Prober::client(&cfg, MAX_ANSWER)?.get().await
}

/// A GET that must answer 200 with JSON.
async fn get_json(
    url: &url::Url,
    headers: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<Value, String> {
    let (status, body) = get(url, headers, None, timeout).await?;
    if status != 200 {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        return Err(format!("{url} answered {status}: {}", text.trim()));
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON: {e}"))
}

fn join(base: &url::Url, path: &str) -> url::Url {
    let mut b = base.clone();
    if !b.path().ends_with('/') {
        let p = format!("{}/", b.path());
        b.set_path(&p);
    }
    b.join(path).unwrap_or(b)
}

/// The exporter's metrics URL: `check.exporter_url`, else the listen address on
/// loopback when it listens on every address.
pub fn exporter_url(config: &Config) -> Result<url::Url, String> {
    if let Some(u) = &config.check.exporter_url {
        return Ok(u.0.clone());
    }
    let addr = config.web.listen_address.0;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(a) if a.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V4(a) => a.to_string(),
        std::net::IpAddr::V6(a) => format!("[{a}]"),
    };
    let text = format!("http://{ip}:{}{}", addr.port(), config.web.telemetry_path.0);
    url::Url::parse(&text).map_err(|e| format!("{text}: {e}"))
}

/// `exporter`: the metrics answer, and every collector in it succeeds.
pub async fn exporter(config: &Config) -> Check {
    let c = &config.check;
    let url = match exporter_url(config) {
        Ok(u) => u,
        Err(e) => return Check::failed("exporter", e, "set check.exporter_url"),
    };
    let mut headers = BTreeMap::new();
    if let (Some(user), Some(file)) = (&c.exporter_username, &c.exporter_password_file) {
        let password = match read_secret("check.exporter_password_file", file) {
            Ok(p) => p,
            Err(e) => return Check::failed("exporter", e, "fix the file the detail names"),
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert("authorization".to_owned(), format!("Basic {token}"));
    }
    let ca = c.exporter_ca_file.as_deref();
    let (status, body) = match get(&url, &headers, ca, c.timeout.get()).await {
        Ok(a) => a,
        Err(e) => {
            return Check::failed(
                "exporter",
                format!("the exporter does not answer: {e}"),
                "is it running? `systemctl status shoehub-exporter`; check.exporter_url says where it is looked for",
            )
        }
    };
    match status {
        200 => {}
        401 => {
            return Check::failed(
                "exporter",
                format!("{url} refused the credentials (401)"),
                "set check.exporter_username and check.exporter_password_file to a user of the web config file",
            )
        }
        s => {
            return Check::failed(
                "exporter",
                format!("{url} answered {s}"),
                "the exporter's log (`journalctl -u shoehub-exporter`) says why",
            )
        }
    }
    let samples = scraped::samples(&body, |n| n == "shoehub_scrape_collector_success");
    if samples.is_empty() {
        return Check::failed(
            "exporter",
            format!(
                "{url} answers, but with no shoehub_scrape_collector_success: is it this exporter?"
            ),
            "point check.exporter_url at the exporter's metrics path",
        );
    }
    // Why a collector failed is not a metric: the exporter's status says it.
    let mut causes = BTreeMap::new();
    if samples.iter().any(|s| s.value != 1.0) {
        let status_url = join(&url, "/-/status");
        if let Ok(v) = async {
            let (code, body) = get(&status_url, &headers, ca, c.timeout.get()).await?;
            if code != 200 {
                return Err(String::new());
            }
            serde_json::from_slice::<Report>(&body).map_err(|e| e.to_string())
        }
        .await
        {
            if let Some(e) = v.checks.iter().find(|c| c.name == "exporter") {
                for part in e.detail.split("; ") {
                    if let Some(rest) = part.strip_prefix("collector ") {
                        if let Some((name, cause)) = rest.split_once(" failed: ") {
                            causes.insert(name.to_owned(), cause.to_owned());
                        }
                    }
                }
            }
        }
    }
    let limits = Limits::from_config(config);
    let mut check = scraped::checks(&samples, &causes, &limits, super::now())
        .into_iter()
        .find(|c| c.name == "exporter")
        .unwrap_or_else(|| Check::failed("exporter", "no collector reported", ""));
    if check.status == super::Status::Ok {
        check.detail = format!("{url}: {}", check.detail);
    }
    check
}

/// `probes`: every configured probe, now.
pub async fn probes(config: &Config) -> Option<Check> {
    if config.probes.is_empty() {
        return None;
    }
    let limits = Limits::from_config(config);
    let mut found = Vec::new();
    for p in &config.probes {
        let check = match Prober::new(p) {
            Err(e) => Check::failed("probes", e, "fix the probe's settings"),
            Ok(prober) => {
                let o = prober
                    .run(Instant::now() + p.timeout.get() + Duration::from_secs(1))
                    .await;
                scraped::probe(
                    &p.name,
                    o.success,
                    o.status,
                    o.cert_expiry.map(|t| t as f64),
                    o.failure.as_deref(),
                    &limits,
                    super::now(),
                )
            }
        };
        found.push(check);
    }
    Some(combine("probes", found))
}

/// `prometheus`: the target up, the rules loaded as generated and healthy, an
/// Alertmanager discovered and ready, and the Watchdog firing.
pub async fn prometheus(config: &Config, base: &url::Url) -> Check {
    let t = config.check.timeout.get();
    let none = BTreeMap::new();
    let job = &config.alerts.job;
    let mut found = Vec::new();
    let fail = |detail: String, hint: &str| Check::failed("prometheus", detail, hint);

    // The target.
    let mut q = join(base, "api/v1/query");
    q.query_pairs_mut()
        .append_pair("query", &format!("up{{job=\"{job}\"}}"));
    match get_json(&q, &none, t).await {
        Err(e) => {
            return fail(
                format!("Prometheus does not answer: {e}"),
                "is it running, and is check.prometheus_url right?",
            )
        }
        Ok(v) => {
            let mut targets: Vec<(String, bool)> = v["data"]["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["metric"]["instance"].as_str().unwrap_or("").to_owned(),
                        r["value"][1].as_str() == Some("1"),
                    )
                })
                .collect();
            if let Some(i) = &config.check.instance {
                targets.retain(|(inst, _)| inst == i);
            }
            let down: Vec<&str> = targets
                .iter()
                .filter(|(_, up)| !up)
                .map(|(i, _)| i.as_str())
                .collect();
            if targets.is_empty() {
                found.push(fail(
                    match &config.check.instance {
                        Some(i) => format!("Prometheus has no target {i} in job {job}"),
                        None => format!("Prometheus has no target in job {job}"),
                    },
                    "add the exporter to Prometheus' scrape_configs (the package's prometheus.yml shows how) and reload it",
                ));
            } else if !down.is_empty() {
                found.push(fail(
                    format!("target(s) of job {job} down: {}", down.join(", ")),
                    "Prometheus' Targets page says why the scrape fails",
                ));
            } else {
                found.push(Check::ok(
                    "prometheus",
                    format!("{} target(s) of job {job} up", targets.len()),
                ));
            }
        }
    }

    // The rules.
    let expected: BTreeSet<&str> = crate::bundle::alerts::groups(&config.alerts)
        .iter()
        .flat_map(|g| g.rules.iter().map(|r| r.name))
        .collect();
    let mut rules_url = join(base, "api/v1/rules");
    rules_url.query_pairs_mut().append_pair("type", "alert");
    match get_json(&rules_url, &none, t).await {
        Err(e) => found.push(fail(format!("cannot read the rules: {e}"), "")),
        Ok(v) => {
            let mut loaded = BTreeSet::new();
            let mut unhealthy = Vec::new();
            for g in v["data"]["groups"].as_array().into_iter().flatten() {
                if !g["name"].as_str().unwrap_or("").starts_with("shoehub-") {
                    continue;
                }
                for r in g["rules"].as_array().into_iter().flatten() {
                    let name = r["name"].as_str().unwrap_or("").to_owned();
                    if r["health"].as_str().unwrap_or("ok") != "ok" {
                        unhealthy.push(format!(
                            "{name}: {}",
                            r["lastError"].as_str().unwrap_or("unhealthy")
                        ));
                    }
                    loaded.insert(name);
                }
            }
            let missing: Vec<&str> = expected
                .iter()
                .filter(|n| !loaded.contains(**n))
                .copied()
                .collect();
            let extra: Vec<&str> = loaded
                .iter()
                .map(String::as_str)
                .filter(|n| !expected.contains(n))
                .collect();
            let install = "install the rules `shoehub-exporter generate alerts` gives for this config into Prometheus' rule_files and reload Prometheus";
            if loaded.is_empty() {
                found.push(fail(
                    "Prometheus has no shoehub rules loaded".to_owned(),
                    install,
                ));
            } else if !missing.is_empty() || !extra.is_empty() {
                let mut d = Vec::new();
                if !missing.is_empty() {
                    d.push(format!("rules missing: {}", missing.join(", ")));
                }
                if !extra.is_empty() {
                    d.push(format!(
                        "rules this config does not generate: {}",
                        extra.join(", ")
                    ));
                }
                found.push(fail(d.join("; "), install));
            } else if !unhealthy.is_empty() {
                found.push(fail(
                    format!("unhealthy rules: {}", unhealthy.join("; ")),
                    "Prometheus' Rules page shows the error",
                ));
            } else {
                found.push(Check::ok(
                    "prometheus",
                    format!("{} shoehub alert rules loaded and healthy", loaded.len()),
                ));
            }
        }
    }

    // Alertmanager.
    match get_json(&join(base, "api/v1/alertmanagers"), &none, t).await {
        Err(e) => found.push(fail(format!("cannot list Alertmanagers: {e}"), "")),
        Ok(v) => {
            let urls: Vec<String> = v["data"]["activeAlertmanagers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["url"].as_str().map(str::to_owned))
                .collect();
            if urls.is_empty() {
                found.push(fail(
                    "Prometheus has discovered no Alertmanager: no alert reaches anyone".to_owned(),
                    "set alerting.alertmanagers in prometheus.yml (the package's file shows how) and reload Prometheus",
                ));
            }
            for u in urls {
                let ready = url::Url::parse(&u)
                    .map_err(|e| e.to_string())
                    .map(|mut parsed| {
                        let p = parsed
                            .path()
                            .trim_end_matches("/api/v2/alerts")
                            .trim_end_matches("/api/v1/alerts")
                            .to_owned();
                        parsed.set_path(&format!("{p}/-/ready"));
                        parsed
                    });
                let answer = match ready {
                    Ok(r) => get(&r, &none, None, t).await.map(|(s, _)| s),
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(200) => {
                        found.push(Check::ok("prometheus", format!("Alertmanager {u} ready")))
                    }
                    Ok(s) => found.push(fail(
                        format!("Alertmanager {u} is not ready ({s})"),
                        "`journalctl -u prometheus-alertmanager` says why",
                    )),
                    Err(e) => found.push(fail(
                        format!("Alertmanager {u} does not answer: {e}"),
                        "start it: `systemctl start prometheus-alertmanager`",
                    )),
                }
            }
        }
    }

    // The Watchdog: a rule that always fires, so that its notifications prove the chain.
    match get_json(&join(base, "api/v1/alerts"), &none, t).await {
        Err(e) => found.push(fail(format!("cannot list alerts: {e}"), "")),
        Ok(v) => {
            let firing = v["data"]["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| {
                    a["labels"]["alertname"].as_str() == Some("Watchdog")
                        && a["state"].as_str() == Some("firing")
                });
            found.push(if firing {
                Check::ok("prometheus", "Watchdog firing")
            } else {
                fail(
                    "the Watchdog alert is not firing: rules are not evaluated, or not these rules"
                        .to_owned(),
                    "install the generated rules and check Prometheus' Rules page",
                )
            });
        }
    }
    combine("prometheus", found)
}

/// The first place where two JSON values differ, as a path (`panels[3].title`).
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &p),
                    _ => Some(p),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path} ({} items, not {})", y.len(), x.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (u, v))| first_difference(u, v, &format!("{path}[{i}]")))
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(path.to_owned()),
    }
}

/// `grafana`: the dashboard provisioned as generated, and its datasource healthy.
pub async fn grafana(config: &Config, base: &url::Url, token_file: &Path) -> Check {
    let c: &CheckConfig = &config.check;
    let t = c.timeout.get();
    let fail = |detail: String, hint: &str| Check::failed("grafana", detail, hint);
    let token = match read_secret("check.grafana_token_file", token_file) {
        Ok(s) => s,
        Err(e) => return fail(e, "fix the file the detail names"),
    };
    let auth = BTreeMap::from([("authorization".to_owned(), format!("Bearer {token}"))]);
    let generated: Value = match crate::bundle::dashboard_json(config)
        .map_err(|e| crate::error_chain(&e))
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => return fail(format!("cannot generate the dashboard: {e}"), ""),
    };
    let uid = generated["uid"].as_str().unwrap_or("").to_owned();
    let mut found = Vec::new();
    let provision = "provision it again: `shoehub-exporter generate bundle --out DIR` and copy DIR/grafana/ into Grafana's provisioning, then restart Grafana";

    let mut search = join(base, "api/search");
    search
        .query_pairs_mut()
        .append_pair("type", "dash-db")
        .append_pair("dashboardUIDs", &uid);
    match get_json(&search, &auth, t).await {
        Err(e) => {
            let hint = if e.contains(" answered 401") {
                "check.grafana_token_file must hold a valid service account token"
            } else {
                "is Grafana running, and is check.grafana_url right?"
            };
            return fail(format!("cannot search Grafana's dashboards: {e}"), hint);
        }
        Ok(v) if v.as_array().is_none_or(|a| a.is_empty()) => {
            found.push(fail(
                format!("Grafana has no dashboard with uid {uid}"),
                provision,
            ));
        }
        Ok(_) => {
            match get_json(&join(base, &format!("api/dashboards/uid/{uid}")), &auth, t).await {
                Err(e) => found.push(fail(format!("cannot read dashboard {uid}: {e}"), "")),
                Ok(v) => {
                    let mut stored = v["dashboard"].clone();
                    let mut want = generated.clone();
                    for d in [&mut stored, &mut want] {
                        if let Some(o) = d.as_object_mut() {
                            for k in ["id", "version", "iteration"] {
                                o.remove(k);
                            }
                        }
                    }
                    match first_difference(&want, &stored, "") {
                    None => found.push(Check::ok(
                        "grafana",
                        format!("dashboard {uid} is as generated"),
                    )),
                    Some(at) => found.push(fail(
                        format!("drift: dashboard {uid} differs from `generate dashboard` at {at}: provision again"),
                        provision,
                    )),
                }
                }
            }
        }
    }

    let ds = crate::bundle::DATASOURCE_UID;
    match get_json(
        &join(base, &format!("api/datasources/uid/{ds}/health")),
        &auth,
        t,
    )
    .await
    {
        Ok(v) if v["status"].as_str() == Some("OK") => {
            found.push(Check::ok("grafana", format!("datasource {ds} healthy")))
        }
        Ok(v) => found.push(fail(
            format!(
                "datasource {ds} is not healthy: {}",
                v["message"].as_str().unwrap_or("no message")
            ),
            "check the datasource's URL in Grafana's provisioning: it must reach Prometheus",
        )),
        Err(e) => found.push(fail(
            format!("datasource {ds}: {e}"),
            "provision the datasource (DIR/grafana/provisioning/datasources) and check its URL",
        )),
    }
    combine("grafana", found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_difference_is_named_by_its_path() {
        let a = serde_json::json!({"panels": [{"title": "CPU"}, {"title": "Memory"}], "n": 1});
        let b = serde_json::json!({"panels": [{"title": "CPU"}, {"title": "Mem"}], "n": 1.0});
        assert_eq!(
            first_difference(&a, &b, "").as_deref(),
            Some("panels[1].title")
        );
        assert_eq!(first_difference(&a, &a, ""), None);
    }

    #[test]
    fn a_secret_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "abc\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_secret("check.grafana_token_file", &p).unwrap_err();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret("k", &p).unwrap(), "abc");
    }
}
