//! Safe wrappers over the system calls the exporter and its jobs make: the one module
//! where `unsafe` is allowed (`unsafe_code` is denied everywhere else).
//!
//! Each wrapper owns its out-parameters and checks the return value, so callers deal in
//! `io::Result` and plain Rust types only.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use libc::{SIGCONT, SIGHUP, SIGINT, SIGKILL, SIGSTOP, SIGTERM};

/// Seconds since the Unix epoch, as the job and backup formats record time (0 before
/// the epoch, which only a broken clock gives).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

/// The filesystem type (statfs(2)'s `f_type` magic) of the filesystem holding `path`.
pub fn fs_type(path: &Path) -> io::Result<i64> {
    let c = c_path(path)?;
    // SAFETY: `c` is NUL-terminated and `buf` a properly sized out-parameter.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut buf) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(buf.f_type as i64)
    }
}

/// What statvfs(2) says of one filesystem, in bytes and file nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsUsage {
    pub size: u64,
    pub free: u64,
    pub avail: u64,
    pub files: u64,
    pub files_free: u64,
    /// Mounted read-only (`ST_RDONLY`).
    pub readonly: bool,
}

/// statvfs(2) of `path`. It can block for as long as the filesystem's server takes.
pub fn statvfs(path: &CStr) -> io::Result<FsUsage> {
    // SAFETY: `path` is NUL-terminated and `buf` a properly sized out-parameter.
    let buf = unsafe {
        let mut buf: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut buf) != 0 {
            return Err(io::Error::last_os_error());
        }
        buf
    };
    let frsize = buf.f_frsize as u64;
    Ok(FsUsage {
        size: (buf.f_blocks as u64).saturating_mul(frsize),
        free: (buf.f_bfree as u64).saturating_mul(frsize),
        avail: (buf.f_bavail as u64).saturating_mul(frsize),
        files: buf.f_files as u64,
        files_free: buf.f_ffree as u64,
        readonly: buf.f_flag & libc::ST_RDONLY != 0,
    })
}

/// Whether `fd` has an exceptional condition pending (POLLPRI, or an error), asked
/// without waiting: how procfs signals a change of the mount table.
pub fn poll_priority(fd: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLPRI,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n != 0 && (n < 0 || pfd.revents & (libc::POLLPRI | libc::POLLERR | libc::POLLNVAL) != 0)
}

/// uname(2) as (sysname, release, version, machine, nodename, domainname).
pub fn uname() -> Option<[String; 6]> {
    // SAFETY: `u` is a properly sized out-parameter.
    let u = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        u
    };
    let s = |f: &[libc::c_char]| {
        // The kernel NUL-terminates each field; a field without one is read whole.
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some([
        s(&u.sysname),
        s(&u.release),
        s(&u.version),
        s(&u.machine),
        s(&u.nodename),
        s(&u.domainname),
    ])
}

/// Takes an exclusive flock(2) on `file` without waiting: `Ok(false)` when another
/// open file description holds it.
pub fn try_lock_exclusive(file: &impl AsRawFd) -> io::Result<bool> {
    // SAFETY: flock on a descriptor the caller keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Sends `signal` to the process `pid`. A process that is gone is not an error.
pub fn kill(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn kill_group(pgid: u32, signal: i32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: kill(2) has no memory-safety preconditions; a negative pid names a group.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// The signal (SIGTERM or SIGINT) that asked a job runner to stop, or 0.
static STOP: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_stop(sig: libc::c_int) {
    STOP.store(sig, Ordering::SeqCst);
}

/// Catches SIGTERM and SIGINT instead of dying of them, so that a job runner can stop
/// its command and record the run; [`stop_requested`] tells whether one came.
pub fn catch_stop_signals() {
    let handler = on_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler is async-signal-safe: it only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
}

/// The signal that asked this process to stop since [`catch_stop_signals`], or 0.
pub fn stop_requested() -> i32 {
    STOP.load(Ordering::SeqCst)
}

/// A pipe for a secret that one child process reads: both ends are created
/// close-on-exec in one step (`pipe2(O_CLOEXEC)`), so that no process spawned meanwhile,
/// by any thread, inherits either of them. [`inherit_in_child`] hands the reading end
/// to the one command that is to read it.
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned here alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Lets `cmd`'s process, and it alone, keep `fd` open across its exec: the flag is
/// cleared in the child between fork and exec, so the descriptor stays close-on-exec
/// for every other process this one spawns. `fd` must stay open until `cmd` is spawned.
pub fn inherit_in_child(cmd: &mut std::process::Command, fd: BorrowedFd<'_>) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the child after fork, where only async-signal-safe
    // calls are allowed: it makes one fcntl(2) call and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(raw, libc::F_SETFD, 0) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// The size of a memory page in bytes (4096 where the kernel does not say).
pub fn page_size() -> u64 {
    // SAFETY: sysconf(3) has no preconditions; it returns -1 for an unknown name.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(4096)
}

/// The soft limit of `resource` (`libc::RLIMIT_*`) for this process: `None` when it is
/// unlimited, as /proc/self/limits writes `unlimited`.
pub fn soft_limit(resource: libc::__rlimit_resource_t) -> io::Result<Option<u64>> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one struct rlimit, which `r` is.
    if unsafe { libc::getrlimit(resource, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur))
}

/// A NETLINK_ROUTE socket (rtnetlink(7)) whose reads give up after `timeout`. Fails
/// where the address family is not allowed (a unit's `RestrictAddressFamilies=`).
pub fn netlink_route_socket(timeout: std::time::Duration) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // A zero timeout would mean none at all.
    let timeout = timeout.max(std::time::Duration::from_millis(1));
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: SO_RCVTIMEO takes a struct timeval, which `tv` is, with its size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Sends `msg` whole to the kernel (netlink port 0) on the netlink socket `fd`.
pub fn send_to_kernel(fd: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    // SAFETY: a zeroed sockaddr_nl is valid; port 0 and no groups address the kernel.
    let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `msg` and `to` are valid for the lengths given.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&to as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != msg.len() => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the kernel took part of the message",
        )),
        _ => Ok(()),
    }
}

/// One datagram from the socket `fd` into `buf`: its length. A datagram longer than
/// `buf` is an error, not cut short.
pub fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length. With MSG_TRUNC the call returns
    // the datagram's whole length and still writes at most `buf.len()` bytes.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_TRUNC,
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    if n > buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a datagram of {n} bytes, longer than the {} expected",
                buf.len()
            ),
        ));
    }
    Ok(n)
}

/// Clock ticks per second, the unit of /proc's CPU times (100 where unknown).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf(3) has no preconditions; it returns -1 for an unknown name.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(n).ok().filter(|n| *n > 0).unwrap_or(100)
}

/// The kernel clock's discipline, as adjtimex(2) reads it (nothing is changed).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timex {
    /// adjtimex's return: the clock state (`TIME_ERROR`, 5, when unsynchronised).
    pub state: i32,
    pub offset: i64,
    pub freq: i64,
    pub maxerror: i64,
    pub esterror: i64,
    pub status: i32,
    pub constant: i64,
    pub tick: i64,
    pub ppsfreq: i64,
    pub jitter: i64,
    pub shift: i32,
    pub stabil: i64,
    pub jitcnt: i64,
    pub calcnt: i64,
    pub errcnt: i64,
    pub stbcnt: i64,
    pub tai: i32,
}

/// Lets a write to a closed pipe end the process as it ends a C program (SIGPIPE's
/// default action: exit status 141 in a shell) instead of failing the write, which
/// `println!` turns into a panic and `panic = "abort"` into SIGABRT. Rust's runtime
/// ignores SIGPIPE at start; only the commands whose output is for a reader such as
/// `| head` set it back (see [`crate::commands::run`]), never those that write to a
/// child's pipe or serve sockets.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default has no preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Reads the clock's discipline with clock_adjtime(2) on `CLOCK_REALTIME`, `modes` 0: a
/// read, never a change. This is the system call glibc's own adjtimex(3) makes, named
/// here so that it is the one a unit's `SystemCallFilter=` must allow, whatever the libc.
pub fn adjtimex() -> io::Result<Timex> {
    // SAFETY: timex is plain data; all-zero is a valid value (modes 0: read only).
    let mut t: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is a valid, writable timex for the call's duration.
    let state = unsafe { libc::clock_adjtime(libc::CLOCK_REALTIME, &mut t) };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Timex {
        state,
        offset: t.offset as i64,
        freq: t.freq as i64,
        maxerror: t.maxerror as i64,
        esterror: t.esterror as i64,
        status: t.status,
        constant: t.constant as i64,
        tick: t.tick as i64,
        ppsfreq: t.ppsfreq as i64,
        jitter: t.jitter as i64,
        shift: t.shift,
        stabil: t.stabil as i64,
        jitcnt: t.jitcnt as i64,
        calcnt: t.calcnt as i64,
        errcnt: t.errcnt as i64,
        stbcnt: t.stbcnt as i64,
        tai: t.tai,
    })
}

/// Sets the process's file mode creation mask; returns the one before.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask(2) cannot fail and has no preconditions.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// Creates a FIFO at `path` with `mode`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: `c` is NUL-terminated.
    if unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// glibc gives every thread that allocates its own malloc arena; the exporter's few
/// allocations do not need them, and each costs resident memory. Call before any
/// thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uname_says_linux() {
        let u = uname().unwrap();
        assert_eq!(u[0], "Linux");
        assert!(!u[1].is_empty());
    }

    #[test]
    fn statvfs_of_root_has_a_size() {
        let u = statvfs(c"/").unwrap();
        assert!(u.size > 0 && u.avail <= u.size);
        assert!(statvfs(c"/no/such/path").is_err());
    }

    #[test]
    fn lock_is_exclusive_between_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        let a = std::fs::File::create(&p).unwrap();
        let b = std::fs::File::open(&p).unwrap();
        assert!(try_lock_exclusive(&a).unwrap());
        assert!(!try_lock_exclusive(&b).unwrap());
        drop(a);
        assert!(try_lock_exclusive(&b).unwrap());
    }

    #[test]
    fn the_secret_pipe_reaches_its_command_alone() {
        use std::io::Write;
        use std::os::fd::AsFd;
        use std::process::Command;
        let (r, w) = cloexec_pipe().unwrap();
        std::fs::File::from(w).write_all(b"secret").unwrap();
        let n = r.as_raw_fd();
        // Another command spawned meanwhile does not inherit it...
        let other = Command::new("/bin/sh")
            .args(["-c", &format!("test -e /dev/fd/{n}")])
            .status()
            .unwrap();
        assert!(!other.success(), "fd {n} leaked into another child");
        // ...the one it is handed to reads it.
        let mut cmd = Command::new("/bin/cat");
        cmd.arg(format!("/dev/fd/{n}"));
        inherit_in_child(&mut cmd, r.as_fd());
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, b"secret");
    }
}
