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

/// How the kernel renders a file, which decides whether a short read is its end.
///
/// procfs files are seq_files. One rendered as a single record (`/proc/stat`,
/// `/proc/meminfo`, `/proc/loadavg`) is copied whole or up to the reader's buffer, so a
/// read shorter than asked is the end. One rendered record by record (`/proc/diskstats`,
/// `/proc/net/dev`) stops a read early only when the next record does not fit in the
/// kernel's buffer of at least a page; a read that left room for the longest record is
/// therefore the end too. Knowing this saves the read that would only return 0: one
/// system call per file per scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Nothing known (regular files, sysfs, fixtures): read until a read returns 0.
    Unknown,
    /// One record: a short read is the end.
    Whole,
    /// Records of at most this many bytes each.
    Records(usize),
}

/// The smallest buffer the kernel renders seq_file records into.
const SEQ_BUF: usize = 4096;

impl Render {
    /// `self` for a file on a real procfs; anything else (a fixture tree) is read to the
    /// end.
    pub fn if_procfs(self, on_procfs: bool) -> Render {
        if on_procfs {
            self
        } else {
            Render::Unknown
        }
    }

    /// Whether a read that returned `n` of the `asked` bytes leaves nothing more to read.
    fn ends_after(self, n: usize, asked: usize) -> bool {
        match self {
            Render::Unknown => false,
            Render::Whole => n > 0 && n < asked,
            Render::Records(longest) => n > 0 && n < asked && n + longest <= SEQ_BUF,
        }
    }
}

/// One kernel file, its open descriptor and its last contents.
#[derive(Debug)]
pub struct ProcFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    len: usize,
    render: Render,
}

impl ProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ProcFile {
            path: path.into(),
            file: None,
            buf: Vec::new(),
            len: 0,
            render: Render::Unknown,
        }
    }

    /// Says how the kernel renders this file (see [`Render`]); only for real procfs.
    pub fn rendered(mut self, render: Render) -> Self {
        self.render = render;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The kept descriptor, once the file has been read.
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.file.as_ref().map(AsFd::as_fd)
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
            let asked = self.buf.len() - len;
            match file.read_at(&mut self.buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if self.render.ends_after(n, asked) {
                        break;
                    }
                }
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
    render: Render,
    inner: Mutex<ProcFile>,
}

impl SharedProcFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        SharedProcFile {
            inner: Mutex::new(ProcFile::new(path.clone())),
            render: Render::Unknown,
            path,
        }
    }

    /// Says how the kernel renders this file (see [`Render`]); only for real procfs.
    pub fn rendered(mut self, render: Render) -> Self {
        self.render = render;
        match self.inner.get_mut() {
            Ok(f) => f.render = render,
            Err(mut p) => p.get_mut().render = render,
        }
        self
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
                let render = self.render;
                let mut own = ProcFile::new(self.path.clone()).rendered(render);
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
    fn kernel_files_read_whole_whatever_their_rendering() {
        // The short-read rules must never cut a real file: each is read with every
        // rendering it could be given, and compared with a plain read.
        for (path, render) in [
            ("/proc/stat", Render::Whole),
            ("/proc/meminfo", Render::Whole),
            ("/proc/loadavg", Render::Whole),
            ("/proc/diskstats", Render::Records(1024)),
            ("/proc/net/dev", Render::Records(1024)),
        ] {
            let mut f = ProcFile::new(path).rendered(render);
            let ours = f.read().unwrap().to_vec();
            let plain = std::fs::read(path).unwrap();
            // Counters move between the two reads; the line structure does not.
            let shape = |b: &[u8]| {
                b.split(|&c| c == b'\n')
                    .map(|l| {
                        l.split(|&c| c == b' ')
                            .find(|w| !w.is_empty())
                            .map(<[u8]>::to_vec)
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(shape(&ours), shape(&plain), "{path}");
        }
    }

    #[test]
    fn a_short_read_ends_only_where_the_rendering_says_so() {
        assert!(Render::Whole.ends_after(100, 4096));
        assert!(!Render::Whole.ends_after(4096, 4096));
        assert!(!Render::Whole.ends_after(0, 4096));
        // Room left for another record: the end.
        assert!(Render::Records(1024).ends_after(3000, 8192));
        // Not enough room for the longest record: maybe the kernel buffer filled up.
        assert!(!Render::Records(1024).ends_after(3500, 8192));
        assert!(!Render::Unknown.ends_after(1, 4096));
        assert_eq!(Render::Whole.if_procfs(false), Render::Unknown);
    }

    #[test]
    fn missing_file_is_an_error_naming_nothing_else() {
        let mut f = ProcFile::new("/nonexistent/shoehub/file");
        assert!(f.read().is_err());
    }
}
