//! `netclass`: each network device's state from /sys/class/net (up, carrier, MTU,
//! speed, addresses, …), as node_exporter's netclass collector names it, and the one
//! counter of its netdev collector that /proc/net/dev lacks (`rx_nohandler`). An attribute
//! the device does not have (a virtual device's speed, a down device's carrier: the
//! kernel answers EINVAL) is left out, as there.
//!
//! The attribute files stay open between scrapes and are read again from offset 0,
//! which makes sysfs render them afresh: one system call per attribute instead of four.
//! They are opened again when the list of devices changes, or a device is removed and
//! created again under its name (its entry in the class directory is another then).

use std::fs::File;
use std::os::unix::fs::{DirEntryExt, FileExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{AnyCollector, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};

macro_rules! gauge {
    ($id:ident, $name:literal, $help:literal) => {
        pub static $id: Family = Family::gauge($name, $help);
    };
}
macro_rules! counter {
    ($id:ident, $name:literal, $help:literal) => {
        pub static $id: Family = Family::counter($name, $help);
    };
}

gauge!(
    ADDRESS_ASSIGN_TYPE,
    "node_network_address_assign_type",
    "Network device property: address_assign_type"
);
gauge!(
    CARRIER,
    "node_network_carrier",
    "Network device property: carrier"
);
counter!(
    CARRIER_CHANGES,
    "node_network_carrier_changes_total",
    "Network device property: carrier_changes_total"
);
counter!(
    CARRIER_DOWN,
    "node_network_carrier_down_changes_total",
    "Network device property: carrier_down_changes_total"
);
counter!(
    CARRIER_UP,
    "node_network_carrier_up_changes_total",
    "Network device property: carrier_up_changes_total"
);
gauge!(
    DEVICE_ID,
    "node_network_device_id",
    "Network device property: device_id"
);
gauge!(
    DORMANT,
    "node_network_dormant",
    "Network device property: dormant"
);
gauge!(
    FLAGS,
    "node_network_flags",
    "Network device property: flags"
);
gauge!(
    IFACE_ID,
    "node_network_iface_id",
    "Network device property: iface_id"
);
gauge!(
    IFACE_LINK,
    "node_network_iface_link",
    "Network device property: iface_link"
);
gauge!(
    IFACE_LINK_MODE,
    "node_network_iface_link_mode",
    "Network device property: iface_link_mode"
);
gauge!(
    INFO,
    "node_network_info",
    "Non-numeric data from /sys/class/net/<iface>, value is always 1."
);
gauge!(
    MTU,
    "node_network_mtu_bytes",
    "Network device property: mtu_bytes"
);
gauge!(
    NAME_ASSIGN_TYPE,
    "node_network_name_assign_type",
    "Network device property: name_assign_type"
);
gauge!(
    NET_DEV_GROUP,
    "node_network_net_dev_group",
    "Network device property: net_dev_group"
);
gauge!(
    PROTOCOL_TYPE,
    "node_network_protocol_type",
    "Network device property: protocol_type"
);
gauge!(
    SPEED,
    "node_network_speed_bytes",
    "Network device property: speed_bytes"
);
gauge!(
    TX_QUEUE_LEN,
    "node_network_transmit_queue_length",
    "Network device property: transmit_queue_length"
);
gauge!(
    UP,
    "node_network_up",
    "Value is 1 if operstate is 'up', 0 otherwise."
);

/// node_exporter's netdev collector has it from netlink; /proc/net/dev has no column
/// for it, sysfs a file per device.
pub static RX_NOHANDLER: Family = Family::counter(
    "node_network_receive_nohandler_total",
    "Packets the device received and no protocol handler took (statistics/rx_nohandler).",
);

pub static SERVED: Served = Served::families(&[
    &RX_NOHANDLER,
    &ADDRESS_ASSIGN_TYPE,
    &CARRIER,
    &CARRIER_CHANGES,
    &CARRIER_DOWN,
    &CARRIER_UP,
    &DEVICE_ID,
    &DORMANT,
    &FLAGS,
    &IFACE_ID,
    &IFACE_LINK,
    &IFACE_LINK_MODE,
    &INFO,
    &MTU,
    &NAME_ASSIGN_TYPE,
    &NET_DEV_GROUP,
    &PROTOCOL_TYPE,
    &SPEED,
    &TX_QUEUE_LEN,
    &UP,
]);

/// The numeric attributes: file, family, and how a value becomes the sample (speed is
/// in Mbit/s, the sample in bytes per second).
const NUMERIC: &[(&str, &Family, i64)] = &[
    ("addr_assign_type", &ADDRESS_ASSIGN_TYPE, 1),
    ("carrier", &CARRIER, 1),
    ("carrier_changes", &CARRIER_CHANGES, 1),
    ("carrier_down_count", &CARRIER_DOWN, 1),
    ("carrier_up_count", &CARRIER_UP, 1),
    ("dev_id", &DEVICE_ID, 1),
    ("dormant", &DORMANT, 1),
    ("flags", &FLAGS, 1),
    ("ifindex", &IFACE_ID, 1),
    ("iflink", &IFACE_LINK, 1),
    ("link_mode", &IFACE_LINK_MODE, 1),
    ("mtu", &MTU, 1),
    ("name_assign_type", &NAME_ASSIGN_TYPE, 1),
    ("netdev_group", &NET_DEV_GROUP, 1),
    ("type", &PROTOCOL_TYPE, 1),
    ("speed", &SPEED, 125_000),
    ("tx_queue_len", &TX_QUEUE_LEN, 1),
    ("statistics/rx_nohandler", &RX_NOHANDLER, 1),
];

/// A number as sysfs writes it: decimal, negative, or `0x` hexadecimal.
pub fn number(text: &str) -> Option<i64> {
    let t = text.trim();
    match t.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => t.parse().ok(),
    }
}

/// One device as read.
#[derive(Debug, Default)]
pub struct Device {
    pub name: String,
    pub numbers: Vec<Option<i64>>,
    pub operstate: String,
    pub address: String,
    pub broadcast: String,
    pub duplex: String,
    pub ifalias: String,
}

/// The text attributes, after the numeric ones.
const TEXT: &[&str] = &["operstate", "address", "broadcast", "duplex", "ifalias"];

/// One device's attribute files, open: numeric ones first, then the text ones.
pub struct DeviceFiles {
    name: String,
    /// The inode of the device's entry in the class directory when the files were
    /// opened: a device removed and created again under its name has a new one, and
    /// the files of the old are not read for it.
    ino: u64,
    files: Vec<Option<File>>,
}

impl DeviceFiles {
    pub fn open(dir: &Path, name: &str) -> DeviceFiles {
        Self::open_entry(dir, name, 0)
    }

    fn open_entry(dir: &Path, name: &str, ino: u64) -> DeviceFiles {
        DeviceFiles {
            name: name.to_owned(),
            ino,
            files: NUMERIC
                .iter()
                .map(|(f, _, _)| *f)
                .chain(TEXT.iter().copied())
                // Only regular files, opened without waiting: another `system.sysfs`
                // tree must not stall the scrape with a FIFO.
                .map(|f| crate::regular::open(&dir.join(f)).ok())
                .collect(),
        }
    }

    /// The attribute at `i` as text, read afresh; `None` when the device does not have
    /// it (EINVAL, or no such file).
    fn text(&self, i: usize, buf: &mut [u8]) -> Option<String> {
        let file = self.files.get(i)?.as_ref()?;
        let n = file.read_at(buf, 0).ok()?;
        let s = std::str::from_utf8(&buf[..n]).ok()?;
        Some(s.trim_end_matches('\n').to_owned())
    }

    pub fn read(&self) -> Device {
        let mut buf = [0u8; 512];
        let numbers = NUMERIC
            .iter()
            .enumerate()
            .map(|(i, (_, _, factor))| {
                self.text(i, &mut buf)
                    .and_then(|t| number(&t))
                    .map(|v| v.saturating_mul(*factor))
            })
            .collect();
        let mut text = |k: usize| self.text(NUMERIC.len() + k, &mut buf).unwrap_or_default();
        Device {
            name: self.name.clone(),
            numbers,
            operstate: text(0),
            address: text(1),
            broadcast: text(2),
            duplex: text(3),
            ifalias: text(4),
        }
    }
}

/// Reads a device's attributes once.
pub fn read_device(dir: &Path, name: &str) -> Device {
    DeviceFiles::open(dir, name).read()
}

/// Writes the devices family by family.
pub fn encode(devices: &[Device], w: &mut MetricWriter<'_>) {
    for (i, (_, family, _)) in NUMERIC.iter().enumerate() {
        for d in devices {
            if let Some(v) = d.numbers.get(i).copied().flatten() {
                w.sample(family, &[("device", &d.name)], v as f64);
            }
        }
    }
    for d in devices {
        w.sample_u64(
            &INFO,
            &[
                ("address", &d.address),
                ("broadcast", &d.broadcast),
                ("device", &d.name),
                ("duplex", &d.duplex),
                ("ifalias", &d.ifalias),
                ("operstate", &d.operstate),
            ],
            1,
        );
    }
    for d in devices {
        w.sample_u64(&UP, &[("device", &d.name)], u64::from(d.operstate == "up"));
    }
}

pub struct Netclass {
    dir: PathBuf,
    /// The devices' open attribute files, by name, as last listed.
    open: Mutex<Vec<DeviceFiles>>,
    timeout: Duration,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = &s.system.netclass;
    Ok(super::blocking(c.enabled, || Netclass {
        dir: s.system.sysfs.join("class/net"),
        open: Mutex::new(Vec::new()),
        timeout: c.timeout.get(),
    }))
}

impl Collector for Netclass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn served(&self) -> Served {
        SERVED
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn may_block(&self) -> bool {
        true
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| CollectError::read(&self.dir, e))?;
        let mut names: Vec<(String, u64)> = entries
            .flatten()
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.ino())))
            .collect();
        names.sort();
        let mut open = match self.open.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        if !open
            .iter()
            .map(|d| (&d.name, d.ino))
            .eq(names.iter().map(|(n, i)| (n, *i)))
        {
            *open = names
                .iter()
                .map(|(n, ino)| DeviceFiles::open_entry(&self.dir.join(n), n, *ino))
                .collect();
        }
        let devices: Vec<Device> = open.iter().map(DeviceFiles::read).collect();
        drop(open);
        encode(&devices, w);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    #[test]
    fn sysfs_numbers() {
        assert_eq!(number("0x1003\n"), Some(4099));
        assert_eq!(number("-1"), Some(-1));
        assert_eq!(number("1500"), Some(1500));
        assert_eq!(number(""), None);
    }

    #[test]
    fn a_device_tree_becomes_node_exporter_s_series() {
        let dir = tempfile::tempdir().unwrap();
        let eth = dir.path().join("eth0");
        std::fs::create_dir(&eth).unwrap();
        for (f, v) in [
            ("operstate", "up\n"),
            ("mtu", "1400\n"),
            ("speed", "1000\n"),
            ("flags", "0x1003\n"),
            ("address", "02:fc:00:00:00:01\n"),
            ("statistics/rx_nohandler", "7\n"),
        ] {
            std::fs::create_dir_all(eth.join(f).parent().unwrap()).unwrap();
            std::fs::write(eth.join(f), v).unwrap();
        }
        let d = read_device(&eth, "eth0");
        let mut buf = Vec::new();
        encode(&[d], &mut MetricWriter::new(&mut buf, Format::Text));
        let text = String::from_utf8(buf).unwrap();
        for want in [
            "node_network_mtu_bytes{device=\"eth0\"} 1400\n",
            "node_network_speed_bytes{device=\"eth0\"} 125000000\n",
            "node_network_flags{device=\"eth0\"} 4099\n",
            "node_network_up{device=\"eth0\"} 1\n",
            "node_network_receive_nohandler_total{device=\"eth0\"} 7\n",
            "node_network_info{address=\"02:fc:00:00:00:01\",broadcast=\"\",device=\"eth0\",duplex=\"\",ifalias=\"\",operstate=\"up\"} 1\n",
        ] {
            assert!(text.contains(want), "{want} not in {text}");
        }
        assert!(!text.contains("node_network_carrier{"), "{text}");
    }

    #[test]
    fn a_device_created_again_under_its_name_is_read_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("class");
        std::fs::create_dir(&class).unwrap();
        let device = |mtu: &str| {
            std::fs::create_dir(class.join("eth0")).unwrap();
            std::fs::write(class.join("eth0/mtu"), mtu).unwrap();
        };
        let scrape = |c: &Netclass| {
            let mut buf = Vec::new();
            c.collect(&mut MetricWriter::new(&mut buf, Format::Text))
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        let c = Netclass {
            dir: class.clone(),
            open: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(1),
        };
        device("1500\n");
        assert!(scrape(&c).contains("node_network_mtu_bytes{device=\"eth0\"} 1500\n"));
        // The old device leaves the class directory (its files stay, as an open
        // attribute of a removed device does) and a new one takes its name.
        std::fs::rename(class.join("eth0"), dir.path().join("removed")).unwrap();
        device("1400\n");
        let text = scrape(&c);
        assert!(
            text.contains("node_network_mtu_bytes{device=\"eth0\"} 1400\n"),
            "{text}"
        );
    }

    #[test]
    fn a_fifo_in_place_of_an_attribute_is_passed_over_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let eth = dir.path().join("eth0");
        std::fs::create_dir(&eth).unwrap();
        std::fs::write(eth.join("mtu"), "1500\n").unwrap();
        crate::sys::mkfifo(&eth.join("speed"), 0o644).unwrap();
        let d = read_device(&eth, "eth0");
        let mut buf = Vec::new();
        encode(&[d], &mut MetricWriter::new(&mut buf, Format::Text));
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("node_network_mtu_bytes{device=\"eth0\"} 1500\n"));
        assert!(!text.contains("node_network_speed_bytes"), "{text}");
    }
}
