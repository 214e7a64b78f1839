//! TLS for the HTTP server (`tls_server_config` of `--web.config.file`).
//!
//! Certificates are renewed on disk (certbot, an internal CA) more often than exporters
//! are restarted, so the files are looked at again, at most every few seconds, when a
//! connection arrives: on the blocking pool (a certificate on a network filesystem must
//! not hold up the async worker), and a changed file is loaded for the connections that
//! follow. A file that cannot be loaded then is logged and the certificate in use kept.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::version::{TLS12, TLS13};
use tokio_rustls::rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

use crate::config::webfile::{ClientAuth, TlsSettings, TlsVersion};

/// How often the certificate files are looked at again, at most.
const RECHECK: Duration = Duration::from_secs(5);

pub struct Tls {
    settings: TlsSettings,
    state: Mutex<State>,
}

struct State {
    acceptor: TlsAcceptor,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
    /// A look at the files is under way.
    checking: bool,
}

impl Tls {
    /// Loads the certificate, key and client CA; fails with what is wrong with which.
    pub fn new(settings: TlsSettings) -> Result<Tls, String> {
        let stamps = stamps(&settings);
        let acceptor = TlsAcceptor::from(build(&settings)?);
        Ok(Tls {
            settings,
            state: Mutex::new(State {
                acceptor,
                stamps,
                checked: Instant::now(),
                checking: false,
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    /// The acceptor for a new connection; past the recheck interval, starts a look at
    /// the files on the blocking pool, which later connections benefit from.
    pub fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut s = self.state();
        if !s.checking && s.checked.elapsed() >= RECHECK {
            s.checking = true;
            let tls = Arc::clone(self);
            drop(tokio::task::spawn_blocking(move || tls.reload_if_changed()));
        }
        s.acceptor.clone()
    }

    fn reload_if_changed(&self) {
        let now = stamps(&self.settings);
        let changed = {
            let mut s = self.state();
            s.checked = Instant::now();
            s.checking = false;
            let changed = now != s.stamps;
            s.stamps = now;
            changed
        };
        if !changed {
            return;
        }
        // Built outside the lock: connections keep the acceptor in use meanwhile.
        match build(&self.settings) {
            Ok(cfg) => {
                self.state().acceptor = TlsAcceptor::from(cfg);
                info!("TLS certificate files changed: loaded again");
            }
            Err(e) => warn!(
                error = %e,
                "TLS certificate files changed but cannot be loaded; keeping the ones in use"
            ),
        }
    }
}

fn stamps(s: &TlsSettings) -> Vec<Option<SystemTime>> {
    [Some(&s.cert), Some(&s.key), s.client_ca.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|p| p.path())
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

fn build(s: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let versions: Vec<&'static SupportedProtocolVersion> =
        [(TlsVersion::Tls12, &TLS12), (TlsVersion::Tls13, &TLS13)]
            .into_iter()
            .filter(|(v, _)| (s.min_version..=s.max_version).contains(v))
            .map(|(_, p)| p)
            .collect();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let builder = match (&s.client_auth, &s.client_ca) {
        (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            let what = ca.describe("client CA");
            for cert in certificates(&ca.read()?, &what)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{what}: not a usable CA certificate: {e}"))?;
            }
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            if *auth == ClientAuth::VerifyIfGiven {
                verifier = verifier.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| format!("{what}: cannot verify clients with it: {e}"))?,
            )
        }
    };
    let chain = certificates(&s.cert.read()?, &s.cert.describe("certificate"))?;
    let key = PrivateKeyDer::from_pem_slice(&s.key.read()?)
        .map_err(|e| format!("{}: no PEM private key found ({e})", s.key.describe("key")))?;
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
        format!(
            "{} and {} do not go together: {e}",
            s.cert.describe("certificate"),
            s.key.describe("key")
        )
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.ignore_client_order = s.prefer_server_order;
    Ok(Arc::new(cfg))
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: cannot read the PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}
