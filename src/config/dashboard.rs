//! `dashboard:` — the maintenance plan's dashboard spec (rows, panels, `span` out of 12,
//! `targets` naming catalogue entries), as the bundle generator reads it.

use serde::{Deserialize, Deserializer};

/// `dashboard:` — the maintenance plan's own format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    pub title: String,
    #[serde(default)]
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub title: String,
    #[serde(default)]
    pub panels: Vec<PanelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelSpec {
    pub title: String,
    #[serde(rename = "type", default)]
    pub kind: PanelKind,
    #[serde(default)]
    pub span: Span,
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Colour steps above the base green: `[{value: 80, color: red}]`.
    #[serde(default)]
    pub thresholds: Vec<ThresholdSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdSpec {
    pub value: f64,
    pub color: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PanelKind {
    #[default]
    Graph,
    Timeseries,
    Stat,
    Gauge,
    Table,
}

/// A panel's width in the plan's 12-column grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub u8);

impl Default for Span {
    fn default() -> Self {
        Span(12)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u8::deserialize(d)?;
        if (1..=12).contains(&n) {
            Ok(Span(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "span {n} is out of range: a panel is 1 to 12 columns wide"
            )))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// A catalogue name such as `cpu_usage`.
    #[serde(default)]
    pub target: Option<String>,
    /// Raw PromQL instead of a catalogue name.
    #[serde(default)]
    pub expr: Option<String>,
    #[serde(default)]
    pub legend: Option<String>,
}
