//! One probe: connect, TLS, request, answer, each phase timed, redirects followed as
//! configured, all within the probe's budget. hyper's client connection and the rustls
//! the server already uses; no connection is kept between scrapes, so every probe sees
//! what a new visitor sees.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue, HOST, LOCATION, USER_AGENT};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use super::{cert, Method, Outcome, ProbeConfig, Redirects, MAX_BODY_BYTES, MAX_REDIRECTS};

/// Where Debian keeps the system's CA certificates.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

pub struct Prober {
    cfg: ProbeConfig,
    /// None only for an http:// probe on a host without CA certificates: a redirect to
    /// https then fails, saying so.
    tls: Option<TlsConnector>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether the last run failed, so a failure is logged when it starts and a
    /// recovery when it ends.
    failing: AtomicBool,
    /// Read every answer's body, up to this many bytes ([`Prober::get`]); 0: only for
    /// `expect_body`.
    keep_body: usize,
}

impl Prober {
    /// Reads the CA certificates once; fails, naming the probe, when they are unusable.
    pub fn new(cfg: &ProbeConfig) -> Result<Prober, String> {
        let tls = match tls_config(cfg) {
            Ok(c) => Some(TlsConnector::from(c)),
            Err(e) if cfg.url.0.scheme() == "https" => {
                return Err(format!("probes {:?}: {e}", cfg.name))
            }
            Err(_) => None,
        };
        let headers = cfg
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    HeaderName::from_bytes(k.as_bytes()).ok()?,
                    HeaderValue::from_str(v).ok()?,
                ))
            })
            .collect();
        Ok(Prober {
            cfg: cfg.clone(),
            tls,
            headers,
            failing: AtomicBool::new(false),
            keep_body: 0,
        })
    }

    /// A client for one URL that returns what it answered: `get` reads up to `limit`
    /// bytes of the body.
    pub fn client(cfg: &ProbeConfig, limit: usize) -> Result<Prober, String> {
        let mut p = Prober::new(cfg)?;
        p.keep_body = limit;
        Ok(p)
    }

    /// One request to the configured URL, no redirect followed, within its timeout:
    /// the status and the body.
    pub async fn get(&self) -> Result<(u16, Vec<u8>), String> {
        let budget = self.cfg.timeout.get();
        let mut o = Outcome::default();
        let url = self.cfg.url.0.clone();
        match tokio::time::timeout(budget, self.once(&url, &mut o)).await {
            Ok(Ok(a)) => Ok((a.status, a.body.unwrap_or_default())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("{url}: no complete answer within {budget:?}")),
        }
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// One probe within its own timeout and the scrape's `deadline`.
    pub async fn run(&self, deadline: Instant) -> Outcome {
        let budget = self
            .cfg
            .timeout
            .get()
            .min(deadline.saturating_duration_since(Instant::now()));
        let start = Instant::now();
        let mut o = Outcome::default();
        let result = tokio::time::timeout(budget, self.fetch(&mut o)).await;
        o.failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(_) => Some(format!("no complete answer within {budget:?}")),
        };
        o.success = o.failure.is_none();
        o.total = start.elapsed().as_secs_f64();
        o
    }

    /// Logs a failure when it starts and a recovery when it ends.
    pub fn note(&self, o: &Outcome) {
        match &o.failure {
            Some(why) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(probe = %self.cfg.name, url = %self.cfg.url.0, cause = %why, "probe failed");
                }
            }
            None => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(probe = %self.cfg.name, "probe succeeds again");
                }
            }
        }
    }

    async fn fetch(&self, o: &mut Outcome) -> Result<(), String> {
        let mut url = self.cfg.url.0.clone();
        for hop in 0..=MAX_REDIRECTS {
            let answer = self.once(&url, o).await?;
            o.status = answer.status;
            let next = answer
                .location
                .filter(|_| (300..400).contains(&answer.status))
                .and_then(|l| url.join(&l).ok())
                .filter(|next| match self.cfg.follow_redirects {
                    Redirects::None => false,
                    Redirects::SameHost => {
                        (next.scheme(), next.host_str(), next.port_or_known_default())
                            == (url.scheme(), url.host_str(), url.port_or_known_default())
                    }
                    Redirects::Any => true,
                });
            if let Some(next) = next {
                if hop == MAX_REDIRECTS {
                    return Err(format!("more than {MAX_REDIRECTS} redirects"));
                }
                url = next;
                continue;
            }
            let expected = if self.cfg.expect_status.is_empty() {
                (200..300).contains(&answer.status)
            } else {
                self.cfg.expect_status.contains(&answer.status)
            };
            if !expected {
                return Err(format!("{url} answered {}", answer.status));
            }
            if let Some(want) = &self.cfg.expect_body {
                let body = answer.body.unwrap_or_default();
                if memchr::memmem::find(&body, want.as_bytes()).is_none() {
                    return Err(format!("the answer of {url} does not contain {want:?}"));
                }
            }
            return Ok(());
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    /// One request on a new connection.
    async fn once(&self, url: &url::Url, o: &mut Outcome) -> Result<Answer, String> {
        let (host, server_name) = match url.host() {
            Some(url::Host::Domain(d)) => (
                d.to_owned(),
                ServerName::try_from(d.to_owned()).map_err(|e| format!("{d}: {e}"))?,
            ),
            Some(url::Host::Ipv4(a)) => (a.to_string(), ServerName::from(std::net::IpAddr::V4(a))),
            Some(url::Host::Ipv6(a)) => (a.to_string(), ServerName::from(std::net::IpAddr::V6(a))),
            None => return Err(format!("{url} has no host")),
        };
        let port = url.port_or_known_default().unwrap_or(80);
        let t = Instant::now();
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        o.connect += t.elapsed().as_secs_f64();
        let _ = tcp.set_nodelay(true);
        let request = self.request(url)?;
        if url.scheme() == "https" {
            let tls = self
                .tls
                .as_ref()
                .ok_or_else(|| format!("{url}: no CA certificates to verify it with"))?;
            let t = Instant::now();
            let stream = tls
                .connect(server_name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            o.tls += t.elapsed().as_secs_f64();
            let expiry = stream
                .get_ref()
                .1
                .peer_certificates()
                .into_iter()
                .flatten()
                .filter_map(|c| cert::not_after(c))
                .min();
            o.cert_expiry = expiry.or(o.cert_expiry);
            self.exchange(TokioIo::new(stream), request, o).await
        } else {
            self.exchange(TokioIo::new(tcp), request, o).await
        }
    }

    fn request(&self, url: &url::Url) -> Result<hyper::Request<Empty<Bytes>>, String> {
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let mut req = hyper::Request::builder()
            .method(match self.cfg.method {
                Method::Get => hyper::Method::GET,
                Method::Head => hyper::Method::HEAD,
            })
            .uri(if target.is_empty() { "/" } else { target })
            .body(Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let h = req.headers_mut();
        h.insert(
            HOST,
            HeaderValue::from_str(host).map_err(|e| format!("{url}: {e}"))?,
        );
        h.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("shoehub-exporter/", env!("CARGO_PKG_VERSION"))),
        );
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        Ok(req)
    }

    async fn exchange<T>(
        &self,
        io: TokioIo<T>,
        request: hyper::Request<Empty<Bytes>>,
        o: &mut Outcome,
    ) -> Result<Answer, String>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        // The connection is driven beside the request, and dropped with the probe.
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = conn.await;
        }));
        let t = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("no answer: {e}"))?;
        o.first_byte += t.elapsed().as_secs_f64();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let wants_body = (self.cfg.expect_body.is_some() || self.keep_body > 0)
            && self.cfg.method != Method::Head;
        let limit = self.keep_body.max(MAX_BODY_BYTES);
        let body = if wants_body {
            let mut body = response.into_body();
            let mut buf = Vec::new();
            while buf.len() < limit {
                match body.frame().await {
                    None => break,
                    Some(Err(e)) => return Err(format!("reading the answer: {e}")),
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            let room = limit - buf.len();
                            buf.extend_from_slice(&data[..data.len().min(room)]);
                        }
                    }
                }
            }
            Some(buf)
        } else {
            None
        };
        drop(driver);
        Ok(Answer {
            status,
            location,
            body,
        })
    }
}

/// What one request got.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Option<Vec<u8>>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn tls_config(cfg: &ProbeConfig) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = if cfg.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let file = cfg.tls_ca_file.clone().unwrap_or_else(|| SYSTEM_CAS.into());
        let mut roots = RootCertStore::empty();
        let pem = crate::regular::read(&file, 16 << 20)
            .map_err(|e| format!("cannot read CA certificates from {}: {e}", file.display()))?;
        let certs = CertificateDer::pem_slice_iter(&pem);
        for c in certs {
            let c = c.map_err(|e| format!("{}: {e}", file.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("{}: not a usable CA certificate: {e}", file.display()))?;
        }
        if roots.is_empty() {
            return Err(format!("{}: no CA certificate found", file.display()));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `insecure_skip_verify`: any certificate is accepted; signatures are still checked,
/// so the handshake itself is sound.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
