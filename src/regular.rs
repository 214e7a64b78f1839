//! Reading files from outside the process without letting them stall or flood it.
//!
//! Every file the exporter reads from a directory it watches, or from a path an
//! operator names (textfiles, job states, backup manifests, BackupPC rows, access logs,
//! password files, the config), is opened here: without blocking (`O_NONBLOCK`, so a
//! FIFO opens at once instead of waiting for a writer), then checked with `fstat` to be
//! a regular file; a FIFO, socket, device or directory is an error that names what it
//! is. A read is bounded: a file larger than its limit is an error, not an allocation
//! of whatever size it claims (`/dev/zero` behind a link is a device, refused before any
//! read).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for reading without waiting, whatever it is: a FIFO with no writer
/// opens at once (`O_NONBLOCK`, which changes nothing for a regular file). The caller
/// checks the type; [`open`] does.
pub fn open_nonblocking(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
}

/// Opens `path` for reading if it is a regular file (a symbolic link is followed to
/// what it names). Never waits: a FIFO with no writer is refused like any other
/// non-regular file.
pub fn open(path: &Path) -> io::Result<File> {
    only_regular(open_nonblocking(path)?)
}

/// A directory to open files in with [`open_at`], held only for finding them
/// (`O_PATH`): a walk of its path once for many files in it.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    Ok(rustix::fs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// As [`open`], for `name` relative to `dir`.
pub fn open_at(dir: BorrowedFd<'_>, name: &str) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    only_regular(File::from(fd))
}

/// `file` if it is a regular file, else an error that says what it is.
fn only_regular(file: File) -> io::Result<File> {
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a regular file: only regular files are read"),
    ))
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open(path)?;
    read_bounded(&file, limit)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Everything `file` holds, or an error when it holds more than `limit` bytes (it may
/// grow while being read: the bound is on what is read, not on what `fstat` said).
pub fn read_bounded(file: &File, limit: u64) -> io::Result<Vec<u8>> {
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    if hint > limit {
        return Err(too_large(limit));
    }
    let mut out = Vec::with_capacity(hint as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than the limit of {}", human_bytes(limit)),
    )
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n % size == 0 {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("x.prom");
        crate::sys::mkfifo(&fifo, 0o644).unwrap();
        let e = read(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("a FIFO, not a regular file"), "{e}");
    }

    #[test]
    fn devices_and_directories_are_refused() {
        let e = read(Path::new("/dev/zero"), 100).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("zero.prom");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(read(&link, 100).is_err());
        let e = read(dir.path(), 100).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
    }

    #[test]
    fn sizes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        std::fs::write(&f, vec![b'x'; 1025]).unwrap();
        let e = read(&f, 1024).unwrap_err();
        assert_eq!(e.to_string(), "larger than the limit of 1 KiB");
        assert_eq!(read(&f, 1025).unwrap().len(), 1025);
        assert_eq!(human_bytes(3 << 20), "3 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }
}
