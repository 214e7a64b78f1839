//! `check:` in the configuration: where `shoehub-exporter check` reaches the exporter,
//! Prometheus and Grafana. The checks themselves live in `crate::check`, above this.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::collectors::probe::ProbeUrl as HttpUrl;
use crate::value::DurationValue;

/// `check:` — where the checks reach the exporter, Prometheus and Grafana.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckConfig {
    /// The exporter's metrics URL; default: `http://127.0.0.1:PORT/PATH` from `web:`.
    pub exporter_url: Option<HttpUrl>,
    /// A user of the web config file's `basic_auth_users`...
    pub exporter_username: Option<String>,
    /// ...and a file (mode 0600) holding that user's password in clear.
    pub exporter_password_file: Option<PathBuf>,
    /// CA certificates (PEM) for an https exporter_url with a private CA.
    pub exporter_ca_file: Option<PathBuf>,
    /// Prometheus' base URL (`http://localhost:9090`): its checks run when set.
    pub prometheus_url: Option<HttpUrl>,
    /// The exporter's `instance` label in Prometheus; default: every target of the job.
    pub instance: Option<String>,
    /// Grafana's base URL (`http://localhost:3000`): its checks run when set, with...
    pub grafana_url: Option<HttpUrl>,
    /// ...a service account token (mode 0600, Viewer role is enough).
    pub grafana_token_file: Option<PathBuf>,
    /// How long each request may take.
    pub timeout: DurationValue,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            exporter_url: None,
            exporter_username: None,
            exporter_password_file: None,
            exporter_ca_file: None,
            prometheus_url: None,
            instance: None,
            grafana_url: None,
            grafana_token_file: None,
            timeout: DurationValue(Duration::from_secs(10)),
        }
    }
}

impl CheckConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.exporter_username.is_some() != self.exporter_password_file.is_some() {
            return Err(
                "check.exporter_username and check.exporter_password_file go together: give both or neither"
                    .to_owned(),
            );
        }
        if self.grafana_url.is_some() != self.grafana_token_file.is_some() {
            return Err(
                "check.grafana_url and check.grafana_token_file go together: give both or neither"
                    .to_owned(),
            );
        }
        if self.timeout.get().is_zero() {
            return Err("check.timeout: must be more than 0s".to_owned());
        }
        Ok(())
    }
}
