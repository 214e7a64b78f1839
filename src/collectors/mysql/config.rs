//! `mysql:` — the server the collector watches and the account it logs in with.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::credentials::AccountConfig;
use crate::value::{DurationValue, MysqlUrl};

/// `mysql:` — the MySQL/MariaDB server to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlConfig {
    /// Collect at all (the section can stay in the file while switched off).
    #[serde(default = "enabled")]
    pub enabled: bool,
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
    /// Deadline of one collection (connect and queries); a scrape's may be shorter.
    #[serde(default = "mysql_timeout")]
    pub timeout: DurationValue,
    /// Schemas whose tables get `mysql_info_schema_table_*` series.
    #[serde(default)]
    pub schemas: Vec<String>,
    /// How often table sizes are read again (information_schema.TABLES opens every
    /// table of the schemas; sizes change slowly). `0s` reads them on every scrape.
    #[serde(default = "one_minute")]
    pub table_sizes_interval: DurationValue,
    /// How often every numeric system variable is read again (they change only by
    /// `SET GLOBAL`, and reading all of them is most of what a scrape costs the server).
    /// The ones alerts and dashboards use (`read_only`, `max_connections`, the buffer and
    /// cache sizes, the version) are read with every scrape. `0s` reads all of them on
    /// every scrape, as mysqld_exporter does.
    #[serde(default = "one_minute")]
    pub variables_interval: DurationValue,
    /// How long a statement the account was refused (replication status, table sizes)
    /// or a table it may not read (the compression tables, without PROCESS) stays
    /// skipped before it is tried again, on a new connection: a grant added meanwhile
    /// then takes effect without a reload. A connection that met a refusal is never
    /// kept (the server applies global grants to new logins only).
    #[serde(default = "five_minutes")]
    pub grants_recheck: DurationValue,
}

fn five_minutes() -> DurationValue {
    DurationValue(Duration::from_secs(300))
}

fn one_minute() -> DurationValue {
    DurationValue(Duration::from_secs(60))
}

fn enabled() -> bool {
    true
}

fn mysql_timeout() -> DurationValue {
    DurationValue(Duration::from_secs(5))
}

impl MysqlConfig {
    /// The account part of the section, as the backup job takes it too.
    pub fn account(&self) -> AccountConfig {
        AccountConfig {
            url: self.url.clone(),
            password_file: self.password_file.clone(),
            defaults_file: self.defaults_file.clone(),
        }
    }

    /// Rules that span keys, which serde cannot check one value at a time.
    pub fn validate(&self) -> Result<(), String> {
        self.account().validate("mysql")?;
        if self.grants_recheck.get() < Duration::from_secs(1) {
            return Err(format!(
                "mysql.grants_recheck: {} is too short; at least 1s (the default, 5m, costs one login per five minutes while a grant is missing)",
                self.grants_recheck
            ));
        }
        if let Some(bad) = self.schemas.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        }) {
            return Err(format!(
                "mysql.schemas: {bad:?} is not a plain schema name (letters, digits, _ and $)"
            ));
        }
        Ok(())
    }
}
