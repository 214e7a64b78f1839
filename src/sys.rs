//! The system calls the exporter and its jobs make, in the types the rest of the crate
//! uses. Almost all go through `rustix` (and signal handlers through `signal-hook`),
//! whose wrappers are safe; four calls have no safe wrapper anywhere and are made here
//! with `unsafe`, each with its SAFETY comment: clock_adjtime(2), mallopt(3),
//! malloc_trim(3), and the one fcntl(2) a child makes between fork and exec.
//! `unsafe_code` is denied everywhere else.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{FlockOperation, Mode, StatVfsMountFlags, CWD};
use rustix::io::Errno;
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::Timeout;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use rustix::process::Pid;
pub use rustix::process::{Resource, Signal};

pub const SIGCONT: Signal = Signal::CONT;
pub const SIGHUP: Signal = Signal::HUP;
pub const SIGINT: Signal = Signal::INT;
pub const SIGKILL: Signal = Signal::KILL;
pub const SIGSTOP: Signal = Signal::STOP;
pub const SIGTERM: Signal = Signal::TERM;

/// Seconds since the Unix epoch, as the job and backup formats record time (0 before
/// the epoch, which only a broken clock gives).
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The filesystem type (statfs(2)'s `f_type` magic) of the filesystem holding `path`.
pub fn fs_type(path: &Path) -> io::Result<i64> {
    Ok(rustix::fs::statfs(path)?.f_type as i64)
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
    let buf = rustix::fs::statvfs(path)?;
    let frsize = buf.f_frsize;
    Ok(FsUsage {
        size: buf.f_blocks.saturating_mul(frsize),
        free: buf.f_bfree.saturating_mul(frsize),
        avail: buf.f_bavail.saturating_mul(frsize),
        files: buf.f_files,
        files_free: buf.f_ffree,
        readonly: buf.f_flag.contains(StatVfsMountFlags::RDONLY),
    })
}

/// Whether `fd` has an exceptional condition pending (POLLPRI, or an error), asked
/// without waiting: how procfs signals a change of the mount table.
pub fn poll_priority(fd: BorrowedFd<'_>) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&fd, PollFlags::PRI)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .intersects(PollFlags::PRI | PollFlags::ERR | PollFlags::NVAL),
        Err(_) => true,
    }
}

/// uname(2) as (sysname, release, version, machine, nodename, domainname).
pub fn uname() -> Option<[String; 6]> {
    let u = rustix::system::uname();
    let s = |f: &CStr| f.to_string_lossy().into_owned();
    Some([
        s(u.sysname()),
        s(u.release()),
        s(u.version()),
        s(u.machine()),
        s(u.nodename()),
        s(u.domainname()),
    ])
}

/// Takes an exclusive flock(2) on `file` without waiting: `Ok(false)` when another
/// open file description holds it.
pub fn try_lock_exclusive(file: &impl AsFd) -> io::Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Sends `signal` to the process `pid`. A process that is gone is not an error.
pub fn kill(pid: u32, signal: Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Sends `signal` to every process of the process group `pgid`.
pub fn kill_group(pgid: u32, signal: Signal) {
    if let Some(pgid) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pgid, signal);
    }
}

/// The signal (SIGTERM or SIGINT) that asked a job runner to stop, or 0.
fn stop_flag() -> &'static Arc<AtomicUsize> {
    static STOP: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    STOP.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// Catches SIGTERM and SIGINT instead of dying of them, so that a job runner can stop
/// its command and record the run; [`stop_requested`] tells whether one came.
pub fn catch_stop_signals() -> io::Result<()> {
    for sig in [SIGTERM, SIGINT] {
        let raw = sig.as_raw();
        signal_hook::flag::register_usize(raw, Arc::clone(stop_flag()), raw as usize)?;
    }
    Ok(())
}

/// The signal that asked this process to stop since [`catch_stop_signals`], or 0.
pub fn stop_requested() -> i32 {
    stop_flag().load(Ordering::SeqCst) as i32
}

/// A pipe for a secret that one child process reads: both ends are created
/// close-on-exec in one step (`pipe2(O_CLOEXEC)`), so that no process spawned meanwhile,
/// by any thread, inherits either of them. [`inherit_in_child`] hands the reading end
/// to the one command that is to read it.
pub fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
}

/// Lets `cmd`'s process, and it alone, keep `fd` open across its exec: the flag is
/// cleared in the child between fork and exec, so the descriptor stays close-on-exec
/// for every other process this one spawns. `fd` must stay open until `cmd` is spawned.
pub fn inherit_in_child(cmd: &mut std::process::Command, fd: BorrowedFd<'_>) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: the closure runs in the child after fork, where only async-signal-safe
    // calls are allowed: it makes one fcntl(2) call and allocates nothing. `raw` is
    // open in the child, as the caller keeps `fd` open until the spawn.
    unsafe {
        cmd.pre_exec(move || {
            let fd = BorrowedFd::borrow_raw(raw);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
}

/// The effective user id.
pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The size of a memory page in bytes.
pub fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// The soft limit of `resource` for this process: `None` when it is unlimited, as
/// /proc/self/limits writes `unlimited`.
pub fn soft_limit(resource: Resource) -> Option<u64> {
    rustix::process::getrlimit(resource).current
}

/// Raises the soft limit on open files to the hard one, as Go programs do at start
/// (node_exporter among them): systemd gives a service 1,024 soft and 524,288 hard. The
/// limits as they are then, or why they could not be raised.
pub fn raise_open_files_limit() -> io::Result<(Option<u64>, Option<u64>)> {
    let limit = rustix::process::getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        rustix::process::setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        )?;
    }
    let now = rustix::process::getrlimit(Resource::Nofile);
    Ok((now.current, now.maximum))
}

/// A NETLINK_ROUTE socket (rtnetlink(7)) whose reads give up after `timeout`. Fails
/// where the address family is not allowed (a unit's `RestrictAddressFamilies=`).
pub fn netlink_route_socket(timeout: Duration) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::NETLINK,
        SocketType::RAW,
        SocketFlags::CLOEXEC,
        None, // NETLINK_ROUTE, protocol 0
    )?;
    // A zero timeout would mean none at all.
    let timeout = timeout.max(Duration::from_millis(1));
    rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(timeout))?;
    Ok(fd)
}

/// Sends `msg` whole to the kernel (netlink port 0) on the netlink socket `fd`.
pub fn send_to_kernel(fd: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    let kernel = SocketAddrNetlink::new(0, 0);
    let sent = rustix::net::sendto(fd, msg, SendFlags::empty(), &kernel)?;
    if sent != msg.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "the kernel took part of the message",
        ));
    }
    Ok(())
}

/// One datagram from the socket `fd` into `buf`: its length. A datagram longer than
/// `buf` is an error, not cut short.
pub fn recv_datagram(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // With MSG_TRUNC the call gives the datagram's whole length.
    let (_, n) = rustix::net::recv(fd, &mut *buf, RecvFlags::TRUNC)?;
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

/// Clock ticks per second, the unit of /proc's CPU times.
pub fn clock_ticks() -> u64 {
    rustix::param::clock_ticks_per_second()
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

/// Reads the clock's discipline with clock_adjtime(2) on `CLOCK_REALTIME`, `modes` 0: a
/// read, never a change. This is the system call glibc's own adjtimex(3) makes, named
/// here so that it is the one a unit's `SystemCallFilter=` must allow, whatever the libc.
// timex's fields are C `long`s: i64 on 64-bit targets, where the casts do nothing.
#[allow(clippy::unnecessary_cast)]
pub fn adjtimex() -> io::Result<Timex> {
    // SAFETY: timex is plain data, for which all-zero is a valid value (`modes` 0: a
    // read only), and `t` is a valid, writable timex for the call's duration.
    let (state, t) = unsafe {
        let mut t: libc::timex = std::mem::zeroed();
        (libc::clock_adjtime(libc::CLOCK_REALTIME, &mut t), t)
    };
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
    rustix::process::umask(Mode::from_raw_mode(mask)).as_raw_mode()
}

/// Creates a FIFO at `path` with `mode`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkfifoat(CWD, path, Mode::from_raw_mode(mode))?)
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

/// Returns the heap's free pages to the system: after a scrape that parsed much (large
/// textfiles), what it freed would otherwise stay resident, since glibc keeps freed
/// memory that is not at the heap's top.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the
    // system; it touches no memory that is in use.
    unsafe {
        libc::malloc_trim(0);
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
