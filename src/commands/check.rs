//! `check`: the plan's validation steps, one line each, and an exit code a timer or a
//! script can act on.

use std::path::Path;

use super::out;
use super::{load_config, Failure, Outcome};
use crate::check::{local, remote, Check, Report, Status};
use crate::cli::{CheckArgs, ListFormat};

pub fn run(config: Option<&Path>, args: &CheckArgs) -> Outcome {
    let config = load_config(config)?;
    let asked: Vec<&str> = args.only.iter().map(|n| n.as_str()).collect();
    let only = |name: &str| asked.is_empty() || asked.contains(&name);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(1, e))?;
    let mut checks: Vec<Check> = Vec::new();
    runtime.block_on(async {
        if only("exporter") {
            checks.push(remote::exporter(&config).await);
        }
        if only("probes") {
            match remote::probes(&config).await {
                Some(c) => checks.push(c),
                None if !asked.is_empty() => checks.push(Check::failed(
                    "probes",
                    "no probe is configured",
                    "add the shop's URL under probes: in the config",
                )),
                None => {}
            }
        }
    });
    if !config.backup.enabled && asked.contains(&"backups") {
        checks.push(Check::failed(
            "backups",
            "backup.enabled is false",
            "turn the backup on in the config",
        ));
    }
    checks.extend(local::checks(&config, args.deep, &only));
    runtime.block_on(async {
        if only("prometheus") {
            match &config.check.prometheus_url {
                Some(u) => checks.push(remote::prometheus(&config, &u.0).await),
                None if !asked.is_empty() => checks.push(Check::failed(
                    "prometheus",
                    "check.prometheus_url is not set",
                    "set it to Prometheus' base URL, such as http://localhost:9090",
                )),
                None => {}
            }
        }
        if only("grafana") {
            match (&config.check.grafana_url, &config.check.grafana_token_file) {
                (Some(u), Some(t)) => checks.push(remote::grafana(&config, &u.0, t).await),
                _ if !asked.is_empty() => checks.push(Check::failed(
                    "grafana",
                    "check.grafana_url and check.grafana_token_file are not set",
                    "set them to Grafana's base URL and a file (mode 0600) with a service account token",
                )),
                _ => {}
            }
        }
    });
    let report = Report { checks };
    match args.format {
        ListFormat::Text => out::print(report.text())?,
        ListFormat::Json => out::print(report.json())?,
    }
    let failed = match report.worst() {
        Status::Failed => true,
        Status::Warning => args.strict,
        Status::Ok => false,
    };
    Ok(u8::from(failed))
}
