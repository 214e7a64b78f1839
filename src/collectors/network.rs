//! `network`: /proc/net/dev as node_exporter's netdev collector exposes it.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::parse::{fields, lines, str_of, u64_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};
use crate::value::{DurationValue, NameFilter, Pattern};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Bytes, packets, errors and drops per network device (/proc/net/dev).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["netdev"];

/// Its section, `system.network:`.
pub type Config = NetworkConfig;

/// `system.network:`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    pub devices_exclude: Option<Pattern>,
    pub devices_include: Option<Pattern>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            devices_exclude: None,
            devices_include: None,
        }
    }
}

macro_rules! counters {
    ($($id:ident => $name:literal, $help:literal;)*) => {
        $(pub static $id: Family = Family::counter($name, $help);)*
    };
}

counters! {
    RX_BYTES => "node_network_receive_bytes_total", "Bytes received by the device.";
    RX_PACKETS => "node_network_receive_packets_total", "Packets received by the device.";
    RX_ERRS => "node_network_receive_errs_total", "Receive errors detected by the device driver.";
    RX_DROP => "node_network_receive_drop_total", "Received packets dropped by the device driver.";
    RX_FIFO => "node_network_receive_fifo_total", "Receive FIFO buffer errors.";
    RX_FRAME => "node_network_receive_frame_total", "Packet framing errors on receive.";
    RX_COMPRESSED => "node_network_receive_compressed_total", "Compressed packets received.";
    RX_MULTICAST => "node_network_receive_multicast_total", "Multicast frames received.";
    TX_BYTES => "node_network_transmit_bytes_total", "Bytes transmitted by the device.";
    TX_PACKETS => "node_network_transmit_packets_total", "Packets transmitted by the device.";
    TX_ERRS => "node_network_transmit_errs_total", "Transmit errors detected by the device driver.";
    TX_DROP => "node_network_transmit_drop_total", "Transmitted packets dropped by the device driver.";
    TX_FIFO => "node_network_transmit_fifo_total", "Transmit FIFO buffer errors.";
    TX_COLLS => "node_network_transmit_colls_total", "Collisions detected on the interface.";
    TX_CARRIER => "node_network_transmit_carrier_total", "Carrier losses detected by the device driver.";
    TX_COMPRESSED => "node_network_transmit_compressed_total", "Compressed packets transmitted.";
}

/// /proc/net/dev's sixteen columns after the device name, in order.
const COLUMNS: [&Family; 16] = [
    &RX_BYTES,
    &RX_PACKETS,
    &RX_ERRS,
    &RX_DROP,
    &RX_FIFO,
    &RX_FRAME,
    &RX_COMPRESSED,
    &RX_MULTICAST,
    &TX_BYTES,
    &TX_PACKETS,
    &TX_ERRS,
    &TX_DROP,
    &TX_FIFO,
    &TX_COLLS,
    &TX_CARRIER,
    &TX_COMPRESSED,
];

pub fn parse<'a>(
    data: &'a [u8],
    filter: &NameFilter,
    errors: &mut LineErrors,
) -> Vec<(&'a str, [u64; 16])> {
    let mut out = Vec::new();
    // A device twice (not in a kernel's file, but in a copy) would repeat its series.
    let mut seen = std::collections::HashSet::new();
    // The first two lines are column headers.
    for (n, line) in lines(data).filter(|(n, _)| *n > 2) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            errors.record(n, "no `device:` prefix");
            continue;
        };
        let Some(device) = str_of(&line[..colon]).map(str::trim) else {
            errors.record(n, "device name is not UTF-8");
            continue;
        };
        if !filter.accepts(device) {
            continue;
        }
        let mut values = [0u64; 16];
        let mut count = 0;
        for (i, v) in fields(&line[colon + 1..]).enumerate() {
            if i >= 16 {
                count = 17;
                break;
            }
            match u64_of(v) {
                Some(v) => values[i] = v,
                None => break,
            }
            count = i + 1;
        }
        if count != 16 || device.is_empty() {
            errors.record(n, "expected sixteen counters");
            continue;
        }
        if !seen.insert(device) {
            errors.record(n, "repeats an earlier device");
            continue;
        }
        out.push((device, values));
    }
    out
}

pub fn encode(devices: &[(&str, [u64; 16])], w: &mut MetricWriter<'_>) {
    for (col, family) in COLUMNS.iter().enumerate() {
        for (device, values) in devices {
            w.sample_u64(family, &[("device", device)], values[col]);
        }
    }
}

pub struct Network {
    on_procfs: bool,
    dev: SharedProcFile,
    filter: NameFilter,
}

impl Network {
    pub fn new(procfs: &Path, cfg: &NetworkConfig) -> Self {
        let on_procfs = super::is_procfs(procfs);
        Network {
            on_procfs,
            dev: SharedProcFile::new(procfs.join("net/dev"))
                .rendered(Render::Records(1024).if_procfs(on_procfs)),
            filter: NameFilter::new(cfg.devices_include.clone(), cfg.devices_exclude.clone()),
        }
    }
}

/// Every family this collector writes.
pub static SERVED: Served = Served::families(&COLUMNS);

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.network;
    Ok(Some(super::blocking(Network::new(&s.system.procfs, c))))
}

impl Collector for Network {
    fn may_block(&self) -> bool {
        !self.on_procfs
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        self.dev.with(|path, data| {
            let data = data.map_err(|e| CollectError::read(path, e))?;
            let mut errors = LineErrors::default();
            let devices = parse(data, &self.filter, &mut errors);
            encode(&devices, w);
            errors.into_result(path)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    /// /proc/net/dev of a Debian 12 host, with the header lines and a line whose
    /// counter runs into the colon as old kernels print it.
    const DEBIAN12_NET_DEV: &[u8] = b"Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 1296    16    0    0    0     0          0         0     1296      16    0    0    0     0       0          0
  eth0:123456789 98765    1    2    0     0          0         3 987654321   54321    0    4    0     0       0          0
 bad0: 1 2 3
";

    #[test]
    fn parses_proc_net_dev() {
        let mut e = LineErrors::default();
        let d = parse(DEBIAN12_NET_DEV, &NameFilter::new(None, None), &mut e);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].0, "eth0");
        assert_eq!(d[1].1[0], 123456789);
        assert_eq!(d[1].1[8], 987654321);
        assert!(e
            .into_result(Path::new("n"))
            .unwrap_err()
            .to_string()
            .contains("line 5"));
        let mut buf = Vec::new();
        encode(&d, &mut MetricWriter::new(&mut buf, Format::Text));
        let out = String::from_utf8(buf).unwrap();
        assert!(
            out.contains("node_network_transmit_drop_total{device=\"eth0\"} 4\n"),
            "{out}"
        );
    }

    #[test]
    fn device_filters() {
        let exclude = NameFilter::new(
            None,
            Some(crate::value::Pattern::Regex(
                regex::Regex::new("^lo$").unwrap(),
            )),
        );
        let d = parse(DEBIAN12_NET_DEV, &exclude, &mut LineErrors::default());
        assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), ["eth0"]);
    }
}
