//! Kernel files kept open and re-read from offset 0.
//!
//! Opening a /proc file costs a path walk and an allocation in the kernel on every
//! scrape; a kept descriptor read with `pread(fd, …, 0)` makes the kernel render the
//! file afresh without either. The buffer is reused too, so a steady-state scrape
//! allocates nothing here.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files larger than this are cut: /proc files this exporter reads are far smaller, and
/// a bound keeps a misbehaving file (or a fixture pointing at something huge) from
/// growing memory without limit.
const MAX_FILE_SIZE: usize = 16 << 20;

/// One kernel file, its open descriptor and its last contents.
#[derive(Debug)]
pub struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    len: usize,
}

impl ProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile {
            path: path.into(),
            file: None,
            buf: Vec::new(),
            len: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kept descriptor, once the file has been read.
    pub fn raw_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.file.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Reads the whole file from its start. A stale descriptor (the file was replaced,
    /// as happens with fixtures and some sysfs nodes) is reopened once.
    pub fn read(&mut self) -> io::Result<&[u8]> {
        if self.read_once().is_err() {
            self.file = None;
            self.read_once()?;
        }
        Ok(&self.buf[..self.len])
    }

    fn read_once(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path)?);
        }
        let Some(file) = self.file.as_ref() else {
            return Err(io::Error::other("file not open"));
        };
        // The buffer stays at its full (zeroed once) length between reads; `len` marks
        // the valid part, so a steady-state read neither allocates nor clears memory.
        self.buf.resize(self.buf.capacity().max(4096), 0);
        let mut len = 0;
        loop {
            if len == self.buf.len() {
                if len >= MAX_FILE_SIZE {
                    break;
                }
                self.buf.resize(len * 2, 0);
            }
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.len = 0;
                    return Err(e);
                }
            }
        }
        self.len = len;
        Ok(())
    }
}

/// A [`ProcFile`] shared by concurrent scrapes: the first takes the kept descriptor,
/// a concurrent one opens its own for that read rather than wait behind it.
#[derive(Debug)]
pub struct SharedProcFile {
    path: PathBuf,
    inner: Mutex<ProcFile>,
}

impl SharedProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        SharedProcFile {
            inner: Mutex::new(ProcFile::new(path.clone())),
            path,
        }
    }

    /// Runs `f` on the file's current contents.
    pub fn with<R>(&self, f: impl FnOnce(&Path, io::Result<&[u8]>) -> R) -> R {
        match self.inner.try_lock() {
            Ok(mut file) => f(&self.path, file.read()),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let mut file = p.into_inner();
                file.file = None;
                f(&self.path, file.read())
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                let mut own = ProcFile::new(self.path.clone());
                f(&self.path, own.read())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rereads_changed_contents_through_the_kept_descriptor() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "first line\n").unwrap();
        let mut f = ProcFile::new(&p);
        assert_eq!(f.read().unwrap(), b"first line\n");
        std::fs::write(&p, "second, longer contents\n").unwrap();
        assert_eq!(f.read().unwrap(), b"second, longer contents\n");
    }

    #[test]
    fn reads_files_larger_than_the_first_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        let body = "x".repeat(100_000);
        std::fs::write(&p, &body).unwrap();
        assert_eq!(ProcFile::new(&p).read().unwrap().len(), 100_000);
    }

    #[test]
    fn missing_file_is_an_error_naming_nothing_else() {
        let mut f = ProcFile::new("/nonexistent/shoehub/file");
        assert!(f.read().is_err());
    }
}
