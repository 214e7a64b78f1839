//! `hwmon`: hardware sensors from /sys/class/hwmon (temperatures, fans, voltages,
//! currents, power, energy, humidity), as node_exporter's hwmon collector names them.
//!
//! Each chip (`hwmonN`, a link to its device's directory) is named after the device it
//! belongs to, which stays the same across boots where the N does not: the device's
//! parent and name (`platform_coretemp_0`, `pci0000:00_0000:00:18_3`), else the chip's
//! `name` file, else `hwmonN`. Its sensor files (`temp1_input`, `fan2_min`, `in0_alarm`,
//! …) are read from the chip's directory and from its device's (older drivers put them
//! there). A file is `<type><number>_<item>`: the type picks the family and the unit
//! (millidegrees, millivolts, milliamperes and milliseconds become degrees, volts,
//! amperes and seconds; microwatts and microjoules become watts and joules), the item
//! the family's suffix (`_max`, `_crit`, `_alarm`, …); `_label` becomes
//! `node_hwmon_sensor_label`, and the chip's `name` `node_hwmon_chip_names`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::thermal_zone::attribute;
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Kind, MetricWriter, Number};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Hardware sensors (/sys/class/hwmon): temperatures, fans, voltages.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["hwmon"];

/// Its section, `system.hwmon:`.
pub type Config = super::CollectorToggle;

/// The sensor types read; other files (`name`, `uevent`, `power/`) are not sensors.
const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// Every family is named `node_hwmon_*` after the sensor type and item it holds.
pub static SERVED: Served = Served {
    families: &[],
    prefixes: &["node_hwmon_"],
};

/// A file name as `<type><number>_<item>` (node_exporter's reading of it): the type is
/// everything before the first digit, the number the digits after it (0 when none),
/// the item what follows an underscore.
pub fn explode(file: &str) -> Option<(&str, u64, &str)> {
    let first_digit = file
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(file.len());
    if first_digit == 0 {
        return None;
    }
    let (kind, rest) = file.split_at(first_digit);
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, tail) = rest.split_at(digits_end);
    let number = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    if tail.is_empty() {
        return Some((kind, number, ""));
    }
    if let Some(item) = tail.strip_prefix('_').filter(|i| !i.is_empty()) {
        return Some((kind, number, item));
    }
    // A shorter type that ends before an underscore takes the rest as its item
    // (`temp_1x`: type `temp`, item `1x`).
    let cut = kind[1..].rfind('_').map(|i| i + 1)?;
    let item = &file[cut + 1..];
    (!item.is_empty()).then_some((&file[..cut], 0, item))
}

/// Lower case, every character but `a-z0-9:_` made `_`, no `_` at either end.
pub fn clean(name: &str) -> String {
    let lower: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    lower.trim_matches('_').to_owned()
}

/// The chip's stable name: its device's parent and name, else its `name` file, else its
/// directory's name.
pub fn chip_name(dir: &Path) -> Option<String> {
    if let Ok(device) = std::fs::canonicalize(dir.join("device")) {
        let name = device
            .file_name()
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        let parent = device
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean(&n.to_string_lossy()))
            .unwrap_or_default();
        if !parent.is_empty() && !name.is_empty() {
            return Some(format!("{parent}_{name}"));
        }
        if !name.is_empty() {
            return Some(name);
        }
    }
    if let Some(n) = attribute(dir, "name").map(|n| clean(&n)) {
        if !n.is_empty() {
            return Some(n);
        }
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let n = clean(&real.file_name()?.to_string_lossy());
    (!n.is_empty()).then_some(n)
}

/// sensor (`temp1`) → item (`input`, `max`, `label`, `` for the bare file) → text.
type Sensors = BTreeMap<String, BTreeMap<String, String>>;

fn read_sensors(dir: &Path, into: &mut Sensors) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(file) = e.file_name().into_string() else {
            continue;
        };
        let Some((kind, number, item)) = explode(&file) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&kind) {
            continue;
        }
        // A directory, or a file the driver refuses to read now, is passed over.
        let Ok(data) = crate::regular::read(&dir.join(&file), 4096) else {
            continue;
        };
        let text = String::from_utf8_lossy(&data).trim_matches('\n').to_owned();
        into.entry(format!("{kind}{number}"))
            .or_default()
            .insert(item.to_owned(), text);
    }
}

/// One sample: family name, help, kind, chip and sensor (or other labels), value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub family: String,
    pub help: &'static str,
    pub kind: Kind,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// A family's name suffix, how a raw value becomes the sample, its kind and help.
type Unit = (&'static str, fn(f64) -> f64, Kind, &'static str);

fn unit_of(kind: &str, item: &str) -> Option<Unit> {
    Some(match (kind, item) {
        (_, "fault" | "alarm") => (
            "",
            |v| v,
            Kind::Gauge,
            "Hardware sensor status (1: fault or alarm).",
        ),
        (_, "beep") => (
            "_enabled",
            |v| v,
            Kind::Gauge,
            "Whether the sensor beeps on alarm.",
        ),
        ("in" | "cpu", _) => (
            "_volts",
            |v| v * 0.001,
            Kind::Gauge,
            "Hardware monitor voltage.",
        ),
        ("temp", i) if i != "type" => (
            "_celsius",
            |v| v * 0.001,
            Kind::Gauge,
            "Hardware monitor temperature.",
        ),
        ("curr", _) => (
            "_amps",
            |v| v * 0.001,
            Kind::Gauge,
            "Hardware monitor current.",
        ),
        ("energy", _) => (
            "_joule_total",
            |v| v / 1_000_000.0,
            Kind::Counter,
            "Energy used so far, in joules.",
        ),
        ("power", "accuracy") => (
            "",
            |v| v / 1_000_000.0,
            Kind::Gauge,
            "The power meter's accuracy, as a ratio.",
        ),
        ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
            "_seconds",
            |v| v * 0.001,
            Kind::Gauge,
            "The power meter's averaging interval.",
        ),
        ("power", _) => (
            "_watt",
            |v| v / 1_000_000.0,
            Kind::Gauge,
            "Hardware monitor power.",
        ),
        ("humidity", _) => (
            "",
            |v| v / 1_000_000.0,
            Kind::Gauge,
            "Hardware monitor humidity, as a ratio.",
        ),
        ("fan", "input" | "min" | "max" | "target") => (
            "_rpm",
            |v| v,
            Kind::Gauge,
            "Hardware monitor fan speed, in revolutions per minute.",
        ),
        _ => return None,
    })
}

/// The samples of one chip.
pub fn chip_samples(chip: &str, human: Option<String>, sensors: &Sensors) -> Vec<Sample> {
    let mut out = Vec::new();
    let labels = |sensor: &str| vec![("chip", chip.to_owned()), ("sensor", sensor.to_owned())];
    if let Some(h) = human.map(|h| clean(&h)).filter(|h| !h.is_empty()) {
        out.push(Sample {
            family: "node_hwmon_chip_names".into(),
            help: "The chip's own name (its `name` file): constant 1.",
            kind: Kind::Gauge,
            labels: vec![("chip", chip.to_owned()), ("chip_name", h)],
            value: 1.0,
        });
    }
    for (sensor, items) in sensors {
        let Some((kind, _, _)) = explode(sensor) else {
            continue;
        };
        if let Some(label) = items.get("label") {
            out.push(Sample {
                family: "node_hwmon_sensor_label".into(),
                help: "The sensor's label (its `_label` file): constant 1.",
                kind: Kind::Gauge,
                labels: vec![
                    ("chip", chip.to_owned()),
                    ("label", label.clone()),
                    ("sensor", sensor.clone()),
                ],
                value: 1.0,
            });
        }
        let bare = items.get("").map(String::as_str);
        let single = |family: &str, help: &'static str, value: f64| Sample {
            family: family.to_owned(),
            help,
            kind: Kind::Gauge,
            labels: labels(sensor),
            value,
        };
        match kind {
            "beep_enable" => {
                out.push(single(
                    "node_hwmon_beep_enabled",
                    "Whether the chip beeps on alarms.",
                    if bare == Some("1") { 1.0 } else { 0.0 },
                ));
                continue;
            }
            "vrm" => {
                if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                    out.push(single(
                        "node_hwmon_voltage_regulator_version",
                        "The voltage regulator module's version.",
                        v,
                    ));
                }
                continue;
            }
            "update_interval" => {
                if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                    out.push(single(
                        "node_hwmon_update_interval_seconds",
                        "How often the chip updates its readings.",
                        v * 0.001,
                    ));
                }
                continue;
            }
            _ => {}
        }
        for (item, text) in items {
            if item == "label" {
                continue;
            }
            if kind == "freq" && item == "input" {
                // A clock's frequency (GPUs give them), in MHz and under its label, as
                // node_exporter (1.9 and later) serves it; one without a label is not.
                if let (Some(label), Ok(hz)) = (items.get("label"), text.trim().parse::<f64>()) {
                    out.push(Sample {
                        family: "node_hwmon_freq_freq_mhz".into(),
                        help: "Hardware monitor frequency, in MHz.",
                        kind: Kind::Gauge,
                        labels: vec![("chip", chip.to_owned()), ("sensor", clean(label))],
                        value: hz / 1_000_000.0,
                    });
                }
                continue;
            }
            let mut name = format!("node_hwmon_{kind}");
            if item == "input" {
                // The reading itself, unless the bare file is the reading.
                if bare.is_some() {
                    name.push_str("_input");
                }
            } else if !item.is_empty() {
                name.push('_');
                name.push_str(&clean(item));
            }
            let Ok(v) = text.trim().parse::<f64>() else {
                continue;
            };
            let (suffix, scale, k, help) = unit_of(kind, item).unwrap_or((
                "",
                |v| v,
                Kind::Gauge,
                "A hardware monitor reading, as the driver gives it.",
            ));
            name.push_str(suffix);
            out.push(Sample {
                family: name,
                help,
                kind: k,
                labels: labels(sensor),
                value: scale(v),
            });
        }
    }
    out
}

/// Every chip's samples, and the chips that could not be named.
///
/// Chips that share a device (the radios of one `ieee80211/phy0`, two of
/// `platform/asus-nb-wmi`) would share a name, and every series with it: as
/// node_exporter (1.12 and later), each of them then takes its `name` file as a suffix
/// when that tells them apart, else its `hwmonN`.
pub fn read(class: &Path) -> std::io::Result<(Vec<Sample>, Vec<String>)> {
    let mut names: Vec<String> = std::fs::read_dir(class)?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut unnamed = Vec::new();
    // (directory, its base name, its `name` file)
    let mut chips = Vec::new();
    let mut per_base: HashMap<String, usize> = HashMap::new();
    let mut per_name: HashMap<(String, Option<String>), usize> = HashMap::new();
    for n in names {
        let dir = class.join(&n);
        if !dir.is_dir() {
            continue;
        }
        let Some(base) = chip_name(&dir) else {
            unnamed.push(n);
            continue;
        };
        let own = attribute(&dir, "name");
        *per_base.entry(base.clone()).or_default() += 1;
        *per_name.entry((base.clone(), own.clone())).or_default() += 1;
        chips.push((n, dir, base, own));
    }
    let mut out = Vec::new();
    for (n, dir, base, own) in chips {
        let mut chip = base.clone();
        if per_base[&base] > 1 {
            let by_name = own
                .as_deref()
                .map(clean)
                .filter(|s| !s.is_empty() && per_name[&(base.clone(), own.clone())] == 1);
            chip = format!("{base}_{}", by_name.unwrap_or_else(|| clean(&n)));
        }
        let mut sensors = Sensors::new();
        read_sensors(&dir, &mut sensors);
        if dir.join("device").exists() {
            read_sensors(&dir.join("device"), &mut sensors);
        }
        out.extend(chip_samples(&chip, own, &sensors));
    }
    Ok((out, unnamed))
}

/// Writes the samples family by family.
pub fn encode(mut samples: Vec<Sample>, w: &mut MetricWriter<'_>) {
    samples.sort_by(|a, b| a.family.cmp(&b.family));
    let mut current: Option<&str> = None;
    for s in &samples {
        if current != Some(s.family.as_str()) {
            w.dynamic_family(s.kind, &s.family, s.help);
            current = Some(&s.family);
        }
        let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        w.dynamic_series(&s.family, &labels, Number::Float(s.value));
    }
}

pub struct Hwmon {
    class: PathBuf,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::blocking(Hwmon {
        class: s.system.sysfs.join("class/hwmon"),
    })))
}

impl Collector for Hwmon {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let (samples, unnamed) = match read(&self.class) {
            Ok(r) => r,
            // No hwmon class (a virtual machine): no sensors.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CollectError::read(&self.class, e)),
        };
        encode(samples, w);
        match unnamed.first() {
            None => Ok(()),
            Some(first) => Err(CollectError::Partial {
                what: "hwmon chips",
                failed: unnamed.len(),
                total: unnamed.len(),
                first: format!("{first}: no device, name or directory to name it by"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(explode("temp1_input"), Some(("temp", 1, "input")));
        assert_eq!(explode("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(explode("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(explode("temp"), Some(("temp", 0, "")));
        assert_eq!(explode("temp_1x"), Some(("temp", 0, "1x")));
        assert_eq!(explode("1abc"), None);
        assert_eq!(explode("temp1x"), None);
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean("0000:00:18.3"), "0000:00:18_3");
        assert_eq!(clean("BAT0\n"), "bat0");
        assert_eq!(clean("-coretemp.0-"), "coretemp_0");
    }
}
