//! One database's dump: `mariadb-dump` (or `mysqldump`) under the job supervisor, its
//! output compressed and hashed as it streams, and counted as it passes so the manifest
//! knows every table's rows.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::client::Defaults;
use super::{finish_artifact, io_err, Backup, BackupError, HashWriter, Progress};
use crate::jobs::supervise::{self, Limits};
use crate::state::backup::{Artifact, TableRows};

/// Rows per table in a mysqldump stream, counted from its INSERT statements as they
/// pass (extended inserts: one statement holds many rows), and its completion marker.
#[derive(Default)]
pub struct DumpReader {
    tables: BTreeMap<String, u64>,
    line_start: Vec<u8>,
    at_line_start: bool,
    mode: Mode,
    tail: Vec<u8>,
    pub server_version: String,
}

#[derive(Default, PartialEq)]
enum Mode {
    #[default]
    Scan,
    Skip,
    Values {
        table: String,
        depth: u32,
        in_str: bool,
        esc: bool,
    },
}

impl DumpReader {
    pub fn new() -> DumpReader {
        DumpReader {
            at_line_start: true,
            ..DumpReader::default()
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            match &mut self.mode {
                // Inside a row's values, which is most of a dump: jump from one byte
                // that matters to the next.
                Mode::Values {
                    table,
                    depth,
                    in_str,
                    esc,
                } => {
                    if *esc {
                        *esc = false;
                        i += 1;
                    } else if *in_str {
                        match memchr::memchr2(b'\'', b'\\', &data[i..]) {
                            None => i = data.len(),
                            Some(k) => {
                                if data[i + k] == b'\\' {
                                    *esc = true;
                                } else {
                                    *in_str = false;
                                }
                                i += k + 1;
                            }
                        }
                    } else {
                        let rest = &data[i..];
                        let Some(k) = rest
                            .iter()
                            .position(|b| matches!(b, b'\'' | b'(' | b')' | b';'))
                        else {
                            i = data.len();
                            continue;
                        };
                        i += k + 1;
                        match rest[k] {
                            b'\'' => *in_str = true,
                            b'(' => {
                                if *depth == 0 {
                                    match self.tables.get_mut(table.as_str()) {
                                        Some(n) => *n += 1,
                                        None => {
                                            self.tables.insert(table.clone(), 1);
                                        }
                                    }
                                }
                                *depth += 1;
                            }
                            b')' => *depth = depth.saturating_sub(1),
                            _ if *depth == 0 => self.mode = Mode::Skip,
                            _ => {}
                        }
                    }
                }
                // The rest of a line that is not counted.
                Mode::Skip => match memchr::memchr(b'\n', &data[i..]) {
                    None => i = data.len(),
                    Some(k) => {
                        i += k;
                        self.byte(b'\n');
                        i += 1;
                    }
                },
                Mode::Scan => {
                    self.byte(data[i]);
                    i += 1;
                }
            }
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

    fn byte(&mut self, b: u8) {
        if let Mode::Values {
            table,
            depth,
            in_str,
            esc,
        } = &mut self.mode
        {
            if *in_str {
                if *esc {
                    *esc = false;
                } else if b == b'\\' {
                    *esc = true;
                } else if b == b'\'' {
                    *in_str = false;
                }
            } else {
                match b {
                    b'\'' => *in_str = true,
                    b'(' => {
                        if *depth == 0 {
                            *self.tables.entry(table.clone()).or_insert(0) += 1;
                        }
                        *depth += 1;
                    }
                    b')' => *depth = depth.saturating_sub(1),
                    b';' if *depth == 0 => {
                        self.mode = Mode::Skip;
                    }
                    _ => {}
                }
            }
            return;
        }
        if b == b'\n' {
            if self.mode == Mode::Scan {
                // May start counting: MariaDB puts the rows on the lines after VALUES.
                self.line(true);
            } else {
                self.mode = Mode::Scan;
            }
            self.line_start.clear();
            self.at_line_start = true;
            return;
        }
        if self.mode == Mode::Skip {
            return;
        }
        self.line_start.push(b);
        if self.line_start.ends_with(b" VALUES ") || self.line_start.len() >= 512 {
            self.line(false);
        }
    }

    /// A line's start is known: an INSERT begins counting, a CREATE TABLE registers the
    /// table (so an empty one counts 0), the header gives the server version.
    fn line(&mut self, complete: bool) {
        let l = std::mem::take(&mut self.line_start);
        let text = String::from_utf8_lossy(&l);
        if let Some(rest) = text.strip_prefix("INSERT INTO `") {
            if let Some((table, after)) = quoted_name(rest) {
                if after.trim_start().starts_with("VALUES") {
                    self.mode = Mode::Values {
                        table,
                        depth: 0,
                        in_str: false,
                        esc: false,
                    };
                    return;
                }
            }
        } else if let Some(rest) = text.strip_prefix("CREATE TABLE `") {
            if let Some((table, _)) = quoted_name(rest) {
                self.tables.entry(table).or_insert(0);
            }
        } else if let Some(v) = text.strip_prefix("-- Server version") {
            self.server_version = v.trim().to_owned();
        }
        self.mode = if complete { Mode::Scan } else { Mode::Skip };
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

/// The rest of a backquoted name (after its opening backquote), a doubled backquote
/// standing for one: the name, and what follows its closing backquote.
fn quoted_name(rest: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = rest.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if matches!(chars.peek(), Some((_, '`'))) {
                chars.next();
                name.push('`');
            } else {
                return Some((name, &rest[i + 1..]));
            }
        } else {
            name.push(c);
        }
    }
    None
}

impl Backup<'_> {
    /// Dumps `db` into `path` until `deadline`: the artifact and what the dump held.
    pub(super) fn dump(
        &self,
        tool: &str,
        defaults: &Defaults,
        db: &str,
        path: &Path,
        deadline: Instant,
    ) -> Result<(Artifact, DumpReader), BackupError> {
        let (mut cmd, _options) = defaults.command(tool)?;
        cmd.args([
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--quick",
            "--default-character-set=utf8mb4",
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
        if !reader.completed() {
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
}
