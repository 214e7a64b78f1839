//! `check` on a deployment made the way an operator makes one: MariaDB, the shop behind
//! Apache with TLS, backups made by `backup run` and `backup verify`, the update state
//! made by real `update plan`, `approve` and `apply` runs (shipped playbook and
//! inventory, a local apt repository), the exporter, Prometheus and Alertmanager from
//! the shipped files with the generated rules. Grafana cannot be installed here: its
//! part runs against [`common::grafana`], which implements the Grafana HTTP API
//! endpoints `check` calls.
//!
//! On the healthy deployment `check` exits 0; then each check's failure is induced for
//! real, and `check` exits 1 naming that check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::alerting::{generated_rules, start_prometheus, Alertmanager, Webhook};
use common::apache::{Apache, Tls};
use common::aptrepo::{AptRepo, SECURITY};
use common::grafana::FakeGrafana;
use common::mariadb::{MariaDb, EXPORTER_PASSWORD, EXPORTER_USER};
use common::{require_tool, wait_until, Exporter, BIN};
use serde_json::Value;

const BACKUP_PASSWORD: &str = "Bk-s3cret pass";
const TOKEN: &str = "glsa_check_test_token";

fn shipped(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// docs/check.md's JSON schema of `check --format json`.
fn documented_schema() -> Value {
    let doc = std::fs::read_to_string(shipped("docs/check.md")).unwrap();
    let start = doc
        .find("```json\n{\n  \"$schema\"")
        .expect("docs/check.md documents the JSON of check with a JSON Schema");
    let block = &doc[start + 8..];
    serde_json::from_str(&block[..block.find("```").unwrap()]).unwrap()
}

/// Validates `v` against the part of JSON Schema the README's schema uses: type,
/// required, properties, additionalProperties, items, enum.
fn validate(schema: &Value, v: &Value, at: &str) {
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            other => panic!("the schema uses type {other}, which this validator lacks"),
        };
        assert!(ok, "{at}: not a {t}: {v}");
    }
    if let Some(e) = schema["enum"].as_array() {
        assert!(e.contains(v), "{at}: {v} is not one of {e:?}");
    }
    if let Some(req) = schema["required"].as_array() {
        for r in req {
            assert!(v.get(r.as_str().unwrap()).is_some(), "{at}: no {r}");
        }
    }
    if let Some(props) = schema["properties"].as_object() {
        for (k, val) in v.as_object().unwrap() {
            match props.get(k) {
                Some(s) => validate(s, val, &format!("{at}.{k}")),
                None => assert!(
                    schema["additionalProperties"] != false,
                    "{at}: {k} is not in the schema"
                ),
            }
        }
    }
    if let Some(items) = schema.get("items") {
        for (i, item) in v.as_array().unwrap().iter().enumerate() {
            validate(items, item, &format!("{at}[{i}]"));
        }
    }
}

struct Deployment {
    dir: tempfile::TempDir,
    repo: AptRepo,
}

impl Deployment {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn config(&self) -> PathBuf {
        self.path("config.yml")
    }

    fn run(&self, args: &[&str], faketime: Option<&str>) -> Output {
        let mut c = match faketime {
            Some(offset) => {
                let mut c = Command::new(require_tool("faketime", "faketime"));
                c.args(["-f", offset]).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        c.args(args)
            .arg("--config")
            .arg(self.config())
            .env("APT_CONFIG", self.repo.config())
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_HOME", self.path("ansible-home"))
            .env("ANSIBLE_LOCALHOST_WARNING", "false")
            .env_remove("SUDO_USER");
        c.output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// `check --format json` with `args`: exit code and the report, validated against
    /// the README's schema.
    fn check(&self, args: &[&str]) -> (i32, Vec<Value>) {
        let mut all = vec!["check", "--format", "json"];
        all.extend_from_slice(args);
        let out = self.run(&all, None);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "check printed no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        validate(&documented_schema(), &v, "report");
        (
            out.status.code().unwrap(),
            v["checks"].as_array().unwrap().clone(),
        )
    }

    /// The update protocol as an operator runs it: plan, review, approve, apply.
    fn update(&self) -> Output {
        let plan = self.ok(&["update", "plan"]);
        let id = plan
            .lines()
            .find_map(|l| l.strip_prefix("plan "))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
        self.ok(&["update", "approve", "--plan", &id, "--by", "ops"]);
        self.run(&["update", "apply", "--foreground"], None)
    }
}

fn status<'a>(checks: &'a [Value], name: &str) -> (&'a str, String) {
    let c = checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"));
    (
        c["status"].as_str().unwrap(),
        format!(
            "{} / {}",
            c["detail"].as_str().unwrap(),
            c["hint"].as_str().unwrap()
        ),
    )
}

/// `check --only NAME` exits 1 and names NAME failed, with `needle` in its detail.
fn fails(d: &Deployment, name: &str, extra: &[&str], needle: &str) {
    let mut args = vec!["--only", name];
    args.extend_from_slice(extra);
    let (code, checks) = d.check(&args);
    let (s, detail) = status(&checks, name);
    assert_eq!((code, s), (1, "failed"), "{name}: {detail}");
    assert!(
        detail.contains(needle),
        "{name}: {detail:?} lacks {needle:?}"
    );
}

#[test]
fn check_passes_on_a_healthy_deployment_and_names_each_induced_failure() {
    require_tool("ansible-playbook", "ansible-core");
    let dir = tempfile::tempdir().unwrap();
    let mut repo = AptRepo::new();
    let pkg = "shoehub-test-check";
    let v10 = repo.build(pkg, "1.0", None);
    repo.install(&v10);
    let v11 = repo.build(pkg, "1.1", None);
    repo.publish(&[&v10, &v11], &SECURITY);
    let d = Deployment { dir, repo };

    // The database, with the README's backup grants.
    let mut db = MariaDb::start();
    db.sql(&common::documented_sql(
        "-- The backup account",
        BACKUP_PASSWORD,
    ));
    db.sql("INSERT INTO shoe_store_hub.products (name, price) VALUES ('boot', 99.5);");
    let secret = |name: &str, text: &str| {
        let p = d.path(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let backup_pw = secret("backup.password", BACKUP_PASSWORD);
    let exporter_pw = secret("exporter.password", EXPORTER_PASSWORD);
    let token = secret("grafana.token", TOKEN);
    std::fs::create_dir_all(d.path("www/user_data")).unwrap();
    std::fs::write(d.path("www/user_data/a.png"), vec![7u8; 5000]).unwrap();

    // The shop, over TLS with a certificate for 20 more days.
    common::tls::issue_for(d.dir.path(), "shop", 20);
    let mut apache = Apache::start_tls(
        &d.path("apache"),
        &d.path("access.log"),
        Tls {
            cert: &d.path("shop.pem"),
            key: &d.path("shop.key"),
        },
    );

    // The shipped inventory, its host's validation given this test's paths: the check
    // this deployment's config sets up.
    let inventory = d.path("inventory.ini");
    common::aptrepo::validating_inventory(&inventory, &d.config());
    let base = format!(
        "jobs:\n  state_dir: {state}\n\
         backup:\n  destination: {dest}\n  paths: [{data}]\n  mysql:\n    url: mysql://backup@127.0.0.1:{port}/shoe_store_hub\n    password_file: {bpw}\n\
         mysql:\n  url: mysql://{EXPORTER_USER}@127.0.0.1:{port}/shoe_store_hub\n  password_file: {epw}\n\
         probes:\n  - name: shop\n    url: https://localhost:{shop}/\n    tls_ca_file: {ca}\n    expect_body: Shoe Store Hub\n\
         updates:\n  apt: false\n  playbook: {playbook}\n  inventory: {inventory}\n\
         backuppc:\n  enabled: false\n",
        state = d.path("state").display(),
        dest = d.path("dest").display(),
        data = d.path("www/user_data").display(),
        port = db.port,
        bpw = backup_pw.display(),
        epw = exporter_pw.display(),
        shop = apache.port,
        ca = d.path("shop-ca.pem").display(),
        playbook = shipped("packaging/ansible/update.yml").display(),
        inventory = inventory.display(),
    );
    std::fs::write(d.config(), &base).unwrap();

    // A backup three days old (made then, as libfaketime makes the clock say), verified.
    d.run(&["backup", "run"], Some("-3d"));
    let exporter = Exporter::start(&base);
    let hook = Webhook::start();
    let am = Alertmanager::start(&hook);
    let prometheus = start_prometheus(&exporter.address(), am.port, &generated_rules(&d.config()));
    let dashboard: Value = serde_json::from_slice(
        &Command::new(BIN)
            .args(["generate", "dashboard", "--config"])
            .arg(d.config())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let uid = dashboard["uid"].as_str().unwrap().to_owned();
    let grafana = FakeGrafana::start(
        TOKEN,
        vec![dashboard],
        "shoehub-prometheus",
        prometheus.port,
    );
    let full = format!(
        "{base}check:\n  exporter_url: http://{}/metrics\n  prometheus_url: http://127.0.0.1:{}\n  grafana_url: {}\n  grafana_token_file: {}\n",
        exporter.address(),
        prometheus.port,
        grafana.url(),
        token.display()
    );
    std::fs::write(d.config(), &full).unwrap();
    prometheus.wait_for(
        "ALERTS{alertname=\"Watchdog\",alertstate=\"firing\"}",
        std::time::Duration::from_secs(60),
    );
    prometheus.wait_for(
        "up{job=\"shoehub\"} == 1",
        std::time::Duration::from_secs(30),
    );

    let mut cases = common::cases::Cases::new();
    cases.case(
        "before the first backup and update: both named, the rest ok",
        || {
            // Before the nightly backup and the first update: both named, the rest ok.
            let (code, checks) = d.check(&[]);
            assert_eq!(code, 1, "{checks:?}");
            let (s, detail) = status(&checks, "backups");
            assert_eq!(s, "failed");
            assert!(
                detail.contains("the newest complete backup is 3 d old"),
                "{detail}"
            );
            let (s, detail) = status(&checks, "updates");
            assert_eq!(
                (s, detail.contains("no update has succeeded yet")),
                ("failed", true),
                "{detail}"
            );
        },
    );

    cases.case(
        "the nightly backup, the weekly verify, the weekly update run",
        || {
            // The nightly backup, the weekly verify, the weekly update.
            d.ok(&["backup", "run"]);
            d.ok(&["backup", "verify"]);
            let applied = d.update();
            assert!(
                applied.status.success(),
                "{}",
                String::from_utf8_lossy(&applied.stderr)
            );
        },
    );

    cases.case("healthy: exit 0, every check ok", || {
        // Healthy: exit 0, every check ok.
        let (code, checks) = d.check(&[]);
        let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "exporter",
                "probes",
                "backups",
                "updates",
                "prometheus",
                "grafana"
            ]
        );
        for c in &checks {
            assert_eq!(c["status"], "ok", "{c}");
        }
        assert_eq!(code, 0);
        let text = d.ok(&["check"]);
        assert!(text.ends_with("0 failed, 0 warning(s), 6 ok\n"), "{text}");
    });

    cases.case("grafana: an edit in the UI is drift", || {
        // grafana: an edit in Grafana's UI is drift.
        grafana.edit(&uid, |d| d["title"] = Value::from("Edited by hand"));
        fails(
            &d,
            "grafana",
            &[],
            "drift: dashboard shoehub-overview differs from `generate dashboard` at title",
        );
        let (code, checks) = d.check(&["--only", "exporter,backups"]);
        assert_eq!(code, 0, "{checks:?}");
    });

    cases.case(
        "backups: a changed byte found with --deep, a cut file always",
        || {
            // backups: a byte changed in place is found with --deep only; a cut file always.
            let newest = {
                let mut names: Vec<String> = std::fs::read_dir(d.path("dest"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                names.sort();
                d.path("dest").join(names.last().unwrap())
            };
            let dump = std::fs::read_dir(&newest)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.to_string_lossy().ends_with(".sql.zst")
                        && !p.to_string_lossy().contains("accounts")
                })
                .unwrap();
            let mut bytes = std::fs::read(&dump).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&dump, &bytes).unwrap();
            let (code, _) = d.check(&["--only", "backups"]);
            assert_eq!(code, 0, "sizes still match");
            fails(&d, "backups", &["--deep"], "checksum mismatch");
            std::fs::write(&dump, &bytes[..100]).unwrap();
            fails(&d, "backups", &[], "is damaged");
            d.ok(&["backup", "run"]);
        },
    );

    cases.case(
        "updates: a waiting plan warns, a failed install fails",
        || {
            // updates: a new plan waits for approval; three days later that is a warning,
            // which fails only with --strict.
            let v12 = d.repo.build(pkg, "1.2", None);
            d.repo.publish(&[&v12], &SECURITY);
            d.ok(&["update", "plan"]);
            assert_eq!(d.check(&["--only", "updates"]).0, 0);
            for (strict, code) in [(false, 0), (true, 1)] {
                let mut args = vec!["check", "--format", "json", "--only", "updates"];
                if strict {
                    args.push("--strict");
                }
                let out = d.run(&args, Some("+3d"));
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                let (s, detail) = status(v["checks"].as_array().unwrap(), "updates");
                assert_eq!((out.status.code(), s), (Some(code), "warning"), "{detail}");
                assert!(detail.contains("has waited 3 d for approval"), "{detail}");
            }
            // ...and a package whose installation fails makes the apply fail.
            let broken = d.repo.build(pkg, "1.3", Some("exit 1"));
            d.repo.publish(&[&broken], &SECURITY);
            assert!(
                !d.update().status.success(),
                "the broken package was installed"
            );
            fails(&d, "updates", &[], "the last update run exited with");
        },
    );

    cases.case("exporter: the mysql collector fails with its cause", || {
        // exporter: the database stops, the mysql collector fails, with its cause.
        db.stop();
        fails(&d, "exporter", &[], "collector mysql failed:");
        db.restart();
        wait_until("the mysql collector succeeds again", || {
            d.check(&["--only", "exporter"]).0 == 0
        });
    });

    cases.case("probes: the web server stops", || {
        // probes: the web server stops.
        apache.stop();
        fails(&d, "probes", &[], "probe shop fails");
    });

    cases.case("prometheus: a missing rule, then Alertmanager gone", || {
        // prometheus: a rule missing from what Prometheus loaded...
        let cfg = std::fs::read_to_string(prometheus.config_path()).unwrap();
        let rules_path = cfg
            .lines()
            .skip_while(|l| !l.starts_with("rule_files:"))
            .nth(1)
            .unwrap()
            .trim_start_matches([' ', '-'])
            .to_owned();
        let rules = std::fs::read_to_string(&rules_path).unwrap();
        let start = rules.find("- alert: BackupTooOld").unwrap();
        let end = start + 1 + rules[start + 1..].find("- alert: ").unwrap();
        std::fs::write(&rules_path, format!("{}{}", &rules[..start], &rules[end..])).unwrap();
        prometheus.reload();
        wait_until("Prometheus drops the rule", || {
            d.check(&["--only", "prometheus"]).0 == 1
        });
        fails(&d, "prometheus", &[], "rules missing: BackupTooOld");
        std::fs::write(&rules_path, rules).unwrap();
        prometheus.reload();
        wait_until("Prometheus loads the rule again", || {
            d.check(&["--only", "prometheus"]).0 == 0
        });
        // ...and Alertmanager gone.
        drop(am);
        fails(&d, "prometheus", &[], "does not answer");
    });

    cases.case("grafana's datasource: Prometheus gone", || {
        // grafana's datasource: Prometheus gone.
        drop(prometheus);
        fails(&d, "grafana", &[], "datasource shoehub-prometheus");
    });

    cases.finish();
}
