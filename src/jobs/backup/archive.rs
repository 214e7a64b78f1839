//! The configured paths as one compressed tar, walked in a stable order, as a live host
//! allows: sockets, FIFOs and devices are skipped and listed; a file that vanishes or
//! changes while it is read is a warning (a file that shrank is padded with zeros to the
//! size its header gives, as GNU tar does, so the archive stays whole); a file that
//! cannot be read fails the run, because it is data the backup promised.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{finish_artifact, io_err, Backup, BackupError, HashWriter, Progress};
use crate::state::backup::{Artifact, Skipped};

/// What the archive holds beyond its files.
pub(super) struct Archived {
    pub artifact: Artifact,
    pub files: u64,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
}

fn special_kind(t: &std::fs::FileType) -> Option<&'static str> {
    if t.is_socket() {
        Some("socket")
    } else if t.is_fifo() {
        Some("fifo")
    } else if t.is_char_device() {
        Some("char device")
    } else if t.is_block_device() {
        Some("block device")
    } else {
        None
    }
}

fn vanished(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

impl Backup<'_> {
    /// The configured paths as one compressed tar.
    pub(super) fn archive(&self, path: &Path, deadline: Instant) -> Result<Archived, BackupError> {
        for p in &self.cfg.paths {
            let meta = std::fs::metadata(p)
                .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
            if !meta.is_dir() && !meta.is_file() {
                return Err(BackupError::Path(format!(
                    "{} is neither a directory nor a file",
                    p.display()
                )));
            }
        }
        let file = crate::writes::create_new(path, crate::writes::PRIVATE)
            .map_err(io_err(format!("creating {}", path.display())))?;
        let hw = HashWriter {
            inner: io::BufWriter::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            bytes: 0,
        };
        let enc = zstd::Encoder::new(hw, 3).map_err(io_err("starting compression"))?;
        let mut tar = tar::Builder::new(enc);
        tar.follow_symlinks(false);
        tar.mode(tar::HeaderMode::Complete);
        let mut out = Archived {
            artifact: Artifact {
                file: String::new(),
                size: 0,
                sha256: String::new(),
            },
            files: 0,
            skipped: Vec::new(),
            warnings: Vec::new(),
        };
        let mut progress = Progress::new();
        let mut stack: Vec<PathBuf> = self.cfg.paths.clone();
        while let Some(p) = stack.pop() {
            if Instant::now() >= deadline {
                return Err(BackupError::Timeout(self.cfg.timeout.get()));
            }
            let meta = match std::fs::symlink_metadata(&p) {
                Ok(m) => m,
                Err(e) if vanished(&e) => {
                    out.warnings
                        .push(format!("{}: vanished before it was archived", p.display()));
                    continue;
                }
                Err(e) => return Err(BackupError::Path(format!("{}: {e}", p.display()))),
            };
            let name = p.strip_prefix("/").unwrap_or(&p).to_owned();
            // A write that fails is about the archive, a read that fails about the path.
            let tar_err = |e: io::Error| {
                if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT)
                {
                    BackupError::Io {
                        what: format!("writing {}", path.display()),
                        source: e,
                    }
                } else {
                    BackupError::Path(format!("{}: {e}", p.display()))
                }
            };
            let kind = meta.file_type();
            if let Some(special) = special_kind(&kind) {
                out.skipped.push(Skipped {
                    path: p.clone(),
                    kind: special.to_owned(),
                });
                continue;
            }
            if meta.is_dir() {
                let children = match std::fs::read_dir(&p) {
                    Ok(rd) => rd,
                    Err(e) if vanished(&e) => {
                        out.warnings
                            .push(format!("{}: vanished before it was archived", p.display()));
                        continue;
                    }
                    Err(e) => return Err(BackupError::Path(format!("{}: {e}", p.display()))),
                };
                tar.append_dir(&name, &p).map_err(tar_err)?;
                let mut children: Vec<PathBuf> = children
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
                children.sort();
                children.reverse();
                stack.extend(children);
            } else if meta.is_file() {
                self.append_file(&mut tar, &p, &name, &mut out)
                    .map_err(tar_err)?;
                progress.show(|| format!("archiving: {} files", out.files));
            } else {
                tar.append_path_with_name(&p, &name).map_err(tar_err)?;
            }
        }
        let enc = tar
            .into_inner()
            .map_err(io_err(format!("writing {}", path.display())))?;
        out.artifact = finish_artifact(enc, path, "files.tar.zst".into())?;
        Ok(out)
    }

    /// One regular file: its header from the open file's metadata, then exactly that
    /// many bytes. A file that vanished before it was opened, or that changed while it
    /// was read, is a warning; a file that cannot be opened or read is an error.
    fn append_file<W: io::Write>(
        &self,
        tar: &mut tar::Builder<W>,
        p: &Path,
        name: &Path,
        out: &mut Archived,
    ) -> io::Result<()> {
        // Not through a link swapped in since it was listed, and never blocking.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(p);
        let file: File = match opened {
            Ok(f) => f,
            Err(e) if vanished(&e) => {
                out.warnings
                    .push(format!("{}: vanished before it was archived", p.display()));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let before = file.metadata()?;
        if !before.is_file() {
            // Replaced by something else since it was listed.
            out.warnings
                .push(format!("{}: replaced while it was archived", p.display()));
            return Ok(());
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&before, tar::HeaderMode::Complete);
        let size = before.len();
        let mut shrank = false;
        let reader = Padded {
            inner: (&file).take(size),
            left: size,
            shrank: &mut shrank,
        };
        tar.append_data(&mut header, name, reader)?;
        let after = file.metadata()?;
        let changed = after.len() != size
            || after.mtime() != before.mtime()
            || after.mtime_nsec() != before.mtime_nsec();
        if shrank || changed {
            out.warnings.push(format!(
                "{}: changed while it was archived (the archive holds {size} bytes of it)",
                p.display()
            ));
        }
        out.files += 1;
        Ok(())
    }
}

/// A file's bytes up to the size its header promised, zeros after an early end.
struct Padded<'a, R> {
    inner: R,
    left: u64,
    shrank: &'a mut bool,
}

impl<R: Read> Read for Padded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = if *self.shrank {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            *self.shrank = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_shrank_is_padded_to_its_header_size() {
        let mut shrank = false;
        let mut r = Padded {
            inner: &b"abc"[..],
            left: 8,
            shrank: &mut shrank,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0\0\0\0");
        assert!(shrank);
        let mut grew = false;
        let mut r = Padded {
            inner: (&b"abcdefgh"[..]).take(4),
            left: 4,
            shrank: &mut grew,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        assert!(!grew);
    }
}
