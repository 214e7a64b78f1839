//! The dashboard spec (the maintenance plan's format) as a Grafana dashboard.
//!
//! schemaVersion 39 is Grafana 10.4's: the oldest release the dashboard must import into
//! reads it without migrating, and Grafana 11 and 12 migrate it forward on load (their
//! migrations above 39 touch panel types and options this dashboard does not use).

use serde_json::{json, Value};

use super::catalogue::{self, Target};
use crate::config::dashboard::{DashboardSpec, PanelKind, PanelSpec, RowSpec, Span, TargetSpec};

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

/// The panel's queries, its unit and its description.
fn resolve(at: &str, p: &PanelSpec) -> Result<(Vec<Value>, String, String), DashboardError> {
    let mut targets = Vec::new();
    let mut unit = None;
    let mut description = None;
    for (i, t) in p.targets.iter().enumerate() {
        let at = format!("{at}.targets[{i}]");
        let queries: Vec<(String, String)> = match (&t.target, &t.expr) {
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
                found
                    .queries
                    .iter()
                    .map(|q| (catalogue::expand(q.expr), q.legend.to_owned()))
                    .collect()
            }
            (None, Some(expr)) => vec![(expr.clone(), String::new())],
            (None, None) => return Err(DashboardError::EmptyTarget { at }),
        };
        for (expr, legend) in queries {
            let ref_id = char::from(b'A' + (targets.len() % 26) as u8).to_string();
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
    Ok((targets, unit, description))
}

/// The Grafana dashboard JSON for `spec`.
pub fn generate(spec: &DashboardSpec) -> Result<Value, DashboardError> {
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
            let (targets, unit, description) = resolve(&at, p)?;
            let w = u32::from(p.span.0) * 2;
            if x + w > 24 {
                x = 0;
                y += PANEL_HEIGHT;
            }
            let steps: Vec<Value> = std::iter::once(json!({"color": "green", "value": null}))
                .chain(
                    p.thresholds
                        .iter()
                        .map(|t| json!({"color": t.color, "value": t.value})),
                )
                .collect();
            let kind = panel_type(p.kind);
            let options = match kind {
                "timeseries" => json!({
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": true},
                    "tooltip": {"mode": "multi", "sort": "none"}
                }),
                "stat" => json!({
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": false},
                    "colorMode": "value", "graphMode": "area", "justifyMode": "auto",
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
                        "color": {"mode": if kind == "timeseries" { "palette-classic" } else { "thresholds" }}
                    },
                    "overrides": []
                },
                "options": options,
                "targets": targets,
            });
            if kind == "table" {
                // One row per series, with its labels and last value.
                panel["transformations"] =
                    json!([{"id": "reduce", "options": {"reducers": ["lastNotNull"]}}]);
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
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1,
            "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": true,
            "hide": true,
            "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts",
            "type": "dashboard"
        }]},
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
