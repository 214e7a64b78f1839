//! How jobs create files. Jobs run as root (backup, update), in directories the
//! unprivileged exporter reads, so nothing they write may be steered by another account:
//!
//! - a directory is written into only when it and every directory above it belongs to
//!   root (or to the user running the job) and no one else can write it; a directory
//!   above may be writable by others only when it is sticky, as `/tmp` is (sshd's
//!   StrictModes);
//! - every file is created with its mode, under a random name, with
//!   `O_CREAT | O_EXCL | O_NOFOLLOW`, and renamed into place, so that a planted link is
//!   never followed and no reader ever sees half a file;
//! - lock files are opened without following links.
//!
//! What the exporter reads is created [`SHARED`]: readable by the directory's group,
//! which the packaged directories give to the exporter's group (they are setgid, so
//! what is created in them inherits it). What only root needs is [`PRIVATE`].

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Files the exporter's group reads: job state, backup manifests, the update plan.
pub const SHARED: u32 = 0o640;
/// Files for root alone: dumps, archives, locks.
pub const PRIVATE: u32 = 0o600;
/// Directories the exporter's group may list.
pub const SHARED_DIR: u32 = 0o750;
/// Files anyone may read (a generated bundle).
pub const PUBLIC: u32 = 0o644;

/// The mask every job runs with, whatever the caller's (a unit's `UMask=0077` among
/// them): it keeps the modes above exactly as written, so that what the exporter's
/// group must read stays readable, and gives the tools a job starts (dump, apt,
/// Ansible) nothing for other users.
pub const JOB_UMASK: u32 = 0o027;

/// Sets [`JOB_UMASK`]; every job command calls it first.
pub fn job_umask() {
    crate::sys::set_umask(JOB_UMASK);
}

/// Refuses `dir` (with an error that names it and says what to do) unless it and every
/// directory above it is owned by root or by the user running this, and is writable by
/// no one else; a directory above may be writable by others when it is sticky.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    let me = crate::sys::euid();
    let real = std::fs::canonicalize(dir)?;
    let mut at: Option<&Path> = Some(&real);
    let mut first = true;
    while let Some(d) = at {
        let meta = std::fs::metadata(d)?;
        let refuse = |why: String| {
            let what = if first {
                format!("it {why}")
            } else {
                format!("{}, above {}, {why}", d.display(), dir.display())
            };
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refusing to write into {}: {what}", dir.display()),
            ))
        };
        if meta.uid() != 0 && meta.uid() != me {
            return refuse(format!(
                "belongs to uid {}, not to root{}; chown it to root",
                meta.uid(),
                if me == 0 {
                    String::new()
                } else {
                    format!(" or uid {me}")
                }
            ));
        }
        let mode = meta.mode() & 0o7777;
        let sticky = mode & 0o1000 != 0;
        if mode & 0o022 != 0 && (first || !sticky) {
            return refuse(format!(
                "can be written by {} (mode {mode:04o}); make it writable by its owner alone (chmod go-w)",
                if mode & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                }
            ));
        }
        first = false;
        at = d.parent();
    }
    Ok(())
}

/// Creates `dir` and the directories above it that are missing, each with `mode`.
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
}

/// The directory `path` under `root`, opened only if it is one and lies beneath `root`
/// with no symbolic link on the way (the last component included), and without
/// waiting: a FIFO or device in its place is refused, never opened.
pub fn open_dir_beneath(root: &impl std::os::fd::AsFd, path: &Path) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    let fd = rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(File::from(fd))
}

/// Creates the file `path` with `mode`; fails if anything (a file, a link) is there.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Opens (creating it when missing) the lock file `path`; a link there is refused.
pub fn open_lock(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{} is a symbolic link; a lock file is never followed (remove the link)",
                        path.display()
                    ),
                )
            } else {
                e
            }
        })
}

/// A name beside `target` that no one can guess: a planted file or link of that name
/// is very unlikely, and would only make the creation fail.
fn temporary_name(target: &Path) -> PathBuf {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{:016x}.tmp", h.finish()))
}

/// Replaces `target` with `bytes` atomically: a new file of `mode` under a random name
/// beside it, written and synced, renamed over it, and the directory synced.
pub fn replace(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = temporary_name(target);
    let mut f = create_new(&tmp, mode)?;
    let result = (|| {
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn files_are_created_with_their_mode_and_never_through_a_link() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("state.json");
        replace(&target, b"one", SHARED).unwrap();
        assert_eq!(mode_of(&target), SHARED & !0o022);
        replace(&target, b"two", PRIVATE).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(mode_of(&target), PRIVATE);
        // No temporary file stays behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);

        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = d.path().join("dump.sql");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_new(&link, PRIVATE).is_err());
        let lock = d.path().join("job.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let e = open_lock(&lock).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        // Replacing a link replaces the link, not what it points at.
        replace(&link, b"new", PRIVATE).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }

    #[test]
    fn directories_others_can_write_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        create_dir_all(&state, SHARED_DIR).unwrap();
        check_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o770)).unwrap();
        let e = check_dir(&state).unwrap_err().to_string();
        assert!(e.contains(&state.display().to_string()), "{e}");
        assert!(e.contains("its group") && e.contains("chmod go-w"), "{e}");
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(
            check_dir(&state).is_err(),
            "sticky is no excuse for the directory itself"
        );
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
        // A parent others can write (not sticky) lets them swap the directory.
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(&state).unwrap_err().to_string();
        assert!(e.contains("above") && e.contains("every user"), "{e}");
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(&state).unwrap();
    }

    #[test]
    fn directories_of_another_user_are_refused() {
        assert_eq!(
            crate::sys::euid(),
            0,
            "only root can give a directory away: run the tests as root"
        );
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(d.path(), Some(65534), None).unwrap();
        let e = check_dir(d.path()).unwrap_err().to_string();
        assert!(e.contains("belongs to uid 65534"), "{e}");
    }
}
