//! `netstat`: the kernel's protocol counters from /proc/net/netstat, /proc/net/snmp and
//! /proc/net/snmp6, as node_exporter's netstat collector names them
//! (`node_netstat_Tcp_RetransSegs`, untyped) with its default field filter.
//!
//! /proc/net/netstat and /proc/net/snmp hold pairs of lines, names then values, both
//! starting with the protocol (`Tcp: ActiveOpens PassiveOpens …` / `Tcp: 1 2 …`);
//! /proc/net/snmp6 holds one `Icmp6InMsgs 4` per line, the protocol ending at its `6`.

use std::path::Path;

use super::parse::{fields, lines, str_of};
use super::{Run, BuildError, CollectError, Collector, Env, LineErrors, Served, Settings};
use crate::exposition::{Kind, MetricWriter, Number};
use crate::procfile::SharedProcFile;

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Protocol counters (/proc/net/netstat, snmp, snmp6), node_exporter's default fields.";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["netstat"];

/// Its section, `system.netstat:`.
pub type Config = super::CollectorToggle;

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
        family_of(s.proto, s.field, &mut name, &mut help);
        w.dynamic_sample(Kind::Untyped, &name, &help, value);
    }
}

/// The family of a wanted counter: name and help text as node_exporter has them.
fn family_of(proto: &str, field: &str, name: &mut String, help: &mut String) {
    name.clear();
    name.push_str(PREFIX);
    name.push_str(proto);
    name.push('_');
    name.push_str(field);
    help.clear();
    help.push_str("Statistic ");
    help.push_str(proto);
    help.push_str(field);
    help.push('.');
}

/// One file's layout as last read, with what its wanted counters render to in one format
/// (metadata lines and sample name up to the value). The kernel writes the same names in
/// the same order on every read, so a scrape that finds them again copies those bytes and
/// the values, and skips the names it does not want without looking at them.
#[derive(Default)]
pub struct Layout {
    /// Per names line (/proc/net/netstat, /proc/net/snmp) or per line (snmp6): the
    /// text that must be found again (the names line; snmp6's key with the space or tab
    /// after it), how many values follow (pairs; 1 for snmp6), and the wanted values'
    /// places with their rendered prefixes.
    lines: Vec<KeptLine>,
}

struct KeptLine {
    key: Box<[u8]>,
    count: usize,
    wanted: Vec<(usize, Box<[u8]>)>,
}

impl Layout {
    /// The layout of a file that parsed without errors, in `format`.
    fn of(data: &[u8], pairs: bool, format: crate::exposition::Format) -> Layout {
        let (mut name, mut help) = (String::new(), String::new());
        let mut prefix = |proto: &str, field: &str| -> Box<[u8]> {
            family_of(proto, field, &mut name, &mut help);
            let mut head = Vec::with_capacity(128);
            MetricWriter::new(&mut head, format).dynamic_prefix(Kind::Untyped, &name, &help);
            head.into()
        };
        let mut lines_out = Vec::new();
        let mut ls = lines(data).map(|(_, l)| l);
        while let Some(line) = ls.next() {
            let Some(text) = str_of(line) else {
                return Layout::default();
            };
            if pairs {
                let Some((proto, rest)) = text.split_once(':') else {
                    return Layout::default();
                };
                let names: Vec<&str> = rest.split_ascii_whitespace().collect();
                let wanted = names
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| wanted(proto, f))
                    .map(|(i, f)| (i, prefix(proto, f)))
                    .collect();
                lines_out.push(KeptLine {
                    key: line.into(),
                    count: names.len(),
                    wanted,
                });
                ls.next();
            } else {
                let Some(key) = text.split([' ', '\t']).next() else {
                    return Layout::default();
                };
                let Some(at) = key.find('6') else {
                    return Layout::default();
                };
                let (proto, field) = (&key[..=at], &key[at + 1..]);
                let wanted = if wanted(proto, field) {
                    vec![(0, prefix(proto, field))]
                } else {
                    Vec::new()
                };
                let Some(key_and_space) = line.get(..key.len() + 1) else {
                    return Layout::default();
                };
                lines_out.push(KeptLine {
                    key: key_and_space.into(),
                    count: 1,
                    wanted,
                });
            }
        }
        Layout { lines: lines_out }
    }

    /// The wanted values of `data`, with their prefixes, when `data` has this layout
    /// and every value is a number; `None` sends the file through the full parse.
    fn values<'k, 'd>(
        &'k self,
        data: &'d [u8],
        pairs: bool,
    ) -> Option<Vec<(&'k [u8], Number<'d>)>> {
        let mut out = Vec::with_capacity(64);
        let mut ls = lines(data).map(|(_, l)| l);
        let mut kept = self.lines.iter();
        while let Some(line) = ls.next() {
            let k = kept.next()?;
            let values = if pairs {
                if *line != *k.key {
                    return None;
                }
                let values = ls.next()?;
                // The values line starts with the same `Proto:` as its names line.
                let colon = line.iter().position(|&b| b == b':')?;
                if values.get(..=colon)? != &line[..=colon] {
                    return None;
                }
                &values[colon + 1..]
            } else {
                line.strip_prefix(&*k.key)?
            };
            let mut wanted = k.wanted.iter().peekable();
            let mut count = 0;
            for (i, v) in fields(values).enumerate() {
                let v = Number::parse(str_of(v)?)?;
                if let Some((_, prefix)) = wanted.next_if(|(at, _)| *at == i) {
                    out.push((&**prefix, v));
                }
                count = i + 1;
            }
            if count != k.count || wanted.next().is_some() {
                return None;
            }
        }
        kept.next().is_none().then_some(out)
    }
}

pub struct Netstat {
    files: [(SharedProcFile, bool); 3],
    /// Each file's layout per format (text, OpenMetrics), as last read.
    layouts: std::sync::Mutex<[[Layout; 2]; 3]>,
}

pub fn build(s: &Settings<'_>, _: &Env) -> Result<Option<Run>, BuildError> {
    Ok(Some(super::procfs_only(&s.system.procfs, {
        let net = s.system.procfs.join("net");
        Netstat {
            files: [
                (SharedProcFile::new(net.join("netstat")), true),
                (SharedProcFile::new(net.join("snmp")), true),
                (SharedProcFile::new(net.join("snmp6")), false),
            ],
            layouts: Default::default(),
        }
    })))
}

impl Collector for Netstat {

    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut result = Ok(());
        // A scrape running at the same time has them: this one does without.
        let mut kept = self.layouts.try_lock().ok();
        let mut spare: [[Layout; 2]; 3] = Default::default();
        let layouts = kept.as_deref_mut().unwrap_or(&mut spare);
        let slot = w.format().slot();
        for ((file, pairs), layouts) in self.files.iter().zip(layouts.iter_mut()) {
            let layout = &mut layouts[slot];
            let r = file.with(|path: &Path, data| match data {
                // No IPv6 on this host: no snmp6, as node_exporter has it.
                Err(e) if !pairs && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(CollectError::read(path, e)),
                Ok(data) => {
                    if let Some(values) = layout.values(data, *pairs) {
                        for (prefix, value) in values {
                            w.prefixed_sample(prefix, value);
                        }
                        return Ok(());
                    }
                    let mut errors = LineErrors::default();
                    let mut stats = Vec::with_capacity(256);
                    if *pairs {
                        parse_pairs(data, &mut errors, &mut stats);
                    } else {
                        parse_snmp6(data, &mut errors, &mut stats);
                    }
                    encode(&stats, w);
                    *layout = if errors.summary().is_none() {
                        Layout::of(data, *pairs, w.format())
                    } else {
                        Layout::default()
                    };
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

    fn collector(procfs: &Path) -> Netstat {
        let net = procfs.join("net");
        Netstat {
            files: [
                (SharedProcFile::new(net.join("netstat")), true),
                (SharedProcFile::new(net.join("snmp")), true),
                (SharedProcFile::new(net.join("snmp6")), false),
            ],
            layouts: Default::default(),
        }
    }

    fn scrape(c: &Netstat, format: Format) -> (String, bool) {
        let mut buf = Vec::new();
        let ok = c.collect(&mut MetricWriter::new(&mut buf, format)).is_ok();
        (String::from_utf8(buf).unwrap(), ok)
    }

    #[test]
    fn a_kept_layout_writes_what_a_fresh_parse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        std::fs::create_dir(&net).unwrap();
        let write = |netstat: &str, snmp: &str, snmp6: &str| {
            std::fs::write(net.join("netstat"), netstat).unwrap();
            std::fs::write(net.join("snmp"), snmp).unwrap();
            std::fs::write(net.join("snmp6"), snmp6).unwrap();
        };
        let formats = [Format::Text, Format::OpenMetrics { version: "1.0.0" }];
        let kept = collector(dir.path());
        // Each state is scraped by the collector that keeps layouts and by a fresh one;
        // the kept one has seen every earlier state.
        for (netstat, snmp, snmp6) in [
            (
                "TcpExt: SyncookiesSent ListenDrops PruneCalled\nTcpExt: 1 2 3\nIpExt: InOctets OutOctets\nIpExt: 10 20\n",
                "Tcp: ActiveOpens RetransSegs\nTcp: 7 3\nUdp: InDatagrams InErrors\nUdp: 5 0\n",
                "Ip6InOctets                     \t900\nIp6InReceives 5\nIcmp6InMsgs 4\n",
            ),
            // New values in the same layout.
            (
                "TcpExt: SyncookiesSent ListenDrops PruneCalled\nTcpExt: 11 -2 33\nIpExt: InOctets OutOctets\nIpExt: 18446744073709551615 20\n",
                "Tcp: ActiveOpens RetransSegs\nTcp: 8 4\nUdp: InDatagrams InErrors\nUdp: 6 1\n",
                "Ip6InOctets                     \t901\nIp6InReceives 6\nIcmp6InMsgs 5\n",
            ),
            // A field added in the middle, a protocol more, a line less.
            (
                "TcpExt: SyncookiesSent TCPTimeouts ListenDrops PruneCalled\nTcpExt: 1 9 2 3\nIpExt: InOctets OutOctets\nIpExt: 10 20\nMPTcpExt: MPCapableSYNRX\nMPTcpExt: 0\n",
                "Tcp: ActiveOpens RetransSegs\nTcp: 7 3\n",
                "Ip6InOctets 900\nIcmp6InMsgs 4\nIcmp6OutMsgs 2\n",
            ),
            // A value that is not a number, a values line short of one, a float.
            (
                "TcpExt: SyncookiesSent ListenDrops PruneCalled\nTcpExt: 1 x 3\nIpExt: InOctets OutOctets\nIpExt: 10\n",
                "Tcp: ActiveOpens RetransSegs\nTcp: 7.5 3\n",
                "Ip6InOctets 900 1\nIcmp6InMsgs 4\n",
            ),
            // Back to the first, twice: the layout is learnt again and then kept.
            (
                "TcpExt: SyncookiesSent ListenDrops PruneCalled\nTcpExt: 1 2 3\nIpExt: InOctets OutOctets\nIpExt: 10 20\n",
                "Tcp: ActiveOpens RetransSegs\nTcp: 7 3\nUdp: InDatagrams InErrors\nUdp: 5 0\n",
                "Ip6InOctets                     \t900\nIp6InReceives 5\nIcmp6InMsgs 4\n",
            ),
        ] {
            write(netstat, snmp, snmp6);
            for format in formats {
                let fresh = scrape(&collector(dir.path()), format);
                assert_eq!(scrape(&kept, format), fresh, "{netstat}{snmp}{snmp6}");
                assert_eq!(scrape(&kept, format), fresh, "{netstat}{snmp}{snmp6}");
            }
        }
        {
            let layouts = kept.layouts.lock().unwrap();
            let lines = |file: usize, format: usize| layouts[file][format].lines.len();
            assert_eq!([lines(0, 0), lines(1, 0), lines(2, 0)], [2, 2, 3]);
            assert_eq!([lines(0, 1), lines(1, 1), lines(2, 1)], [2, 2, 3]);
        }
        let (text, ok) = scrape(&kept, Format::Text);
        assert!(ok);
        assert!(
            text.contains("node_netstat_TcpExt_ListenDrops 2\n"),
            "{text}"
        );
        assert!(text.contains("node_netstat_Ip6_InOctets 900\n"), "{text}");
        assert!(!text.contains("PruneCalled"), "{text}");
    }

    #[test]
    fn the_live_files_keep_their_layout() {
        let c = collector(Path::new("/proc"));
        let names = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split(' ').next().unwrap().to_owned())
                .collect()
        };
        let (first, ok) = scrape(&c, Format::Text);
        assert!(ok);
        assert!(first.contains("node_netstat_Tcp_RetransSegs "), "{first}");
        assert!(
            c.layouts.lock().unwrap()[0][0].lines.len() >= 2,
            "a layout is kept"
        );
        let (again, ok) = scrape(&c, Format::Text);
        assert!(ok);
        assert_eq!(names(&again), names(&first));
    }
}
