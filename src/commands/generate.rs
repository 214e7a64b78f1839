//! `generate dashboard|alerts|bundle`: the Grafana dashboard, provisioning and alert
//! rules, from the configuration.

use std::path::Path;

use super::{load_config, Failure, Outcome};
use crate::bundle::{self, BundleError};
use crate::cli::GenerateCommand;

pub fn run(config: Option<&Path>, cmd: &GenerateCommand) -> Outcome {
    let config = load_config(config)?;
    let result = match cmd {
        GenerateCommand::Dashboard => bundle::dashboard_json(&config).map(|t| print!("{t}")),
        GenerateCommand::Alerts => {
            print!("{}", bundle::alert_rules(&config));
            Ok(())
        }
        GenerateCommand::Bundle(a) => bundle::write(&config, &a.out).map(|files| {
            for f in files {
                println!("{}", a.out.join(f).display());
            }
        }),
    };
    match result {
        Ok(()) => Ok(0),
        Err(e @ BundleError::Dashboard(_)) => Err(Failure::config(e)),
        Err(e) => Err(Failure::new(1, e)),
    }
}
