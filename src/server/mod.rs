//! The HTTP server: routing, content negotiation, limits and graceful shutdown.
//!
//! Limits protect the host the exporter watches: a header-read timeout drops clients
//! that never finish their request, a connection cap bounds sockets and memory, and a
//! bound on concurrent scrapes answers the excess with an immediate 503 instead of
//! queueing work nobody will wait for.
//!
//! With `--web.config.file`, connections can be TLS ([`tls`]), requests must carry a
//! user's password ([`auth`]), and responses get the configured headers. Without it none
//! of that costs anything.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use body::Chunks;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CONTENT_ENCODING,
    CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::scrape::{Engine, Handler};

pub mod auth;
mod body;
mod gzip;
mod negotiate;
mod run;
pub mod status;
mod timed;
pub mod tls;

pub use negotiate::{accepts_gzip, negotiate_format};
pub use run::{access, run, Loaded, Loader, RunError};
pub use timed::Timeouts;

/// What the server needs to know beyond the engine.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub telemetry_path: String,
    pub max_requests: usize,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// How long a connection may wait on a peer that reads nothing or sends nothing.
    pub timeouts: Timeouts,
    /// How long open connections get to finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// TLS for every connection, when the web config file asks for it.
    pub tls: Option<Arc<tls::Tls>>,
    /// Basic authentication for every request, when the web config file has users.
    pub auth: Option<Arc<auth::BasicAuth>>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The status page's thresholds and links.
    pub status: status::StatusSettings,
}

impl std::fmt::Debug for tls::Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl std::fmt::Debug for auth::BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth")
    }
}

struct State {
    engine: Arc<Engine>,
    settings: ServerSettings,
    scrapes: Semaphore,
}

impl State {
    fn new(engine: Arc<Engine>, settings: ServerSettings) -> State {
        State {
            scrapes: Semaphore::new(settings.max_requests.max(1)),
            engine,
            settings,
        }
    }
}

/// The state requests are answered with; a reload replaces it whole, and each request
/// takes the one current when it arrives.
type Live = Arc<std::sync::RwLock<Arc<State>>>;

fn current(live: &Live) -> Arc<State> {
    match live.read() {
        Ok(s) => Arc::clone(&s),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

fn http1(settings: &ServerSettings) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
}

/// Serves until `shutdown` resolves, then lets open requests finish (up to the grace
/// period) and returns. What arrives on `reloads` replaces the collectors and settings
/// for every request from then on; connections already open keep their TLS session.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()>,
    mut reloads: tokio::sync::mpsc::Receiver<(Arc<Engine>, ServerSettings)>,
) {
    let live: Live = Arc::new(std::sync::RwLock::new(Arc::new(State::new(
        engine, settings,
    ))));
    let mut state = current(&live);
    let open = Arc::new(AtomicUsize::new(0));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = http1(&state.settings);
    tokio::pin!(shutdown);
    // Failed accepts in a row.
    let mut refused = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            Some((engine, settings)) = reloads.recv() => {
                builder = http1(&settings);
                state = Arc::new(State::new(engine, settings));
                match live.write() {
                    Ok(mut s) => *s = Arc::clone(&state),
                    Err(p) => *p.into_inner() = Arc::clone(&state),
                }
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    if std::mem::take(&mut refused) > 0 {
                        info!(tries = refused, "accepting connections again");
                    }
                    a
                }
                Err(e) => {
                    // Out of file descriptors, most likely: the connection waits in the
                    // listen queue while the exporter backs off instead of spinning, and
                    // is taken when a descriptor is free. Said once a spell.
                    if refused == 0 {
                        warn!(error = %e, "accept failed; retrying every 50 ms");
                    }
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if open.load(Ordering::Relaxed) >= state.settings.max_connections {
            debug!(%peer, "connection limit reached, closing new connection");
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let stream = timed::Timed::new(stream, state.settings.timeouts);
        let guard = ConnectionGuard::new(&open);
        let st = Arc::clone(&live);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        match state.settings.tls.as_ref().map(|t| t.acceptor()) {
            None => {
                tokio::spawn(async move {
                    let _guard = guard;
                    connection(stream, &builder, watcher, st, peer).await;
                });
            }
            Some(acceptor) => {
                // The handshake gets the time a client gets to send its headers.
                let limit = state.settings.header_read_timeout;
                tokio::spawn(async move {
                    let _guard = guard;
                    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => connection(tls, &builder, watcher, st, peer).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    info!("shutting down: waiting for open requests");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(state.settings.shutdown_grace) => {
            warn!("open connections did not finish in time; closing them");
        }
    }
}

/// Serves HTTP/1.1 on one connection, plain or TLS, until it closes.
async fn connection<I>(
    io: I,
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    live: Live,
    peer: SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = builder.serve_connection(
        TokioIo::new(io),
        service_fn(move |req| {
            let st = current(&live);
            async move { Ok::<_, Infallible>(handle(req, &st, peer.ip()).await) }
        }),
    );
    if let Err(e) = watcher.watch(conn).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

struct ConnectionGuard(Arc<AtomicUsize>);

impl ConnectionGuard {
    fn new(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(open))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn handle(req: Request<Incoming>, st: &State, peer: std::net::IpAddr) -> Response<Chunks> {
    let path = req.uri().path();
    let is_metrics = path == st.settings.telemetry_path;
    let get_like = req.method() == Method::GET || req.method() == Method::HEAD;
    let verdict = match &st.settings.auth {
        None => auth::Verdict::Allowed,
        Some(auth) => auth.check(req.headers().get(AUTHORIZATION), peer).await,
    };
    let mut response = if verdict == auth::Verdict::Busy {
        let mut r = text(
            StatusCode::TOO_MANY_REQUESTS,
            "too many unchecked credentials at once; try again shortly\n",
        );
        r.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if verdict == auth::Verdict::Denied {
        unauthorized()
    } else if is_metrics {
        if get_like {
            metrics(&req, st).await
        } else {
            method_not_allowed()
        }
    } else {
        match path {
            "/" | "/-/status" if get_like => status_page(path == "/", st).await,
            "/-/healthy" | "/-/ready" if get_like => text(StatusCode::OK, "OK\n"),
            "/" | "/-/status" | "/-/healthy" | "/-/ready" => method_not_allowed(),
            _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
        }
    };
    let handler = if is_metrics {
        Handler::Metrics
    } else {
        Handler::Other
    };
    for (name, value) in &st.settings.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    st.engine
        .stats
        .record_request(handler, response.status().as_u16());
    if req.method() == Method::HEAD {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Chunks::default());
    }
    response
}

async fn metrics(req: &Request<Incoming>, st: &State) -> Response<Chunks> {
    let Ok(_permit) = st.scrapes.try_acquire() else {
        return too_busy();
    };
    let headers = req.headers();
    let format = negotiate_format(headers.get(ACCEPT).and_then(|v| v.to_str().ok()));
    let scrape_timeout = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| Duration::from_secs_f64(s.min(86_400.0)));
    let parts = st.engine.scrape(format, scrape_timeout).await;
    let gzip = accepts_gzip(headers.get(ACCEPT_ENCODING).and_then(|v| v.to_str().ok()));
    let mut response = Response::new(Chunks::default());
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
    let body = match gzip.then(|| gzip::gzip(&parts)) {
        Some(Ok(z)) => {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Chunks::from(Bytes::from(z))
        }
        _ => Chunks::new(parts),
    };
    *response.body_mut() = body;
    response
}

/// The status page (`/`) or its JSON (`/-/status`). A page asked for before any scrape
/// makes one, as a scrape would: within the bound on concurrent scrapes.
async fn status_page(page: bool, st: &State) -> Response<Chunks> {
    let snap = match st.scrapes.try_acquire() {
        Ok(_permit) => status::snapshot(&st.engine, &st.settings.status).await,
        Err(_) => return too_busy(),
    };
    if page {
        let body = status::html(&snap, &st.settings.status, &st.settings.telemetry_path);
        let mut r = html(StatusCode::OK, Bytes::from(body));
        r.headers_mut().insert(
            hyper::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        r.headers_mut().insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        r
    } else {
        let mut r = Response::new(Chunks::from(Bytes::from(snap.report.json())));
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        r
    }
}

/// `503` with `Retry-After: 1`: as many scrapes run as `web.max_requests` allows.
fn too_busy() -> Response<Chunks> {
    let mut r = text(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many concurrent scrapes; try again\n",
    );
    r.headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Chunks> {
    let mut r = Response::new(Chunks::from(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html(status: StatusCode, body: Bytes) -> Response<Chunks> {
    let mut r = Response::new(Chunks::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

fn unauthorized() -> Response<Chunks> {
    let mut r = text(StatusCode::UNAUTHORIZED, "401 unauthorized\n");
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"shoehub-exporter\", charset=\"UTF-8\""),
    );
    r
}

fn method_not_allowed() -> Response<Chunks> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    r
}

/// Binds the listener, with an error that says which address could not be had.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} (is another exporter already using the port? choose one with --web.listen-address)")]
pub struct BindError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}
