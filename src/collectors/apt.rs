//! The apt collector: pending upgrades (security ones visible through `origin`), held
//! and autoremovable packages, the age of the package lists and whether a reboot is
//! required, under the names of the community textfile scripts.
//!
//! Asking apt takes seconds, so a background thread asks it every
//! `updates.apt_interval` and a scrape only reads the last answer. On a host without
//! apt the collector says so once and is not started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Run, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::state::apt;

static PENDING: Family = Family::gauge(
    "apt_upgrades_pending",
    "Packages an upgrade would install, by origin (security archives included) and architecture.",
);
static HELD: Family = Family::gauge("apt_upgrades_held", "Packages held back by apt-mark hold.");
static AUTOREMOVE: Family = Family::gauge(
    "apt_autoremove_pending",
    "Packages apt-get autoremove would remove.",
);
static CACHE: Family = Family::gauge(
    "apt_package_cache_timestamp_seconds",
    "When the package lists were last updated successfully, Unix time.",
)
.unit("seconds");
static REBOOT: Family = Family::gauge(
    "node_reboot_required",
    "1 if /run/reboot-required exists (a package asked for a reboot), else 0.",
);

/// What the last look at apt found.
#[derive(Debug, Default, Clone)]
pub struct AptState {
    pub pending: Vec<((String, String), u64)>,
    pub held: u64,
    pub autoremove: u64,
    pub cache_timestamp: f64,
    /// Whether apt has been asked yet.
    pub ready: bool,
    pub error: Option<String>,
}

/// Where apt and the reboot flag are; other paths for tests.
#[derive(Debug, Clone)]
pub struct AptPaths {
    pub apt_get: PathBuf,
    pub apt_mark: PathBuf,
    pub stamp: PathBuf,
    pub lists: PathBuf,
    pub reboot_required: PathBuf,
}

impl Default for AptPaths {
    fn default() -> Self {
        AptPaths {
            apt_get: PathBuf::from("apt-get"),
            apt_mark: PathBuf::from("apt-mark"),
            stamp: PathBuf::from("/var/lib/apt/periodic/update-success-stamp"),
            lists: PathBuf::from("/var/lib/apt/lists"),
            reboot_required: PathBuf::from("/run/reboot-required"),
        }
    }
}

/// Whether this host has apt at all.
pub fn available(paths: &AptPaths) -> bool {
    Command::new(&paths.apt_get)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        // Parsed output: apt's messages in English, whatever the host's locale.
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} {} failed ({}): {}",
            program.display(),
            args.join(" "),
            out.status,
            err.lines().last().unwrap_or("")
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mtime(p: &Path) -> Option<f64> {
    std::fs::metadata(p)
        .ok()?
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Asks apt once.
pub fn look(paths: &AptPaths) -> AptState {
    let mut s = AptState {
        ready: true,
        ..AptState::default()
    };
    let result = (|| -> Result<(), String> {
        let upgrade = run(&paths.apt_get, &["--just-print", "dist-upgrade"])?;
        s.pending = apt::count_by_origin(&apt::parse_upgrades(&upgrade))
            .into_iter()
            .collect();
        s.autoremove = apt::count_removals(&run(&paths.apt_get, &["--just-print", "autoremove"])?);
        s.held = apt::count_held(&run(&paths.apt_mark, &["showhold"])?);
        Ok(())
    })();
    s.error = result.err();
    s.cache_timestamp = mtime(&paths.stamp)
        .or_else(|| mtime(&paths.lists))
        .unwrap_or(0.0);
    s
}

pub struct Apt {
    state: Arc<Mutex<AptState>>,
    reboot_required: PathBuf,
}

impl Apt {
    /// The collector; with `start`, the thread that asks apt every `interval`.
    pub fn new(paths: AptPaths, interval: Duration, start: bool) -> std::io::Result<Apt> {
        let state = Arc::new(Mutex::new(AptState::default()));
        let reboot_required = paths.reboot_required.clone();
        if start {
            // The thread stops once the collector is gone (a reload replaced it).
            let shared = Arc::downgrade(&state);
            std::thread::Builder::new()
                .name("apt".to_owned())
                .stack_size(256 * 1024)
                .spawn(move || loop {
                    if shared.strong_count() == 0 {
                        break;
                    }
                    let fresh = look(&paths);
                    let Some(shared) = shared.upgrade() else {
                        break;
                    };
                    if let Ok(mut s) = shared.lock() {
                        if s.error != fresh.error {
                            match &fresh.error {
                                Some(e) => tracing::warn!(error = %e, "cannot ask apt"),
                                None if s.error.is_some() => tracing::info!("apt answers again"),
                                None => {}
                            }
                        }
                        *s = fresh;
                    }
                    std::thread::sleep(interval);
                })?;
        }
        Ok(Apt {
            state,
            reboot_required,
        })
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&[&PENDING, &HELD, &AUTOREMOVE, &CACHE, &REBOOT]);

/// Reads `updates.apt`, `updates.apt_interval` and `updates.apt_timeout`; off on a host
/// without apt.
pub fn build(s: &Settings<'_>, env: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = s.updates;
    if !c.apt {
        return Ok(None);
    }
    let paths = AptPaths::default();
    if !available(&paths) {
        if env.start {
            tracing::info!("apt-get not found: the apt collector is off on this host");
        }
        return Ok(None);
    }
    let a = Apt::new(paths, c.apt_interval.get(), env.start).map_err(BuildError::Thread)?;
    let run = Run::Blocking(Arc::new(a));
    Ok(Some(AnyCollector::new(
        "apt",
        c.apt_timeout.get(),
        SERVED,
        run,
    )))
}

impl Collector for Apt {
    /// The last answer is in memory; the reboot flag is one stat of a tmpfs file.
    fn may_block(&self) -> bool {
        false
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let reboot = self.reboot_required.exists();
        w.sample_u64(&REBOOT, &[], u64::from(reboot));
        let s = match self.state.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if !s.ready {
            // The first look at apt is still running: nothing to say yet about upgrades.
            return Ok(());
        }
        for ((origin, arch), n) in &s.pending {
            w.sample_u64(&PENDING, &[("arch", arch), ("origin", origin)], *n);
        }
        if s.pending.is_empty() && s.error.is_none() {
            // Nothing pending is a value, not an absence.
            w.sample_u64(&PENDING, &[("arch", ""), ("origin", "")], 0);
        }
        w.sample_u64(&HELD, &[], s.held);
        w.sample_u64(&AUTOREMOVE, &[], s.autoremove);
        w.sample(&CACHE, &[], s.cache_timestamp);
        match s.error {
            None => Ok(()),
            Some(e) => Err(CollectError::Remote(e)),
        }
    }
}
