//! `check-config`: loads the configuration and the web config as `serve` would, sets up
//! every collector without starting it, and says what is wrong.

use std::path::Path;

use super::serve::load_web_file;
use super::{config_path, out, Failure, Outcome};
use crate::cli::CheckConfigArgs;
use crate::config::Config;

/// There is no file to check: neither --config nor the installed default.
#[derive(Debug, thiserror::Error)]
#[error("no configuration file to check: give --config FILE (the default, {0}, does not exist)")]
struct NoFile(&'static str);

pub fn run(config: Option<&Path>, args: &CheckConfigArgs) -> Outcome {
    let path =
        config_path(config).ok_or_else(|| Failure::config(NoFile(crate::config::DEFAULT_PATH)))?;
    let c = Config::load(Some(&path)).map_err(Failure::config)?;
    crate::collectors::build(&c.collectors(), false, crate::scrape::SERVED)
        .map_err(Failure::config)?;
    let web = load_web_file(args.web_config_file.as_deref())?;
    crate::server::access(&web).map_err(Failure::config)?;
    out::println(format_args!("{}: valid", path.display()))?;
    if let Some(w) = &args.web_config_file {
        out::println(format_args!("{}: valid", w.display()))?;
    }
    Ok(0)
}
