//! `serve` (the default): the exporter.

use std::path::Path;

use super::{init_logging, load_config, Failure, Outcome};
use crate::cli::ServeArgs;
use crate::config::webfile::WebFile;
use crate::server::{Loaded, Loader, RunError};

pub fn run(config: Option<&Path>, args: ServeArgs) -> Outcome {
    crate::sys::limit_malloc_arenas();
    limit_mysql_buffers();
    init_logging(args.log_level.as_tracing());
    match crate::sys::raise_open_files_limit() {
        Ok((soft, _)) => tracing::debug!(limit = ?soft, "open files"),
        Err(e) => tracing::debug!(error = %e, "the open-files limit stays as it was"),
    }
    let path = config.map(Path::to_owned);
    let first = load(path.as_deref(), &args)?;
    // SIGHUP reads the same files again, with the same flags on top.
    let loader: Loader = Box::new(move || {
        load(path.as_deref(), &args).map_err(|f| crate::error_chain(f.error.as_ref()))
    });
    match crate::server::run(first, loader) {
        Ok(()) => Ok(0),
        Err(e @ RunError::WebConfig(_)) => Err(Failure::config(e)),
        Err(e) => Err(Failure::new(1, e)),
    }
}

/// The config file with the flags on top, the web config file, and the collectors.
fn load(config: Option<&Path>, args: &ServeArgs) -> Result<Loaded, Failure> {
    let mut config = load_config(config)?;
    if let Some(addr) = &args.listen_address {
        config.web.listen_address = *addr;
    }
    if let Some(path) = &args.telemetry_path {
        config.web.telemetry_path = path.clone();
    }
    let web = load_web_file(args.web_config_file.as_deref())?;
    let collectors = crate::collectors::build(&config.collectors(), true, crate::scrape::SERVED)
        .map_err(Failure::config)?;
    Ok(Loaded {
        config,
        web,
        collectors,
    })
}

/// The web config file, or none (plain HTTP, no authentication).
pub fn load_web_file(path: Option<&Path>) -> Result<WebFile, Failure> {
    match path {
        None => Ok(WebFile::default()),
        Some(p) => WebFile::load(p).map_err(Failure::config),
    }
}

/// mysql_async keeps up to 128 packet buffers for reuse by default, sized for
/// applications with many connections; the collector reads one result at a time.
/// An operator's own setting wins.
fn limit_mysql_buffers() {
    const VAR: &str = "MYSQL_ASYNC_BUFFER_POOL_CAP";
    if std::env::var_os(VAR).is_none() {
        // Called before any thread starts, so nothing reads the environment meanwhile.
        std::env::set_var(VAR, "8");
    }
}
