//! Following one access log through rotations, counting every line once.
//!
//! The follower keeps the file it reads open and reads it to its end on every poll,
//! then looks at the path:
//! - the same file, shorter than what was read, or whose first bytes or the bytes before
//!   where reading stopped are no longer what was read: truncated in place
//!   (copytruncate), perhaps written past the old end since the last poll.
//!   Lines written before the copy that were not read yet are in the copy; when a
//!   sibling file (`access.log.1`, `access.log-20261125`, …) ends where reading stopped
//!   (its bytes before that point match the last bytes read), the rest is read from it.
//!   Then the file is read again from its beginning.
//! - another file (rename-and-create, or deleted and created again): the old file is
//!   read to its end once more (a writer may still have written to it), then the new one
//!   is followed from its beginning.
//! - nothing (renamed or deleted, not created yet): the open file is still read.
//!
//! A line is counted when its newline arrives; a line longer than the bound is counted
//! as a parse error and skipped without being held.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::parse::{self, METHODS};
use super::{LogFormat, WeblogConfig};

/// Upper bounds of the request-duration histogram, in seconds: page and API latencies
/// of a web shop, from a cached asset to a slow checkout.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Read size: large reads make the parse, not the system calls, the cost.
const CHUNK: usize = 64 * 1024;
/// Bytes of the end of what was read, to recognise a rotated copy.
const FINGERPRINT: usize = 64;

/// The counters of one log, read by scrapes.
#[derive(Debug)]
pub struct Stats {
    /// Requests by method and status code: `[method * 1000 + status]`.
    pub requests: Vec<u64>,
    pub response_bytes: u64,
    pub lines: u64,
    pub parse_errors: u64,
    /// Non-cumulative bucket counts, one per bound and one past the last.
    pub duration_buckets: [u64; BUCKETS.len() + 1],
    pub duration_micros: u64,
    pub durations: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            requests: vec![0; METHODS.len() * 1000],
            response_bytes: 0,
            lines: 0,
            parse_errors: 0,
            duration_buckets: [0; BUCKETS.len() + 1],
            duration_micros: 0,
            durations: 0,
        }
    }
}

impl Stats {
    fn count(&mut self, line: &[u8], format: LogFormat) {
        self.lines += 1;
        match parse::parse(line, format) {
            Ok(r) => {
                self.requests[r.method * 1000 + usize::from(r.status)] += 1;
                self.response_bytes = self.response_bytes.saturating_add(r.bytes);
                if let Some(us) = r.micros {
                    let secs = us as f64 / 1e6;
                    let i = BUCKETS
                        .iter()
                        .position(|b| secs <= *b)
                        .unwrap_or(BUCKETS.len());
                    self.duration_buckets[i] += 1;
                    self.duration_micros = self.duration_micros.saturating_add(us);
                    self.durations += 1;
                }
            }
            Err(_) => self.parse_errors += 1,
        }
    }
}

/// What scrapes see of one log: its counters and, while it cannot be read, why.
#[derive(Debug, Default)]
pub struct Shared {
    pub stats: Stats,
    pub error: Option<String>,
}

/// The open file being followed.
struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes of it read so far.
    offset: u64,
    /// Its first bytes (up to [`FINGERPRINT`]), as read: a file truncated and written
    /// again past the old end starts with others.
    head: Vec<u8>,
}

pub struct Follower {
    pub name: String,
    path: PathBuf,
    format: LogFormat,
    max_line: usize,
    open: Option<Open>,
    /// Whether the next file opened is the one found at start (read from its end unless
    /// configured otherwise) or one that appeared later (read from its beginning).
    at_start: bool,
    from_beginning: bool,
    /// The unfinished last line, held until its newline.
    partial: Vec<u8>,
    /// In the middle of a line that is over the bound: drop bytes until a newline.
    skipping: bool,
    /// The last bytes read, to recognise a rotated copy.
    fingerprint: Vec<u8>,
    buf: Vec<u8>,
    pub shared: Arc<Mutex<Shared>>,
}

impl Follower {
    pub fn new(cfg: &WeblogConfig) -> Follower {
        Follower {
            name: cfg.name.clone(),
            path: cfg.path.clone(),
            format: cfg.format,
            max_line: cfg.max_line_bytes.max(64),
            open: None,
            at_start: true,
            from_beginning: cfg.from_beginning,
            partial: Vec::new(),
            skipping: false,
            fingerprint: Vec::with_capacity(FINGERPRINT),
            buf: Vec::new(),
            shared: Arc::new(Mutex::new(Shared::default())),
        }
    }

    pub fn format(&self) -> LogFormat {
        self.format
    }

    /// Reads what is new and follows a rotation. Errors are kept for scrapes (and
    /// logged by the caller when they change); the next poll tries again.
    pub fn poll(&mut self) {
        let result = self.poll_inner();
        let error = result.err().map(|e| crate::error_chain(&e));
        if let Ok(mut s) = self.shared.lock() {
            if s.error != error {
                match &error {
                    Some(e) => {
                        tracing::warn!(log = %self.name, path = %self.path.display(), error = %e, "cannot follow access log")
                    }
                    None if s.error.is_some() => {
                        tracing::info!(log = %self.name, "following access log again")
                    }
                    None => {}
                }
                s.error = error;
            }
        }
    }

    fn poll_inner(&mut self) -> Result<(), FollowError> {
        if self.open.is_none() && !self.open_path()? {
            return Ok(());
        }
        // Before reading on: a file truncated and written again past where reading
        // stopped, since the last poll, is no longer longer-and-the-same.
        if let Some(offset) = self.rewritten() {
            self.truncated(offset)?;
        }
        self.read_to_end()?;
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                let same = self
                    .open
                    .as_ref()
                    .is_some_and(|o| o.dev == meta.dev() && o.ino == meta.ino());
                if same {
                    let offset = self.open.as_ref().map_or(0, |o| o.offset);
                    if meta.len() < offset {
                        self.truncated(offset)?;
                        self.read_to_end()?;
                    }
                } else {
                    // Rotated away or replaced: finish the old file, follow the new one.
                    self.read_to_end()?;
                    self.switch();
                    if self.open_path()? {
                        self.read_to_end()?;
                    }
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // Renamed or deleted and not created again yet: the open file is still
                // read, unless the directory itself is gone.
                match self.path.parent().map(std::fs::metadata) {
                    Some(Err(e)) => Err(FollowError::Io(self.path.clone(), e)),
                    _ => Ok(()),
                }
            }
            Err(e) => Err(FollowError::Io(self.path.clone(), e)),
        }
    }

    /// Opens the path; `false` when there is no file yet.
    fn open_path(&mut self) -> Result<bool, FollowError> {
        let path = self.path.clone();
        // Without waiting: a FIFO put in the log's place must not stall the follower
        // (and every other log with it); it is refused below as not a file.
        let file = match crate::regular::open_nonblocking(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(Err(e)) = path.parent().map(std::fs::metadata) {
                    return Err(FollowError::Io(path, e));
                }
                // It will be read from its beginning when it appears.
                self.at_start = false;
                return Ok(false);
            }
            Err(e) => return Err(FollowError::Io(path, e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| FollowError::Io(path.clone(), e))?;
        if !meta.is_file() {
            return Err(FollowError::NotAFile(path));
        }
        let mut offset = 0;
        if self.at_start && !self.from_beginning {
            offset = meta.len();
        }
        self.at_start = false;
        let mut file = file;
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| FollowError::Io(path.clone(), e))?;
        }
        // Read from its end: its first bytes now are what a rewrite would change.
        let mut head = vec![0; FINGERPRINT.min(offset as usize)];
        if file.read_exact_at(&mut head, 0).is_err() {
            head.clear();
        }
        self.open = Some(Open {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            offset,
            head,
        });
        Ok(true)
    }

    /// Where reading stopped in the open file, if the file no longer holds what was read
    /// there: shorter, or other bytes at its start or just before that point.
    fn rewritten(&self) -> Option<u64> {
        let open = self.open.as_ref()?;
        let same = |at: u64, want: &[u8]| {
            let mut got = vec![0; want.len()];
            open.file.read_exact_at(&mut got, at).is_ok() && got == want
        };
        let before = self.fingerprint.len() as u64;
        let unchanged = same(0, &open.head)
            && (before > open.offset || same(open.offset - before, &self.fingerprint));
        (!unchanged).then_some(open.offset)
    }

    /// Leaves the current file: an unfinished last line in it is dropped (a writer
    /// writes whole lines; half of one is not a request).
    fn switch(&mut self) {
        self.open = None;
        self.partial.clear();
        self.skipping = false;
        self.fingerprint.clear();
    }

    /// The followed file was truncated after reading `offset` bytes of it.
    fn truncated(&mut self, offset: u64) -> Result<(), FollowError> {
        if let Some(mut copy) = self.rotated_copy(offset) {
            tracing::debug!(log = %self.name, "reading the rest of the rotated copy");
            let mut chunk = Vec::new();
            loop {
                chunk.clear();
                let n = (&mut copy)
                    .take(CHUNK as u64)
                    .read_to_end(&mut chunk)
                    .map_err(|e| FollowError::Io(self.path.clone(), e))?;
                if n == 0 {
                    break;
                }
                self.consume(&chunk);
            }
        }
        self.partial.clear();
        self.skipping = false;
        self.fingerprint.clear();
        if let Some(o) = self.open.as_mut() {
            o.offset = 0;
            o.head.clear();
            o.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| FollowError::Io(self.path.clone(), e))?;
        }
        Ok(())
    }

    /// A sibling file that holds what was read of the followed one and more: the copy
    /// that copytruncate made. Positioned at `offset`.
    fn rotated_copy(&self, offset: u64) -> Option<File> {
        if self.fingerprint.is_empty() {
            return None;
        }
        let dir = self.path.parent()?;
        let base = self.path.file_name()?.to_str()?;
        let mut candidates: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let rest = name.strip_prefix(base)?;
                let compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4"]
                    .iter()
                    .any(|ext| name.ends_with(ext));
                if rest.is_empty() || compressed {
                    return None;
                }
                let meta = e.metadata().ok()?;
                if !meta.is_file() || meta.len() < offset {
                    return None;
                }
                Some((meta.modified().ok()?, e.path()))
            })
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        let start = offset - self.fingerprint.len() as u64;
        for (_, path) in candidates {
            let Ok(mut f) = crate::regular::open(&path) else {
                continue;
            };
            let mut head = vec![0; self.fingerprint.len()];
            if f.seek(SeekFrom::Start(start)).is_ok()
                && f.read_exact(&mut head).is_ok()
                && head == self.fingerprint
            {
                return Some(f);
            }
        }
        None
    }

    fn read_to_end(&mut self) -> Result<(), FollowError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let result = loop {
            let Some(open) = self.open.as_mut() else {
                break Ok(());
            };
            match open.file.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    // The file's first bytes, as they are read.
                    if open.offset == open.head.len() as u64 && open.head.len() < FINGERPRINT {
                        let take = (FINGERPRINT - open.head.len()).min(n);
                        open.head.extend_from_slice(&buf[..take]);
                    }
                    open.offset += n as u64;
                    self.consume(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(FollowError::Io(self.path.clone(), e)),
            }
        };
        self.buf = buf;
        result
    }

    /// Counts the complete lines in `data` (after what was held from before) and holds
    /// the unfinished rest.
    fn consume(&mut self, data: &[u8]) {
        // The fingerprint is the last bytes read, across chunks.
        if data.len() >= FINGERPRINT {
            self.fingerprint.clear();
            self.fingerprint
                .extend_from_slice(&data[data.len() - FINGERPRINT..]);
        } else {
            self.fingerprint.extend_from_slice(data);
            let excess = self.fingerprint.len().saturating_sub(FINGERPRINT);
            self.fingerprint.drain(..excess);
        }
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        let stats = &mut shared.stats;
        let mut rest = data;
        // Finish the held line first.
        if self.skipping || !self.partial.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    if self.skipping {
                        self.skipping = false;
                    } else if self.partial.len() + i > self.max_line {
                        stats.lines += 1;
                        stats.parse_errors += 1;
                    } else {
                        self.partial.extend_from_slice(&rest[..i]);
                        stats.count(&self.partial, self.format);
                    }
                    self.partial.clear();
                    rest = &rest[i + 1..];
                }
                None => {
                    if !self.skipping {
                        if self.partial.len() + rest.len() > self.max_line {
                            stats.lines += 1;
                            stats.parse_errors += 1;
                            self.partial.clear();
                            self.skipping = true;
                        } else {
                            self.partial.extend_from_slice(rest);
                        }
                    }
                    return;
                }
            }
        }
        for line in memchr::memchr_iter(b'\n', rest).scan(0, |start, end| {
            let line = &rest[*start..end];
            *start = end + 1;
            Some(line)
        }) {
            if line.len() > self.max_line {
                stats.lines += 1;
                stats.parse_errors += 1;
            } else {
                stats.count(line, self.format);
            }
        }
        let tail = match memchr::memrchr(b'\n', rest) {
            Some(i) => &rest[i + 1..],
            None => rest,
        };
        if tail.len() > self.max_line {
            stats.lines += 1;
            stats.parse_errors += 1;
            self.skipping = true;
        } else {
            self.partial.extend_from_slice(tail);
        }
    }
}

/// Why a log cannot be followed now.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("{0}")]
    Io(PathBuf, #[source] io::Error),
    #[error("{0} is not a regular file")]
    NotAFile(PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines(from: usize, n: usize) -> String {
        (from..from + n)
            .map(|i| {
                format!(
                    "203.0.113.{} - - [04/Dec/2026:10:00:{:02} +0000] \"GET /shoes/{i} HTTP/1.1\" 200 {i} \"-\" \"t\"\n",
                    i % 250,
                    i % 60
                )
            })
            .collect()
    }

    fn counted(f: &Follower) -> u64 {
        f.shared.lock().unwrap().stats.lines
    }

    /// Truncated and written again past its old size between two polls: every line of
    /// the new content is counted, not only those past the old offset.
    #[test]
    fn a_file_truncated_and_refilled_past_its_old_size_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, lines(0, 1000)).unwrap();
        let mut f = Follower::new(&WeblogConfig {
            name: "shop".to_owned(),
            path: path.clone(),
            format: LogFormat::Combined,
            from_beginning: true,
            max_line_bytes: 65536,
        });
        f.poll();
        assert_eq!(counted(&f), 1000);
        // Same inode: truncated in place, then 2,000 other lines, more bytes than before.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        w.write_all(lines(5000, 2000).as_bytes()).unwrap();
        drop(w);
        f.poll();
        assert_eq!(counted(&f), 3000);
        // Appending goes on as before.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(lines(9000, 10).as_bytes())
            .unwrap();
        f.poll();
        assert_eq!(counted(&f), 3010);
        // Followed from its end at start: rewritten, it is recognised as well.
        let mut g = Follower::new(&WeblogConfig {
            name: "late".to_owned(),
            path: path.clone(),
            format: LogFormat::Combined,
            from_beginning: false,
            max_line_bytes: 65536,
        });
        g.poll();
        assert_eq!(counted(&g), 0);
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap()
            .write_all(lines(20_000, 2500).as_bytes())
            .unwrap();
        g.poll();
        assert_eq!(counted(&g), 2500);
    }
}
