//! The collectors: one file per source, each turning what it reads into metric
//! families through a [`MetricWriter`].
//!
//! A collector splits the fallible read from the infallible encode: `collect` reads its
//! source and writes whatever it could; an `Err` marks the collector as failed for this
//! scrape (`shoehub_scrape_collector_success 0`) while the samples it did write are
//! still served.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::SystemConfig;
use crate::exposition::MetricWriter;

pub mod cpu;
pub mod disk;
pub mod filesystem;
pub mod host;
pub mod memory;
pub mod network;
pub mod parse;

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

/// The host collectors the configuration enables, in exposition order.
pub fn host_collectors(cfg: &SystemConfig) -> Vec<Arc<dyn Collector>> {
    let mut out: Vec<Arc<dyn Collector>> = Vec::new();
    if cfg.cpu.enabled {
        out.push(Arc::new(cpu::Cpu::new(&cfg.procfs, cfg.cpu.timeout.get())));
    }
    if cfg.memory.enabled {
        out.push(Arc::new(memory::Memory::new(
            &cfg.procfs,
            cfg.memory.timeout.get(),
        )));
    }
    if cfg.filesystem.enabled {
        out.push(Arc::new(filesystem::Filesystem::new(
            &cfg.procfs,
            &cfg.rootfs,
            &cfg.filesystem,
        )));
    }
    if cfg.disk.enabled {
        out.push(Arc::new(disk::Disk::new(&cfg.procfs, &cfg.disk)));
    }
    if cfg.network.enabled {
        out.push(Arc::new(network::Network::new(&cfg.procfs, &cfg.network)));
    }
    if cfg.host.enabled {
        out.push(Arc::new(host::Host::new(&cfg.procfs, &cfg.host)));
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
