//! `probes`: the shop's own probe, so that the one outage a shop must catch — it does
//! not answer — is seen even when no request reaches the web server's log.
//!
//! Each configured URL is fetched on every scrape, all of them at once, each under the
//! smaller of its own timeout and the scrape's deadline. A probe that fails is a
//! measurement (`shoehub_probe_success 0`), not a failed collector. The phases are timed
//! as blackbox_exporter's http prober times them; the certificate's expiry is the
//! earliest `notAfter` in the chain the server sent.

mod cert;
pub mod http;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{AnyCollector, AsyncCollector, BuildError, CollectError, CollectFuture, Env, Run};
use super::{Served, Settings};
use crate::exposition::{Family, Format, MetricWriter};
use crate::value::DurationValue;

pub static SUCCESS: Family = Family::gauge(
    "shoehub_probe_success",
    "Whether the probe got the expected answer (1) or not (0).",
);
pub static DURATION: Family = Family::gauge(
    "shoehub_probe_duration_seconds",
    "How long each phase of the probe took: connect (with name resolution), tls, first_byte (request sent to response head), total.",
)
.unit("seconds");
pub static STATUS_CODE: Family = Family::gauge(
    "shoehub_probe_http_status_code",
    "The HTTP status code of the probe's last answer (0 when none came).",
);
pub static CERT_EXPIRY: Family = Family::gauge(
    "shoehub_probe_tls_certificate_expiry_timestamp_seconds",
    "When the earliest-expiring certificate of the chain the server sent expires.",
)
.unit("seconds");

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[&SUCCESS, &DURATION, &STATUS_CODE, &CERT_EXPIRY]);

/// Label of every series: the probe's name.
const PROBE: &str = "probe";

/// Longest body read for `expect_body`; the rest of a larger page is not read.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// One entry of `probes:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The `probe` label.
    pub name: String,
    /// `http://` or `https://`, with the host the certificate names.
    pub url: ProbeUrl,
    /// Status codes that count as success; empty: any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// A text the body must contain (the first MiB of it).
    #[serde(default)]
    pub expect_body: Option<String>,
    #[serde(default = "probe_timeout")]
    pub timeout: DurationValue,
    /// CA certificates (PEM) to verify the server with instead of the system's.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Accept any certificate (its expiry is still reported).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// Request headers, such as `Host` for a name-based virtual host.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub method: Method,
    /// Which redirects are followed (at most five).
    #[serde(default)]
    pub follow_redirects: Redirects,
}

fn probe_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(5))
}

/// The request method.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Head,
}

/// Which redirects a probe follows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Redirects {
    /// None: a 3xx is the answer.
    None,
    /// Those to the same scheme, host and port.
    #[default]
    SameHost,
    /// Any.
    Any,
}

/// A probe URL: http or https, with a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUrl(pub url::Url);

impl<'de> Deserialize<'de> for ProbeUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let u = url::Url::parse(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid URL {s:?}: {e}")))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(serde::de::Error::custom(format!(
                "{s:?}: give an http:// or https:// URL"
            )));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(serde::de::Error::custom(format!("{s:?} has no host")));
        }
        Ok(ProbeUrl(u))
    }
}

/// Names are the `probe` label: each its own; codes are HTTP's; headers are headers.
pub fn validate(probes: &[ProbeConfig]) -> Result<(), String> {
    for (i, p) in probes.iter().enumerate() {
        if p.name.is_empty() {
            return Err(format!("probes[{i}].name: must not be empty"));
        }
        if let Some(j) = probes[..i].iter().position(|o| o.name == p.name) {
            return Err(format!(
                "probes[{i}].name: {:?} is already the name of probes[{j}]; each probe needs its own (it is the `probe` label)",
                p.name
            ));
        }
        if let Some(c) = p.expect_status.iter().find(|c| !(100..=599).contains(*c)) {
            return Err(format!(
                "probes[{i}].expect_status: {c} is not an HTTP status code (100 to 599)"
            ));
        }
        for (k, v) in &p.headers {
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || hyper::header::HeaderValue::from_str(v).is_err()
            {
                return Err(format!(
                    "probes[{i}].headers: {k:?} is not a valid header name and value"
                ));
            }
        }
        if p.timeout.get().is_zero() {
            return Err(format!("probes[{i}].timeout: must be more than 0s"));
        }
    }
    Ok(())
}

/// What one probe found.
#[derive(Debug, Default, Clone)]
pub struct Outcome {
    pub success: bool,
    pub status: u16,
    pub connect: f64,
    pub tls: f64,
    pub first_byte: f64,
    pub total: f64,
    /// The earliest `notAfter` of the server's chain, Unix seconds.
    pub cert_expiry: Option<i64>,
    /// Why it failed, for the log.
    pub failure: Option<String>,
}

pub struct Probes {
    probes: Vec<http::Prober>,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    if s.probes.is_empty() {
        return Ok(None);
    }
    let probes = s
        .probes
        .iter()
        .map(http::Prober::new)
        .collect::<Result<Vec<_>, _>>()
        .map_err(BuildError::Probe)?;
    let timeout = s
        .probes
        .iter()
        .map(|p| p.timeout.get())
        .max()
        .unwrap_or_default();
    let run = Run::Async(Arc::new(Probes { probes }));
    Ok(Some(AnyCollector::new("probe", timeout, SERVED, run)))
}

impl AsyncCollector for Probes {
    fn collect(self: Arc<Self>, format: Format, deadline: Instant) -> CollectFuture {
        Box::pin(async move {
            // Every probe at once, each on its own task: a slow one delays no other.
            let runs: Vec<_> = (0..self.probes.len())
                .map(|i| {
                    let me = Arc::clone(&self);
                    tokio::spawn(async move { me.probes[i].run(deadline).await })
                })
                .collect();
            let mut outcomes = Vec::with_capacity(runs.len());
            for run in runs {
                outcomes.push(run.await.unwrap_or_else(|e| Outcome {
                    failure: Some(format!("the probe's task failed: {e}")),
                    ..Outcome::default()
                }));
            }
            let mut buf = Vec::with_capacity(1024);
            let mut w = MetricWriter::new(&mut buf, format);
            encode(&mut w, &self.probes, &outcomes);
            (buf.into(), Ok::<(), CollectError>(()))
        })
    }
}

fn encode(w: &mut MetricWriter<'_>, probes: &[http::Prober], outcomes: &[Outcome]) {
    for (p, o) in probes.iter().zip(outcomes) {
        w.sample_u64(&SUCCESS, &[(PROBE, p.name())], u64::from(o.success));
    }
    for (p, o) in probes.iter().zip(outcomes) {
        for (phase, v) in [
            ("connect", o.connect),
            ("tls", o.tls),
            ("first_byte", o.first_byte),
            ("total", o.total),
        ] {
            w.sample(&DURATION, &[("phase", phase), (PROBE, p.name())], v);
        }
    }
    for (p, o) in probes.iter().zip(outcomes) {
        w.sample_u64(&STATUS_CODE, &[(PROBE, p.name())], u64::from(o.status));
    }
    for (p, o) in probes.iter().zip(outcomes) {
        if let Some(t) = o.cert_expiry {
            w.sample(&CERT_EXPIRY, &[(PROBE, p.name())], t as f64);
        }
    }
    for (p, o) in probes.iter().zip(outcomes) {
        p.note(o);
    }
}
