//! The dashboard spec (the maintenance plan's format) as a Grafana dashboard.
//!
//! schemaVersion 39 is Grafana 10.4's: the oldest release the dashboard must import into
//! reads it without migrating, and Grafana 11 and 12 migrate it forward on load (their
//! migrations above 39 touch panel types and options this dashboard does not use).

use serde_json::{json, Value};

use super::catalogue::{self, Health, Target};
use crate::config::dashboard::{DashboardSpec, PanelKind, PanelSpec, RowSpec, Span, TargetSpec};
use crate::config::AlertsConfig;

pub const UID: &str = "shoehub-overview";
pub const SCHEMA_VERSION: u32 = 39;
const PANEL_HEIGHT: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("{at}: unknown target {name:?}{hint}; known targets: {known}")]
    UnknownTarget {
        at: String,
        name: String,
        hint: String,
        known: String,
    },
    #[error("{at}: a target needs `target` (a catalogue name) or `expr` (PromQL)")]
    EmptyTarget { at: String },
}

/// The dashboard when the config has none: the plan's panels, then the other areas.
pub fn default_spec() -> DashboardSpec {
    let panel = |title: &str, kind: PanelKind, span: u8, targets: &[&str]| PanelSpec {
        title: title.to_owned(),
        kind,
        span: Span(span),
        targets: targets
            .iter()
            .map(|t| TargetSpec {
                target: Some((*t).to_owned()),
                expr: None,
                legend: None,
            })
            .collect(),
        unit: None,
        description: None,
        thresholds: Vec::new(),
    };
    use PanelKind::{Graph, Stat, Table};
    let row = |title: &str, panels: Vec<PanelSpec>| RowSpec {
        title: title.to_owned(),
        panels,
    };
    DashboardSpec {
        title: "Shoe Store Hub Monitoring Dashboard".to_owned(),
        rows: vec![
            row(
                "Overview",
                vec![
                    panel("Shop Up", Stat, 1, &["shop_up"]),
                    panel("Requests/s", Stat, 2, &["request_rate"]),
                    panel("5xx", Stat, 1, &["error_rate"]),
                    panel("p95 Latency", Stat, 2, &["latency_p95"]),
                    panel("MySQL Up", Stat, 1, &["mysql_up"]),
                    panel("Backup Age", Stat, 1, &["backup_age"]),
                    panel("Lowest Free Disk", Stat, 2, &["disk_free_lowest"]),
                    panel("Security Updates", Stat, 1, &["security_updates_pending"]),
                    panel("Alerts Firing", Stat, 1, &["alerts_firing"]),
                ],
            ),
            row(
                "System Metrics",
                vec![
                    panel("CPU Usage", Graph, 4, &["cpu_usage"]),
                    panel("Memory Usage", Graph, 4, &["memory_usage"]),
                    panel("Disk Usage", Graph, 4, &["disk_usage"]),
                    panel("Network Traffic", Graph, 6, &["network_traffic"]),
                    panel("Error Rate", Graph, 6, &["error_rate"]),
                    panel("HTTP Requests", Graph, 12, &["http_requests"]),
                ],
            ),
            row(
                "Shop: Rate, Errors, Duration",
                vec![
                    panel("Requests by Status Class", Graph, 4, &["requests_by_class"]),
                    panel("Error Ratio", Graph, 4, &["error_rate"]),
                    panel("Latency", Graph, 4, &["latency"]),
                ],
            ),
            row(
                "Saturation and Errors",
                vec![
                    panel("Load per Core", Graph, 3, &["load_per_core"]),
                    panel("Pressure", Graph, 3, &["pressure"]),
                    panel("Swap Used", Graph, 3, &["swap_usage"]),
                    panel("Disk Busy", Graph, 3, &["disk_io_time"]),
                    panel("Inodes Used", Graph, 6, &["inode_usage"]),
                    panel("Network Errors", Graph, 6, &["network_errors"]),
                ],
            ),
            row(
                "Database",
                vec![
                    panel("MySQL Up", Stat, 2, &["mysql_up"]),
                    panel("Connections", Graph, 4, &["mysql_connections"]),
                    panel("Queries", Graph, 3, &["mysql_queries"]),
                    panel("Slow Queries", Graph, 3, &["mysql_slow_queries"]),
                    panel("Buffer Pool Use", Graph, 12, &["mysql_buffer_pool"]),
                ],
            ),
            row(
                "Backups",
                vec![
                    panel("Backup Age", Stat, 4, &["backup_age"]),
                    panel("Backup Size", Graph, 4, &["backup_size"]),
                    panel("BackupPC Host Age", Table, 4, &["backuppc_age"]),
                ],
            ),
            row(
                "Updates and Jobs",
                vec![
                    panel("Pending Updates", Stat, 3, &["updates_pending"]),
                    panel("Security Updates", Stat, 3, &["security_updates_pending"]),
                    panel(
                        "Plan Awaiting Approval",
                        Stat,
                        3,
                        &["update_pending_approval"],
                    ),
                    panel("Reboot Required", Stat, 3, &["reboot_required"]),
                    panel("Job Exit Codes", Table, 6, &["job_status"]),
                    panel("Job Durations", Graph, 6, &["job_duration"]),
                ],
            ),
            row(
                "Exporter Health",
                vec![panel("Collectors", Table, 12, &["collector_health"])],
            ),
        ],
    }
}

fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

fn panel_type(kind: PanelKind) -> &'static str {
    match kind {
        // `graph` is the plan's word; Grafana replaced that panel with `timeseries`.
        PanelKind::Graph | PanelKind::Timeseries => "timeseries",
        PanelKind::Stat => "stat",
        PanelKind::Gauge => "gauge",
        PanelKind::Table => "table",
    }
}

fn known() -> String {
    catalogue::CATALOGUE
        .iter()
        .map(|t| t.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Thresholds and value mappings for a target's values: `(steps, mappings)`.
fn colours(health: Health, a: &AlertsConfig) -> (Vec<Value>, Vec<Value>) {
    let steps = |base: &str, above: &str, at: f64| {
        vec![
            json!({"color": base, "value": null}),
            json!({"color": above, "value": at}),
        ]
    };
    let words = |zero: (&str, &str), one: (&str, &str)| {
        vec![json!({"type": "value", "options": {
            "0": {"text": zero.0, "color": zero.1, "index": 0},
            "1": {"text": one.0, "color": one.1, "index": 1}
        }})]
    };
    match health {
        Health::Neutral => (vec![json!({"color": "green", "value": null})], Vec::new()),
        Health::UpDown => (
            steps("red", "green", 1.0),
            words(("Down", "red"), ("Up", "green")),
        ),
        Health::Flag => (
            steps("green", "orange", 1.0),
            words(("No", "green"), ("Yes", "orange")),
        ),
        Health::Zero(color) => (steps("green", color, 1.0), Vec::new()),
        Health::Max(limit) => (steps("green", "red", limit.value(a)), Vec::new()),
        Health::Min(limit) => (steps("red", "green", limit.value(a)), Vec::new()),
    }
}

/// What a panel shows: its queries, unit, description and the health of its values.
struct Resolved {
    targets: Vec<Value>,
    unit: String,
    description: String,
    health: Health,
    /// The alert on the same condition.
    alert: Option<&'static str>,
    /// The queries drawn below the axis, by refId.
    below: Vec<String>,
}

/// The panel's queries, its unit, its description and its values' health.
fn resolve(at: &str, p: &PanelSpec) -> Result<Resolved, DashboardError> {
    let mut targets = Vec::new();
    let mut unit = None;
    let mut description = None;
    let mut health = None;
    let mut alert = None;
    let mut below = Vec::new();
    for (i, t) in p.targets.iter().enumerate() {
        let at = format!("{at}.targets[{i}]");
        let queries: Vec<(String, String, bool)> = match (&t.target, &t.expr) {
            (Some(name), _) => {
                let found: &Target =
                    catalogue::find(name).ok_or_else(|| DashboardError::UnknownTarget {
                        at: at.clone(),
                        name: name.clone(),
                        hint: catalogue::nearest(name)
                            .map(|n| format!(" (did you mean {n}?)"))
                            .unwrap_or_default(),
                        known: known(),
                    })?;
                unit.get_or_insert(found.unit);
                description.get_or_insert(found.description);
                health.get_or_insert(found.health);
                if alert.is_none() {
                    alert = found.alert;
                }
                found
                    .queries
                    .iter()
                    .map(|q| (catalogue::expand(q.expr), q.legend.to_owned(), q.below))
                    .collect()
            }
            (None, Some(expr)) => vec![(expr.clone(), String::new(), false)],
            (None, None) => return Err(DashboardError::EmptyTarget { at }),
        };
        for (expr, legend, under) in queries {
            let ref_id = char::from(b'A' + (targets.len() % 26) as u8).to_string();
            if under {
                below.push(ref_id.clone());
            }
            targets.push(json!({
                "refId": ref_id,
                "datasource": datasource(),
                "expr": expr,
                "legendFormat": t.legend.clone().unwrap_or(legend),
                "range": true,
            }));
        }
    }
    let unit = p
        .unit
        .clone()
        .or(unit.map(str::to_owned))
        .unwrap_or_else(|| "short".to_owned());
    let description = p
        .description
        .clone()
        .or(description.map(str::to_owned))
        .unwrap_or_else(|| p.title.clone());
    Ok(Resolved {
        targets,
        unit,
        description,
        health: health.unwrap_or(Health::Neutral),
        alert,
        below,
    })
}

/// Links to the community dashboards this exporter feeds, with the time range and
/// the variables: Node Exporter Full by its tag, the mysqld mixin's overview by its uid
/// (it has no tag).
fn links() -> Value {
    let link = |title: &str, kind: &str, tags: &[&str], url: &str| {
        json!({
            "title": title, "type": kind, "tags": tags, "url": url,
            "asDropdown": false, "includeVars": true, "keepTime": true,
            "icon": "dashboard", "targetBlank": false, "tooltip": title
        })
    };
    json!([
        link(
            "Node Exporter Full",
            "dashboards",
            &[NODE_EXPORTER_FULL_TAG],
            ""
        ),
        link(
            "MySQL Overview",
            "link",
            &[],
            &format!("/d/{MYSQLD_OVERVIEW_UID}"),
        ),
    ])
}

/// Node Exporter Full's tag.
pub const NODE_EXPORTER_FULL_TAG: &str = "linux";
/// The mysqld mixin's overview dashboard's uid.
pub const MYSQLD_OVERVIEW_UID: &str = "549c2bf8936f7767ea6ac47c47b00f2a";

/// Events from the exporter's own metrics, as Prometheus annotations: jobs ending
/// (backups, updates), reboots, database restarts, and deploys a textfile reports.
fn annotations() -> Value {
    let anno = |name: &str, color: &str, expr: &str, title: &str, tags: &str| {
        json!({
            "name": name,
            "datasource": datasource(),
            "enable": true,
            "hide": false,
            "iconColor": color,
            // The query in the datasource's own form, as Grafana's Prometheus
            // datasource saves it since it moved `expr` and `step` under `target`.
            "target": {
                "refId": "Anno",
                "expr": catalogue::expand(expr),
                "interval": "1m"
            },
            "titleFormat": title,
            "tagKeys": tags,
            "textFormat": "{{instance}}",
            "useValueForTime": false
        })
    };
    json!([
        {
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        },
        anno("Backups", "blue", r#"changes(shoehub_job_last_completion_timestamp_seconds{SEL, job_name=~"backup.*"}[2m]) > 0"#, "{{job_name}} ended", "job_name"),
        anno("Updates", "purple", r#"changes(shoehub_job_last_completion_timestamp_seconds{SEL, job_name="update"}[2m]) > 0"#, "update ended", "job_name"),
        anno("Reboots", "orange", r#"changes(node_boot_time_seconds{SEL}[2m]) > 0"#, "reboot", "instance"),
        anno("MySQL Restarts", "red", r#"resets(mysql_global_status_uptime{SEL}[2m]) > 0"#, "database restarted", "instance"),
        anno("Deploys", "green", r#"changes(shoehub_deploy_timestamp_seconds{SEL}[2m]) > 0"#, "deploy", "instance"),
    ])
}

/// The Grafana dashboard JSON for `spec`, coloured by the `alerts:` thresholds.
pub fn generate(spec: &DashboardSpec, alerts: &AlertsConfig) -> Result<Value, DashboardError> {
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (ri, row) in spec.rows.iter().enumerate() {
        panels.push(json!({
            "type": "row",
            "id": id,
            "title": row.title,
            "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
            "panels": [],
        }));
        id += 1;
        y += 1;
        let mut x = 0;
        for (pi, p) in row.panels.iter().enumerate() {
            let at = format!("dashboard.rows[{ri}].panels[{pi}]");
            let Resolved {
                targets,
                unit,
                description,
                health,
                alert,
                below,
            } = resolve(&at, p)?;
            let w = u32::from(p.span.0) * 2;
            if x + w > 24 {
                x = 0;
                y += PANEL_HEIGHT;
            }
            // The spec's own steps win over the catalogue's.
            let (steps, mappings) = if p.thresholds.is_empty() {
                colours(health, alerts)
            } else {
                let steps = std::iter::once(json!({"color": "green", "value": null}))
                    .chain(
                        p.thresholds
                            .iter()
                            .map(|t| json!({"color": t.color, "value": t.value})),
                    )
                    .collect();
                (steps, Vec::new())
            };
            let coloured = health != Health::Neutral || !p.thresholds.is_empty();
            let kind = panel_type(p.kind);
            let options = match kind {
                "timeseries" => json!({
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                    "tooltip": {"mode": "multi", "sort": "none"}
                }),
                "stat" => json!({
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": if coloured { "background" } else { "value" },
                    "graphMode": "area", "justifyMode": "auto",
                    "orientation": "auto", "textMode": "auto"
                }),
                "gauge" => json!({
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "showThresholdLabels": false, "showThresholdMarkers": true
                }),
                _ => json!({"showHeader": true, "cellHeight": "sm"}),
            };
            let mut panel = json!({
                "type": kind,
                "id": id,
                "title": p.title,
                "description": description,
                "datasource": datasource(),
                "gridPos": {"h": PANEL_HEIGHT, "w": w, "x": x, "y": y},
                "fieldConfig": {
                    "defaults": {
                        "unit": unit,
                        "thresholds": {"mode": "absolute", "steps": steps},
                        "mappings": mappings,
                        "color": {"mode": if kind == "timeseries" { "palette-classic" } else { "thresholds" }}
                    },
                    "overrides": []
                },
                "options": options,
                "targets": targets,
            });
            // Shares of a whole run from none to all of it.
            let range = match unit.as_str() {
                "percent" => Some(100),
                "percentunit" => Some(1),
                _ => None,
            };
            if let Some(max) = range {
                panel["fieldConfig"]["defaults"]["min"] = json!(0);
                panel["fieldConfig"]["defaults"]["max"] = json!(max);
            }
            for r in &below {
                panel["fieldConfig"]["overrides"]
                    .as_array_mut()
                    .into_iter()
                    .for_each(|o| {
                        o.push(json!({
                            "matcher": {"id": "byFrameRefID", "options": r},
                            "properties": [{"id": "custom.transform", "value": "negative-Y"}]
                        }))
                    });
            }
            if let Some(name) = alert {
                let title = format!("Runbook: {name}");
                panel["links"] = json!([{
                    "title": title, "type": "link", "tooltip": title,
                    "url": format!("{}#{}", alerts.runbook_url, name.to_lowercase()),
                    "targetBlank": true, "asDropdown": false, "icon": "doc",
                    "includeVars": false, "keepTime": false, "tags": []
                }]);
            }
            if kind == "table" {
                // An instant query in table format is one frame: a row per series, a
                // column per label, `Value`. Only the internals are hidden; the value
                // cells take the panel's colours.
                panel["transformations"] = json!([{"id": "organize", "options": {
                    "excludeByName": {"Time": true, "__name__": true, "job": true},
                    "indexByName": {},
                    "renameByName": {}
                }}]);
                if coloured {
                    panel["fieldConfig"]["overrides"] = json!([{
                        "matcher": {"id": "byName", "options": "Value"},
                        "properties": [{"id": "custom.cellOptions", "value": {"type": "color-background"}}]
                    }]);
                }
                for t in panel["targets"].as_array_mut().into_iter().flatten() {
                    t["instant"] = json!(true);
                    t["range"] = json!(false);
                    t["format"] = json!("table");
                }
            }
            panels.push(panel);
            id += 1;
            x += w;
        }
        if x > 0 {
            y += PANEL_HEIGHT;
        }
    }
    let query_var = |name: &str, label: &str, query: &str| {
        json!({
            "type": "query",
            "name": name,
            "label": label,
            "datasource": datasource(),
            "query": {"query": query, "refId": format!("{name}-variable")},
            "multi": true,
            "includeAll": true,
            "allValue": ".+",
            "current": {"selected": true, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
            "options": [],
            "regex": "",
        })
    };
    Ok(json!({
        "uid": UID,
        "title": spec.title,
        "description": "Generated by shoehub-exporter from the maintenance plan's dashboard spec.",
        "tags": ["shoehub"],
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "refresh": "1m",
        "links": links(),
        "annotations": {"list": annotations()},
        "templating": {"list": [
            {
                "type": "datasource",
                "name": "datasource",
                "label": "Data source",
                "query": "prometheus",
                "current": {"selected": false, "text": "Prometheus", "value": super::DATASOURCE_UID},
                "hide": 0,
                "refresh": 1,
                "regex": "",
                "options": []
            },
            query_var("job", "Job", "label_values(shoehub_exporter_build_info, job)"),
            query_var("instance", "Instance", "label_values(shoehub_exporter_build_info{job=~\"$job\"}, instance)"),
        ]},
        "panels": panels,
    }))
}
