//! Starting and stopping the exporter: runtime, listener, signals.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info, warn};

use hyper::header::{HeaderName, HeaderValue};

use super::{auth::BasicAuth, bind, serve, tls::Tls, BindError, ServerSettings};
use crate::collectors::AnyCollector;
use crate::config::webfile::WebFile;
use crate::config::Config;
use crate::scrape::Engine;

/// Why the exporter could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("cannot install the signal handler")]
    Signal(#[source] std::io::Error),
    #[error("web config file: {0}")]
    WebConfig(String),
}

/// What the web config file asks of the server, ready to use.
pub struct Access {
    pub tls: Option<Arc<Tls>>,
    pub auth: Option<Arc<BasicAuth>>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Loads what the web config file names: TLS certificates and keys, users, headers.
pub fn access(web: &WebFile) -> Result<Access, RunError> {
    let tls = match &web.tls {
        Some(t) => Some(Arc::new(Tls::new(t.clone()).map_err(RunError::WebConfig)?)),
        None => None,
    };
    let auth = (!web.users.is_empty()).then(|| Arc::new(BasicAuth::new(web.users.clone())));
    let headers = web
        .headers
        .iter()
        .map(|(n, v)| {
            Ok((
                HeaderName::from_bytes(n.as_bytes())
                    .map_err(|e| RunError::WebConfig(format!("header {n}: {e}")))?,
                HeaderValue::from_str(v)
                    .map_err(|e| RunError::WebConfig(format!("header {n}: {e}")))?,
            ))
        })
        .collect::<Result<Vec<_>, RunError>>()?;
    Ok(Access { tls, auth, headers })
}

/// Everything a configuration gives the server: what `serve` starts with and what a
/// reload builds anew.
pub struct Loaded {
    pub config: Config,
    pub web: WebFile,
    pub collectors: Vec<AnyCollector>,
}

/// Reads the configuration again (on SIGHUP); an error says what is wrong with it.
pub type Loader = Box<dyn Fn() -> Result<Loaded, String> + Send + Sync>;

fn settings(config: &Config, access: Access) -> ServerSettings {
    ServerSettings {
        telemetry_path: config.web.telemetry_path.0.clone(),
        max_requests: config.web.max_requests,
        max_connections: config.web.max_connections,
        header_read_timeout: config.web.header_read_timeout.get(),
        timeouts: super::Timeouts {
            write: config.web.write_timeout.get(),
            idle: config.web.idle_timeout.get(),
        },
        shutdown_grace: SHUTDOWN_GRACE,
        tls: access.tls,
        auth: access.auth,
        headers: access.headers,
        status: super::status::StatusSettings {
            limits: crate::check::scraped::Limits::from_config(config),
            runbook_url: config.alerts.runbook_url.clone(),
        },
    }
}

/// Builds what a reload swaps in, or says why the running configuration stays.
fn reload(
    loader: &Loader,
    running: std::net::SocketAddr,
) -> Result<(Arc<Engine>, ServerSettings), String> {
    let loaded = loader()?;
    let access = access(&loaded.web).map_err(|e| crate::error_chain(&e))?;
    if loaded.config.web.listen_address.0 != running {
        warn!(
            running = %running,
            configured = %loaded.config.web.listen_address.0,
            "the listen address changes only on a restart; still listening on the old one"
        );
    }
    let engine = Arc::new(Engine::new(
        loaded.collectors,
        loaded.config.web.timeout_offset.get(),
    ));
    info!(collectors = ?engine.collector_names(), "configuration reloaded");
    Ok((engine, settings(&loaded.config, access)))
}

/// Serves `loaded` until SIGTERM or SIGINT; on SIGHUP, `loader` reads the configuration
/// again and the server switches to it, or keeps the running one when it is bad.
pub fn run(loaded: Loaded, loader: Loader) -> Result<(), RunError> {
    let Loaded {
        config,
        web,
        collectors,
    } = loaded;
    let config = &config;
    let access_now = access(&web)?;
    let (settings_tls, settings_auth) = (access_now.tls.is_some(), access_now.auth.is_some());
    // One worker answers HTTP and drives the database collector's socket; the host
    // collectors run on the blocking pool, or on the worker itself when they only read
    // procfs (well under a millisecond per scrape). More workers only add wake-ups on a
    // small host, and the exporter should stay out of the shop's way.
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
            tls = settings_tls,
            basic_auth = settings_auth,
            path = %config.web.telemetry_path.0,
            collectors = ?engine.collector_names(),
            version = crate::VERSION,
            "listening"
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(RunError::Signal)?;
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(RunError::Signal)?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
            }
        };
        let (reloads, reloaded) = tokio::sync::mpsc::channel(1);
        let loader = Arc::new(loader);
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                info!("SIGHUP received: reloading the configuration");
                let loader = Arc::clone(&loader);
                // Reading files and building collectors blocks.
                let built = tokio::task::spawn_blocking(move || reload(&loader, shown)).await;
                match built {
                    Ok(Ok(next)) => {
                        if reloads.send(next).await.is_err() {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        error!(error = %e, "reload failed; the running configuration stays");
                    }
                    Err(e) => error!(error = %e, "reload failed; the running configuration stays"),
                }
            }
        });
        serve(
            listener,
            engine,
            settings(config, access_now),
            shutdown,
            reloaded,
        )
        .await;
        Ok::<(), RunError>(())
    })?;
    // A collector thread stuck in the kernel (a hung network filesystem) would hold a
    // plain drop of the runtime for as long as it stays stuck: it is left behind.
    runtime.shutdown_timeout(RUNTIME_GRACE);
    info!("stopped");
    Ok(())
}

/// After SIGTERM, open requests get this long to finish...
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// ...and the runtime's threads this long after them: the process exits within four
/// seconds whatever a collector does.
const RUNTIME_GRACE: Duration = Duration::from_millis(500);
