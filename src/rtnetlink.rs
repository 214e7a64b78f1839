//! The kernel's list of network devices over rtnetlink (`RTM_GETLINK` as a dump): one
//! request and a few reads give every device's state, where sysfs takes one read per
//! device and attribute. The netclass collector takes what the list has from here and
//! reads sysfs only for the rest.
//!
//! The wire format is netlink's (netlink(7), rtnetlink(7)): each message a 16-byte
//! header (length, type, flags, sequence, port), an `ifinfomsg` (family, type, index,
//! flags, change), then attributes, each a 4-byte header (length, type) and its value,
//! padded to 4 bytes; all in the host's byte order.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

const HEADER: usize = 16;
const IFINFO: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
/// The list changed while it was dumped: what came is not one moment's.
const NLM_F_DUMP_INTR: u16 = 0x10;

const IFLA_ADDRESS: u16 = 1;
const IFLA_BROADCAST: u16 = 2;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_TXQLEN: u16 = 13;
const IFLA_OPERSTATE: u16 = 16;
const IFLA_LINKMODE: u16 = 17;
const IFLA_IFALIAS: u16 = 20;
const IFLA_STATS64: u16 = 23;
const IFLA_GROUP: u16 = 27;
const IFLA_CARRIER: u16 = 33;
const IFLA_CARRIER_CHANGES: u16 = 35;
const IFLA_CARRIER_UP_COUNT: u16 = 47;
const IFLA_CARRIER_DOWN_COUNT: u16 = 48;
/// `rx_nohandler`'s place among the 64-bit counters of `struct rtnl_link_stats64`.
const STATS64_RX_NOHANDLER: usize = 23;

/// One device as the kernel lists it. The numbers are as the kernel holds them; a
/// value the message lacks (an older kernel's, a device without an address) is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    pub name: String,
    pub index: i32,
    /// `ifi_type`: the ARPHRD_ hardware type.
    pub kind: u16,
    /// `ifi_flags`: the device's flags as `ip link` shows them (RUNNING, LOWER_UP and
    /// DORMANT worked out from its state).
    pub flags: u32,
    pub mtu: Option<u32>,
    /// The device this one sends through, when that is another (IFLA_LINK).
    pub link: Option<i32>,
    pub tx_queue_len: Option<u32>,
    pub operstate: Option<u8>,
    pub link_mode: Option<u8>,
    pub group: Option<u32>,
    pub carrier: Option<u8>,
    pub carrier_changes: Option<u32>,
    pub carrier_up: Option<u32>,
    pub carrier_down: Option<u32>,
    pub address: Option<Vec<u8>>,
    pub broadcast: Option<Vec<u8>>,
    pub alias: Option<Vec<u8>>,
    pub rx_nohandler: Option<u64>,
}

/// A NETLINK_ROUTE socket, kept for the next dump.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// A socket whose reads give up after `timeout`. Fails where the address family is
    /// not allowed (a unit's `RestrictAddressFamilies=` without AF_NETLINK).
    pub fn open(timeout: Duration) -> io::Result<Socket> {
        Ok(Socket {
            fd: crate::sys::netlink_route_socket(timeout)?,
            seq: 0,
            buf: vec![0; 64 << 10],
        })
    }

    /// Every device in this network namespace. After an error the socket may hold the
    /// rest of the answer: drop it and open another.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = [0u8; HEADER + IFINFO];
        req[0..4].copy_from_slice(&((HEADER + IFINFO) as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&RTM_GETLINK.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // The ifinfomsg after the header is zero: family AF_UNSPEC, every device.
        crate::sys::send_to_kernel(self.fd.as_fd(), &req)?;
        let mut links = Vec::new();
        loop {
            let n = crate::sys::recv_datagram(self.fd.as_fd(), &mut self.buf)?;
            if n == 0 {
                return Err(bad("the socket closed in the middle of the list"));
            }
            if parse(&self.buf[..n], self.seq, &mut links)? {
                return Ok(links);
            }
        }
    }
}

fn bad(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Adds the devices of one read's messages to `links`; true once the list has ended.
pub fn parse(mut data: &[u8], seq: u32, links: &mut Vec<Link>) -> io::Result<bool> {
    while data.len() >= HEADER {
        let len = u32_at(data, 0).unwrap_or(0) as usize;
        let kind = u16_at(data, 4);
        let flags = u16_at(data, 6);
        let msg_seq = u32_at(data, 8).unwrap_or(0);
        if len < HEADER || len > data.len() {
            return Err(bad("a message longer than the read"));
        }
        let body = &data[HEADER..len];
        data = &data[align(len).min(data.len())..];
        if msg_seq != seq {
            continue;
        }
        if flags & NLM_F_DUMP_INTR != 0 {
            return Err(bad("the device list changed while it was read"));
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let code = ne(body, 0).map_or(-libc::EIO, i32::from_ne_bytes);
                if code == 0 {
                    continue;
                }
                return Err(io::Error::from_raw_os_error(code.saturating_neg()));
            }
            RTM_NEWLINK => links.push(link(body)?),
            _ => {}
        }
    }
    Ok(false)
}

/// The native-endian number at `at` in `b`, if `b` holds it.
fn ne<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}
fn u16_at(b: &[u8], at: usize) -> u16 {
    ne(b, at).map_or(0, u16::from_ne_bytes)
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    ne(b, at).map(u32::from_ne_bytes)
}

fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One RTM_NEWLINK message's body.
fn link(body: &[u8]) -> io::Result<Link> {
    if body.len() < IFINFO {
        return Err(bad("a device message shorter than its header"));
    }
    let mut l = Link {
        kind: u16_at(body, 2),
        index: ne(body, 4).map_or(0, i32::from_ne_bytes),
        flags: u32_at(body, 8).unwrap_or(0),
        ..Link::default()
    };
    let mut attrs = &body[IFINFO..];
    while attrs.len() >= 4 {
        let len = usize::from(u16_at(attrs, 0));
        // The nested and byte-order bits are not part of the type.
        let kind = u16_at(attrs, 2) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return Err(bad("an attribute longer than its message"));
        }
        let v = &attrs[4..len];
        attrs = &attrs[align(len).min(attrs.len())..];
        let u32_of = || u32_at(v, 0);
        let u8_of = || v.first().copied();
        match kind {
            IFLA_IFNAME => l.name = String::from_utf8_lossy(until_nul(v)).into_owned(),
            IFLA_ADDRESS => l.address = Some(v.to_vec()),
            IFLA_BROADCAST => l.broadcast = Some(v.to_vec()),
            IFLA_MTU => l.mtu = u32_of(),
            IFLA_LINK => l.link = u32_of().map(|n| n as i32),
            IFLA_TXQLEN => l.tx_queue_len = u32_of(),
            IFLA_OPERSTATE => l.operstate = u8_of(),
            IFLA_LINKMODE => l.link_mode = u8_of(),
            IFLA_IFALIAS => l.alias = Some(until_nul(v).to_vec()),
            IFLA_GROUP => l.group = u32_of(),
            IFLA_CARRIER => l.carrier = u8_of(),
            IFLA_CARRIER_CHANGES => l.carrier_changes = u32_of(),
            IFLA_CARRIER_UP_COUNT => l.carrier_up = u32_of(),
            IFLA_CARRIER_DOWN_COUNT => l.carrier_down = u32_of(),
            IFLA_STATS64 => {
                let at = STATS64_RX_NOHANDLER * 8;
                l.rx_nohandler = ne(v, at).map(u64::from_ne_bytes);
            }
            _ => {}
        }
    }
    Ok(l)
}

fn until_nul(v: &[u8]) -> &[u8] {
    v.split(|&b| b == 0).next().unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
        out.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(value);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&flags.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn a_device_message_and_the_end_of_the_list() {
        let mut body = vec![0u8, 0];
        body.extend_from_slice(&1u16.to_ne_bytes());
        body.extend_from_slice(&7i32.to_ne_bytes());
        body.extend_from_slice(&0x11043u32.to_ne_bytes());
        body.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut body, IFLA_IFNAME, b"eth0\0");
        attr(&mut body, IFLA_MTU, &1500u32.to_ne_bytes());
        attr(&mut body, IFLA_ADDRESS, &[2, 0xfc, 0, 0, 0, 1]);
        attr(&mut body, IFLA_OPERSTATE, &[6]);
        let mut stats = vec![0u8; 25 * 8];
        stats[23 * 8..24 * 8].copy_from_slice(&9u64.to_ne_bytes());
        attr(&mut body, IFLA_STATS64, &stats);
        // A nested attribute the parser does not know: passed over.
        attr(&mut body, 26 | 0x8000, &[8, 0, 1, 0, 0, 0, 0, 0]);
        let mut data = message(RTM_NEWLINK, 2, 5, &body);
        // A message of an earlier request: not counted.
        data.extend(message(RTM_NEWLINK, 2, 4, &body));
        let mut links = Vec::new();
        assert!(!parse(&data, 5, &mut links).unwrap());
        assert_eq!(links.len(), 1);
        let l = &links[0];
        assert_eq!((l.name.as_str(), l.index, l.kind), ("eth0", 7, 1));
        assert_eq!(
            (l.flags, l.mtu, l.operstate),
            (0x11043, Some(1500), Some(6))
        );
        assert_eq!(l.address.as_deref(), Some(&[2, 0xfc, 0, 0, 0, 1][..]));
        assert_eq!((l.rx_nohandler, l.carrier), (Some(9), None));
        assert!(parse(&message(NLMSG_DONE, 2, 5, &[0; 4]), 5, &mut links).unwrap());
    }

    #[test]
    fn an_error_a_changed_list_and_a_short_message_are_errors() {
        let mut links = Vec::new();
        let e = parse(
            &message(NLMSG_ERROR, 0, 1, &(-13i32).to_ne_bytes()),
            1,
            &mut links,
        );
        assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EACCES));
        let intr = message(RTM_NEWLINK, NLM_F_DUMP_INTR, 1, &[0; IFINFO]);
        assert!(parse(&intr, 1, &mut links).is_err());
        let mut short = message(RTM_NEWLINK, 0, 1, &[0; IFINFO]);
        short[0] = 200;
        assert!(parse(&short, 1, &mut links).is_err());
        let mut attr_too_long = vec![0u8; IFINFO];
        attr_too_long.extend_from_slice(&[40, 0, 3, 0, b'x', 0, 0, 0]);
        assert!(parse(&message(RTM_NEWLINK, 0, 1, &attr_too_long), 1, &mut links).is_err());
    }

    #[test]
    fn the_live_list_has_the_loopback_device() {
        let mut s = Socket::open(Duration::from_secs(5)).unwrap();
        for _ in 0..2 {
            let links = s.links().unwrap();
            let lo = links.iter().find(|l| l.name == "lo").expect("lo is listed");
            assert_eq!(lo.kind, 772, "ARPHRD_LOOPBACK");
            assert!(lo.mtu.is_some() && lo.group.is_some() && lo.rx_nohandler.is_some());
        }
    }
}
