//! What the server said, as metric families with mysqld_exporter's names, labels and
//! types, so that the mysqld mixin and people's queries keep working.

use crate::exposition::{Family, Format, Kind, MetricWriter, Number};

pub static UP: Family = Family::gauge(
    "mysql_up",
    "Whether the MySQL server answered this scrape: 1 if the exporter logged in and read \
     its status, 0 if the server was down, hung, unreachable or refused the login.",
);
static COMMANDS: Family = Family::counter(
    "mysql_global_status_commands_total",
    "Statements the server executed, by command (the Com_* status variables).",
);
static HANDLERS: Family = Family::counter(
    "mysql_global_status_handlers_total",
    "Storage engine handler calls, by handler (the Handler_* status variables).",
);
static CONNECTION_ERRORS: Family = Family::counter(
    "mysql_global_status_connection_errors_total",
    "Connections that failed, by cause (the Connection_errors_* status variables).",
);
static BUFFER_POOL_PAGES: Family = Family::gauge(
    "mysql_global_status_buffer_pool_pages",
    "InnoDB buffer pool pages by state (data, free, misc, old).",
);
static BUFFER_POOL_DIRTY: Family = Family::gauge(
    "mysql_global_status_buffer_pool_dirty_pages",
    "InnoDB buffer pool pages changed in memory and not yet written to disk.",
);
static BUFFER_POOL_CHANGES: Family = Family::counter(
    "mysql_global_status_buffer_pool_page_changes_total",
    "InnoDB buffer pool page operations, by operation (flushed, made_young, …).",
);
static INNODB_ROW_OPS: Family = Family::counter(
    "mysql_global_status_innodb_row_ops_total",
    "InnoDB row operations, by operation (the Innodb_rows_* status variables).",
);
static PERF_SCHEMA_LOST: Family = Family::counter(
    "mysql_global_status_performance_schema_lost_total",
    "Performance schema instruments that could not be recorded, by instrumentation.",
);
static TRANSACTION_ISOLATION: Family = Family::gauge(
    "mysql_transaction_isolation",
    "The server's default transaction isolation level: constant 1, the level is in the label.",
);
static VERSION_INFO: Family = Family::gauge(
    "mysql_version_info",
    "The server's version: constant 1, the values are in the labels.",
);
static TABLE_ROWS: Family = Family::gauge(
    "mysql_info_schema_table_rows",
    "Rows of the table as information_schema.tables estimates them (exact for MyISAM).",
);
static TABLE_SIZE: Family = Family::gauge(
    "mysql_info_schema_table_size",
    "Size of the table in bytes, by component: data_length, index_length, data_free.",
);

static CMP_COMPRESS_OPS: Family = Family::counter(
    "mysql_info_schema_innodb_cmp_compress_ops_total",
    "B-tree pages of this size compressed (information_schema.INNODB_CMP).",
);
static CMP_COMPRESS_OPS_OK: Family = Family::counter(
    "mysql_info_schema_innodb_cmp_compress_ops_ok_total",
    "B-tree pages of this size compressed successfully.",
);
static CMP_COMPRESS_TIME: Family = Family::counter(
    "mysql_info_schema_innodb_cmp_compress_time_seconds_total",
    "Time spent compressing B-tree pages of this size.",
);
static CMP_UNCOMPRESS_OPS: Family = Family::counter(
    "mysql_info_schema_innodb_cmp_uncompress_ops_total",
    "B-tree pages of this size uncompressed.",
);
static CMP_UNCOMPRESS_TIME: Family = Family::counter(
    "mysql_info_schema_innodb_cmp_uncompress_time_seconds_total",
    "Time spent uncompressing B-tree pages of this size.",
);
static CMPMEM_USED: Family = Family::counter(
    "mysql_info_schema_innodb_cmpmem_pages_used_total",
    "Blocks of this size in use in the buffer pool instance (information_schema.INNODB_CMPMEM; a counter by mysqld_exporter's type).",
);
static CMPMEM_FREE: Family = Family::counter(
    "mysql_info_schema_innodb_cmpmem_pages_free_total",
    "Blocks of this size free for allocation in the buffer pool instance.",
);
static CMPMEM_RELOCATION_OPS: Family = Family::counter(
    "mysql_info_schema_innodb_cmpmem_relocation_ops_total",
    "Times a block of this size was relocated.",
);
static CMPMEM_RELOCATION_TIME: Family = Family::counter(
    "mysql_info_schema_innodb_cmpmem_relocation_time_seconds_total",
    "Time spent relocating blocks of this size.",
);

/// A row of information_schema.INNODB_CMPMEM: page size, buffer pool instance and
/// its four counters in [`CMPMEM_SQL`]'s order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CompressionRow {
    pub page_size: String,
    pub buffer_pool: String,
    pub values: [u64; 4],
}

/// The statements whose rows [`CmpRow`] and [`CompressionRow`] hold.
pub const CMP_SQL: &str = "SELECT page_size, compress_ops, compress_ops_ok, compress_time, \
     uncompress_ops, uncompress_time FROM information_schema.INNODB_CMP";
pub const CMPMEM_SQL: &str = "SELECT page_size, buffer_pool_instance, pages_used, pages_free, \
     relocation_ops, relocation_time FROM information_schema.INNODB_CMPMEM";

const STATUS_HELP: &str = "A server status variable (SHOW GLOBAL STATUS).";
const VARIABLE_HELP: &str = "A server system variable (SHOW GLOBAL VARIABLES).";
const REPLICA_HELP: &str = "A replication status column (SHOW REPLICA STATUS or \
                            SHOW SLAVE STATUS, under the Slave_*/Master_* names).";

/// The system variables always read, when the server has them: besides these, every
/// variable whose value is a number (or ON/OFF) is exported, as mysqld_exporter does.
/// The string ones feed `mysql_version_info`.
pub const VARIABLES: &[&str] = &[
    "innodb_additional_mem_pool_size",
    "innodb_buffer_pool_size",
    "innodb_log_buffer_size",
    "innodb_log_file_size",
    "innodb_version",
    "key_buffer_size",
    "long_query_time",
    "max_connections",
    "max_user_connections",
    "open_files_limit",
    "query_cache_size",
    "read_only",
    "table_definition_cache",
    "table_open_cache",
    "thread_cache_size",
    "tokudb_cache_size",
    "transaction_isolation",
    "tx_isolation",
    "version",
    "version_comment",
];

/// One table's row of information_schema.tables.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableStats {
    pub schema: String,
    pub table: String,
    pub rows: u64,
    pub data_length: u64,
    pub index_length: u64,
    pub data_free: u64,
}

/// Replication status: one row per replication channel or connection, with its column
/// names as the server spelt them.
#[derive(Debug, Default)]
pub struct ReplicaStatus {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Global status as text: one `name<TAB>value` line per variable, in the server's
/// order. It arrives that way in one value from MariaDB (one row instead of hundreds
/// saves most of the client's work), and is built so from `SHOW GLOBAL STATUS` rows
/// elsewhere.
#[derive(Debug, Default)]
pub struct StatusText(pub String);

impl StatusText {
    /// Appends one variable.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push_str(name);
        self.0.push('\t');
        self.0.push_str(value);
        self.0.push('\n');
    }

    /// The variables as (name, value); a line without a tab (the tail of a value that
    /// held a line break) is skipped.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = self.0.as_str();
        let mut from = 0;
        // Lines found with memchr: splitting on a char was a tenth of encoding.
        std::iter::from_fn(move || {
            while from < text.len() {
                let end = memchr::memchr(b'\n', &text.as_bytes()[from..])
                    .map_or(text.len(), |n| from + n);
                let line = &text[from..end];
                from = end + 1;
                if let Some(tab) = memchr::memchr(b'\t', line.as_bytes()) {
                    return Some((&line[..tab], &line[tab + 1..]));
                }
            }
            None
        })
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }
}

/// Everything one scrape read from the server.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub status: StatusText,
    /// The system variables, as `name<TAB>value` lines.
    pub variables: StatusText,
    pub replica: ReplicaStatus,
    pub tables: Vec<TableStats>,
    /// INNODB_CMP and INNODB_CMPMEM, when the account may read them (PROCESS).
    pub cmp: Vec<CmpRow>,
    pub cmpmem: Vec<CompressionRow>,
}

/// A row of INNODB_CMP: page size and its five counters.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CmpRow {
    pub page_size: String,
    pub values: [u64; 5],
}

/// A status or variable value as a number: numbers as they are, the server's words
/// for on and off as 1 and 0, anything else (a path, a state name) left out.
pub fn status_value(v: &str) -> Option<Number<'_>> {
    if let Some(n) = Number::parse(v) {
        return Some(n);
    }
    let yes = ["ON", "YES", "Primary", "TRUE"];
    let no = [
        "OFF",
        "NO",
        "DISABLED",
        "Non-Primary",
        "FALSE",
        "Connecting",
    ];
    if yes.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Some(Number::Integer("1"))
    } else if no.iter().any(|w| w.eq_ignore_ascii_case(v)) {
        Some(Number::Integer("0"))
    } else {
        None
    }
}

/// `prefix` + the variable name in lower case with anything but letters, digits and
/// `_` turned into `_`.
fn metric_name(buf: &mut String, prefix: &str, var: &str) {
    buf.clear();
    buf.push_str(prefix);
    // Each byte of a multi-byte character becomes `_` too, as mysqld_exporter does.
    buf.extend(var.bytes().map(|b| {
        if b.is_ascii_alphanumeric() {
            char::from(b.to_ascii_lowercase())
        } else {
            '_'
        }
    }));
}

/// Writes every family of a snapshot (not `mysql_up`, which the caller writes).
#[cfg(test)]
pub fn encode(w: &mut MetricWriter<'_>, snap: &Snapshot) {
    encode_with(w, snap, &mut Headers::default());
}

/// What a variable's name makes of it in the exposition, worked out once and kept for
/// as long as the server lists the same names in the same order (it does, from one
/// scrape to the next): some thousand names, each lower-cased, matched against the
/// labelled families and written with its metadata, were most of what encoding cost.
enum Class {
    /// A family of its own: its metadata and series name, up to the value, at this
    /// range of the kept bytes.
    Plain(std::ops::Range<usize>),
    /// A sample of a labelled family: the family, the label's name and its value (no
    /// label when the name is empty).
    Grouped(&'static Family, &'static str, Box<str>),
    /// Read by name (the version, the isolation level) or left out (a sum).
    ByName,
}

/// The classes of one list of variables, in the list's order, and in one format.
#[derive(Default)]
struct List {
    names: Vec<Box<str>>,
    classes: Vec<Class>,
    /// The plain classes' prefixes, one after the other.
    bytes: Vec<u8>,
    /// The length of `bytes` after each entry.
    ends: Vec<usize>,
}

impl List {
    /// The class of the variable at `i`, the `i`-th name of this scrape, and the kept
    /// prefixes: the kept class when the name there is the same, else worked out again
    /// (and then those after it too).
    fn class(
        &mut self,
        i: usize,
        name: &str,
        format: Format,
        classify: fn(&str, &mut MetricWriter<'_>) -> Class,
    ) -> (&Class, &[u8]) {
        if self.names.get(i).is_none_or(|kept| **kept != *name) {
            self.keep(i);
            let class = classify(name, &mut MetricWriter::new(&mut self.bytes, format));
            self.names.push(name.into());
            self.classes.push(class);
            self.ends.push(self.bytes.len());
        }
        (&self.classes[i], &self.bytes)
    }

    /// Forgets the entries after the first `n`, when this scrape's list was shorter.
    fn keep(&mut self, n: usize) {
        self.names.truncate(n);
        self.classes.truncate(n);
        self.ends.truncate(n);
        self.bytes.truncate(self.ends.last().copied().unwrap_or(0));
    }
}

/// What the encoding of status and variables keeps between scrapes, for one format.
#[derive(Default)]
pub struct Headers {
    status: List,
    variables: List,
}

/// [`encode`], with what `headers` kept from the last scrape in this format.
pub fn encode_with(w: &mut MetricWriter<'_>, snap: &Snapshot, headers: &mut Headers) {
    encode_status(w, &snap.status, &mut headers.status);
    encode_variables(w, &snap.variables, &mut headers.variables);
    encode_replica(w, &snap.replica);
    encode_tables(w, &snap.tables);
    encode_compression(w, &snap.cmp, &snap.cmpmem);
}

/// INNODB_CMP and INNODB_CMPMEM under mysqld_exporter's names and labels. Relocation
/// time is in microseconds in the table and written in seconds.
fn encode_compression(w: &mut MetricWriter<'_>, cmp: &[CmpRow], cmpmem: &[CompressionRow]) {
    let cmp_families: [&'static Family; 5] = [
        &CMP_COMPRESS_OPS,
        &CMP_COMPRESS_OPS_OK,
        &CMP_COMPRESS_TIME,
        &CMP_UNCOMPRESS_OPS,
        &CMP_UNCOMPRESS_TIME,
    ];
    for (i, family) in cmp_families.into_iter().enumerate() {
        for r in cmp {
            w.sample_u64(family, &[("page_size", &r.page_size)], r.values[i]);
        }
    }
    let mem_families: [&'static Family; 4] = [
        &CMPMEM_USED,
        &CMPMEM_FREE,
        &CMPMEM_RELOCATION_OPS,
        &CMPMEM_RELOCATION_TIME,
    ];
    for (i, family) in mem_families.into_iter().enumerate() {
        for r in cmpmem {
            let labels = [
                ("buffer_pool", r.buffer_pool.as_str()),
                ("page_size", &r.page_size),
            ];
            if i == 3 {
                w.sample_quotient(family, &labels, r.values[i], 1_000_000);
            } else {
                w.sample_u64(family, &labels, r.values[i]);
            }
        }
    }
}

/// The status variables mysqld_exporter folds into labelled families: name prefix,
/// family, label.
const GROUPS: &[(&str, &Family, &str)] = &[
    ("com_", &COMMANDS, "command"),
    ("handler_", &HANDLERS, "handler"),
    ("connection_errors_", &CONNECTION_ERRORS, "error"),
    ("innodb_rows_", &INNODB_ROW_OPS, "operation"),
    ("performance_schema_", &PERF_SCHEMA_LOST, "instrumentation"),
];

/// A status variable's class; a plain one's prefix is written to `w`.
fn classify_status(var: &str, w: &mut MetricWriter<'_>) -> Class {
    const PREFIX: &str = "mysql_global_status_";
    let mut name = String::with_capacity(64);
    metric_name(&mut name, PREFIX, var);
    let short = &name[PREFIX.len()..];
    if let Some(p) = short.strip_prefix("innodb_buffer_pool_pages_") {
        return match p {
            "data" | "free" | "misc" | "old" => {
                Class::Grouped(&BUFFER_POOL_PAGES, "state", p.into())
            }
            "dirty" => Class::Grouped(&BUFFER_POOL_DIRTY, "", "".into()),
            // The sum of the states: derived, as mysqld_exporter leaves it out.
            "total" => Class::ByName,
            _ => Class::Grouped(&BUFFER_POOL_CHANGES, "operation", p.into()),
        };
    }
    match GROUPS.iter().find(|(prefix, ..)| short.starts_with(prefix)) {
        // The rest of the name is the label value, as mysqld_exporter has it
        // (`instrumentation="accounts_lost"`).
        Some((prefix, family, label)) => {
            Class::Grouped(family, label, short[prefix.len()..].into())
        }
        None => {
            let start = w.written();
            w.dynamic_prefix(Kind::Untyped, &name, STATUS_HELP);
            Class::Plain(start..w.written())
        }
    }
}

fn encode_status(w: &mut MetricWriter<'_>, status: &StatusText, list: &mut List) {
    let format = w.format();
    // Labelled families are written after the generic ones, each in one piece:
    // (family, the variable's place in the list, value).
    let mut grouped: Vec<(&'static Family, usize, Number<'_>)> = Vec::new();
    let mut n = 0;
    for (i, (name, value)) in status.pairs().enumerate() {
        n = i + 1;
        let (class, prefixes) = list.class(i, name, format, classify_status);
        let Some(v) = status_value(value) else {
            continue;
        };
        match class {
            Class::Plain(r) => w.prefixed_sample(&prefixes[r.clone()], v),
            Class::Grouped(family, ..) => grouped.push((family, i, v)),
            Class::ByName => {}
        }
    }
    list.keep(n);
    // Stable order: by family, then as the server listed them (the sort is stable).
    grouped.sort_by_key(|g| grouped_first(g.0));
    for (family, i, v) in &grouped {
        let Class::Grouped(_, label, value_label) = &list.classes[*i] else {
            continue;
        };
        if label.is_empty() {
            w.sample_number(family, &[], *v);
        } else {
            w.sample_number(family, &[(label, value_label)], *v);
        }
    }
}

/// A family's place among the labelled status families.
fn grouped_first(f: &Family) -> usize {
    let order: [&Family; 8] = [
        &BUFFER_POOL_PAGES,
        &BUFFER_POOL_DIRTY,
        &BUFFER_POOL_CHANGES,
        &COMMANDS,
        &CONNECTION_ERRORS,
        &HANDLERS,
        &INNODB_ROW_OPS,
        &PERF_SCHEMA_LOST,
    ];
    order
        .iter()
        .position(|o| std::ptr::eq(*o, f))
        .unwrap_or(order.len())
}

/// The variables read by name rather than written as they are.
const BY_NAME: [&str; 5] = [
    "version",
    "version_comment",
    "innodb_version",
    "transaction_isolation",
    "tx_isolation",
];

/// A system variable's class; a plain one's prefix is written to `w`.
fn classify_variable(var: &str, w: &mut MetricWriter<'_>) -> Class {
    // The server's spelling: lower case from SHOW VARIABLES, upper case from
    // information_schema.
    if BY_NAME.iter().any(|n| var.eq_ignore_ascii_case(n)) {
        return Class::ByName;
    }
    let mut name = String::with_capacity(64);
    metric_name(&mut name, "mysql_global_variables_", var);
    let start = w.written();
    w.dynamic_prefix(Kind::Gauge, &name, VARIABLE_HELP);
    Class::Plain(start..w.written())
}

fn encode_variables(w: &mut MetricWriter<'_>, variables: &StatusText, list: &mut List) {
    let format = w.format();
    let mut version = ("", "", "");
    let mut isolation = None;
    let mut n = 0;
    for (i, (var, value)) in variables.pairs().enumerate() {
        n = i + 1;
        let (class, prefixes) = list.class(i, var, format, classify_variable);
        let is = |n: &str| var.eq_ignore_ascii_case(n);
        match class {
            Class::Plain(r) => {
                if let Some(v) = status_value(value) {
                    w.prefixed_sample(&prefixes[r.clone()], v);
                }
            }
            Class::Grouped(..) => {}
            Class::ByName if is("version") => version.0 = value,
            Class::ByName if is("version_comment") => version.1 = value,
            Class::ByName if is("innodb_version") => version.2 = value,
            // The newer name wins where a server has both.
            Class::ByName if is("transaction_isolation") => isolation = Some(value),
            Class::ByName => {
                isolation.get_or_insert(value);
            }
        }
    }
    list.keep(n);
    if let Some(level) = isolation {
        w.sample_u64(&TRANSACTION_ISOLATION, &[("level", level)], 1);
    }
    if !version.0.is_empty() {
        w.sample_u64(
            &VERSION_INFO,
            &[
                ("innodb_version", version.2),
                ("version", version.0),
                ("version_comment", version.1),
            ],
            1,
        );
    }
}

/// A replication column under the name mysqld_exporter has always used: MySQL 8.0.22+
/// and MariaDB 10.5+ renamed `Slave`/`Master` to `Replica`/`Source`, and dashboards
/// should not care which one the server speaks.
pub fn replica_column(col: &str) -> String {
    col.replace("Replica", "Slave")
        .replace("replica", "slave")
        .replace("Source", "Master")
        .replace("source", "master")
}

fn encode_replica(w: &mut MetricWriter<'_>, rs: &ReplicaStatus) {
    if rs.rows.is_empty() {
        return;
    }
    let cols: Vec<String> = rs.columns.iter().map(|c| replica_column(c)).collect();
    let find = |want: &str| cols.iter().position(|c| c.eq_ignore_ascii_case(want));
    let label_cols = [
        ("channel_name", find("Channel_Name")),
        ("connection_name", find("Connection_name")),
        ("master_host", find("Master_Host")),
        ("master_uuid", find("Master_UUID")),
    ];
    let labels: Vec<[(&str, &str); 4]> = rs
        .rows
        .iter()
        .map(|row| {
            label_cols.map(|(k, i)| {
                let v = i
                    .and_then(|i| row.get(i))
                    .and_then(|v| v.as_deref())
                    .unwrap_or("");
                (k, v)
            })
        })
        .collect();
    let mut name = String::with_capacity(64);
    for (i, col) in cols.iter().enumerate() {
        let values: Vec<(usize, Number<'_>)> = rs
            .rows
            .iter()
            .enumerate()
            .filter_map(|(r, row)| {
                let v = row.get(i)?.as_deref()?;
                Some((r, status_value(v)?))
            })
            .collect();
        if values.is_empty() {
            continue;
        }
        metric_name(&mut name, "mysql_slave_status_", col);
        w.dynamic_family(Kind::Untyped, &name, REPLICA_HELP);
        for (r, v) in values {
            w.dynamic_series(&name, &labels[r], v);
        }
    }
}

fn encode_tables(w: &mut MetricWriter<'_>, tables: &[TableStats]) {
    for t in tables {
        w.sample_u64(
            &TABLE_ROWS,
            &[("schema", &t.schema), ("table", &t.table)],
            t.rows,
        );
    }
    for t in tables {
        for (component, v) in [
            ("data_length", t.data_length),
            ("index_length", t.index_length),
            ("data_free", t.data_free),
        ] {
            w.sample_u64(
                &TABLE_SIZE,
                &[
                    ("component", component),
                    ("schema", &t.schema),
                    ("table", &t.table),
                ],
                v,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    fn render(snap: &Snapshot) -> String {
        let mut buf = Vec::new();
        encode(&mut MetricWriter::new(&mut buf, Format::Text), snap);
        String::from_utf8(buf).unwrap()
    }

    fn status(list: &[(&str, &str)]) -> StatusText {
        let mut s = StatusText::default();
        for (name, value) in list {
            s.push(name, value);
        }
        s
    }

    #[test]
    fn kept_headers_write_the_same_bytes_and_follow_a_changed_list() {
        let first = Snapshot {
            status: status(&[
                ("Aborted_clients", "3"),
                ("Com_select", "10"),
                ("Innodb_buffer_pool_pages_dirty", "4"),
                ("Rpl_status", "AUTH_MASTER"),
                ("Uptime", "1234"),
            ]),
            variables: status(&[
                ("max_connections", "151"),
                ("version", "10.11.19-MariaDB"),
                ("read_only", "OFF"),
            ]),
            ..Snapshot::default()
        };
        // A restarted, upgraded server: other names, another order, other values.
        let second = Snapshot {
            status: status(&[
                ("Uptime", "5"),
                ("Com_insert", "1"),
                ("Aborted_clients", "0"),
                ("Threads_running", "2"),
            ]),
            variables: status(&[
                ("read_only", "ON"),
                ("version", "11.4.2-MariaDB"),
                ("sync_binlog", "1"),
            ]),
            ..Snapshot::default()
        };
        for format in [Format::Text, Format::OpenMetrics { version: "1.0.0" }] {
            let unkept = |snap: &Snapshot| {
                let mut buf = Vec::new();
                encode_with(
                    &mut MetricWriter::new(&mut buf, format),
                    snap,
                    &mut Headers::default(),
                );
                String::from_utf8(buf).unwrap()
            };
            let mut headers = Headers::default();
            let mut kept = |snap: &Snapshot| {
                let mut buf = Vec::new();
                encode_with(&mut MetricWriter::new(&mut buf, format), snap, &mut headers);
                String::from_utf8(buf).unwrap()
            };
            for snap in [&first, &first, &second, &second, &first] {
                assert_eq!(kept(snap), unkept(snap));
            }
            let text = unkept(&second);
            assert!(
                text.contains("mysql_global_variables_sync_binlog 1\n"),
                "{text}"
            );
            assert!(
                text.contains("mysql_global_variables_read_only 1\n"),
                "{text}"
            );
            assert!(!text.contains("max_connections"), "{text}");
        }
    }

    #[test]
    fn status_names_types_and_groups() {
        let out = render(&Snapshot {
            status: status(&[
                ("Aborted_clients", "3"),
                ("Bytes_received", "18446744073709551615"),
                ("Com_select", "10"),
                ("Com_insert", "2"),
                ("Handler_commit", "5"),
                ("Innodb_buffer_pool_pages_data", "300"),
                ("Innodb_buffer_pool_pages_dirty", "4"),
                ("Innodb_buffer_pool_pages_flushed", "9"),
                ("Innodb_buffer_pool_pages_total", "8191"),
                (
                    "Innodb_buffer_pool_load_status",
                    "Buffer pool(s) load completed",
                ),
                ("Innodb_rows_read", "77"),
                ("Rpl_status", "AUTH_MASTER"),
                ("Ssl_cipher", ""),
                ("Slave_running", "OFF"),
                ("Uptime", "1234"),
            ]),
            ..Snapshot::default()
        });
        assert!(out.contains("# TYPE mysql_global_status_aborted_clients untyped\nmysql_global_status_aborted_clients 3\n"), "{out}");
        // Exact beyond 2^53: copied, not rounded through a float.
        assert!(out.contains("mysql_global_status_bytes_received 18446744073709551615\n"));
        assert!(out.contains("# TYPE mysql_global_status_commands_total counter\nmysql_global_status_commands_total{command=\"select\"} 10\nmysql_global_status_commands_total{command=\"insert\"} 2\n"), "{out}");
        assert!(out.contains("mysql_global_status_handlers_total{handler=\"commit\"} 5\n"));
        assert!(out.contains("mysql_global_status_buffer_pool_pages{state=\"data\"} 300\n"));
        assert!(out.contains("mysql_global_status_buffer_pool_dirty_pages 4\n"));
        assert!(out.contains(
            "mysql_global_status_buffer_pool_page_changes_total{operation=\"flushed\"} 9\n"
        ));
        assert!(!out.contains("total\"}") && !out.contains("load_status"));
        assert!(out.contains("mysql_global_status_innodb_row_ops_total{operation=\"read\"} 77\n"));
        assert!(out.contains("mysql_global_status_slave_running 0\n"));
        assert!(!out.contains("rpl_status") && !out.contains("ssl_cipher"));
        // Every family's header appears once.
        assert_eq!(
            out.matches("# TYPE mysql_global_status_commands_total")
                .count(),
            1
        );
    }

    #[test]
    fn status_text_as_mariadb_sends_it_equals_status_rows() {
        // information_schema.GLOBAL_STATUS names are upper case; a value holding a line
        // break leaves a tail line without a tab, which is skipped.
        let text = StatusText(
            "ABORTED_CLIENTS\t3\nCOM_SELECT\t10\nSSL_CIPHER_LIST\ta\nb\nUPTIME\t1234".to_owned(),
        );
        assert_eq!(
            text.pairs().collect::<Vec<_>>(),
            [
                ("ABORTED_CLIENTS", "3"),
                ("COM_SELECT", "10"),
                ("SSL_CIPHER_LIST", "a"),
                ("UPTIME", "1234")
            ]
        );
        let from_text = render(&Snapshot {
            status: text,
            ..Snapshot::default()
        });
        let from_rows = render(&Snapshot {
            status: status(&[
                ("Aborted_clients", "3"),
                ("Com_select", "10"),
                ("Ssl_cipher_list", "a\nb"),
                ("Uptime", "1234"),
            ]),
            ..Snapshot::default()
        });
        assert_eq!(from_text, from_rows);
        assert!(
            from_text.contains("mysql_global_status_uptime 1234\n"),
            "{from_text}"
        );
        assert!(StatusText::default().is_empty());
        assert!(StatusText("no tab here".to_owned()).is_empty());
    }

    #[test]
    fn variables_and_version() {
        let out = render(&Snapshot {
            variables: status(&[
                ("max_connections", "151"),
                ("read_only", "OFF"),
                ("long_query_time", "10.000000"),
                ("version", "10.11.6-MariaDB"),
                ("version_comment", "Debian 12"),
                ("innodb_version", "10.11.6"),
            ]),
            ..Snapshot::default()
        });
        assert!(out.contains("# TYPE mysql_global_variables_max_connections gauge\nmysql_global_variables_max_connections 151\n"));
        assert!(out.contains("mysql_global_variables_read_only 0\n"));
        assert!(out.contains("mysql_global_variables_long_query_time 10\n"));
        assert!(out.contains("mysql_version_info{innodb_version=\"10.11.6\",version=\"10.11.6-MariaDB\",version_comment=\"Debian 12\"} 1\n"), "{out}");
    }

    #[test]
    fn replica_columns_under_the_old_names() {
        let both = |columns: &[&str]| ReplicaStatus {
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: vec![vec![
                Some("db1".to_owned()),
                Some("Yes".to_owned()),
                Some("Connecting".to_owned()),
                Some("12".to_owned()),
                None,
            ]],
        };
        let old = render(&Snapshot {
            replica: both(&[
                "Master_Host",
                "Slave_SQL_Running",
                "Slave_IO_Running",
                "Seconds_Behind_Master",
                "Last_IO_Errno",
            ]),
            ..Snapshot::default()
        });
        let new = render(&Snapshot {
            replica: both(&[
                "Source_Host",
                "Replica_SQL_Running",
                "Replica_IO_Running",
                "Seconds_Behind_Source",
                "Last_IO_Errno",
            ]),
            ..Snapshot::default()
        });
        assert_eq!(old, new);
        let l = "{channel_name=\"\",connection_name=\"\",master_host=\"db1\",master_uuid=\"\"}";
        assert!(
            old.contains(&format!("mysql_slave_status_slave_sql_running{l} 1\n")),
            "{old}"
        );
        assert!(old.contains(&format!("mysql_slave_status_slave_io_running{l} 0\n")));
        assert!(old.contains(&format!("mysql_slave_status_seconds_behind_master{l} 12\n")));
        assert!(!old.contains("last_io_errno"), "NULL is left out");
    }

    #[test]
    fn names_are_sanitised_to_ascii() {
        let mut buf = String::new();
        metric_name(&mut buf, "p_", "Ssl-Cipher.Liste\u{e9}");
        assert_eq!(buf, "p_ssl_cipher_liste__");
    }

    #[test]
    fn table_sizes() {
        let out = render(&Snapshot {
            tables: vec![TableStats {
                schema: "shop".into(),
                table: "orders".into(),
                rows: 5,
                data_length: 16384,
                index_length: 0,
                data_free: 0,
            }],
            ..Snapshot::default()
        });
        assert!(out.contains("mysql_info_schema_table_rows{schema=\"shop\",table=\"orders\"} 5\n"));
        assert!(out.contains("mysql_info_schema_table_size{component=\"data_length\",schema=\"shop\",table=\"orders\"} 16384\n"));
    }
}
