//! `udp_queues`: memory the kernel holds for UDP datagrams waiting to be sent or read,
//! summed from /proc/net/udp and udp6, as node_exporter's udp_queues collector names it
//! (`node_udp_queues{ip="v4",queue="rx"}`).


use super::parse::{fields, lines};
use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::exposition::{Family, MetricWriter};
use crate::procfile::{Render, SharedProcFile};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Memory held for UDP datagrams (/proc/net/udp, udp6).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["udp_queues"];

/// Its section, `system.udp_queues:`.
pub type Config = super::CollectorToggle;

pub static QUEUES: Family = Family::gauge(
    "node_udp_queues",
    "Number of allocated memory in the kernel for UDP datagrams in bytes.",
);

pub static SERVED: Served = Served::families(&[&QUEUES]);

/// The sums of the `tx_queue:rx_queue` column (hexadecimal) below the header.
pub fn sum(data: &[u8]) -> (u64, u64) {
    let mut tx = 0u64;
    let mut rx = 0u64;
    for (_, line) in lines(data).skip(1) {
        let Some(queues) = fields(line).nth(4) else {
            continue;
        };
        let Some((t, r)) = std::str::from_utf8(queues)
            .ok()
            .and_then(|q| q.split_once(':'))
        else {
            continue;
        };
        tx = tx.saturating_add(u64::from_str_radix(t, 16).unwrap_or(0));
        rx = rx.saturating_add(u64::from_str_radix(r, 16).unwrap_or(0));
    }
    (tx, rx)
}

pub struct UdpQueues {
    /// Kept open: the kernel renders them afresh on every read from offset 0.
    files: [(SharedProcFile, &'static str); 2],
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    let net = s.system.procfs.join("net");
    // A socket's line is 128 bytes over IPv4, under 200 over IPv6.
    let render = Render::Records(256).if_procfs(super::is_procfs(&s.system.procfs));
    Ok(Some(super::procfs_only(&s.system.procfs, UdpQueues {
        files: [
            (SharedProcFile::new(net.join("udp")).rendered(render), "v4"),
            (SharedProcFile::new(net.join("udp6")).rendered(render), "v6"),
        ],
    })))
}

impl Collector for UdpQueues {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        for (file, ip) in &self.files {
            let sums = file.with(|path, data| match data {
                Ok(d) => Ok(Some(sum(d))),
                // No IPv6.
                Err(e) if *ip == "v6" && e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(CollectError::read(path, e)),
            })?;
            if let Some((tx, rx)) = sums {
                w.sample_u64(&QUEUES, &[("ip", ip), ("queue", "rx")], rx);
                w.sample_u64(&QUEUES, &[("ip", ip), ("queue", "tx")], tx);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn queues_are_summed() {
        let data = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n  1: 00000000:0044 00000000:0000 07 00000010:00000200 00:00000000 00000000     0        0 1 2 0 0\n  2: 00000000:0045 00000000:0000 07 00000001:00000000 00:00000000 00000000     0        0 1 2 0 0\n";
        assert_eq!(super::sum(data), (0x11, 0x200));
    }
}
