//! The collectors: one file per source, each turning what it reads into metric
//! families through a [`MetricWriter`].
//!
//! A collector splits the fallible read from the infallible encode: `collect` reads its
//! source and writes whatever it could; an `Err` marks the collector as failed for this
//! scrape (`shoehub_scrape_collector_success 0`) while the samples it did write are
//! still served.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::exposition::{Family, Format, MetricWriter};
use crate::state::backup::BackupConfig;
use crate::state::job::JobsConfig;
use crate::state::update::UpdatesConfig;
use crate::value::DurationValue;

pub mod apt;
pub mod backuppc;
pub mod backups;
pub mod jobs;
pub mod mysql;
pub mod parse;
pub mod probe;
pub mod textfile;
pub mod weblog;

/// Declares the host collectors from one list, in exposition order: each name is a
/// module under `collectors/` that holds `ABOUT` (one sentence), `Config` (its section
/// under `system:`, with `enabled` and `timeout`), `SERVED` (its families) and `build`
/// ([`HostBuild`]: the collector, built only when its section enables it). From the
/// list come the modules, `SystemConfig`'s fields and defaults, and [`HOST`]: the host
/// part of the collector table, with each entry's name, deadline and families, from
/// which the docs are generated. A new host collector is its file and one line here.
macro_rules! host_collectors {
    ($($name:ident),* $(,)?) => {
        $(pub mod $name;)*

        /// `system:` — the host collectors.
        #[derive(Debug, Deserialize, Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct SystemConfig {
            /// Where procfs is mounted (another path for containers or fixtures).
            pub procfs: PathBuf,
            /// The host's root, for statvfs of its mounts from inside a container.
            pub rootfs: PathBuf,
            /// Where sysfs is mounted.
            pub sysfs: PathBuf,
            $(pub $name: $name::Config,)*
        }

        impl Default for SystemConfig {
            fn default() -> Self {
                SystemConfig {
                    procfs: PathBuf::from("/proc"),
                    rootfs: PathBuf::from("/"),
                    sysfs: PathBuf::from("/sys"),
                    $($name: <$name::Config>::default(),)*
                }
            }
        }

        /// The host collectors, in exposition order.
        pub static HOST: &[HostCollector] = &[
            $(HostCollector {
                name: stringify!($name),
                about: $name::ABOUT,
                node_exporter: $name::NODE_EXPORTER,
                served: &$name::SERVED,
                build: |s, env| {
                    let section = &s.system.$name;
                    if !section.enabled {
                        return Ok(None);
                    }
                    let run = ($name::build as HostBuild)(s, env)?;
                    Ok(run.map(|run| {
                        AnyCollector::new(stringify!($name), section.timeout.get(), $name::SERVED, run)
                            .node_exporter($name::NODE_EXPORTER)
                    }))
                },
                section: |c| serde_yaml::to_value(&c.$name),
            },)*
        ];
    };
}

host_collectors! {
    cpu,
    schedstat,
    memory,
    filesystem,
    disk,
    network,
    netclass,
    netstat,
    sockstat,
    softnet,
    udp_queues,
    arp,
    conntrack,
    mdadm,
    systemd,
    hwmon,
    thermal_zone,
    host,
    timex,
    vmstat,
    filefd,
    entropy,
    process,
    os,
}

/// One host collector, as [`host_collectors!`] declares it.
#[derive(Debug)]
pub struct HostCollector {
    /// Its `collector` label and its section's name under `system:`.
    pub name: &'static str,
    /// What it reads, in one sentence.
    pub about: &'static str,
    /// The node_exporter collectors it stands for, by their names.
    pub node_exporter: &'static [&'static str],
    /// The families it serves.
    pub served: &'static Served,
    pub build: Build,
    /// Its section of `system:` as YAML, every key with its value.
    pub section: fn(&SystemConfig) -> Result<serde_yaml::Value, serde_yaml::Error>,
}

/// A collector section with nothing but what every collector has: a switch and its
/// own deadline.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectorToggle {
    pub enabled: bool,
    pub timeout: DurationValue,
}

impl Default for CollectorToggle {
    fn default() -> Self {
        CollectorToggle {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
        }
    }
}

/// Why a collector failed, or failed in part, for one scrape.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read {path}")]
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

/// A source of metrics, run once per scrape on a blocking thread. It is asked only
/// what differs between collectors: its name, deadline and families are its entry's in
/// the table ([`AnyCollector`]).
pub trait Collector: Send + Sync + 'static {
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
    /// own thread, which costs less than a thread hand-off.
    fn may_block(&self) -> bool {
        true
    }
    /// Reads the source and writes its families.
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError>;
}

/// What an asynchronous collection hands back: its output (shared, so that scrapes
/// served from one reading need not copy it) and its outcome.
pub type CollectFuture =
    Pin<Box<dyn Future<Output = (bytes::Bytes, Result<(), CollectError>)> + Send + 'static>>;

/// A source that waits on the network (a database server): it runs as a task on the
/// async runtime instead of a thread, and is cancelled at its deadline, so a hung
/// server holds neither a thread nor the scrape.
pub trait AsyncCollector: Send + Sync + 'static {
    /// One collection in `format` that must be over by `deadline`. It handles the
    /// deadline itself, so it can still say what it knows (`mysql_up 0`) when it
    /// runs out of time.
    fn collect(self: Arc<Self>, format: Format, deadline: Instant) -> CollectFuture;
}

/// How a collector runs: on a thread, or as a task.
#[derive(Clone)]
pub enum Run {
    Blocking(Arc<dyn Collector>),
    Async(Arc<dyn AsyncCollector>),
}

/// A collector as the scrape engine holds it: its name (the `collector` label and its
/// section's), its own deadline (a scrape's may be shorter), the metric names it
/// serves (which a textfile may not redefine), and how it runs.
#[derive(Clone)]
pub struct AnyCollector {
    name: &'static str,
    timeout: Duration,
    served: Served,
    /// The node_exporter collectors it stands for, by their names.
    node_exporter: &'static [&'static str],
    pub run: Run,
}

impl AnyCollector {
    pub fn new(name: &'static str, timeout: Duration, served: Served, run: Run) -> AnyCollector {
        AnyCollector {
            name,
            timeout,
            served,
            node_exporter: &[],
            run,
        }
    }

    /// The same collector, standing for these node_exporter collectors in
    /// `node_scrape_collector_*`.
    pub fn node_exporter(mut self, names: &'static [&'static str]) -> AnyCollector {
        self.node_exporter = names;
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The node_exporter collectors it stands for (none for the exporter's own).
    pub fn node_exporter_names(&self) -> &'static [&'static str] {
        self.node_exporter
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn served(&self) -> Served {
        self.served
    }
}

/// Whether `dir` is a mounted procfs (its files raise POLLPRI on mount changes).
pub fn is_procfs(dir: &Path) -> bool {
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    crate::sys::fs_type(dir).is_ok_and(|t| t == PROC_SUPER_MAGIC)
}

/// The metric names a collector serves: its `Family` statics and, for families named
/// at run time (/proc/meminfo fields, server variables), the prefix they share.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    pub families: &'static [&'static Family],
    /// Prefixes ending with `_`.
    pub prefixes: &'static [&'static str],
}

impl Served {
    pub const fn families(families: &'static [&'static Family]) -> Served {
        Served {
            families,
            prefixes: &[],
        }
    }

    /// Whole names, and prefixes (ending with `_`).
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        self.families
            .iter()
            .map(|f| f.name)
            .chain(self.prefixes.iter().copied())
    }
}

/// The collectors' sections of the configuration, borrowed from the whole file by the
/// layer above: each collector's constructor reads its own.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    pub system: &'a SystemConfig,
    pub mysql: Option<&'a mysql::MysqlConfig>,
    pub probes: &'a [probe::ProbeConfig],
    pub jobs: &'a JobsConfig,
    pub weblogs: &'a [weblog::WeblogConfig],
    pub updates: &'a UpdatesConfig,
    pub backup: &'a BackupConfig,
    pub backuppc: &'a backuppc::BackuppcConfig,
    pub textfile: &'a textfile::TextfileConfig,
}

/// What a constructor may need besides its section.
#[derive(Debug)]
pub struct Env {
    /// Start background work (following logs, asking apt); without it the collectors
    /// are only checked, as `check-config` does.
    pub start: bool,
    /// The names served by the engine and the collectors built so far.
    pub reserved: Vec<&'static str>,
}

/// A collector's constructor: `None` when its section switches it off.
pub type Build = fn(&Settings<'_>, &Env) -> Result<Option<AnyCollector>, BuildError>;

/// A host collector's constructor, called only when its section enables it: how it
/// runs, or `None` where its source cannot be (systemd where systemd is not PID 1).
pub type HostBuild = fn(&Settings<'_>, &Env) -> Result<Option<Run>, BuildError>;

/// The other collectors, after the host's ([`HOST`]) in exposition order. A new one
/// is a file under `collectors/` with its config section, its families and its
/// `build`, and a line here.
pub static OTHERS: &[Build] = &[
    mysql::build,
    probe::build,
    jobs::build,
    weblog::build,
    apt::build,
    backups::build,
    backuppc::build,
    // Last: it may not redefine what any other serves.
    textfile::build,
];

/// The families of the collectors in [`OTHERS`], for the generated documentation.
pub static OTHERS_SERVED: &[(&str, &Served)] = &[
    ("mysql", &mysql::SERVED),
    ("probe", &probe::SERVED),
    ("jobs", &jobs::SERVED),
    ("weblog", &weblog::SERVED),
    ("apt", &apt::SERVED),
    ("backups", &backups::SERVED),
    ("backuppc", &backuppc::SERVED),
    ("textfile", &textfile::SERVED),
];

/// Every collector the configuration enables, in exposition order. Fails when a
/// collector cannot be set up as configured (MySQL credentials that cannot be used).
/// With `start`, background work begins; without, the collectors are only checked.
/// `engine` is what the scrape engine serves itself.
pub fn build(
    settings: &Settings<'_>,
    start: bool,
    engine: Served,
) -> Result<Vec<AnyCollector>, BuildError> {
    let mut env = Env {
        start,
        reserved: engine.names().collect(),
    };
    let mut out = Vec::new();
    for build in HOST.iter().map(|h| &h.build).chain(OTHERS) {
        if let Some(c) = build(settings, &env)? {
            env.reserved.extend(c.served().names());
            out.push(c);
        }
    }
    Ok(out)
}

/// Why the collectors could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Mysql(#[from] crate::credentials::CredentialsError),
    #[error("cannot start a background thread")]
    Thread(#[source] std::io::Error),
    #[error("{0}")]
    Probe(String),
}

/// Writes what one kernel file holds; `Err` for a file it cannot make sense of.
pub type EncodeFile = fn(&Path, &[u8], &mut MetricWriter<'_>) -> Result<(), CollectError>;

/// A collector that reads one kernel file per scrape (kept open) and writes what it
/// holds with its `encode`: the whole of vmstat, softnet and filefd.
pub struct OneFile {
    file: crate::procfile::SharedProcFile,
    encode: EncodeFile,
}

impl OneFile {
    /// The collector of `path`, a file under `procfs`.
    pub fn run(procfs: &Path, path: PathBuf, encode: EncodeFile) -> Run {
        procfs_only(
            procfs,
            OneFile {
                file: crate::procfile::SharedProcFile::new(path),
                encode,
            },
        )
    }
}

impl Collector for OneFile {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.file.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            (self.encode)(path, data, w)
        })
    }
}

/// `c`, run on a blocking thread.
pub fn blocking(c: impl Collector) -> Run {
    Run::Blocking(Arc::new(c))
}

/// A collector that reads nothing but files under `system.procfs`: when that is the
/// real procfs it cannot block (see [`Collector::may_block`]) and runs on the scrape's
/// own thread; on a fixture tree it runs on a blocking thread like any other.
struct ProcfsOnly<C> {
    inner: C,
    on_procfs: bool,
}

impl<C: Collector> Collector for ProcfsOnly<C> {
    fn reentrant(&self) -> bool {
        self.inner.reentrant()
    }
    fn may_block(&self) -> bool {
        !self.on_procfs
    }
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.inner.collect(w)
    }
}

/// [`blocking`], for a collector that reads only files under `procfs`.
pub fn procfs_only(procfs: &Path, c: impl Collector) -> Run {
    blocking(ProcfsOnly {
        inner: c,
        on_procfs: is_procfs(procfs),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_host_collector_builds_from_the_defaults_and_documents_itself() {
        let config = crate::config::Config::default();
        let settings = config.collectors();
        let env = super::Env {
            start: false,
            reserved: Vec::new(),
        };
        let mut names = std::collections::HashSet::new();
        let mut built = 0;
        for h in super::HOST {
            assert!(names.insert(h.name), "{} twice", h.name);
            // systemd's is off where systemd is not PID 1.
            if let Some(c) = (h.build)(&settings, &env).unwrap() {
                assert_eq!(
                    (c.name(), c.timeout()),
                    (h.name, std::time::Duration::from_secs(5))
                );
                assert!(
                    c.served().names().next().is_some(),
                    "{} serves nothing",
                    h.name
                );
                built += 1;
            }
            assert!(!h.about.is_empty() && h.about.ends_with('.'), "{}", h.name);
            assert!(
                (h.section)(&config.system)
                    .unwrap()
                    .get("enabled")
                    .is_some(),
                "{}",
                h.name
            );
        }
        assert!(built + 1 >= super::HOST.len(), "{built} built");
    }

    #[test]
    fn live_proc_is_procfs() {
        assert!(super::is_procfs(std::path::Path::new("/proc")));
        assert!(!super::is_procfs(std::path::Path::new("/")));
    }
}
