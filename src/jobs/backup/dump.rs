//! One database's dump: `mariadb-dump` (or `mysqldump`) under the job supervisor, its
//! output compressed and hashed as it streams, and counted as it passes so the manifest
//! knows every table's rows.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::inventory::{ident, literal, Sql};
use super::{finish_artifact, io_err, Backup, BackupError, HashWriter, Progress};
use crate::jobs::supervise::{self, Limits};
use crate::state::backup::{Artifact, TableRows};

/// Rows per table in a mysqldump stream, counted as it passes, and its completion
/// marker. The stream is read as the server's lexer and the client's statement splitter
/// read it, not line by line: quoted names and strings may hold anything (newlines,
/// backquotes, quotes, `--`, `;`, `*/`), comments and `/*! … */` version comments are
/// told apart, and `DELIMITER` changes what ends a statement. A statement
/// `CREATE TABLE name` registers the table (an empty one counts 0); `INSERT INTO name
/// VALUES (…),(…)` counts its rows (extended inserts: one statement holds many).
pub struct DumpReader {
    tables: BTreeMap<String, u64>,
    pub server_version: String,
    /// Bytes read.
    pub bytes: u64,
    /// The last bytes of the stream, for the completion marker.
    tail: Vec<u8>,
    lex: Lex,
    stmt: Stmt,
    /// What ends a statement (`;`, or what `DELIMITER` set).
    delimiter: Vec<u8>,
    /// Bytes of the delimiter seen so far.
    matched: usize,
    /// Inside `/*! … */` or `/*M! … */`, whose text is code.
    in_version_comment: bool,
    /// The word or quoted name being read (its first bytes), or a comment's.
    text: Vec<u8>,
}

/// Where the lexer is.
#[derive(Clone, Copy, PartialEq)]
enum Lex {
    Code,
    /// A bare word (keyword, unquoted name, number).
    Word,
    /// A quoted string or name; `true` after a backslash (not in names).
    Quoted(u8, bool),
    /// A quote that may close, or be the first of a doubled one.
    QuoteEnd(u8),
    Dash,
    DashDash,
    LineComment,
    Slash,
    /// After `/*`.
    CommentOpen,
    /// After `/*M`.
    CommentOpenM,
    /// A plain comment; `true` after a `*`.
    Comment(bool),
    /// The version digits after `/*!`.
    Version,
    /// A `*` in a version comment's code: maybe its end.
    Star,
    /// After the `DELIMITER` command: the new delimiter, then the rest of the line.
    Delimiter(bool),
}

/// What the current statement is, as far as its first tokens tell.
#[derive(PartialEq)]
enum Stmt {
    /// Its first tokens.
    Start(Vec<Token>),
    Insert {
        table: String,
        values: bool,
        depth: u32,
    },
    /// Not one that is read: up to the delimiter.
    Other,
}

#[derive(PartialEq)]
enum Token {
    /// A bare word, upper-cased (only short ones: keywords).
    Word(String),
    /// A backquoted name.
    Name(String),
    Punct(u8),
}

/// Bytes a statement that is not read, or an INSERT's values, must stop at; the rest
/// (digits, words, blanks) is passed over in bulk.
const STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let stops = b"'\"`()-/#*";
    let mut i = 0;
    while i < stops.len() {
        t[stops[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Longest name kept (MariaDB's are 64 characters, at most 256 bytes in UTF-8).
const MAX_NAME: usize = 1024;

impl Default for DumpReader {
    fn default() -> Self {
        DumpReader {
            tables: BTreeMap::new(),
            server_version: String::new(),
            bytes: 0,
            tail: Vec::new(),
            lex: Lex::Code,
            stmt: Stmt::Start(Vec::new()),
            delimiter: b";".to_vec(),
            matched: 0,
            in_version_comment: false,
            text: Vec::new(),
        }
    }
}

impl DumpReader {
    pub fn new() -> DumpReader {
        DumpReader::default()
    }

    pub fn feed(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        let mut i = 0;
        while i < data.len() {
            i = self.step(data, i);
        }
        // The last 256 bytes at least, for the completion marker.
        if data.len() >= 256 {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - 256..]);
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() > 512 {
                let cut = self.tail.len() - 256;
                self.tail.drain(..cut);
            }
        }
    }

    /// Reads from `data[i]` on, at least one byte; returns where it stopped.
    fn step(&mut self, data: &[u8], i: usize) -> usize {
        let b = data[i];
        match self.lex {
            Lex::Code => {
                // Most of a dump is rows, and statements that are not read: jump to
                // the next byte that matters there.
                if self.matched == 0 && self.bulk() {
                    let first = self.delimiter[0];
                    let star = self.in_version_comment;
                    let skip = data[i..]
                        .iter()
                        .position(|&c| STOPS[c as usize] && (c != b'*' || star) || c == first);
                    match skip {
                        Some(0) => {}
                        Some(k) => return i + k,
                        None => return data.len(),
                    }
                }
                self.code(b);
                i + 1
            }
            Lex::Word => {
                if is_word_byte(b) {
                    if self.text.len() < MAX_NAME {
                        self.text.push(b);
                    }
                    return i + 1;
                }
                let word = std::mem::take(&mut self.text);
                self.lex = Lex::Code;
                self.word(&word);
                // The byte after the word is read as code (unless the word changed
                // how, as DELIMITER does).
                i
            }
            Lex::Quoted(q, escaped) => {
                if escaped {
                    self.keep(q, b);
                    self.lex = Lex::Quoted(q, false);
                    return i + 1;
                }
                let rest = &data[i..];
                let found = if q == b'`' {
                    memchr::memchr(q, rest)
                } else {
                    memchr::memchr2(q, b'\\', rest)
                };
                let Some(k) = found else {
                    self.keep_all(q, rest);
                    return data.len();
                };
                self.keep_all(q, &rest[..k]);
                self.lex = if rest[k] == q {
                    Lex::QuoteEnd(q)
                } else {
                    Lex::Quoted(q, true)
                };
                i + k + 1
            }
            Lex::QuoteEnd(q) => {
                if b == q {
                    // Doubled: one quote character of the text.
                    self.keep(q, b);
                    self.lex = Lex::Quoted(q, false);
                    return i + 1;
                }
                self.lex = Lex::Code;
                if q == b'`' {
                    let name = std::mem::take(&mut self.text);
                    self.token(Token::Name(String::from_utf8_lossy(&name).into_owned()));
                }
                i
            }
            Lex::Dash => {
                if b == b'-' {
                    self.lex = Lex::DashDash;
                    return i + 1;
                }
                self.lex = Lex::Code;
                self.token(Token::Punct(b'-'));
                i
            }
            Lex::DashDash => {
                self.lex = Lex::Code;
                if b <= b' ' {
                    // `-- ` and a blank or control character: a comment.
                    self.text.clear();
                    self.text.extend_from_slice(b"--");
                    self.lex = Lex::LineComment;
                    return i;
                }
                self.token(Token::Punct(b'-'));
                self.token(Token::Punct(b'-'));
                i
            }
            Lex::LineComment => {
                let rest = &data[i..];
                let end = memchr::memchr(b'\n', rest);
                let upto = end.unwrap_or(rest.len());
                let room = 256usize.saturating_sub(self.text.len());
                self.text.extend_from_slice(&rest[..upto.min(room)]);
                match end {
                    None => data.len(),
                    Some(k) => {
                        self.line_comment();
                        self.lex = Lex::Code;
                        i + k + 1
                    }
                }
            }
            Lex::Slash => {
                if b == b'*' {
                    self.lex = Lex::CommentOpen;
                    return i + 1;
                }
                self.lex = Lex::Code;
                self.token(Token::Punct(b'/'));
                i
            }
            Lex::CommentOpen => match b {
                b'!' => {
                    self.lex = Lex::Version;
                    self.in_version_comment = true;
                    i + 1
                }
                b'M' => {
                    self.lex = Lex::CommentOpenM;
                    i + 1
                }
                _ => {
                    self.lex = Lex::Comment(false);
                    i
                }
            },
            Lex::CommentOpenM => {
                if b == b'!' {
                    self.lex = Lex::Version;
                    self.in_version_comment = true;
                    return i + 1;
                }
                self.lex = Lex::Comment(false);
                i
            }
            Lex::Comment(star) => {
                if star && b == b'/' {
                    self.lex = Lex::Code;
                    return i + 1;
                }
                if b == b'*' {
                    self.lex = Lex::Comment(true);
                    return i + 1;
                }
                self.lex = Lex::Comment(false);
                match memchr::memchr(b'*', &data[i..]) {
                    Some(k) => i + k,
                    None => data.len(),
                }
            }
            Lex::Version => {
                if b.is_ascii_digit() {
                    return i + 1;
                }
                self.lex = Lex::Code;
                i
            }
            Lex::Star => {
                self.lex = Lex::Code;
                if b == b'/' {
                    self.in_version_comment = false;
                    return i + 1;
                }
                self.token(Token::Punct(b'*'));
                i
            }
            Lex::Delimiter(done) => {
                if b == b'\n' {
                    let new = std::mem::take(&mut self.text);
                    if !new.is_empty() {
                        self.delimiter = new;
                    }
                    self.lex = Lex::Code;
                    self.stmt = Stmt::Start(Vec::new());
                } else if b == b' ' || b == b'\t' || b == b'\r' {
                    if !self.text.is_empty() {
                        self.lex = Lex::Delimiter(true);
                    }
                } else if !done && self.text.len() < 16 {
                    self.text.push(b);
                }
                i + 1
            }
        }
    }

    /// Whether the current statement's code can be passed over to the next stop byte.
    fn bulk(&self) -> bool {
        match &self.stmt {
            Stmt::Other => true,
            Stmt::Insert { values, .. } => *values,
            Stmt::Start(_) => false,
        }
    }

    /// One byte of code.
    fn code(&mut self, b: u8) {
        if b == self.delimiter[self.matched] {
            self.matched += 1;
            if self.matched == self.delimiter.len() {
                self.matched = 0;
                self.stmt = Stmt::Start(Vec::new());
            }
            return;
        }
        if self.matched > 0 {
            // What matched was code after all (`;` of a body under `DELIMITER ;;`).
            for _ in 0..std::mem::take(&mut self.matched) {
                self.token(Token::Punct(self.delimiter[0]));
            }
            if b == self.delimiter[0] {
                self.matched = 1;
                return;
            }
        }
        match b {
            b'\'' | b'"' | b'`' => {
                self.text.clear();
                self.lex = Lex::Quoted(b, false);
            }
            b'-' => self.lex = Lex::Dash,
            b'/' => self.lex = Lex::Slash,
            b'#' => {
                self.text.clear();
                self.lex = Lex::LineComment;
            }
            b'*' if self.in_version_comment => self.lex = Lex::Star,
            _ if is_word_byte(b) => {
                self.text.clear();
                self.text.push(b);
                self.lex = Lex::Word;
            }
            _ if b.is_ascii_whitespace() => {}
            _ => self.token(Token::Punct(b)),
        }
    }

    /// Keeps a byte of a quoted name (strings' bytes are not kept).
    fn keep(&mut self, q: u8, b: u8) {
        if q == b'`' && self.text.len() < MAX_NAME {
            self.text.push(b);
        }
    }

    fn keep_all(&mut self, q: u8, bytes: &[u8]) {
        if q == b'`' {
            let room = MAX_NAME.saturating_sub(self.text.len());
            self.text.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    fn word(&mut self, word: &[u8]) {
        let upper = if word.len() <= 16 {
            String::from_utf8_lossy(word).to_ascii_uppercase()
        } else {
            String::new()
        };
        if upper == "DELIMITER" && self.stmt == Stmt::Start(Vec::new()) {
            self.text.clear();
            self.lex = Lex::Delimiter(false);
            return;
        }
        self.token(Token::Word(upper));
    }

    /// A token of the current statement.
    fn token(&mut self, t: Token) {
        match &mut self.stmt {
            Stmt::Other => {}
            Stmt::Insert {
                values,
                depth,
                table,
            } => match t {
                Token::Punct(b'(') => {
                    if *values && *depth == 0 {
                        match self.tables.get_mut(table.as_str()) {
                            Some(n) => *n += 1,
                            None => {
                                self.tables.insert(table.clone(), 1);
                            }
                        }
                    }
                    *depth += 1;
                }
                Token::Punct(b')') => *depth = depth.saturating_sub(1),
                Token::Word(w) if *depth == 0 && w == "VALUES" => *values = true,
                _ => {}
            },
            Stmt::Start(tokens) => {
                tokens.push(t);
                let word =
                    |k: usize, w: &str| matches!(tokens.get(k), Some(Token::Word(x)) if x == w);
                let name = |k: usize| match tokens.get(k) {
                    Some(Token::Name(n)) => Some(n.clone()),
                    _ => None,
                };
                let next = if word(0, "INSERT") {
                    let at = if word(1, "IGNORE") { 2 } else { 1 };
                    if tokens.len() <= at + 1 {
                        None
                    } else if let (true, Some(table)) = (word(at, "INTO"), name(at + 1)) {
                        Some(Stmt::Insert {
                            table,
                            values: false,
                            depth: 0,
                        })
                    } else {
                        Some(Stmt::Other)
                    }
                } else if word(0, "CREATE") && !self.in_version_comment {
                    if tokens.len() < 3 {
                        None
                    } else {
                        // A view's stand-in table is created inside a version comment,
                        // and is not one.
                        if let (true, Some(table)) = (word(1, "TABLE"), name(2)) {
                            self.tables.entry(table).or_insert(0);
                        }
                        Some(Stmt::Other)
                    }
                } else {
                    Some(Stmt::Other)
                };
                if let Some(next) = next {
                    self.stmt = next;
                }
            }
        }
    }

    /// A line comment has ended: the header's server version is one.
    fn line_comment(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        if let Some(v) = text
            .strip_prefix("--")
            .map(str::trim_start)
            .and_then(|t| t.strip_prefix("Server version"))
        {
            self.server_version = v.trim().to_owned();
        }
        self.text.clear();
    }

    pub fn completed(&self) -> bool {
        String::from_utf8_lossy(&self.tail).contains("-- Dump completed")
    }

    /// Rows of `table` in the dump; `None` when the dump has no such table.
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables.get(table).copied()
    }

    pub fn tables(&self) -> Vec<TableRows> {
        self.tables
            .iter()
            .map(|(t, n)| TableRows {
                table: t.clone(),
                rows: *n,
            })
            .collect()
    }
}

impl Backup<'_> {
    /// Dumps `db` into `path` until `deadline`: the artifact and what the dump held.
    pub(super) fn dump(
        &self,
        tool: &str,
        sql: &Sql<'_>,
        db: &str,
        events: &[String],
        path: &Path,
        deadline: Instant,
    ) -> Result<(Artifact, DumpReader), BackupError> {
        // mariadb-dump (10.11) selects a database again by its name escaped as a string
        // when it dumps the events, and fails for a name with a character that escaping
        // changes (quotes, backslash, newline, carriage return, Ctrl-Z): those events
        // are written here, after its output, as it writes them.
        let events_apart =
            !events.is_empty() && db.contains(['\'', '"', '\\', '\n', '\r', '\u{1a}', '\0']);
        let events_text = if events_apart {
            events_section(sql, db, events)?
        } else {
            String::new()
        };
        let (mut cmd, _options) = sql.defaults.command(tool)?;
        cmd.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            if events_apart {
                "--skip-events"
            } else {
                "--events"
            },
            "--hex-blob",
            "--quick",
            "--default-character-set=utf8mb4",
            // The name after the options' end: one that starts with `-` is a name.
            "--",
        ])
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut process = supervise::spawn(
            &mut cmd,
            Limits {
                timeout: Some(deadline.saturating_duration_since(Instant::now())),
                kill_grace: self.kill_grace,
            },
        )
        .map_err(io_err(format!("starting {tool}")))?;
        let errors = super::client::read_in_background(process.stderr.take());
        let file = crate::writes::create_new(path, crate::writes::PRIVATE)
            .map_err(io_err(format!("creating {}", path.display())))?;
        let hw = HashWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let mut enc = zstd::Encoder::new(hw, 3).map_err(io_err("starting compression"))?;
        // Compression on a worker thread of its own, while this one reads and counts:
        // the dump tool's output is consumed as fast as `… | zstd` would.
        enc.multithread(1)
            .map_err(io_err("starting the compression thread"))?;
        let mut reader = DumpReader::new();
        let mut progress = Progress::new();
        let mut raw = 0u64;
        let mut stdout = process.stdout.take().ok_or_else(|| BackupError::Dump {
            db: db.to_owned(),
            reason: "no output".into(),
        })?;
        let mut buf = vec![0; 256 * 1024];
        let write_result = loop {
            match stdout.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    reader.feed(&buf[..n]);
                    raw += n as u64;
                    if let Err(e) = enc.write_all(&buf[..n]) {
                        break Err(e);
                    }
                    progress.show(|| format!("dumping {db}: {} MB", raw >> 20));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        if write_result.is_err() {
            process.cancel();
        }
        drop(stdout);
        let exit = process
            .wait()
            .map_err(io_err(format!("waiting for {tool}")))?;
        let stderr_text = errors.join().unwrap_or_default();
        write_result.map_err(io_err(format!("writing {}", path.display())))?;
        if exit.timed_out {
            return Err(BackupError::Timeout(self.cfg.timeout.get()));
        }
        if !exit.success() {
            return Err(BackupError::Dump {
                db: db.to_owned(),
                reason: format!(
                    "{tool} exited with code {}: {}",
                    exit.code,
                    stderr_text.lines().last().unwrap_or("no message")
                ),
            });
        }
        let completed = reader.completed();
        if completed && !events_text.is_empty() {
            reader.feed(events_text.as_bytes());
            enc.write_all(events_text.as_bytes())
                .map_err(io_err(format!("writing {}", path.display())))?;
        }
        if !completed {
            return Err(BackupError::Dump {
                db: db.to_owned(),
                reason:
                    "the dump has no completion marker (\"-- Dump completed\"): it is cut short"
                        .into(),
            });
        }
        Ok((finish_artifact(enc, path, String::new())?, reader))
    }
}

/// `db`'s events as mariadb-dump writes them (each with its SQL mode and time zone, the
/// session's settings put back after), from `SHOW CREATE EVENT`; the text is read in
/// utf8mb4, and loaded so.
fn events_section(sql: &Sql<'_>, db: &str, events: &[String]) -> Result<String, BackupError> {
    let mut out = String::from(
        "\n--\n-- Events (written apart from mariadb-dump's output)\n--\n\nDELIMITER ;;\n\
         /*!50003 SET @saved_cs_client      = @@character_set_client */ ;;\n\
         /*!50003 SET @saved_cs_results     = @@character_set_results */ ;;\n\
         /*!50003 SET @saved_col_connection = @@collation_connection */ ;;\n\
         /*!50003 SET @saved_sql_mode       = @@sql_mode */ ;;\n\
         /*!50003 SET @saved_time_zone      = @@time_zone */ ;;\n\
         /*!50003 SET NAMES utf8mb4 */ ;;\n",
    );
    for e in events {
        let rows = sql.rows(&format!("SHOW CREATE EVENT {}.{}", ident(db), ident(e)))?;
        let row = rows
            .first()
            .filter(|r| r.len() >= 4)
            .ok_or_else(|| BackupError::Dump {
                db: db.to_owned(),
                reason: format!("SHOW CREATE EVENT {} gave nothing", ident(e)),
            })?;
        out.push_str(&format!(
            "/*!50003 SET sql_mode              = {} */ ;;\n\
             /*!50003 SET time_zone             = {} */ ;;\n\
             {} ;;\n",
            literal(&row[1]),
            literal(&row[2]),
            row[3]
        ));
    }
    out.push_str(
        "/*!50003 SET time_zone             = @saved_time_zone */ ;;\n\
         /*!50003 SET sql_mode              = @saved_sql_mode */ ;;\n\
         /*!50003 SET character_set_client  = @saved_cs_client */ ;;\n\
         /*!50003 SET character_set_results = @saved_cs_results */ ;;\n\
         /*!50003 SET collation_connection  = @saved_col_connection */ ;;\n\
         DELIMITER ;\n",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_counted_from_extended_inserts() {
        let dump = "-- Server version\t10.11.19-MariaDB\nCREATE TABLE `empty` (\n  `id` int\n);\nCREATE TABLE `products` (\n  `id` int\n);\nINSERT INTO `products` VALUES (1,'boot (tall)',99.50),(2,'it''s; fine',30.00),(3,'back\\\\slash\\'s',1);\nINSERT INTO `products` VALUES (4,'x',NULL);\nINSERT INTO `orders` VALUES (1,2),(2,3);\nINSERT INTO `lines` VALUES\n(1,'a'),\n(2,'b\n(c)'),\n(3,'');\n-- Dump completed on 2026-11-25  2:00:01\n";
        let mut r = DumpReader::new();
        // Fed in awkward pieces, as a pipe delivers it.
        for chunk in dump.as_bytes().chunks(7) {
            r.feed(chunk);
        }
        assert!(r.completed());
        assert_eq!(r.server_version, "10.11.19-MariaDB");
        let t: BTreeMap<String, u64> = r.tables().into_iter().map(|t| (t.table, t.rows)).collect();
        assert_eq!(t["products"], 4);
        assert_eq!(t["orders"], 2);
        assert_eq!(t["empty"], 0);
        assert_eq!(t["lines"], 3, "MariaDB's one row per line");
        let mut odd = DumpReader::new();
        odd.feed(b"CREATE TABLE `we``ird name` (\n  `id` int\n);\nINSERT INTO `we``ird name` VALUES (1),(2);\n");
        assert_eq!(odd.rows("we`ird name"), Some(2));
        let mut cut = DumpReader::new();
        cut.feed(&dump.as_bytes()[..dump.len() - 40]);
        assert!(!cut.completed());
    }

    /// A name as mariadb-dump writes it in code (backquoted, a backquote doubled) and
    /// in a comment (each line after the first prefixed with `-- `).
    fn quoted(name: &str) -> (String, String) {
        let code = format!("`{}`", name.replace('`', "``"));
        (code.clone(), code.replace('\n', "\n-- "))
    }

    /// A dump of `names`' tables, `rows[i]` rows each, in mariadb-dump's layout, with a
    /// view, a trigger and a routine whose bodies insert into the first table.
    fn dump_of(names: &[String], rows: &[u64]) -> String {
        let mut d = String::from("/*M!999999\\- enable the sandbox mode */\n-- MariaDB dump 10.19\n--\n-- Server version\t11.8.3-MariaDB\n\n/*!40101 SET NAMES utf8mb4 */;\n");
        for (name, n) in names.iter().zip(rows) {
            let (code, comment) = quoted(name);
            d.push_str(&format!("\n--\n-- Table structure for table {comment}\n--\n\nDROP TABLE IF EXISTS {code};\n/*!40101 SET @saved_cs_client = @@character_set_client */;\nCREATE TABLE {code} (\n  `id` int(11) NOT NULL,\n  `note` text DEFAULT NULL COMMENT 'a ''quoted'' -- note; with (parens) and */',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n"));
            d.push_str(&format!("\n--\n-- Dumping data for table {comment}\n--\n\nLOCK TABLES {code} WRITE;\n/*!40000 ALTER TABLE {code} DISABLE KEYS */;\n"));
            if *n > 0 {
                d.push_str(&format!("INSERT INTO {code} VALUES "));
                let values: Vec<String> = (0..*n)
                    .map(|i| format!("({i},'it''s (x); -- \\' \n*/ `{i}`')"))
                    .collect();
                d.push_str(&values.join(",\n"));
                d.push_str(";\n");
            }
            d.push_str(&format!(
                "/*!40000 ALTER TABLE {code} ENABLE KEYS */;\nUNLOCK TABLES;\n"
            ));
        }
        let first = quoted(&names[0]).0;
        d.push_str(&format!("\n/*!50001 DROP VIEW IF EXISTS `v`*/;\n/*!50001 CREATE TABLE `v` (\n  `id` tinyint NOT NULL\n) ENGINE=MyISAM */;\nDELIMITER ;;\n/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`localhost`*/ /*!50003 TRIGGER `t` AFTER INSERT ON {first} FOR EACH ROW BEGIN\nINSERT INTO {first} VALUES (1, 'x');\nEND */;;\nDELIMITER ;\nDELIMITER ;;\nCREATE DEFINER=`root`@`localhost` PROCEDURE `p`()\nBEGIN\nINSERT INTO {first} VALUES (2,'y'),(3,'z');\nEND ;;\nDELIMITER ;\n-- Dump completed on 2026-12-05  2:00:01\n"));
        d
    }

    fn read_in_pieces(dump: &[u8], piece: usize) -> DumpReader {
        let mut r = DumpReader::new();
        for chunk in dump.chunks(piece) {
            r.feed(chunk);
        }
        r
    }

    #[test]
    fn names_of_any_form_are_read_as_the_server_reads_them() {
        let names: Vec<String> = [
            "nl\nx",
            "back`quote",
            "``",
            "semi;colon -- not a comment",
            "star */ slash",
            "it's \"quoted\"",
            "back\\slash",
            "tab\there",
            "Größe 尺码",
            "INSERT INTO `x` VALUES (1)",
            &"x".repeat(64),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rows: Vec<u64> = (0..names.len() as u64).map(|i| i % 4).collect();
        let dump = dump_of(&names, &rows);
        for piece in [1, 2, 3, 7, 64, dump.len()] {
            let r = read_in_pieces(dump.as_bytes(), piece);
            assert!(r.completed());
            assert_eq!(r.server_version, "11.8.3-MariaDB");
            let got: BTreeMap<String, u64> =
                r.tables().into_iter().map(|t| (t.table, t.rows)).collect();
            let want: BTreeMap<String, u64> = names.iter().cloned().zip(rows.clone()).collect();
            assert_eq!(got, want, "fed {piece} bytes at a time");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        /// Names drawn from everything a quoted identifier may hold.
        #[test]
        fn random_names_are_counted(
            names in proptest::collection::btree_set("[a-z`'\"\\\\;\n\t*/#() -é尺\u{1F45F}]{1,64}", 1..6),
            piece in 1usize..300,
        ) {
            let names: Vec<String> = names.into_iter().collect();
            let rows: Vec<u64> = (0..names.len() as u64).map(|i| (i * 7) % 5).collect();
            let dump = dump_of(&names, &rows);
            let r = read_in_pieces(dump.as_bytes(), piece);
            let got: BTreeMap<String, u64> = r.tables().into_iter().map(|t| (t.table, t.rows)).collect();
            let want: BTreeMap<String, u64> = names.iter().cloned().zip(rows).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
