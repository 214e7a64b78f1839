//! Starting and stopping the exporter: runtime, listener, signals.

use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::{bind, serve, BindError, ServerSettings};
use crate::collectors::AnyCollector;
use crate::config::Config;
use crate::scrape::Engine;

/// Why the exporter could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot install the signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// Serves `collectors` as `config` says until SIGTERM or SIGINT.
pub fn run(config: &Config, collectors: Vec<AnyCollector>) -> Result<(), RunError> {
    // One worker answers HTTP and drives the database collector's socket; the host
    // collectors run on the blocking pool or inside `block_in_place`. More workers only
    // add wake-ups on a small host, and the exporter should stay out of the shop's way.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        // 1 MiB of stack per thread is ample (gzip's compressor state is the deepest
        // user, and unoptimised builds need several times what optimised ones do).
        .thread_stack_size(1024 * 1024)
        .max_blocking_threads(12)
        .thread_keep_alive(Duration::from_secs(60))
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(async {
        let engine = Arc::new(Engine::new(collectors, config.web.timeout_offset.get()));
        let addr = config.web.listen_address.0;
        let listener = bind(addr).await?;
        let shown = listener.local_addr().unwrap_or(addr);
        info!(
            address = %shown,
            path = %config.web.telemetry_path.0,
            collectors = ?engine.collector_names(),
            version = crate::VERSION,
            "listening"
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(RunError::Signal)?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
            }
        };
        let settings = ServerSettings {
            telemetry_path: config.web.telemetry_path.0.clone(),
            max_requests: config.web.max_requests,
            max_connections: config.web.max_connections,
            header_read_timeout: config.web.header_read_timeout.get(),
            shutdown_grace: Duration::from_secs(5),
        };
        serve(listener, engine, settings, shutdown).await;
        info!("stopped");
        Ok(())
    })
}
