//! The collectors: one file per source, each turning what it reads into metric
//! families through a [`MetricWriter`].
//!
//! A collector splits the fallible read from the infallible encode: `collect` reads its
//! source and writes whatever it could; an `Err` marks the collector as failed for this
//! scrape (`shoehub_scrape_collector_success 0`) while the samples it did write are
//! still served.

use std::ffi::CString;
use std::future::Future;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, SystemConfig};
use crate::exposition::{Format, MetricWriter};

pub mod apt;
pub mod backuppc;
pub mod backups;
pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod host;
pub mod jobs;
pub mod memory;
pub mod mysql;
pub mod network;
pub mod parse;
pub mod textfile;
pub mod weblog;

/// Why a collector failed, or failed in part, for one scrape.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {count} malformed line(s), first at line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        count: usize,
        reason: &'static str,
    },
    /// A source reached over the network failed (a database that is down, say).
    #[error("{0}")]
    Remote(String),
    #[error("{failed} of {total} {what} failed; first: {first}")]
    Partial {
        what: &'static str,
        failed: usize,
        total: usize,
        first: String,
    },
}

impl CollectError {
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        CollectError::Read {
            path: path.to_owned(),
            source,
        }
    }
}

/// Counts malformed lines while a parser goes on with the rest.
#[derive(Debug, Default)]
pub struct LineErrors {
    first: Option<(usize, &'static str)>,
    count: usize,
}

impl LineErrors {
    pub fn record(&mut self, line: usize, reason: &'static str) {
        self.count += 1;
        self.first.get_or_insert((line, reason));
    }

    /// (first line, count, reason) when any line was malformed.
    pub fn summary(&self) -> Option<(usize, usize, &'static str)> {
        self.first.map(|(line, reason)| (line, self.count, reason))
    }

    pub fn into_result(self, path: &Path) -> Result<(), CollectError> {
        match self.first {
            None => Ok(()),
            Some((line, reason)) => Err(CollectError::Malformed {
                path: path.to_owned(),
                line,
                count: self.count,
                reason,
            }),
        }
    }
}

/// A source of metrics, run once per scrape on a blocking thread.
pub trait Collector: Send + Sync + 'static {
    /// The `collector` label value and config section name.
    fn name(&self) -> &'static str;
    /// This collector's own deadline; a scrape's may be shorter.
    fn timeout(&self) -> Duration;
    /// Whether a new run may start while an earlier one is still blocked. Only a
    /// collector that isolates the blocking item itself (the filesystem collector skips
    /// a mount whose statvfs has not returned) may say yes; for the others a second
    /// run would only block a second thread.
    fn reentrant(&self) -> bool {
        false
    }
    /// Whether a read can block: statvfs of a network mount can, and so can any file
    /// outside a real procfs (a fixture tree, a FUSE mount). Files on procfs are
    /// rendered from kernel memory in microseconds and never wait on a device or the
    /// network; collectors that read only those say no, and a scrape runs them on its
    /// own thread (inside `block_in_place`), which costs less than a thread hand-off.
    fn may_block(&self) -> bool {
        true
    }
    /// Reads the source and writes its families.
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError>;
    /// The metric names it serves: whole names, or prefixes when they end with `_`.
    /// A textfile may not redefine any of them.
    fn serves(&self) -> &'static [&'static str];
}

/// What an asynchronous collection hands back: its output (shared, so that scrapes
/// served from one reading need not copy it) and its outcome.
pub type CollectFuture =
    Pin<Box<dyn Future<Output = (bytes::Bytes, Result<(), CollectError>)> + Send + 'static>>;

/// A source that waits on the network (a database server): it runs as a task on the
/// async runtime instead of a thread, and is cancelled at its deadline, so a hung
/// server holds neither a thread nor the scrape.
pub trait AsyncCollector: Send + Sync + 'static {
    /// The `collector` label value and config section name.
    fn name(&self) -> &'static str;
    /// This collector's own deadline; a scrape's may be shorter.
    fn timeout(&self) -> Duration;
    /// One collection in `format` that must be over by `deadline`. It handles the
    /// deadline itself, so it can still say what it knows (`mysql_up 0`) when it
    /// runs out of time.
    fn collect(self: Arc<Self>, format: Format, deadline: Instant) -> CollectFuture;
    /// As [`Collector::serves`].
    fn serves(&self) -> &'static [&'static str];
}

/// A collector of either kind, as the scrape engine holds it.
#[derive(Clone)]
pub enum AnyCollector {
    Blocking(Arc<dyn Collector>),
    Async(Arc<dyn AsyncCollector>),
}

impl AnyCollector {
    pub fn name(&self) -> &'static str {
        match self {
            AnyCollector::Blocking(c) => c.name(),
            AnyCollector::Async(c) => c.name(),
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            AnyCollector::Blocking(c) => c.timeout(),
            AnyCollector::Async(c) => c.timeout(),
        }
    }

    pub fn serves(&self) -> &'static [&'static str] {
        match self {
            AnyCollector::Blocking(c) => c.serves(),
            AnyCollector::Async(c) => c.serves(),
        }
    }
}

impl<C: Collector> From<Arc<C>> for AnyCollector {
    fn from(c: Arc<C>) -> Self {
        AnyCollector::Blocking(c)
    }
}

/// Whether `path` (or, while it does not exist, its nearest existing ancestor) is on a
/// network or FUSE filesystem, where a read can wait on a server.
pub fn is_remote_fs(path: &Path) -> bool {
    const REMOTE: [libc::c_long; 7] = [
        0x6969,      // NFS
        0x517B,      // SMB
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x6573_5546, // FUSE
        0x00C3_6400, // Ceph
        0x0102_1997, // 9p
    ];
    let Some(existing) = path.ancestors().find(|p| p.exists()) else {
        return false;
    };
    let Ok(c) = CString::new(existing.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `buf` a properly sized out-parameter.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut buf) != 0 || REMOTE.contains(&(buf.f_type as libc::c_long))
    }
}

/// Whether `dir` is a mounted procfs (its files raise POLLPRI on mount changes).
pub fn is_procfs(dir: &Path) -> bool {
    const PROC_SUPER_MAGIC: libc::c_long = 0x9fa0;
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated path and `buf` a properly sized out-parameter.
    unsafe {
        let mut buf: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut buf) == 0 && buf.f_type as libc::c_long == PROC_SUPER_MAGIC
    }
}

/// Every collector the configuration enables, in exposition order. Fails when a
/// collector cannot be set up as configured (MySQL credentials that cannot be used).
/// With `start`, background work begins (following access logs); without, the
/// collectors are only checked.
pub fn build(config: &Config, start: bool) -> Result<Vec<AnyCollector>, BuildError> {
    let mut out = host_collectors(&config.system);
    if let Some(m) = config.mysql.as_ref().filter(|m| m.enabled) {
        out.push(AnyCollector::Async(Arc::new(mysql::Mysql::new(m)?)));
    }
    if config.jobs.enabled {
        out.push(AnyCollector::Blocking(Arc::new(jobs::Jobs::new(
            config.jobs.state_dir.clone(),
        ))));
    }
    if !config.weblogs.is_empty() {
        let (collector, followers) = weblog::Weblog::new(&config.weblogs);
        if start {
            weblog::spawn(followers).map_err(BuildError::Thread)?;
        }
        out.push(AnyCollector::Blocking(Arc::new(collector)));
    }
    if config.updates.apt {
        let paths = apt::AptPaths::default();
        if apt::available(&paths) {
            let a = apt::Apt::new(paths, config.updates.apt_interval.get(), start)
                .map_err(BuildError::Thread)?;
            out.push(AnyCollector::Blocking(Arc::new(a)));
        } else if start {
            tracing::info!("apt-get not found: the apt collector is off on this host");
        }
    }
    if config.backup.enabled {
        out.push(AnyCollector::Blocking(Arc::new(backups::Backups::new(
            config.backup.destination.clone(),
        ))));
    }
    if config.backuppc.enabled {
        out.push(AnyCollector::Blocking(Arc::new(backuppc::Backuppc::new(
            config.backuppc.top_dir.clone(),
            config.backuppc.hosts.clone(),
        ))));
    }
    if config.textfile.enabled {
        // A textfile may not redefine what the exporter serves itself.
        let mut reserved: Vec<&'static str> = out
            .iter()
            .flat_map(|c| c.serves().iter().copied())
            .collect();
        reserved.extend(crate::scrape::SERVES);
        reserved.push("node_textfile_");
        out.push(AnyCollector::Blocking(Arc::new(textfile::Textfile::new(
            config.textfile.directory.clone(),
            reserved,
        ))));
    }
    Ok(out)
}

/// Why the collectors could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Mysql(#[from] mysql::CredentialsError),
    #[error("cannot start a background thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The host collectors the configuration enables, in exposition order.
pub fn host_collectors(cfg: &SystemConfig) -> Vec<AnyCollector> {
    let mut out: Vec<AnyCollector> = Vec::new();
    if cfg.cpu.enabled {
        out.push(AnyCollector::Blocking(Arc::new(cpu::Cpu::new(
            &cfg.procfs,
            cfg.cpu.timeout.get(),
        ))));
    }
    if cfg.memory.enabled {
        out.push(AnyCollector::Blocking(Arc::new(memory::Memory::new(
            &cfg.procfs,
            cfg.memory.timeout.get(),
        ))));
    }
    if cfg.filesystem.enabled {
        out.push(AnyCollector::Blocking(Arc::new(
            filesystem::Filesystem::new(&cfg.procfs, &cfg.rootfs, &cfg.filesystem),
        )));
    }
    if cfg.disk.enabled {
        out.push(AnyCollector::Blocking(Arc::new(disk::Disk::new(
            &cfg.procfs,
            &cfg.disk,
        ))));
    }
    if cfg.network.enabled {
        out.push(AnyCollector::Blocking(Arc::new(network::Network::new(
            &cfg.procfs,
            &cfg.network,
        ))));
    }
    if cfg.host.enabled {
        out.push(AnyCollector::Blocking(Arc::new(host::Host::new(
            &cfg.procfs,
            &cfg.host,
        ))));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn live_proc_is_procfs() {
        assert!(super::is_procfs(std::path::Path::new("/proc")));
        assert!(!super::is_procfs(std::path::Path::new("/")));
    }
}
