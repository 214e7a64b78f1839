//! The Grafana/alert bundle: committed files equal to what the generator writes, the
//! dashboard against the rules of Grafana's dashboard linter, its PromQL and the alert
//! rules parsed by promtool, Alertmanager's config checked by amtool.
//!
//! Grafana itself cannot be installed here: the dashboard is checked against the
//! documented contract of its JSON model (schemaVersion 39, Grafana 10.4) and the
//! linter's rules, not imported into a running Grafana.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_tool, BIN};
use serde_json::Value;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn generate(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("generate")
        .args(args)
        .output()
        .unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_committed_bundle_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&["bundle", "--out", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = files_under(dir.path());
    assert!(generated.len() >= 9, "{generated:?}");
    for rel in &generated {
        // alerts/tests/ holds hand-written promtool cases, not generated ones.
        let committed = std::fs::read_to_string(repo(rel.to_str().unwrap())).unwrap_or_else(|e| {
            panic!("{} is generated but not committed ({e}): run `shoehub-exporter generate bundle --out .`", rel.display())
        });
        let fresh = std::fs::read_to_string(dir.path().join(rel)).unwrap();
        assert!(
            committed == fresh,
            "{} differs from the generator's output: run `shoehub-exporter generate bundle --out .`",
            rel.display()
        );
    }
    for sub in ["grafana", "alerts"] {
        for rel in files_under(&repo(sub)) {
            let rel = Path::new(sub).join(rel);
            if rel.starts_with("alerts/tests") {
                continue;
            }
            assert!(
                generated.contains(&rel),
                "{} is committed but not generated",
                rel.display()
            );
        }
    }
}

#[test]
fn the_seed_spec_gives_the_plan_s_dashboard() {
    let out = generate(&[
        "dashboard",
        "--config",
        repo("tests/fixtures/seed-config.yaml").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["title"], "Shoe Store Hub Monitoring Dashboard");
    let p = d["panels"].as_array().unwrap();
    assert_eq!(
        (p[0]["type"].as_str(), p[0]["title"].as_str()),
        (Some("row"), Some("System Metrics"))
    );
    assert_eq!(p[1]["title"], "CPU Usage");
    assert_eq!(p[2]["title"], "Memory Usage");
    for panel in &p[1..3] {
        assert_eq!(panel["type"], "timeseries", "graph becomes timeseries");
        assert_eq!(
            panel["gridPos"]["w"], 8,
            "span 4 of 12 is a third of the width"
        );
        assert_eq!(panel["gridPos"]["y"], p[1]["gridPos"]["y"], "side by side");
    }
    assert_eq!(p[1]["gridPos"]["x"], 0);
    assert_eq!(p[2]["gridPos"]["x"], 8);
}

#[test]
fn an_unknown_target_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yml");
    std::fs::write(
        &cfg,
        "dashboard:\n  title: T\n  rows:\n    - title: R\n      panels:\n        - title: P\n          targets:\n            - target: cpu_usge\n",
    )
    .unwrap();
    let out = generate(&["dashboard", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dashboard.rows[0].panels[0].targets[0]: unknown target \"cpu_usge\" (did you mean cpu_usage?)")
            && err.contains("known targets: cpu_usage, memory_usage"),
        "{err}"
    );
}

fn default_dashboard() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo("grafana/dashboards/shoehub-overview.json")).unwrap(),
    )
    .unwrap()
}

/// Metric names in an expression (identifiers followed by `{`).
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'{' {
            let start = b[..i]
                .iter()
                .rposition(|c| !(c.is_ascii_alphanumeric() || *c == b'_' || *c == b':'))
                .map_or(0, |p| p + 1);
            if start < i {
                out.push(expr[start..i].to_owned());
            }
        }
    }
    out
}

#[test]
fn the_dashboard_follows_the_linter_rules() {
    let d = default_dashboard();
    assert_eq!(d["editable"], false);
    assert_eq!(d["schemaVersion"], 39);
    assert_eq!(d["uid"], "shoehub-overview");
    let vars = d["templating"]["list"].as_array().unwrap();
    let var = |n: &str| {
        vars.iter()
            .find(|v| v["name"] == n)
            .unwrap_or_else(|| panic!("no {n} variable"))
    };
    assert_eq!(var("datasource")["type"], "datasource");
    assert_eq!(var("datasource")["query"], "prometheus");
    for n in ["job", "instance"] {
        let v = var(n);
        assert_eq!(v["type"], "query");
        assert_eq!(v["multi"], true);
        assert_eq!(v["includeAll"], true);
        assert_eq!(v["allValue"], ".+");
        assert_eq!(v["refresh"], 2, "refresh on time range change");
        assert_eq!(v["datasource"]["uid"], "${datasource}");
    }
    assert!(
        !serde_json::to_string(&d).unwrap().contains("${DS_"),
        "no import-time inputs"
    );

    let panels = d["panels"].as_array().unwrap();
    let mut cells = std::collections::HashSet::new();
    let mut seen_row = false;
    for p in panels {
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(x + w <= 24, "{} leaves the grid", p["title"]);
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(
                    cells.insert((cx, cy)),
                    "{} overlaps another panel",
                    p["title"]
                );
            }
        }
        if p["type"] == "row" {
            seen_row = true;
            assert_eq!(
                p["panels"].as_array().unwrap().len(),
                0,
                "panels follow their row"
            );
            continue;
        }
        assert!(seen_row, "a panel before the first row");
        let title = p["title"].as_str().unwrap();
        assert!(!title.is_empty());
        assert!(
            ["timeseries", "stat", "gauge", "table"].contains(&p["type"].as_str().unwrap()),
            "{title}"
        );
        assert!(
            !p["description"].as_str().unwrap().is_empty(),
            "{title}: description"
        );
        assert!(
            !p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap()
                .is_empty(),
            "{title}: unit"
        );
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let e = t["expr"].as_str().unwrap();
            for f in ["rate(", "irate(", "increase("] {
                for (i, _) in e.match_indices(f) {
                    let rest = &e[i..];
                    let close = rest.find(')').unwrap();
                    assert!(rest[..close].contains("[$__rate_interval]"), "{title}: {e}");
                }
            }
            for m in metric_names(e) {
                let at = e.find(&format!("{m}{{")).unwrap();
                let sel = &e[at..at + e[at..].find('}').unwrap()];
                assert!(
                    sel.contains(r#"job=~"$job""#) && sel.contains(r#"instance=~"$instance""#),
                    "{title}: {sel}"
                );
                if m.ends_with("_total") {
                    let before = &e[..at];
                    assert!(
                        before.ends_with("rate(") || before.ends_with("increase("),
                        "{title}: counter {m} outside rate"
                    );
                }
            }
        }
    }
}

#[test]
fn promtool_parses_every_expression_and_rule() {
    let promtool = require_tool("promtool", "prometheus");
    // Every panel query, with Grafana's variables as Grafana would send them, in a rules
    // file: promtool parses each expression.
    let d = default_dashboard();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "1m")
                .replace("$job", ".+")
                .replace("$instance", ".+");
            rules.push_str(&format!(
                "      - record: dashboard:query{n}\n        expr: {}\n",
                serde_json::to_string(&e).unwrap()
            ));
            n += 1;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dashboard.rules.yml");
    std::fs::write(&f, rules).unwrap();
    let mut files = vec![f];
    files.extend(
        std::fs::read_dir(repo("alerts"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml")),
    );
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .args(&files)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains("WARNING"), "{text}");
    assert!(n > 20, "{n} queries");
    // Every alert has a severity, a summary and a description.
    for f in &files[1..] {
        let t = std::fs::read_to_string(f).unwrap();
        let alerts = t.matches("- alert: ").count();
        assert!(alerts > 0);
        for key in ["severity: ", "summary: ", "description: "] {
            assert_eq!(t.matches(key).count(), alerts, "{} {key}", f.display());
        }
    }
}

#[test]
fn prometheus_and_alertmanager_configs_check() {
    let promtool = require_tool("promtool", "prometheus");
    let amtool = require_tool("amtool", "prometheus-alertmanager");
    // The Prometheus config with the rule files where it expects them.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("shoehub");
    std::fs::create_dir(&rules).unwrap();
    for e in std::fs::read_dir(repo("alerts")).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "yml") {
            std::fs::copy(e.path(), rules.join(e.file_name())).unwrap();
        }
    }
    let cfg = std::fs::read_to_string(repo("packaging/prometheus/prometheus.yml"))
        .unwrap()
        .replace("/etc/prometheus/shoehub", rules.to_str().unwrap());
    let p = dir.path().join("prometheus.yml");
    std::fs::write(&p, cfg).unwrap();
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(&p)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("6 rule files found") || text.matches("SUCCESS").count() >= 7,
        "{text}"
    );

    let out = Command::new(amtool)
        .arg("check-config")
        .arg(repo("packaging/alertmanager/alertmanager.yml"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Found:") && text.contains("inhibit rules"),
        "{text}"
    );
    let am = std::fs::read_to_string(repo("packaging/alertmanager/alertmanager.yml")).unwrap();
    assert!(
        am.contains("source_matchers: ['severity=\"critical\"']")
            && am.contains("equal: [alertname, job, instance]")
    );
}

#[test]
fn every_alert_has_promtool_cases_that_pass() {
    let promtool = require_tool("promtool", "prometheus");
    let tests: Vec<PathBuf> = std::fs::read_dir(repo("alerts/tests"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    let out = Command::new(promtool)
        .args(["test", "rules"])
        .args(&tests)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let cases: String = tests
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for f in std::fs::read_dir(repo("alerts")).unwrap().flatten() {
        if f.path().extension().is_none_or(|x| x != "yml") {
            continue;
        }
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            let Some(name) = line.trim().strip_prefix("- alert: ") else {
                continue;
            };
            // Each alert: a case where it stays silent and one where it fires.
            let blocks: Vec<&str> = cases
                .split("- eval_time:")
                .filter(|b| b.contains(&format!("alertname: {name}\n")))
                .collect();
            // The Watchdog is never silent: that is its job.
            assert!(
                name == "Watchdog" || blocks.iter().any(|b| b.contains("exp_alerts: []")),
                "{name} is never shown silent"
            );
            assert!(
                blocks.iter().any(|b| b.contains("exp_labels:")),
                "{name} is never shown firing"
            );
        }
    }
}

#[test]
fn the_dashboard_type_checks_against_grafana_s_schema() {
    // typescript and @grafana/schema, installed with npm by scripts/test.
    let dir = repo("target/typecheck");
    let tsc = dir.join("node_modules/.bin/tsc");
    assert!(
        tsc.exists() && dir.join("node_modules/@grafana/schema").exists(),
        "typescript and @grafana/schema are not installed in {}: run scripts/test, which installs them with npm",
        dir.display()
    );
    // The JSON as a TypeScript literal of Grafana's Dashboard type. Fields that the
    // schema types as TypeScript enums take the enum member for the same string. The
    // annotations are checked as the schema's AnnotationQuery whose `target` is the
    // Prometheus datasource's query (a DataQuery with `expr` and `interval`, which the
    // schema leaves to the datasource), plus that datasource's display options; the
    // legacy form, `expr` and `step` beside `target`, does not type-check.
    let mut dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("grafana/dashboards/shoehub-overview.json")).unwrap(),
    )
    .unwrap();
    let annotations = dashboard["annotations"]["list"].take();
    dashboard["annotations"]["list"] = Value::from("__ANNOTATIONS__");
    let json = serde_json::to_string_pretty(&dashboard)
        .unwrap()
        .replace(r#""__ANNOTATIONS__""#, "list");
    let literal = json
        .replace(
            r#""mode": "absolute""#,
            r#""mode": ThresholdsMode.Absolute"#,
        )
        .replace(
            r#""mode": "palette-classic""#,
            r#""mode": FieldColorModeId.PaletteClassic"#,
        )
        .replace(
            r#""mode": "thresholds""#,
            r#""mode": FieldColorModeId.Thresholds"#,
        )
        .replace(r#""type": "value""#, r#""type": MappingType.ValueToText"#);
    // The release the dashboard targets, and the newest.
    for (package, installed) in [
        ("@grafana/schema", "@grafana/schema"),
        ("grafana-schema-latest", "grafana-schema-latest"),
    ] {
        assert!(
            dir.join("node_modules").join(installed).exists(),
            "{package} is not installed in {}: run scripts/test, which installs it with npm",
            dir.display()
        );
        type_check(&tsc, &dir, package, &literal, &annotations.to_string());
    }
}

fn type_check(tsc: &Path, dir: &Path, package: &str, literal: &str, annotations: &str) {
    let work = tempfile::tempdir_in(dir).unwrap();
    std::fs::write(
        work.path().join("check.ts"),
        format!(
            "import {{ AnnotationQuery, DataQuery, Dashboard, ThresholdsMode, FieldColorModeId, MappingType }} from '{package}';\n\
             type PrometheusAnnotation = Omit<AnnotationQuery, 'target'> & {{\n\
               target?: DataQuery & {{ expr: string; interval?: string }};\n\
               titleFormat?: string; tagKeys?: string; textFormat?: string; useValueForTime?: boolean;\n\
               expr?: never; step?: never;\n\
             }};\n\
             const annotations: PrometheusAnnotation[] = {annotations};\n\
             // Checked above in their datasource's form; the schema's AnnotationTarget is the\n\
             // Grafana datasource's.\n\
             const list = annotations as unknown as AnnotationQuery[];\n\
             export const dashboard: Dashboard = {literal};\n"
        ),
    )
    .unwrap();
    std::fs::write(
        work.path().join("tsconfig.json"),
        r#"{"compilerOptions": {"strict": true, "noEmit": true, "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "skipLibCheck": true}, "files": ["check.ts"]}"#,
    )
    .unwrap();
    let out = Command::new(tsc)
        .arg("-p")
        .arg(work.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the dashboard does not type-check as {package}'s Dashboard:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generate_alerts_is_one_rules_file_that_loads_every_alert() {
    let promtool = require_tool("promtool", "prometheus");
    let out = generate(&["alerts"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Prometheus reads only the first YAML document of a rules file.
    assert!(!text.lines().any(|l| l.trim() == "---"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("shoehub.rules.yml");
    std::fs::write(&f, &text).unwrap();
    let out = Command::new(promtool)
        .args(["check", "rules"])
        .arg(&f)
        .output()
        .unwrap();
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    // As many rules as the bundle's files hold together.
    let committed: usize = std::fs::read_dir(repo("alerts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "yml"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .matches("- alert: ")
                .count()
        })
        .sum();
    assert!(committed > 20, "{committed}");
    assert!(
        report.contains(&format!("SUCCESS: {committed} rules found")),
        "{report}"
    );
}

#[test]
fn the_collectors_reference_is_generated_and_each_section_loads() {
    let dir = tempfile::tempdir().unwrap();
    let out = generate(&["docs", "--out", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = std::fs::read_to_string(dir.path().join("collectors.md")).unwrap();
    let committed = std::fs::read_to_string(repo("docs/collectors.md")).unwrap();
    assert!(
        committed == fresh,
        "docs/collectors.md differs from the generator's output: run `shoehub-exporter generate docs --out docs`"
    );
    // Every section shown, as it is shown, is a configuration check-config accepts.
    let blocks: Vec<&str> = fresh
        .split("```yaml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    assert!(blocks.len() >= 20, "{} sections", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let cfg = dir.path().join(format!("{i}.yml"));
        std::fs::write(&cfg, block).unwrap();
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{block}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
