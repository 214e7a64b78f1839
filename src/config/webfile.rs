//! `--web.config.file`: the Prometheus exporter-toolkit's web configuration (TLS, basic
//! auth, response headers), so that a file written for node_exporter or
//! mysqld_exporter works here unchanged.
//!
//! Parsed as strictly as the main config. Keys of the format that this server cannot
//! honour (TLS 1.0/1.1, Go cipher-suite and curve names, rate limiting) are refused with
//! a message that says so, rather than accepted and silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{describe_yaml_error, ConfigError};

/// A PEM document, inline in the file or in a file of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    /// The PEM text; a relative path is taken from the web config file's directory.
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
            Pem::File(path) => crate::regular::read(path, 1 << 20)
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }

    /// How messages name it: its path, or that it is inline.
    pub fn describe(&self, what: &str) -> String {
        match self {
            Pem::File(p) => format!("{what} {}", p.display()),
            Pem::Inline(_) => format!("{what} (inline)"),
        }
    }

    /// The file behind it, if any (watched for changes).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Pem::File(p) => Some(p),
            Pem::Inline(_) => None,
        }
    }
}

/// Whether and how clients prove who they are with a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    None,
    /// A certificate is optional, and checked against the CA when given.
    VerifyIfGiven,
    /// A certificate signed by the CA is required.
    RequireAndVerify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `tls_server_config:`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Option<Pem>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// The server's cipher-suite order rather than the client's.
    pub prefer_server_order: bool,
}

/// The whole web config file, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebFile {
    pub tls: Option<TlsSettings>,
    /// Header name and value, added to every response.
    pub headers: Vec<(String, String)>,
    /// User name and bcrypt hash.
    pub users: Vec<(String, String)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawFile {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawHttp {
    http2: Option<bool>,
    headers: BTreeMap<String, String>,
}

/// The response headers the format allows.
const HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Strict-Transport-Security",
];

impl WebFile {
    /// Loads and checks `path`.
    pub fn load(path: &Path) -> Result<WebFile, ConfigError> {
        let text =
            crate::regular::read_to_string(path, super::MAX_FILE_BYTES).map_err(|source| {
                ConfigError::Read {
                    path: path.to_owned(),
                    source,
                }
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        WebFile::parse(&text, base).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses a web config text; relative file names are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<WebFile, String> {
        super::check_nesting(text)?;
        let raw = if text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#')
        }) {
            RawFile::default()
        } else {
            serde_path_to_error::deserialize::<_, Option<RawFile>>(
                serde_yaml::Deserializer::from_str(text),
            )
            .map_err(|e| describe_yaml_error(&e))?
            .unwrap_or_default()
        };
        if raw.rate_limit.is_some() {
            return Err(
                "rate_limit: not supported; the exporter bounds concurrent scrapes \
                        itself (web.max_requests in the main config)"
                    .to_owned(),
            );
        }
        let tls = raw.tls_server_config.map(|t| tls(t, base)).transpose()?;
        let mut headers = Vec::new();
        if let Some(http) = raw.http_server_config {
            // `http2` is accepted for compatibility: the exporter speaks HTTP/1.1, which
            // every Prometheus scrapes with anyway.
            let _ = http.http2;
            for (name, value) in http.headers {
                let Some(known) = HEADERS.iter().find(|h| h.eq_ignore_ascii_case(&name)) else {
                    return Err(format!(
                        "http_server_config.headers.{name}: not a header this file may set; \
                         allowed: {}",
                        HEADERS.join(", ")
                    ));
                };
                if value.bytes().any(|b| b < 0x20 || b == 0x7f) {
                    return Err(format!(
                        "http_server_config.headers.{name}: the value holds a control character"
                    ));
                }
                if !value.is_empty() {
                    headers.push(((*known).to_owned(), value));
                }
            }
        }
        let mut users = Vec::new();
        for (user, hash) in raw.basic_auth_users {
            if user.is_empty() || user.contains(':') {
                return Err(format!(
                    "basic_auth_users.{user:?}: a user name must be non-empty and without ':'"
                ));
            }
            let hash = hash.trim().to_owned();
            if !is_bcrypt(&hash) {
                return Err(format!(
                    "basic_auth_users.{user}: not a bcrypt hash (it starts with $2a$, $2b$ \
                     or $2y$; make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                ));
            }
            users.push((user, hash));
        }
        Ok(WebFile {
            tls,
            headers,
            users,
        })
    }
}

/// The shape of a bcrypt hash: `$2b$NN$` and 53 characters of bcrypt's base64.
fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$"))
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

fn tls(t: RawTls, base: &Path) -> Result<TlsSettings, String> {
    let refuse = |key: &str, why: &str| Err(format!("tls_server_config.{key}: {why}"));
    if t.cipher_suites.as_ref().is_some_and(|c| !c.is_empty()) {
        return refuse(
            "cipher_suites",
            "not supported; the server offers only modern AEAD suites (AES-GCM and \
             ChaCha20-Poly1305 with ECDHE), which is what this key is usually used to enforce",
        );
    }
    if t.curve_preferences.as_ref().is_some_and(|c| !c.is_empty()) {
        return refuse(
            "curve_preferences",
            "not supported; the server offers X25519, P-256 and P-384",
        );
    }
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|c| !c.is_empty())
    {
        return refuse(
            "client_allowed_sans",
            "not supported; issue client certificates from a CA of their own and name it in client_ca_file",
        );
    }
    let pem = |inline: Option<String>, file: Option<PathBuf>, key: &str, file_key: &str| match (
        inline, file,
    ) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: give {key} or {file_key}, not both"
        )),
        (Some(text), None) => Ok(Some(Pem::Inline(text))),
        (None, Some(path)) if path.as_os_str().is_empty() => Ok(None),
        (None, Some(path)) => Ok(Some(Pem::File(base.join(path)))),
        (None, None) => Ok(None),
    };
    let cert = pem(t.cert, t.cert_file, "cert", "cert_file")?;
    let key = pem(t.key, t.key_file, "key", "key_file")?;
    let client_ca = pem(t.client_ca, t.client_ca_file, "client_ca", "client_ca_file")?;
    let (Some(cert), Some(key)) = (cert, key) else {
        return Err(
            "tls_server_config: needs a certificate and its key (cert_file and \
                    key_file, or cert and key inline)"
                .to_owned(),
        );
    };
    let client_auth = match t.client_auth_type.as_deref().unwrap_or("NoClientCert") {
        "NoClientCert" => ClientAuth::None,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        other @ ("RequestClientCert" | "RequireAnyClientCert") => {
            return refuse(
                "client_auth_type",
                &format!(
                    "{other} accepts certificates nobody checked and is not supported; use \
                     RequireAndVerifyClientCert with client_ca_file"
                ),
            )
        }
        other => {
            return refuse(
                "client_auth_type",
                &format!(
                    "unknown value {other:?}; one of NoClientCert, VerifyClientCertIfGiven, \
                     RequireAndVerifyClientCert"
                ),
            )
        }
    };
    if client_auth != ClientAuth::None && client_ca.is_none() {
        return refuse(
            "client_ca_file",
            "client_auth_type checks client certificates, which needs the CA that signs them",
        );
    }
    let version = |v: Option<String>, key: &str, default: TlsVersion| match v.as_deref() {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(TlsVersion::Tls12),
        Some("TLS13") => Ok(TlsVersion::Tls13),
        Some(old @ ("TLS10" | "TLS11")) => Err(format!(
            "tls_server_config.{key}: {old} is not supported (broken, and retired by RFC 8996); \
             use TLS12 or TLS13"
        )),
        Some(other) => Err(format!(
            "tls_server_config.{key}: unknown version {other:?}; TLS12 or TLS13"
        )),
    };
    let min_version = version(t.min_version, "min_version", TlsVersion::Tls12)?;
    let max_version = version(t.max_version, "max_version", TlsVersion::Tls13)?;
    if min_version > max_version {
        return refuse("min_version", "is above max_version");
    }
    Ok(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min_version,
        max_version,
        prefer_server_order: t.prefer_server_cipher_suites.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

    fn parse(text: &str) -> Result<WebFile, String> {
        WebFile::parse(text, Path::new("/etc/shoehub-exporter"))
    }

    #[test]
    fn the_toolkit_example_loads() {
        let w = parse(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: /keys/server.key\n\
             basic_auth_users:\n  alice: {HASH}\n"
        ))
        .unwrap();
        let tls = w.tls.unwrap();
        assert_eq!(
            tls.cert,
            Pem::File("/etc/shoehub-exporter/server.crt".into())
        );
        assert_eq!(tls.key, Pem::File("/keys/server.key".into()));
        assert_eq!(tls.client_auth, ClientAuth::None);
        assert_eq!(
            (tls.min_version, tls.max_version),
            (TlsVersion::Tls12, TlsVersion::Tls13)
        );
        assert_eq!(w.users, [("alice".to_owned(), HASH.to_owned())]);
        assert_eq!(parse("# nothing\n").unwrap(), WebFile::default());
    }

    #[test]
    fn headers_are_the_allowed_ones_and_blank_means_unset() {
        let w = parse(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Content-Security-Policy: \"\"\n",
        )
        .unwrap();
        assert_eq!(
            w.headers,
            [("X-Frame-Options".to_owned(), "deny".to_owned())]
        );
        let e = parse("http_server_config:\n  headers:\n    Set-Cookie: x\n").unwrap_err();
        assert!(
            e.contains("headers.Set-Cookie") && e.contains("allowed"),
            "{e}"
        );
    }

    #[test]
    fn what_cannot_be_honoured_is_refused_by_name() {
        for (text, words) in [
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n", "min_version: TLS10 is not supported"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n", "cipher_suites: not supported"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n", "client_ca_file"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n", "nobody checked"),
            ("tls_server_config:\n  cert_file: a\n", "needs a certificate and its key"),
            ("tls_server_config:\n  cert: x\n  cert_file: a\n  key_file: b\n", "not both"),
            ("rate_limit:\n  interval: 1s\n  burst: 20\n", "rate_limit: not supported"),
            ("basic_auth_users:\n  bob: secret\n", "basic_auth_users.bob: not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: a\n  key_file: b\n  sni: x\n", "unknown field `sni`"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(words), "{text}: {e}");
        }
        // The line and column of a wrong type.
        let e = parse("basic_auth_users:\n  bob: [1]\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bcrypt_shape() {
        assert!(is_bcrypt(HASH));
        assert!(!is_bcrypt(&HASH[..59]));
        assert!(!is_bcrypt(&HASH.replace("$2y$", "$1$$")));
    }
}
