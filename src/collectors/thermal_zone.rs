//! `thermal_zone`: the kernel's thermal zones and cooling devices from
//! /sys/class/thermal, as node_exporter's thermal_zone collector names them. A zone
//! whose temperature cannot be read now (some firmware answers ENODATA) is left out.

use std::path::{Path, PathBuf};

use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Thermal zones and cooling devices (/sys/class/thermal).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["thermal_zone"];

/// Its section, `system.thermal_zone:`.
pub type Config = super::CollectorToggle;

pub static ZONE_TEMP: Family = Family::gauge(
    "node_thermal_zone_temp",
    "The thermal zone's temperature in degrees Celsius.",
);
pub static COOLING_CUR: Family = Family::gauge(
    "node_cooling_device_cur_state",
    "The cooling device's current throttle state.",
);
pub static COOLING_MAX: Family = Family::gauge(
    "node_cooling_device_max_state",
    "The cooling device's highest throttle state.",
);

pub static SERVED: Served = Served::families(&[&COOLING_CUR, &COOLING_MAX, &ZONE_TEMP]);

/// An attribute file's text without its line break, or `None`.
pub fn attribute(dir: &Path, name: &str) -> Option<String> {
    let data = crate::regular::read(&dir.join(name), 4096).ok()?;
    Some(
        String::from_utf8_lossy(&data)
            .trim_matches('\n')
            .trim()
            .to_owned(),
    )
}

/// (zone number, type, millidegrees) and (device number, type, current, max).
#[derive(Debug, Default, PartialEq)]
pub struct Thermal {
    pub zones: Vec<(String, String, i64)>,
    pub cooling: Vec<(String, String, i64, i64)>,
}

pub fn read(class: &Path) -> std::io::Result<Thermal> {
    let mut names: Vec<String> = std::fs::read_dir(class)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut t = Thermal::default();
    for n in names {
        let dir = class.join(&n);
        let number = |v: Option<String>| v.and_then(|s| s.parse::<i64>().ok());
        if let Some(zone) = n.strip_prefix("thermal_zone") {
            if let (Some(kind), Some(temp)) =
                (attribute(&dir, "type"), number(attribute(&dir, "temp")))
            {
                t.zones.push((zone.to_owned(), kind, temp));
            }
        } else if let Some(dev) = n.strip_prefix("cooling_device") {
            if let (Some(kind), Some(cur), Some(max)) = (
                attribute(&dir, "type"),
                number(attribute(&dir, "cur_state")),
                number(attribute(&dir, "max_state")),
            ) {
                t.cooling.push((dev.to_owned(), kind, cur, max));
            }
        }
    }
    Ok(t)
}

pub fn encode(t: &Thermal, w: &mut MetricWriter<'_>) {
    for (name, kind, cur, _) in &t.cooling {
        w.sample(&COOLING_CUR, &[("name", name), ("type", kind)], *cur as f64);
    }
    for (name, kind, _, max) in &t.cooling {
        w.sample(&COOLING_MAX, &[("name", name), ("type", kind)], *max as f64);
    }
    for (zone, kind, temp) in &t.zones {
        w.sample(
            &ZONE_TEMP,
            &[("type", kind), ("zone", zone)],
            *temp as f64 / 1000.0,
        );
    }
}

pub struct ThermalZone {
    class: PathBuf,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::blocking(ThermalZone {
        class: s.system.sysfs.join("class/thermal"),
    })))
}

impl Collector for ThermalZone {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        match read(&self.class) {
            Ok(t) => {
                encode(&t, w);
                Ok(())
            }
            // No thermal class (a virtual machine): nothing to report.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CollectError::read(&self.class, e)),
        }
    }
}
