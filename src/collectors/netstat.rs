//! `netstat`: the kernel's protocol counters from /proc/net/netstat, /proc/net/snmp and
//! /proc/net/snmp6, as node_exporter's netstat collector names them
//! (`node_netstat_Tcp_RetransSegs`, untyped) with its default field filter.
//!
//! /proc/net/netstat and /proc/net/snmp hold pairs of lines, names then values, both
//! starting with the protocol (`Tcp: ActiveOpens PassiveOpens …` / `Tcp: 1 2 …`);
//! /proc/net/snmp6 holds one `Icmp6InMsgs 4` per line, the protocol ending at its `6`.

use std::path::Path;

use super::parse::{fields, lines, str_of};
use super::{AnyCollector, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Kind, MetricWriter, Number};
use crate::procfile::SharedProcFile;

/// Every family this collector writes starts with this.
pub const PREFIX: &str = "node_netstat_";

pub static SERVED: Served = Served {
    families: &[],
    prefixes: &[PREFIX],
};

/// node_exporter's default `--collector.netstat.fields`, matched by hand: the error
/// counters, forwarding, octets, ICMP messages, listen queue and syncookie counters,
/// TCP segments, resets, retransmissions and connections, UDP datagrams.
pub fn wanted(proto: &str, field: &str) -> bool {
    let one_of = |names: &[&str]| names.contains(&field);
    field == "InErrors"
        || field == "InErrs"
        || (proto == "Ip" && field == "Forwarding")
        || (matches!(proto, "Ip6" | "IpExt") && one_of(&["InOctets", "OutOctets"]))
        || (matches!(proto, "Icmp" | "Icmp6") && one_of(&["InMsgs", "OutMsgs"]))
        || (proto == "TcpExt"
            && (field.starts_with("Listen")
                || field.starts_with("Syncookies")
                || one_of(&["TCPSynRetrans", "TCPTimeouts", "TCPOFOQueue", "TCPRcvQDrop"])))
        || (proto == "Tcp"
            && one_of(&[
                "ActiveOpens",
                "InSegs",
                "OutSegs",
                "OutRsts",
                "PassiveOpens",
                "RetransSegs",
                "CurrEstab",
            ]))
        || (matches!(proto, "Udp" | "Udp6")
            && one_of(&[
                "InDatagrams",
                "OutDatagrams",
                "NoPorts",
                "RcvbufErrors",
                "SndbufErrors",
            ]))
}

/// A counter of the kernel's: protocol, field and value as printed.
#[derive(Debug, PartialEq)]
pub struct Stat<'a> {
    pub proto: &'a str,
    pub field: &'a str,
    pub value: &'a str,
}

/// The name/value line pairs of /proc/net/netstat and /proc/net/snmp.
pub fn parse_pairs<'a>(data: &'a [u8], errors: &mut LineErrors, out: &mut Vec<Stat<'a>>) {
    let mut header: Option<(usize, &'a str, Vec<&'a str>)> = None;
    for (n, line) in lines(data) {
        let Some((proto, rest)) = str_of(line).and_then(|l| l.split_once(':')) else {
            errors.record(n, "no `Protocol:` prefix");
            continue;
        };
        match header.take() {
            Some((_, p, names)) if p == proto => {
                let values: Vec<&str> = rest.split_ascii_whitespace().collect();
                if values.len() != names.len() {
                    errors.record(n, "not as many values as names");
                    continue;
                }
                for (field, value) in names.into_iter().zip(values) {
                    if Number::parse(value).is_none() {
                        errors.record(n, "a value that is not a number");
                        continue;
                    }
                    out.push(Stat {
                        proto,
                        field,
                        value,
                    });
                }
            }
            Some((hn, _, _)) => {
                errors.record(hn, "a names line without its values line");
                header = Some((n, proto, rest.split_ascii_whitespace().collect()));
            }
            None => header = Some((n, proto, rest.split_ascii_whitespace().collect())),
        }
    }
    if let Some((hn, _, _)) = header {
        errors.record(hn, "a names line without its values line");
    }
}

/// The `Name value` lines of /proc/net/snmp6.
pub fn parse_snmp6<'a>(data: &'a [u8], errors: &mut LineErrors, out: &mut Vec<Stat<'a>>) {
    for (n, line) in lines(data) {
        let mut f = fields(line);
        let (Some(key), Some(value), None) = (f.next(), f.next(), f.next()) else {
            errors.record(n, "not a `Name value` line");
            continue;
        };
        let (Some(key), Some(value)) = (str_of(key), str_of(value)) else {
            errors.record(n, "not text");
            continue;
        };
        let Some(at) = key.find('6') else {
            errors.record(n, "no protocol ending in 6");
            continue;
        };
        if Number::parse(value).is_none() {
            errors.record(n, "a value that is not a number");
            continue;
        }
        out.push(Stat {
            proto: &key[..=at],
            field: &key[at + 1..],
            value,
        });
    }
}

/// Writes the wanted counters.
pub fn encode(stats: &[Stat<'_>], w: &mut MetricWriter<'_>) {
    let mut name = String::with_capacity(64);
    let mut help = String::with_capacity(64);
    for s in stats.iter().filter(|s| wanted(s.proto, s.field)) {
        let Some(value) = Number::parse(s.value) else {
            continue;
        };
        name.clear();
        name.push_str(PREFIX);
        name.push_str(s.proto);
        name.push('_');
        name.push_str(s.field);
        help.clear();
        help.push_str("Statistic ");
        help.push_str(s.proto);
        help.push_str(s.field);
        help.push('.');
        w.dynamic_sample(Kind::Untyped, &name, &help, value);
    }
}

pub struct Netstat {
    files: [(SharedProcFile, bool); 3],
    timeout: std::time::Duration,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<AnyCollector>, BuildError> {
    let c = &s.system.netstat;
    Ok(super::procfs_only(c.enabled, &s.system.procfs, || {
        let net = s.system.procfs.join("net");
        Netstat {
            files: [
                (SharedProcFile::new(net.join("netstat")), true),
                (SharedProcFile::new(net.join("snmp")), true),
                (SharedProcFile::new(net.join("snmp6")), false),
            ],
            timeout: c.timeout.get(),
        }
    }))
}

impl Collector for Netstat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn served(&self) -> Served {
        SERVED
    }

    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut result = Ok(());
        for (file, pairs) in &self.files {
            let r = file.with(|path: &Path, data| match data {
                // No IPv6 on this host: no snmp6, as node_exporter has it.
                Err(e) if !pairs && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(CollectError::read(path, e)),
                Ok(data) => {
                    let mut errors = LineErrors::default();
                    let mut stats = Vec::with_capacity(256);
                    if *pairs {
                        parse_pairs(data, &mut errors, &mut stats);
                    } else {
                        parse_snmp6(data, &mut errors, &mut stats);
                    }
                    encode(&stats, w);
                    errors.into_result(path)
                }
            });
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::Format;

    #[test]
    fn pairs_and_snmp6_become_node_exporter_s_names() {
        let snmp = b"Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 10\nTcp: RtoAlgorithm MaxConn ActiveOpens RetransSegs\nTcp: 1 -1 7 3\nUdpLite: InDatagrams InErrors\nUdpLite: 0 0\n";
        let snmp6 = b"Ip6InReceives                   \t5\nIp6InOctets 900\nIcmp6InMsgs 4\nUdpLite6InErrors 0\n";
        let mut errors = LineErrors::default();
        let mut stats = Vec::new();
        parse_pairs(snmp, &mut errors, &mut stats);
        parse_snmp6(snmp6, &mut errors, &mut stats);
        assert!(errors.summary().is_none());
        let mut buf = Vec::new();
        encode(&stats, &mut MetricWriter::new(&mut buf, Format::Text));
        let text = String::from_utf8(buf).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "node_netstat_Ip_Forwarding 1",
                "node_netstat_Tcp_ActiveOpens 7",
                "node_netstat_Tcp_RetransSegs 3",
                "node_netstat_UdpLite_InErrors 0",
                "node_netstat_Ip6_InOctets 900",
                "node_netstat_Icmp6_InMsgs 4",
                "node_netstat_UdpLite6_InErrors 0",
            ]
        );
        assert!(text.contains("# TYPE node_netstat_Tcp_RetransSegs untyped\n"));
    }

    #[test]
    fn broken_pairs_are_counted_not_served() {
        let mut errors = LineErrors::default();
        let mut stats = Vec::new();
        parse_pairs(b"Tcp: A B\nTcp: 1\nUdp: X\n", &mut errors, &mut stats);
        assert!(stats.is_empty());
        assert_eq!(errors.summary().map(|(_, count, _)| count), Some(2));
    }
}
