//! The MySQL/MariaDB collector.
//!
//! One scrape sends one multi-statement query (global status, the few variables that
//! matter, table sizes, replication status) over a pooled connection, under the
//! scrape's deadline. The pool holds at most [`POOL_SIZE`] connections and reuses them
//! across scrapes; a connection that fails or runs out of time is dropped, never
//! returned, so a hung server or a metadata lock costs one socket until the deadline,
//! not a pile of connections. The query itself is the health check: a pooled connection
//! that the server closed meanwhile (a restart) is replaced at once, in the same scrape.

mod credentials;
mod encode;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::Semaphore;

use super::{AsyncCollector, CollectError, CollectFuture};
use crate::config::MysqlConfig;
use crate::exposition::{Format, MetricWriter};
pub use credentials::CredentialsError;
use encode::{Snapshot, TableStats, UP, VARIABLES};

/// Connections the exporter opens at most.
pub const POOL_SIZE: usize = 2;

/// A server session the pool keeps, and what it learnt when it logged in.
struct Session {
    conn: Conn,
    /// The statement that lists replication status on this server.
    replica_query: &'static str,
}

pub struct Mysql {
    credentials: credentials::Credentials,
    timeout: Duration,
    /// The per-scrape statement, built once.
    query: String,
    with_tables: bool,
    idle: Mutex<Vec<Session>>,
    permits: Semaphore,
    last_len: std::sync::atomic::AtomicUsize,
}

impl Mysql {
    /// The collector for `cfg`; fails when the credentials cannot be used (a password
    /// in a file others can read, a file that is missing, no user name).
    pub fn new(cfg: &MysqlConfig) -> Result<Mysql, CredentialsError> {
        let credentials = credentials::Credentials::new(cfg);
        credentials.check()?;
        let mut query =
            String::from("SHOW GLOBAL STATUS; SHOW GLOBAL VARIABLES WHERE Variable_name IN (");
        for (i, v) in VARIABLES.iter().enumerate() {
            if i > 0 {
                query.push(',');
            }
            query.push('\'');
            query.push_str(v);
            query.push('\'');
        }
        query.push_str(");");
        let with_tables = !cfg.schemas.is_empty();
        if with_tables {
            query.push_str(
                " SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0), \
                 IFNULL(DATA_LENGTH, 0), IFNULL(INDEX_LENGTH, 0), IFNULL(DATA_FREE, 0) \
                 FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
                 AND TABLE_SCHEMA IN (",
            );
            for (i, s) in cfg.schemas.iter().enumerate() {
                if i > 0 {
                    query.push(',');
                }
                // Schema names are checked to be plain identifiers while loading.
                query.push('\'');
                query.push_str(s);
                query.push('\'');
            }
            query.push_str(") ORDER BY TABLE_SCHEMA, TABLE_NAME;");
        }
        Ok(Mysql {
            credentials,
            timeout: cfg.timeout.get(),
            query,
            with_tables,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(POOL_SIZE),
            last_len: std::sync::atomic::AtomicUsize::new(32 * 1024),
        })
    }

    fn take_idle(&self) -> Option<Session> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, s: Session) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(s);
        }
    }

    /// Logs in and prepares the session: a short lock wait (a metadata lock makes the
    /// query fail fast instead of queueing behind it), a server-side statement limit,
    /// and the exporter's statements kept out of the slow query log.
    async fn connect(&self) -> Result<Session, CollectError> {
        let opts = self
            .credentials
            .options()
            .map_err(|e| CollectError::Remote(e.to_string()))?;
        let mut conn = Conn::new(opts)
            .await
            .map_err(|e| CollectError::Remote(format!("cannot connect: {e}")))?;
        let secs = self.timeout.as_secs().max(1);
        let version: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .map_err(|e| CollectError::Remote(format!("cannot read the server version: {e}")))?;
        let version = version.unwrap_or_default();
        let mariadb = version.contains("MariaDB");
        conn.query_drop(format!(
            "SET SESSION lock_wait_timeout = {secs}, SESSION long_query_time = 31536000"
        ))
        .await
        .map_err(|e| CollectError::Remote(format!("cannot set up the session: {e}")))?;
        // Best effort: each of these needs a server version or privilege the account
        // may not have, and the collector works without them.
        let optional: &[String] = if mariadb {
            &[
                format!("SET SESSION max_statement_time = {secs}"),
                "SET SESSION slow_query_log = 0".to_owned(),
            ]
        } else {
            &[format!("SET SESSION max_execution_time = {}", secs * 1000)]
        };
        for stmt in optional {
            if let Err(e) = conn.query_drop(stmt).await {
                tracing::debug!(statement = %stmt, error = %e, "optional session setting refused");
            }
        }
        let (major, minor, patch) = conn.server_version();
        let replica_query = if mariadb {
            // Every connection of a multi-source replica, with its Connection_name.
            "SHOW ALL SLAVES STATUS"
        } else if (major, minor, patch) >= (8, 0, 22) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        };
        Ok(Session {
            conn,
            replica_query,
        })
    }

    /// One scrape's reading, over a pooled connection or a new one.
    async fn fetch(&self) -> Result<(Snapshot, Option<CollectError>), CollectError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CollectError::Remote("shutting down".to_owned()))?;
        let (mut session, reused) = match self.take_idle() {
            Some(s) => (s, true),
            None => (self.connect().await?, false),
        };
        let result = match self.read(&mut session).await {
            Err(e) if reused => {
                // The server may have closed an idle connection (a restart, wait_timeout):
                // one fresh attempt before calling it down.
                tracing::debug!(error = %e, "pooled connection failed; reconnecting");
                drop(session);
                session = self.connect().await?;
                self.read(&mut session).await
            }
            other => other,
        };
        match result {
            Ok(r) => {
                self.put_idle(session);
                Ok(r)
            }
            Err(e) => Err(CollectError::Remote(e.to_string())),
        }
    }

    /// Runs the scrape statement. Status and variables must succeed; table sizes and
    /// replication status that fail (a missing grant) are reported as a partial failure.
    async fn read(
        &self,
        session: &mut Session,
    ) -> Result<(Snapshot, Option<CollectError>), mysql_async::Error> {
        let mut snap = Snapshot::default();
        let mut result = session.conn.query_iter(self.query.as_str()).await?;
        result
            .for_each(|row| {
                if let Some(p) = pair(&row) {
                    snap.status.push(p);
                }
            })
            .await?;
        result
            .for_each(|row| {
                if let Some(p) = pair(&row) {
                    snap.variables.push(p);
                }
            })
            .await?;
        let mut partial = None;
        if self.with_tables {
            let tables = &mut snap.tables;
            if let Err(e) = result
                .for_each(|row| {
                    if let Some(t) = table_row(&row) {
                        tables.push(t);
                    }
                })
                .await
            {
                partial = Some(server_error("table sizes", &e)?);
            }
        }
        drop(result);
        // Separate: a grant the account lacks only costs the replication series.
        let replica = &mut snap.replica;
        match session.conn.query_iter(session.replica_query).await {
            Ok(mut r) => {
                if let Some(cols) = r.columns() {
                    replica.columns = cols.iter().map(|c| c.name_str().into_owned()).collect();
                }
                let rows = &mut replica.rows;
                let res = r
                    .for_each(|row| {
                        rows.push(
                            (0..row.len())
                                .map(|i| text(row.as_ref(i)).map(str::to_owned))
                                .collect(),
                        );
                    })
                    .await;
                if let Err(e) = res {
                    partial = partial.or(Some(server_error(session.replica_query, &e)?));
                }
            }
            Err(e) => partial = partial.or(Some(server_error(session.replica_query, &e)?)),
        }
        Ok((snap, partial))
    }
}

/// A statement the server refused becomes a partial failure; a broken connection stays
/// an error (the connection is then dropped).
fn server_error(what: &str, e: &mysql_async::Error) -> Result<CollectError, mysql_async::Error> {
    match e {
        mysql_async::Error::Server(s) => {
            let hint = if s.code == 1227 || s.code == 1044 || s.code == 1142 {
                " (see the README for the grants the exporter's account needs)"
            } else {
                ""
            };
            Ok(CollectError::Remote(format!("{what}: {s}{hint}")))
        }
        other => Err(clone_error(other)),
    }
}

/// `mysql_async::Error` is not `Clone`; the message is what is kept.
fn clone_error(e: &mysql_async::Error) -> mysql_async::Error {
    mysql_async::Error::Other(e.to_string().into())
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

fn pair(row: &Row) -> Option<(String, String)> {
    Some((
        text(row.as_ref(0))?.to_owned(),
        text(row.as_ref(1))?.to_owned(),
    ))
}

fn table_row(row: &Row) -> Option<TableStats> {
    let n = |i| {
        text(row.as_ref(i))
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some(TableStats {
        schema: text(row.as_ref(0))?.to_owned(),
        table: text(row.as_ref(1))?.to_owned(),
        rows: n(2),
        data_length: n(3),
        index_length: n(4),
        data_free: n(5),
    })
}

impl AsyncCollector for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn collect(self: Arc<Self>, format: Format, deadline: Instant) -> CollectFuture {
        Box::pin(async move {
            let began = Instant::now();
            let fetched = tokio::time::timeout_at(deadline.into(), self.fetch()).await;
            let mut out =
                Vec::with_capacity(self.last_len.load(std::sync::atomic::Ordering::Relaxed) + 256);
            let result = {
                let mut w = MetricWriter::new(&mut out, format);
                match fetched {
                    Ok(Ok((snap, partial))) => {
                        w.sample_u64(&UP, &[], 1);
                        encode::encode(&mut w, &snap);
                        partial.map_or(Ok(()), Err)
                    }
                    Ok(Err(e)) => {
                        w.sample_u64(&UP, &[], 0);
                        Err(e)
                    }
                    Err(_) => {
                        // The connection in use was dropped with the future: closed,
                        // not returned to the pool.
                        w.sample_u64(&UP, &[], 0);
                        Err(CollectError::Remote(format!(
                            "the server did not answer within {:?}",
                            deadline.saturating_duration_since(began)
                        )))
                    }
                }
            };
            self.last_len
                .store(out.len(), std::sync::atomic::Ordering::Relaxed);
            (out, result)
        })
    }
}
