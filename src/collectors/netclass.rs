//! `netclass`: each network device's state from /sys/class/net (up, carrier, MTU,
//! speed, addresses, …), as node_exporter's netclass collector names it, and the one
//! counter of its netdev collector that /proc/net/dev lacks (`rx_nohandler`). An attribute
//! the device does not have (a virtual device's speed, a down device's carrier: the
//! kernel answers EINVAL) is left out, as there.
//!
//! Where `system.sysfs` is the real sysfs, most attributes come from the kernel's device
//! list over rtnetlink ([`crate::rtnetlink`]), one request for every device, with the
//! same values sysfs shows; sysfs is read for the six it lacks (address and name assign
//! types, device id, flags, speed, duplex). The device's index in sysfs, read when its
//! files are opened, must be the list entry's (a sysfs of another network namespace is
//! read whole). Where the netlink socket is not allowed, or the list cannot be had,
//! sysfs is read whole.
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

use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::rtnetlink::Link;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Each network device's state (/sys/class/net): up, carrier, MTU, speed.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["netclass"];

/// Its section, `system.netclass:`.
pub type Config = super::CollectorToggle;

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
#[derive(Debug, Default, PartialEq)]
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

/// Attribute files netclass keeps open between scrapes, over all devices: within it a
/// file is read again with one pread; past it, opened for each read and closed. The
/// descriptors the exporter holds do not grow with the number of devices (a host with a
/// few hundred veths would otherwise exhaust a service's default limit of 1,024).
pub const KEEP_OPEN: usize = 24;

/// The attributes read when the kernel's device list (rtnetlink) gives the rest.
const WITH_LINK: &[&str] = &[
    "addr_assign_type",
    "dev_id",
    "flags",
    "name_assign_type",
    "speed",
    "duplex",
];

/// The directory that holds devices' directories (sysfs's `devices/virtual/net`, a
/// network card's `net`), kept open while the devices read one after the other share
/// it: an attribute not kept open is then one short lookup from it, not a walk of its
/// whole path through the class directory's link. One at a time, so that the
/// descriptors held do not grow with the cards.
struct ParentDir {
    path: PathBuf,
    fd: Option<std::os::fd::OwnedFd>,
}

impl ParentDir {
    fn new() -> Self {
        ParentDir {
            path: PathBuf::new(),
            fd: None,
        }
    }

    fn fd(&mut self, path: &Path) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        if self.path != path {
            self.path = path.to_owned();
            self.fd = crate::regular::open_dir(path).ok();
        }
        self.fd.as_ref().map(|fd| fd.as_fd())
    }
}

/// One device's attribute files: numeric ones first, then the text ones; each kept open
/// while the budget lasts, else opened when read.
pub struct DeviceFiles {
    name: String,
    /// The device's directory, its links resolved when the files were opened: the
    /// directory that holds it, and its name there.
    parent: PathBuf,
    leaf: String,
    /// The inode of the device's entry in the class directory when the files were
    /// opened: a device removed and created again under its name has a new one, and
    /// the files of the old are not read for it.
    ino: u64,
    /// The attribute files kept open, by attribute (numeric ones, then text ones).
    files: Vec<Option<File>>,
    /// Its index when the files were opened: a device keeps its index while it exists.
    ifindex: Option<i64>,
}

/// Every attribute, numeric ones first, then the text ones.
fn attributes() -> impl Iterator<Item = &'static str> {
    NUMERIC.iter().map(|(f, _, _)| *f).chain(TEXT.iter().copied())
}

impl DeviceFiles {
    /// A device whose files are opened when read.
    pub fn open(dir: &Path, name: &str) -> DeviceFiles {
        Self::open_entry(dir, name, 0, &mut 0, false)
    }

    /// A device, keeping open what its reads use (the six that rtnetlink does not give
    /// when `with_link`, else every attribute) while `budget` lasts.
    fn open_entry(
        dir: &Path,
        name: &str,
        ino: u64,
        budget: &mut usize,
        with_link: bool,
    ) -> DeviceFiles {
        let real = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
        let (parent, leaf) = match (real.parent(), real.file_name().and_then(|l| l.to_str())) {
            (Some(parent), Some(leaf)) => (parent.to_owned(), leaf.to_owned()),
            _ => (PathBuf::from("/"), real.to_string_lossy().into_owned()),
        };
        let mut d = DeviceFiles {
            name: name.to_owned(),
            parent,
            leaf,
            ino,
            ifindex: None,
            files: attributes()
                .map(|f| {
                    let used = !with_link || WITH_LINK.contains(&f);
                    if !used || *budget == 0 {
                        return None;
                    }
                    let file = crate::regular::open(&dir.join(f)).ok()?;
                    *budget -= 1;
                    Some(file)
                })
                .collect(),
        };
        d.ifindex = NUMERIC
            .iter()
            .position(|(f, _, _)| *f == "ifindex")
            .and_then(|i| d.number(i, &mut [0u8; 64], &mut ParentDir::new()));
        d
    }

    /// The attribute at `i` as text, read afresh; `None` when the device does not have
    /// it (EINVAL, or no such file). A file not kept open is opened for the read.
    fn text(&self, i: usize, buf: &mut [u8], dir: &mut ParentDir) -> Option<String> {
        let n = match self.files.get(i)? {
            Some(file) => file.read_at(buf, 0).ok()?,
            None => {
                let name = attributes().nth(i)?;
                // Only regular files, opened without waiting: another `system.sysfs`
                // tree must not stall the scrape with a FIFO.
                let path = format!("{}/{name}", self.leaf);
                let file = crate::regular::open_at(dir.fd(&self.parent)?, &path).ok()?;
                file.read_at(buf, 0).ok()?
            }
        };
        let s = std::str::from_utf8(&buf[..n]).ok()?;
        Some(s.trim_end_matches('\n').to_owned())
    }

    /// The numeric attribute at `i`, read afresh, as its sample.
    fn number(&self, i: usize, buf: &mut [u8], dir: &mut ParentDir) -> Option<i64> {
        let factor = NUMERIC.get(i)?.2;
        self.text(i, buf, dir)
            .and_then(|t| number(&t))
            .map(|v| v.saturating_mul(factor))
    }

    /// The device with what `link`, the kernel's list entry of its name, says, and sysfs
    /// for what the list lacks: the same values [`DeviceFiles::read`] gives, from 6
    /// reads instead of 23. When the device's index in sysfs is not the entry's, the
    /// entry is another device's (another network namespace's): sysfs is read whole.
    pub fn read_with(&self, link: &Link) -> Device {
        self.read_with_in(link, &mut ParentDir::new())
    }

    /// As [`DeviceFiles::read_with`], opening files from `dir`.
    fn read_with_in(&self, link: &Link, dir: &mut ParentDir) -> Device {
        if self.ifindex != Some(i64::from(link.index)) {
            return self.read_in(dir);
        }
        let mut buf = [0u8; 512];
        // sysfs answers EINVAL for carrier and dormant unless the device is running,
        // which its UP flag says (both change together, under the same lock).
        let running = link.flags & libc::IFF_UP as u32 != 0;
        // sysfs writes these `unsigned int`s with "%d".
        let int = |n: Option<u32>| n.map(|n| i64::from(n as i32));
        let numbers = NUMERIC
            .iter()
            .enumerate()
            .map(|(i, (file, _, _))| match *file {
                "carrier" => link.carrier.filter(|_| running).map(i64::from),
                "carrier_changes" => int(link.carrier_changes),
                "carrier_down_count" => int(link.carrier_down),
                "carrier_up_count" => int(link.carrier_up),
                "dormant" => {
                    running.then_some(i64::from(link.flags & libc::IFF_DORMANT as u32 != 0))
                }
                "ifindex" => Some(i64::from(link.index)),
                "iflink" => Some(i64::from(link.link.unwrap_or(link.index))),
                "link_mode" => link.link_mode.map(i64::from),
                "mtu" => int(link.mtu),
                "netdev_group" => int(link.group),
                "type" => Some(i64::from(link.kind)),
                "tx_queue_len" => int(link.tx_queue_len),
                "statistics/rx_nohandler" => link.rx_nohandler.and_then(|n| i64::try_from(n).ok()),
                // addr_assign_type, dev_id, flags, name_assign_type, speed.
                _ => self.number(i, &mut buf, dir),
            })
            .collect();
        let mut text = |k: usize| {
            self.text(NUMERIC.len() + k, &mut buf, dir)
                .unwrap_or_default()
        };
        let operstate = match link.operstate {
            Some(state) => OPERSTATES
                .get(usize::from(state))
                .unwrap_or(&"unknown")
                .to_string(),
            None => text(0),
        };
        Device {
            name: self.name.clone(),
            numbers,
            operstate,
            address: link.address.as_deref().map(mac).unwrap_or_default(),
            broadcast: link.broadcast.as_deref().map(mac).unwrap_or_default(),
            duplex: text(3),
            ifalias: link
                .alias
                .as_deref()
                .and_then(|a| std::str::from_utf8(a).ok())
                .map(|a| a.trim_end_matches('\n').to_owned())
                .unwrap_or_default(),
        }
    }

    pub fn read(&self) -> Device {
        self.read_in(&mut ParentDir::new())
    }

    /// As [`DeviceFiles::read`], opening files from `dir`.
    fn read_in(&self, dir: &mut ParentDir) -> Device {
        let mut buf = [0u8; 512];
        let numbers = NUMERIC
            .iter()
            .enumerate()
            .map(|(i, (_, _, factor))| {
                self.text(i, &mut buf, dir)
                    .and_then(|t| number(&t))
                    .map(|v| v.saturating_mul(*factor))
            })
            .collect();
        let mut text = |k: usize| {
            self.text(NUMERIC.len() + k, &mut buf, dir)
                .unwrap_or_default()
        };
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

/// The names sysfs gives the kernel's operational states (RFC 2863), by number.
const OPERSTATES: [&str; 7] = [
    "unknown",
    "notpresent",
    "down",
    "lowerlayerdown",
    "testing",
    "dormant",
    "up",
];

/// A hardware address as sysfs writes it: lowercase hex bytes joined by colons.
fn mac(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
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
    // The administrative state, as node_exporter (1.6 and later) labels it: the UP flag.
    let flags = NUMERIC.iter().position(|(file, _, _)| *file == "flags");
    for d in devices {
        let adminstate = match flags.and_then(|i| d.numbers.get(i).copied().flatten()) {
            None => "unknown",
            Some(f) if f & i64::from(libc::IFF_UP) != 0 => "up",
            Some(_) => "down",
        };
        w.sample_u64(
            &INFO,
            &[
                ("address", &d.address),
                ("adminstate", adminstate),
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
    /// The rtnetlink socket, when `dir` is the real sysfs's.
    netlink: Mutex<Netlink>,
}

enum Netlink {
    /// Not to be used: a fixture tree, or the socket is not allowed.
    Off,
    /// To be opened by the next scrape.
    Closed,
    Open(crate::rtnetlink::Socket),
}

/// Whether `dir` is on a mounted sysfs.
fn is_sysfs(dir: &Path) -> bool {
    const SYSFS_MAGIC: i64 = 0x6265_6572;
    crate::sys::fs_type(dir).is_ok_and(|t| t == SYSFS_MAGIC)
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.netclass;
    let dir = s.system.sysfs.join("class/net");
    let netlink = if is_sysfs(&dir) {
        Netlink::Closed
    } else {
        Netlink::Off
    };
    Ok(Some(super::blocking(Netclass {
        dir,
        timeout: c.timeout.get(),
        open: Mutex::new(Vec::new()),
        netlink: Mutex::new(netlink),
    })))
}

impl Netclass {
    /// The kernel's device list, when rtnetlink is to be used and answers. A socket
    /// that cannot be opened turns it off for good (with one log line); a list that
    /// cannot be had closes the socket, and the next scrape opens another.
    fn links(&self) -> Option<Vec<Link>> {
        let mut netlink = match self.netlink.lock() {
            Ok(n) => n,
            Err(p) => p.into_inner(),
        };
        if let Netlink::Closed = *netlink {
            *netlink = match crate::rtnetlink::Socket::open(self.timeout) {
                Ok(socket) => Netlink::Open(socket),
                Err(e) => {
                    tracing::info!(
                        "netclass: no rtnetlink socket ({e}); every attribute is read from sysfs"
                    );
                    Netlink::Off
                }
            };
        }
        let Netlink::Open(socket) = &mut *netlink else {
            return None;
        };
        match socket.links() {
            Ok(links) => Some(links),
            Err(e) => {
                tracing::debug!("netclass: the device list over rtnetlink failed: {e}");
                *netlink = Netlink::Closed;
                None
            }
        }
    }
}

impl Collector for Netclass {
    fn may_block(&self) -> bool {
        true
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| CollectError::read(&self.dir, e))?;
        let mut names: Vec<(String, u64)> = entries
            .flatten()
            // Devices are links to their directories; a regular file there is not one
            // (bonding's `bonding_masters`), and node_exporter passes it over too.
            .filter(|e| !e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.ino())))
            .collect();
        names.sort();
        let mut open = match self.open.lock() {
            Ok(o) => o,
            Err(p) => p.into_inner(),
        };
        // The list is used only when it names the devices sysfs lists: else it is
        // another network namespace's.
        let links = self.links().filter(|links| {
            links.len() == names.len()
                && links.iter().all(|l| {
                    names
                        .binary_search_by(|(n, _)| n.as_str().cmp(&l.name))
                        .is_ok()
                })
        });
        let with_link = links.is_some();
        if !open
            .iter()
            .map(|d| (&d.name, d.ino))
            .eq(names.iter().map(|(n, i)| (n, *i)))
        {
            let mut budget = KEEP_OPEN;
            *open = names
                .iter()
                .map(|(n, ino)| {
                    DeviceFiles::open_entry(&self.dir.join(n), n, *ino, &mut budget, with_link)
                })
                .collect();
        }
        // Each device's list entry by name: one lookup each, not a scan of the list.
        let by_name: std::collections::HashMap<&str, &Link> = links
            .iter()
            .flatten()
            .map(|l| (l.name.as_str(), l))
            .collect();
        let mut parent = ParentDir::new();
        let devices: Vec<Device> = open
            .iter()
            .map(|d| match by_name.get(d.name.as_str()) {
                Some(link) => d.read_with_in(link, &mut parent),
                None => d.read_in(&mut parent),
            })
            .collect();
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
            "node_network_info{address=\"02:fc:00:00:00:01\",adminstate=\"up\",broadcast=\"\",device=\"eth0\",duplex=\"\",ifalias=\"\",operstate=\"up\"} 1\n",
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
            netlink: Mutex::new(Netlink::Off),
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
    fn a_regular_file_in_the_class_directory_is_not_a_device() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("eth0")).unwrap();
        std::fs::write(dir.path().join("eth0/mtu"), "1500\n").unwrap();
        std::fs::write(dir.path().join("bonding_masters"), "bond0\n").unwrap();
        let c = Netclass {
            dir: dir.path().to_owned(),
            open: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(1),
            netlink: Mutex::new(Netlink::Off),
        };
        let mut buf = Vec::new();
        c.collect(&mut MetricWriter::new(&mut buf, Format::Text))
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.contains("node_network_up{device=\"eth0\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("bonding_masters"), "{text}");
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

    #[test]
    fn the_kernel_list_gives_what_sysfs_gives_for_every_live_device() {
        let class = Path::new("/sys/class/net");
        assert!(is_sysfs(class));
        let mut socket = crate::rtnetlink::Socket::open(Duration::from_secs(5)).unwrap();
        let mut compared = 0;
        for entry in std::fs::read_dir(class).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let files = DeviceFiles::open(&class.join(&name), &name);
            // A counter may move between the two reads: a few tries.
            let same = (0..5).any(|_| {
                let links = socket.links().unwrap();
                let link = links.iter().find(|l| l.name == name).expect("listed");
                let (netlink, sysfs) = (files.read_with(link), files.read());
                netlink == sysfs || {
                    eprintln!("{name}: {netlink:?}\n  != {sysfs:?}");
                    false
                }
            });
            assert!(same, "{name}: netlink and sysfs differ");
            compared += 1;
        }
        assert!(compared >= 1, "no device to compare");
    }

    #[test]
    fn the_collector_on_the_real_sysfs_uses_the_kernel_list_and_writes_the_same() {
        let scrape = |c: &Netclass| {
            let mut buf = Vec::new();
            c.collect(&mut MetricWriter::new(&mut buf, Format::Text))
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        let collector = |netlink| Netclass {
            dir: PathBuf::from("/sys/class/net"),
            open: Mutex::new(Vec::new()),
            timeout: Duration::from_secs(5),
            netlink: Mutex::new(netlink),
        };
        let (with, without) = (collector(Netlink::Closed), collector(Netlink::Off));
        let same = (0..5).any(|_| scrape(&with) == scrape(&without));
        assert!(same, "{}\n!=\n{}", scrape(&with), scrape(&without));
        assert!(matches!(*with.netlink.lock().unwrap(), Netlink::Open(_)));
        assert!(scrape(&with).contains("node_network_mtu_bytes{device=\"lo\"}"));
    }

    #[test]
    fn a_list_entry_of_another_device_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let eth = dir.path().join("eth0");
        std::fs::create_dir(&eth).unwrap();
        for (f, v) in [("ifindex", "5\n"), ("mtu", "1400\n"), ("operstate", "up\n")] {
            std::fs::write(eth.join(f), v).unwrap();
        }
        let files = DeviceFiles::open(&eth, "eth0");
        let mut link = Link {
            name: "eth0".into(),
            index: 6,
            flags: libc::IFF_UP as u32,
            mtu: Some(9000),
            operstate: Some(2),
            ..Link::default()
        };
        assert_eq!(files.read_with(&link), files.read());
        link.index = 5;
        let d = files.read_with(&link);
        let mtu = NUMERIC.iter().position(|(f, _, _)| *f == "mtu").unwrap();
        assert_eq!((d.numbers[mtu], d.operstate.as_str()), (Some(9000), "down"));
    }

    #[test]
    fn hardware_addresses_are_written_as_sysfs_writes_them() {
        assert_eq!(mac(&[0x02, 0xfc, 0, 0xab, 0, 1]), "02:fc:00:ab:00:01");
        assert_eq!(mac(&[]), "");
    }
}
