//! The MySQL/MariaDB collector.
//!
//! One scrape sends one multi-statement query (replication status, global status, the
//! few variables that matter) over a pooled connection, under the scrape's deadline;
//! table sizes are read again at their own, longer interval. The pool holds at most
//! [`POOL_SIZE`] connections and reuses them across scrapes; a connection that fails
//! or runs out of time is dropped, never returned, so a hung server or a metadata lock
//! costs one socket until the deadline, not a pile of connections. The query itself is
//! the health check: a pooled connection that the server closed meanwhile (a restart)
//! is replaced at once, in the same scrape.

mod config;
mod encode;

pub use config::MysqlConfig;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::Semaphore;

use super::{
    AnyCollector, AsyncCollector, BuildError, CollectError, CollectFuture, Env, Run, Served,
    Settings,
};
use crate::credentials::Credentials;
pub use crate::credentials::CredentialsError;
use crate::exposition::{Format, MetricWriter};
use encode::{
    CmpRow, CompressionRow, Headers, Snapshot, StatusText, TableStats, CMPMEM_SQL, CMP_SQL, UP,
    VARIABLES,
};

/// Connections the exporter opens at most.
pub const POOL_SIZE: usize = 2;

/// A server session the pool keeps, and what it learnt when it logged in.
struct Session {
    conn: Conn,
    /// Replication status: the batch's first statement.
    replica: &'static str,
    /// Global status, the variables and the compression tables, in one round trip
    /// after replication status: `{status}; {variables}{tail}`.
    status: &'static str,
    tail: String,
    /// When the session logged in.
    born: Instant,
    /// Whether the server refused it a statement: it is not kept for the next scrape.
    refused: bool,
    /// The variables read with every scrape ([`VARIABLES`] that this server has), and
    /// the statement that reads them by name.
    fresh: Vec<String>,
    fresh_sql: String,
    /// Every numeric variable, by name (MySQL), and the statement that reads them:
    /// [`VARIABLES_AS_TEXT`] on MariaDB.
    all: Vec<String>,
    all_sql: String,
    /// Whether the variables come as one text value ([`VARIABLES_AS_TEXT`]).
    variables_as_text: bool,
    /// Whether the account may read INNODB_CMP and INNODB_CMPMEM (they need PROCESS),
    /// which the batch then reads last.
    compression: bool,
    /// Whether global status comes as one text value ([`STATUS_AS_TEXT`]) rather than
    /// as `SHOW GLOBAL STATUS` rows.
    status_as_text: bool,
}

/// Global status as one value of `name<TAB>value` lines (MariaDB). The server does the
/// same work as for `SHOW GLOBAL STATUS`; the client decodes one row instead of some
/// 560, which was a third of what a scrape cost the exporter. MySQL 8 has no
/// information_schema.GLOBAL_STATUS, and is asked with `SHOW GLOBAL STATUS`. The tab
/// and the line break go to the server as the characters themselves, so that no
/// `sql_mode` changes what the literals mean.
const STATUS_AS_TEXT: &str = "SELECT GROUP_CONCAT(VARIABLE_NAME, '\t', VARIABLE_VALUE \
     SEPARATOR '\n') FROM information_schema.GLOBAL_STATUS";
/// The system variables the same way (MariaDB): one row of some 650 lines instead of a
/// row of 480 columns, whose column definitions the server sends and the client decodes
/// with every read. A tab or line break inside a value becomes a space.
const VARIABLES_AS_TEXT: &str = "SELECT GROUP_CONCAT(VARIABLE_NAME, '\t', \
     REPLACE(REPLACE(VARIABLE_VALUE, '\t', ' '), '\n', ' ') SEPARATOR '\n') \
     FROM information_schema.GLOBAL_VARIABLES";
/// The room the session gives that value: some twenty times what a server needs.
const STATUS_TEXT_MAX: usize = 256 * 1024;

/// The collector: credentials, the pool, the read under way and cached table sizes.
pub struct Mysql {
    credentials: Credentials,
    timeout: Duration,
    /// The table-size statement for `mysql.schemas`, if any.
    tables_sql: Option<String>,
    tables_interval: Duration,
    /// Table sizes as last read, and when.
    tables: Mutex<Option<(Instant, Vec<TableStats>)>>,
    variables_interval: Duration,
    /// Every numeric variable as last read, and when.
    variables: Mutex<Option<(Instant, StatusText)>>,
    idle: Mutex<Vec<Session>>,
    /// Why replication status was refused, and when: it is skipped until
    /// `grants_recheck` has passed, then tried on a new connection.
    replica_refused: Mutex<Option<(String, Instant)>>,
    grants_recheck: Duration,
    permits: Semaphore,
    /// The read under way (its result is `None` until it ends), which scrapes join.
    flight: Mutex<Option<Flight>>,
    last_len: std::sync::atomic::AtomicUsize,
    /// What encoding keeps between scrapes, in the text format and in OpenMetrics.
    headers: Mutex<[Headers; 2]>,
}

impl Mysql {
    /// The collector for `cfg`; fails when the credentials cannot be used (a password
    /// in a file others can read, a file that is missing, no user name).
    pub fn new(cfg: &MysqlConfig) -> Result<Mysql, CredentialsError> {
        let credentials = Credentials::new(&cfg.account());
        credentials.check()?;
        let tables_sql = (!cfg.schemas.is_empty()).then(|| {
            let list = cfg
                .schemas
                .iter()
                // Schema names are checked to be plain identifiers while loading.
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(TABLE_ROWS, 0), \
                 IFNULL(DATA_LENGTH, 0), IFNULL(INDEX_LENGTH, 0), IFNULL(DATA_FREE, 0) \
                 FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' \
                 AND TABLE_SCHEMA IN ({list}) ORDER BY TABLE_SCHEMA, TABLE_NAME"
            )
        });
        Ok(Mysql {
            credentials,
            timeout: cfg.timeout.get(),
            tables_sql,
            tables_interval: cfg.table_sizes_interval.get(),
            tables: Mutex::new(None),
            variables_interval: cfg.variables_interval.get(),
            variables: Mutex::new(None),
            idle: Mutex::new(Vec::new()),
            replica_refused: Mutex::new(None),
            grants_recheck: cfg.grants_recheck.get(),
            permits: Semaphore::new(POOL_SIZE),
            flight: Mutex::new(None),
            last_len: std::sync::atomic::AtomicUsize::new(32 * 1024),
            headers: Mutex::new(Default::default()),
        })
    }

    /// Whether this scrape reads table sizes again, or serves them as last read.
    fn tables_due(&self) -> bool {
        self.tables_sql.is_some()
            && match self.tables.lock() {
                Ok(t) => t
                    .as_ref()
                    .is_none_or(|(at, _)| at.elapsed() >= self.tables_interval),
                Err(_) => true,
            }
    }

    /// Whether every variable is to be read in this scrape, not only [`VARIABLES`].
    fn variables_due(&self) -> bool {
        match self.variables.lock() {
            Ok(v) => v
                .as_ref()
                .is_none_or(|(at, _)| at.elapsed() >= self.variables_interval),
            Err(_) => true,
        }
    }

    /// The variables to report: `read` itself when it is all of them (which are kept
    /// for the scrapes between full reads); else the last full read, in its order, with
    /// the values of `read` (the fresh few) in place of its own.
    fn with_all_variables(&self, read: StatusText, all: bool) -> StatusText {
        let Ok(mut kept) = self.variables.lock() else {
            return read;
        };
        if all {
            *kept = Some((Instant::now(), StatusText(read.0.clone())));
            return read;
        }
        let Some((_, last)) = kept.as_ref() else {
            return read;
        };
        let fresh: Vec<(&str, &str)> = read.pairs().collect();
        let mut out = StatusText(String::with_capacity(last.0.len() + read.0.len()));
        let mut used = vec![false; fresh.len()];
        for (name, value) in last.pairs() {
            let value = match fresh.iter().position(|(f, _)| f.eq_ignore_ascii_case(name)) {
                Some(i) => {
                    used[i] = true;
                    fresh[i].1
                }
                None => value,
            };
            out.push(name, value);
        }
        for ((name, value), _) in fresh.iter().zip(&used).filter(|(_, u)| !**u) {
            out.push(name, value);
        }
        out
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
        // The password and defaults files are read on the blocking pool: a file on a
        // stuck disk must not hold the thread that answers HTTP. The deadline bounds it.
        let credentials = self.credentials.clone();
        let opts = tokio::task::spawn_blocking(move || credentials.options())
            .await
            .map_err(|e| CollectError::Remote(format!("reading the credentials failed: {e}")))?
            .map_err(|e| CollectError::Remote(crate::error_chain(&e)))?;
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
        let status_room = if mariadb {
            format!(", SESSION group_concat_max_len = {STATUS_TEXT_MAX}")
        } else {
            String::new()
        };
        conn.query_drop(format!(
            "SET SESSION lock_wait_timeout = {secs}, SESSION long_query_time = 31536000\
             {status_room}"
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
        let replica = if mariadb {
            // Every connection of a multi-source replica, with its Connection_name.
            "SHOW ALL SLAVES STATUS"
        } else if (major, minor, patch) >= (8, 0, 22) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        };
        // Every system variable with a number (or ON/OFF) as its value, as
        // mysqld_exporter exports them, and the version strings: listed once per
        // connection. The few that matter most are read by name (`@@global.x`) with
        // every scrape, all of them at `variables_interval`.
        let all: Vec<String> = conn
            .query_map(
                "SHOW GLOBAL VARIABLES",
                |(name, value): (String, Vec<u8>)| (name, value),
            )
            .await
            .map_err(|e| CollectError::Remote(format!("cannot list the system variables: {e}")))?
            .into_iter()
            .filter(|(name, value)| {
                let plain = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                let wanted = VARIABLES.contains(&name.as_str())
                    || std::str::from_utf8(value)
                        .ok()
                        .is_some_and(|v| encode::status_value(v).is_some());
                plain && wanted
            })
            .map(|(name, _)| name)
            .collect();
        let fresh: Vec<String> = VARIABLES
            .iter()
            .filter(|v| all.iter().any(|a| a == *v))
            .map(|v| (*v).to_owned())
            .collect();
        let by_name = |names: &[String]| {
            if names.is_empty() {
                "SELECT 1".to_owned()
            } else {
                let cols: Vec<String> = names.iter().map(|v| format!("@@global.{v}")).collect();
                format!("SELECT {}", cols.join(", "))
            }
        };
        let status = if mariadb {
            STATUS_AS_TEXT
        } else {
            "SHOW GLOBAL STATUS"
        };
        let all_sql = if mariadb {
            VARIABLES_AS_TEXT.to_owned()
        } else {
            by_name(&all)
        };
        let fresh_sql = by_name(&fresh);
        // The compression tables need PROCESS, which docs/mysql.md's grants leave out: read
        // them only where the operator granted it.
        // Asked of the grants, not by trying: a refused information_schema read leaves
        // its error pending on the connection for the next statement.
        let compression = conn
            .query_first::<u8, _>(
                "SELECT 1 FROM information_schema.USER_PRIVILEGES \
                 WHERE PRIVILEGE_TYPE = 'PROCESS' LIMIT 1",
            )
            .await
            .is_ok_and(|r| r.is_some());
        let tail = if compression {
            format!("; {CMP_SQL}; {CMPMEM_SQL}")
        } else {
            String::new()
        };
        Ok(Session {
            conn,
            replica,
            status,
            tail,
            born: Instant::now(),
            refused: false,
            fresh,
            fresh_sql,
            all,
            all_sql,
            variables_as_text: mariadb,
            compression,
            status_as_text: mariadb,
        })
    }

    /// One scrape's reading, over a pooled connection or a new one.
    async fn fetch(&self) -> Result<(Snapshot, Option<CollectError>), CollectError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| CollectError::Remote("shutting down".to_owned()))?;
        // A refused statement is tried again on a new login: the server gives an open
        // connection the global grants it had when it logged in.
        let recheck = self.replica_due() && self.replica_refusal().is_some();
        let (mut session, reused) = match self.take_idle().filter(|_| !recheck) {
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
                // A session that met a refusal, or that logged in without PROCESS, is
                // replaced in time: a grant added meanwhile comes with the new login.
                let stale = session.refused
                    || (!session.compression && session.born.elapsed() >= self.grants_recheck);
                if !stale {
                    self.put_idle(session);
                }
                Ok(r)
            }
            Err(e) => Err(CollectError::Remote(e.to_string())),
        }
    }

    /// Why replication status was refused last, if it was.
    fn replica_refusal(&self) -> Option<(String, Instant)> {
        self.replica_refused.lock().ok()?.clone()
    }

    /// Whether replication status is asked in this scrape: always, unless it was
    /// refused less than `grants_recheck` ago.
    fn replica_due(&self) -> bool {
        self.replica_refusal()
            .is_none_or(|(_, at)| at.elapsed() >= self.grants_recheck)
    }

    fn set_replica_refusal(&self, refusal: Option<(String, Instant)>) {
        if let Ok(mut r) = self.replica_refused.lock() {
            *r = refusal;
        }
    }

    /// Reads one snapshot. Replication status, global status and the variables come in
    /// one round trip; status and variables must succeed. Replication status that the
    /// account may not read (a missing grant) and table sizes that fail are reported
    /// as a partial failure and cost only their own series.
    async fn read(
        &self,
        session: &mut Session,
    ) -> Result<(Snapshot, Option<CollectError>), mysql_async::Error> {
        let mut snap = Snapshot::default();
        let mut partial = None;
        let try_replica = self.replica_due();
        let mut with_replica = try_replica;
        let all_due = self.variables_due();
        let variables_sql = if all_due {
            &session.all_sql
        } else {
            &session.fresh_sql
        };
        let without_replica = format!("{}; {variables_sql}{}", session.status, session.tail);
        // Replication first: a statement the account may not run fails the batch at
        // once, before anything else ran, and the batch is sent again without it.
        let batch = format!("{}; {without_replica}", session.replica);
        let mut result = if try_replica {
            match session.conn.query_iter(batch.as_str()).await {
                Ok(r) => {
                    self.set_replica_refusal(None);
                    r
                }
                Err(e @ mysql_async::Error::Server(_)) => {
                    let cause = server_error("reading replication status", e)?;
                    self.set_replica_refusal(Some((cause.to_string(), Instant::now())));
                    session.refused = true;
                    with_replica = false;
                    session.conn.query_iter(without_replica.as_str()).await?
                }
                Err(e) => return Err(e),
            }
        } else {
            session.conn.query_iter(without_replica.as_str()).await?
        };
        if let Some((cause, _)) = self.replica_refusal() {
            partial = Some(CollectError::Remote(cause));
        }
        if with_replica {
            let replica = &mut snap.replica;
            result
                .for_each(|row| {
                    if replica.columns.is_empty() {
                        replica.columns = row
                            .columns_ref()
                            .iter()
                            .map(|c| c.name_str().into_owned())
                            .collect();
                    }
                    replica.rows.push(
                        (0..row.len())
                            .map(|i| text(row.as_ref(i)).map(str::to_owned))
                            .collect(),
                    );
                })
                .await?;
        }
        let status = &mut snap.status;
        if session.status_as_text {
            result
                .for_each(|row| {
                    if let Some(text) = one_text_value(row) {
                        status.0 = text;
                    }
                })
                .await?;
        } else {
            result
                .for_each(|row| {
                    if let (Some(name), Some(value)) = (text(row.as_ref(0)), text(row.as_ref(1))) {
                        status.push(name, value);
                    }
                })
                .await?;
        }
        let names = if all_due {
            &session.all
        } else {
            &session.fresh
        };
        let variables = &mut snap.variables;
        if all_due && session.variables_as_text {
            result
                .for_each(|row| {
                    if let Some(text) = one_text_value(row) {
                        variables.0 = text;
                    }
                })
                .await?;
        } else {
            result
                .for_each(|row| {
                    for (i, name) in names.iter().enumerate() {
                        if let Some(v) = text(row.as_ref(i)) {
                            variables.push(name, v);
                        }
                    }
                })
                .await?;
        }
        if session.compression {
            let cmp = &mut snap.cmp;
            result
                .for_each(|row| {
                    if let Some(page_size) = text(row.as_ref(0)) {
                        cmp.push(CmpRow {
                            page_size: page_size.to_owned(),
                            values: std::array::from_fn(|i| number(&row, i + 1)),
                        });
                    }
                })
                .await?;
            let cmpmem = &mut snap.cmpmem;
            result
                .for_each(|row| {
                    if let (Some(page_size), Some(pool)) =
                        (text(row.as_ref(0)), text(row.as_ref(1)))
                    {
                        cmpmem.push(CompressionRow {
                            page_size: page_size.to_owned(),
                            buffer_pool: pool.to_owned(),
                            values: std::array::from_fn(|i| number(&row, i + 2)),
                        });
                    }
                })
                .await?;
        }
        drop(result);
        snap.variables = self.with_all_variables(snap.variables, all_due);
        // A statement after the first that fails leaves its error pending instead of
        // returning it; an empty status is how that shows.
        if snap.status.is_empty() {
            return Err(mysql_async::Error::Other(
                "the server returned no global status".into(),
            ));
        }
        if let Some(sql) = self.tables_sql.as_deref().filter(|_| self.tables_due()) {
            let mut tables = Vec::new();
            let read = optional(&mut session.conn, sql, |row| {
                if let Some(t) = table_row(&row) {
                    tables.push(t);
                }
            })
            .await;
            match read {
                Ok(()) => {
                    if let Ok(mut t) = self.tables.lock() {
                        *t = Some((Instant::now(), tables));
                    }
                }
                Err(e) => {
                    session.refused = true;
                    partial = partial.or(Some(server_error("reading table sizes", e)?));
                }
            }
        }
        snap.tables = match self.tables.lock() {
            Ok(t) => t.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        Ok((snap, partial))
    }
}

/// Runs one statement and hands each row to `f`.
async fn optional(
    conn: &mut Conn,
    sql: &str,
    f: impl FnMut(Row),
) -> Result<(), mysql_async::Error> {
    conn.query_iter(sql).await?.for_each(f).await
}

/// A statement the server refused becomes a partial failure; a broken connection stays
/// an error (the connection is then dropped).
fn server_error(what: &str, e: mysql_async::Error) -> Result<CollectError, mysql_async::Error> {
    match &e {
        mysql_async::Error::Server(s) => {
            let hint = if s.code == 1227 || s.code == 1044 || s.code == 1142 {
                " (docs/mysql.md lists the grants the exporter's account needs)"
            } else {
                ""
            };
            Ok(CollectError::Remote(format!("{what}: {s}{hint}")))
        }
        _ => Err(e),
    }
}

fn text(v: Option<&Value>) -> Option<&str> {
    match v? {
        Value::Bytes(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// The text of a one-value row ([`STATUS_AS_TEXT`], [`VARIABLES_AS_TEXT`]), moved out of
/// the row, not copied.
fn one_text_value(row: Row) -> Option<String> {
    match row.unwrap().into_iter().next() {
        Some(Value::Bytes(b)) => String::from_utf8(b).ok(),
        _ => None,
    }
}

/// Column `i` as an unsigned number; 0 when it is NULL or not one.
fn number(row: &Row, i: usize) -> u64 {
    text(row.as_ref(i))
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
}

fn table_row(row: &Row) -> Option<TableStats> {
    let n = |i| number(row, i);
    Some(TableStats {
        schema: text(row.as_ref(0))?.to_owned(),
        table: text(row.as_ref(1))?.to_owned(),
        rows: n(2),
        data_length: n(3),
        index_length: n(4),
        data_free: n(5),
    })
}

/// A read under way: where its reading will appear, and when it gives up.
struct Flight {
    reading: tokio::sync::watch::Receiver<Option<Arc<Reading>>>,
    deadline: Instant,
}

/// One read of the server as every scrape that waited for it sees it.
struct Reading {
    /// The snapshot and the cause of a partial failure, or why there is no snapshot.
    result: Result<(Snapshot, Option<String>), String>,
    /// Its families in the text format and in OpenMetrics, encoded by the first scrape
    /// that asks for each and shared by the others.
    encoded: [OnceLock<Bytes>; 2],
}

impl Reading {
    fn new(result: Result<(Snapshot, Option<String>), String>) -> Arc<Reading> {
        Arc::new(Reading {
            result,
            encoded: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// Its families in `format`, encoded with what `headers` kept in that format.
    fn encode(&self, format: Format, size_hint: usize, headers: &Mutex<[Headers; 2]>) -> Bytes {
        let i = format.slot();
        self.encoded[i]
            .get_or_init(|| {
                let mut out = Vec::with_capacity(size_hint + 256);
                let mut w = MetricWriter::new(&mut out, format);
                match &self.result {
                    Ok((snap, _)) => {
                        w.sample_u64(&UP, &[], 1);
                        let mut kept = headers.lock().unwrap_or_else(|p| p.into_inner());
                        encode::encode_with(&mut w, snap, &mut kept[i]);
                    }
                    Err(_) => w.sample_u64(&UP, &[], 0),
                }
                Bytes::from(out)
            })
            .clone()
    }

    fn outcome(&self) -> Result<(), CollectError> {
        match &self.result {
            Ok((_, None)) => Ok(()),
            Ok((_, Some(cause))) | Err(cause) => Err(CollectError::Remote(cause.clone())),
        }
    }
}

impl Mysql {
    /// The reading of the read in flight, or of a new one. Scrapes that arrive while a
    /// read is under way (a pair of Prometheus servers scraping at the same moment)
    /// share it: the server is read once, not once per scrape, and a hung server holds
    /// one read, not one per waiting scrape.
    async fn join_or_start(self: Arc<Self>, deadline: Instant) -> Arc<Reading> {
        let mut rx = {
            let mut flight = match self.flight.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            match flight.as_ref() {
                // Not one past its deadline: its task may not have said so yet, and a
                // scrape that joined it would answer at once with the last one's timeout.
                Some(f) if f.reading.borrow().is_none() && f.deadline > Instant::now() => {
                    f.reading.clone()
                }
                _ => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    *flight = Some(Flight {
                        reading: rx.clone(),
                        deadline,
                    });
                    let me = Arc::clone(&self);
                    // A task of its own: the read ends at its deadline even if the
                    // scrape that started it is gone.
                    tokio::spawn(async move {
                        let began = Instant::now();
                        let reading = match tokio::time::timeout_at(deadline.into(), me.fetch())
                            .await
                        {
                            Ok(Ok((snap, partial))) => Ok((snap, partial.map(|p| p.to_string()))),
                            Ok(Err(e)) => Err(e.to_string()),
                            // The connection in use was dropped with the future: closed,
                            // not returned to the pool.
                            Err(_) => Err(format!(
                                "the server did not answer within {:?}",
                                deadline.saturating_duration_since(began)
                            )),
                        };
                        let _ = tx.send(Some(Reading::new(reading)));
                    });
                    rx
                }
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let waited = tokio::time::timeout_at(deadline.into(), rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(r)) => r
                .as_ref()
                .map(Arc::clone)
                .unwrap_or_else(|| Reading::new(Err("the read ended without a result".to_owned()))),
            Ok(Err(_)) => Reading::new(Err("the read ended without a result".to_owned())),
            Err(_) => Reading::new(Err(format!("the server did not answer within {left:?}"))),
        }
    }
}

/// Its families are named after the server's variables: the whole `mysql_` namespace.
pub static SERVED: Served = Served {
    families: &[],
    prefixes: &["mysql_"],
};

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    match s.mysql.filter(|m| m.enabled) {
        Some(m) => {
            let run = Run::Async(Arc::new(Mysql::new(m)?));
            Ok(Some(AnyCollector::new(
                "mysql",
                m.timeout.get(),
                SERVED,
                run,
            )))
        }
        None => Ok(None),
    }
}

impl AsyncCollector for Mysql {
    fn collect(self: Arc<Self>, format: Format, deadline: Instant) -> CollectFuture {
        Box::pin(async move {
            let reading = Arc::clone(&self).join_or_start(deadline).await;
            let hint = self.last_len.load(std::sync::atomic::Ordering::Relaxed);
            let out = reading.encode(format, hint, &self.headers);
            self.last_len
                .store(out.len(), std::sync::atomic::Ordering::Relaxed);
            (out, reading.outcome())
        })
    }
}
