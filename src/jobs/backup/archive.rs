//! The configured paths as one compressed tar, walked in a stable order.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{finish_artifact, io_err, Backup, BackupError, HashWriter, Progress};
use crate::state::backup::Artifact;

impl Backup<'_> {
    /// The configured paths as one compressed tar: (artifact, files archived).
    pub(super) fn archive(
        &self,
        path: &Path,
        deadline: Instant,
    ) -> Result<(Artifact, u64), BackupError> {
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
        let mut files = 0u64;
        let mut progress = Progress::new();
        let mut stack: Vec<PathBuf> = self.cfg.paths.clone();
        while let Some(p) = stack.pop() {
            if Instant::now() >= deadline {
                return Err(BackupError::Timeout(self.cfg.timeout.get()));
            }
            let meta = std::fs::symlink_metadata(&p)
                .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
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
            if meta.is_dir() {
                tar.append_dir(&name, &p).map_err(tar_err)?;
                let mut children: Vec<PathBuf> = std::fs::read_dir(&p)
                    .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?
                    .map(|e| e.map(|e| e.path()))
                    .collect::<Result<_, _>>()
                    .map_err(|e| BackupError::Path(format!("{}: {e}", p.display())))?;
                children.sort();
                children.reverse();
                stack.extend(children);
            } else {
                tar.append_path_with_name(&p, &name).map_err(tar_err)?;
                files += 1;
                progress.show(|| format!("archiving: {files} files"));
            }
        }
        let enc = tar
            .into_inner()
            .map_err(io_err(format!("writing {}", path.display())))?;
        Ok((finish_artifact(enc, path, "files.tar.zst".into())?, files))
    }
}
