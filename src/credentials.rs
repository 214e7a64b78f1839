//! Where the exporter's MySQL account comes from: the URL (never with a password), a
//! password file, or a my.cnf-style defaults file. The files are read again for every
//! new connection, so a rotated password needs no restart; they are checked once at
//! start, so a mistake fails the start rather than the first scrape.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mysql_async::{Opts, OptsBuilder};

use serde::Deserialize;

use crate::text::percent_decode;
use crate::value::MysqlUrl;

/// Why the exporter cannot log in to MySQL as configured.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read mysql.{key} {path}")]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "mysql.{key} {path} can be read by group or others (mode {mode:04o}); \
         it holds a password, so make it private: chmod 600 {path}"
    )]
    Exposed {
        key: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("mysql.{key} {path}: {reason}")]
    Empty {
        key: &'static str,
        path: PathBuf,
        reason: &'static str,
    },
    #[error("mysql.defaults_file {path}, line {line}: {reason}")]
    Defaults {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("mysql: {0}")]
    Url(String),
    #[error(
        "mysql: no user name: put it in the URL (mysql://USER@HOST:PORT/DATABASE) or as \
         user= in the [client] section of defaults_file"
    )]
    NoUser,
}

/// A password held in memory: never printed, not even by `{:?}`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// The `[client]` values of a defaults file the exporter uses.
#[derive(Debug, Default)]
pub struct ClientSection {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub socket: Option<String>,
}

/// A MySQL account as a configuration section names it (`backup.mysql`, and the
/// account keys of `mysql:`): a URL without a password, and where the password is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// `mysql://USER@HOST:PORT/DATABASE`, or `mysql://USER@localhost/DATABASE?socket=PATH`
    /// for a unix socket; never with a password.
    #[serde(default)]
    pub url: Option<MysqlUrl>,
    /// A file holding only the password (trailing newline ignored), mode 0600 or stricter.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// A my.cnf-style file whose `[client]` section gives user, password, host, port or
    /// socket; values the URL sets win.
    #[serde(default)]
    pub defaults_file: Option<PathBuf>,
}

impl AccountConfig {
    /// Rules across the keys: one place for the password, some way to name the server.
    pub fn validate(&self, section: &str) -> Result<(), String> {
        if self.password_file.is_some() && self.defaults_file.is_some() {
            return Err(format!(
                "{section}: password_file and defaults_file are both set; keep one \
                 (the password is read from exactly one place)"
            ));
        }
        if self.url.is_none() && self.defaults_file.is_none() {
            return Err(format!(
                "{section}: set url (mysql://USER@HOST:PORT/DATABASE) or \
                 defaults_file (a my.cnf-style file with a [client] section)"
            ));
        }
        Ok(())
    }

    /// The database the URL names, if any.
    pub fn database(&self) -> Option<String> {
        self.url
            .as_ref()
            .and_then(|u| url::Url::parse(&u.0).ok())
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .filter(|d| !d.is_empty())
    }
}

/// How to reach and log in to the server.
#[derive(Debug, Clone)]
pub struct Credentials {
    url: Option<String>,
    password_file: Option<PathBuf>,
    defaults_file: Option<PathBuf>,
}

impl Credentials {
    pub fn new(cfg: &AccountConfig) -> Self {
        Credentials {
            url: cfg.url.as_ref().map(|u| u.0.clone()),
            password_file: cfg.password_file.clone(),
            defaults_file: cfg.defaults_file.clone(),
        }
    }

    /// Connection options with the password read now from its file.
    pub fn options(&self) -> Result<OptsBuilder, CredentialsError> {
        let client = match &self.defaults_file {
            Some(path) => read_defaults(path)?,
            None => ClientSection::default(),
        };
        let password = match &self.password_file {
            Some(path) => Some(read_password(path)?),
            None => client.password.clone(),
        };
        let parsed = match &self.url {
            Some(u) => Some(url::Url::parse(u).map_err(|e| CredentialsError::Url(e.to_string()))?),
            None => None,
        };
        let mut b = match &self.url {
            Some(u) => OptsBuilder::from_opts(
                Opts::from_url(u).map_err(|e| CredentialsError::Url(e.to_string()))?,
            ),
            None => OptsBuilder::default(),
        };
        // What the URL leaves out, the defaults file fills in.
        let url_user = parsed.as_ref().map(|u| u.username()).unwrap_or_default();
        let user = if url_user.is_empty() {
            client.user.clone().ok_or(CredentialsError::NoUser)?
        } else {
            percent_decode(url_user)
        };
        b = b.user(Some(user));
        let url_has_host = parsed
            .as_ref()
            .and_then(|u| u.host_str())
            .is_some_and(|h| !h.is_empty());
        if !url_has_host {
            b = b.ip_or_hostname(
                client
                    .host
                    .clone()
                    .unwrap_or_else(|| "localhost".to_owned()),
            );
        }
        if parsed.as_ref().and_then(|u| u.port()).is_none() {
            if let Some(port) = client.port {
                b = b.tcp_port(port);
            }
        }
        let url_has_socket = parsed
            .as_ref()
            .is_some_and(|u| u.query_pairs().any(|(k, _)| k == "socket"));
        if !url_has_socket && client.socket.is_some() {
            b = b.socket(client.socket.clone());
        }
        Ok(b.pass(password.map(|p| p.0))
            // Exactly the transport configured: no reconnect to a socket behind its back.
            .prefer_socket(false))
    }

    /// Checks at start that the files can be used, without keeping the password.
    pub fn check(&self) -> Result<(), CredentialsError> {
        self.options().map(drop)
    }
}

/// Refuses a secret file that group or others can read or write.
fn check_private(
    key: &'static str,
    path: &Path,
    file: &std::fs::File,
) -> Result<(), CredentialsError> {
    let mode = file
        .metadata()
        .map_err(|source| CredentialsError::Read {
            key,
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o077 != 0 {
        return Err(CredentialsError::Exposed {
            key,
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

fn read_secret_file(key: &'static str, path: &Path) -> Result<String, CredentialsError> {
    let err = |source| CredentialsError::Read {
        key,
        path: path.to_owned(),
        source,
    };
    // Opened without waiting, and only if it is a regular file: a FIFO here must not
    // stall the exporter (nor `check-config`).
    let file = crate::regular::open(path).map_err(err)?;
    check_private(key, path, &file)?;
    let bytes = crate::regular::read_bounded(&file, 64 << 10).map_err(err)?;
    String::from_utf8(bytes).map_err(|_| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

/// The password file: its content without the trailing newline.
pub fn read_password(path: &Path) -> Result<Secret, CredentialsError> {
    let mut text = read_secret_file("password_file", path)?;
    while text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    if text.is_empty() {
        return Err(CredentialsError::Empty {
            key: "password_file",
            path: path.to_owned(),
            reason: "the file is empty; write the password into it",
        });
    }
    if text.contains('\n') {
        return Err(CredentialsError::Empty {
            key: "password_file",
            path: path.to_owned(),
            reason: "the file has more than one line; it must hold only the password",
        });
    }
    Ok(Secret(text))
}

/// The `[client]` section of a my.cnf-style file.
pub fn read_defaults(path: &Path) -> Result<ClientSection, CredentialsError> {
    let text = read_secret_file("defaults_file", path)?;
    parse_defaults(&text).map_err(|(line, reason)| CredentialsError::Defaults {
        path: path.to_owned(),
        line,
        reason,
    })
}

/// Parses option-file syntax: `[group]` headers, `key=value` (spaces around `=`
/// allowed, values optionally in single or double quotes), `#` and `;` comments, and
/// `-` or `_` alike in key names. Only `[client]` is read.
pub fn parse_defaults(text: &str) -> Result<ClientSection, (usize, String)> {
    let mut out = ClientSection::default();
    let mut in_client = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('!') {
            return Err((
                line_no,
                "!include and !includedir are not followed; put the [client] values in this file"
                    .to_owned(),
            ));
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(group) = rest.strip_suffix(']') else {
                return Err((line_no, "a group header must end with ]".to_owned()));
            };
            in_client = group.trim() == "client";
            continue;
        }
        if !in_client {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), unquote(v.trim()).map_err(|r| (line_no, r))?),
            None => (line, String::new()),
        };
        let key = key.replace('-', "_");
        match key.as_str() {
            "user" => out.user = Some(value),
            "password" => out.password = Some(Secret(value)),
            "host" => out.host = Some(value),
            "socket" => out.socket = Some(value),
            "port" => {
                out.port = Some(value.parse().map_err(|_| {
                    (
                        line_no,
                        format!("port {} is not a port number", crate::text::excerpt(&value)),
                    )
                })?)
            }
            // Other client options (ssl settings, default-character-set, …) belong to
            // other programs reading the same file.
            _ => {}
        }
    }
    Ok(out)
}

fn unquote(v: &str) -> Result<String, String> {
    for q in ['\'', '"'] {
        if let Some(rest) = v.strip_prefix(q) {
            return rest
                .strip_suffix(q)
                .map(str::to_owned)
                .ok_or_else(|| format!("a value that opens with {q} must close with it"));
        }
    }
    // An unquoted value ends at a comment.
    let v = v.split(" #").next().unwrap_or(v).trim_end();
    Ok(v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_section_only() {
        let c = parse_defaults(
            "# a comment\n[mysqld]\nuser = mysql\n[client]\nuser = exporter\npassword = \"s3 cr#t\"\nhost=127.0.0.1\nport = 3307\nsocket='/run/mysqld/mysqld.sock'\nssl-ca=/x\n[mysql]\nuser=other\n",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("exporter"));
        assert_eq!(c.password.map(|p| p.0).as_deref(), Some("s3 cr#t"));
        assert_eq!(c.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(c.port, Some(3307));
        assert_eq!(c.socket.as_deref(), Some("/run/mysqld/mysqld.sock"));
    }

    #[test]
    fn defaults_errors_name_the_line() {
        assert_eq!(parse_defaults("[client]\nport=abc\n").unwrap_err().0, 2);
        assert_eq!(parse_defaults("[client\n").unwrap_err().0, 1);
        assert_eq!(
            parse_defaults("[client]\n!include /etc/other.cnf\n")
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(
            parse_defaults("[client]\npassword='open\n").unwrap_err().0,
            2
        );
    }

    #[test]
    fn secret_is_not_printed() {
        let s = Secret("hunter2".to_owned());
        assert!(!format!("{s:?}").contains("hunter2"));
        let c = ClientSection {
            password: Some(s),
            ..ClientSection::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn password_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "hunter2\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_password(&p).unwrap_err().to_string();
        assert!(
            e.contains("can be read by group or others") && e.contains("chmod 600"),
            "{e}"
        );
        assert!(!e.contains("hunter2"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(&p).unwrap().0, "hunter2");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_password(&p).unwrap_err().to_string().contains("empty"));
        let e = read_password(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read mysql.password_file"), "{e}");
    }

    #[test]
    fn percent_decoding_of_user_names() {
        assert_eq!(percent_decode("shop%2Dexporter"), "shop-exporter");
        assert_eq!(percent_decode("plain"), "plain");
        assert_eq!(percent_decode("bad%zz"), "bad%zz");
        assert_eq!(percent_decode("end%2"), "end%2");
    }
}
