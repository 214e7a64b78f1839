//! A big host, for real: 1,000 network devices (ifb, in a network namespace of their
//! own, whose sysfs the exporter reads) and 8,000 mounts (tmpfs, in a private mount
//! namespace with its own PID 1, so that its mount table is the one read), with the
//! open-files limit systemd gives a service (1,024, soft and hard alike here, so that
//! the exporter cannot raise it). Every collector that reads them succeeds on every
//! scrape, the exporter keeps answering, and the descriptors it holds stay a few dozen.
//! Needs root, util-linux (unshare, nsenter, prlimit) and iproute2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{assert_collector_succeeded, require_tool, Exporter};

const DEVICES: usize = 1000;
const MOUNTS: usize = 8000;

/// A named network namespace with `DEVICES` ifb devices, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("shoehub-scale-{}", std::process::id());
        let ip = require_tool("ip", "iproute2");
        let ok = |c: &mut Command| assert!(c.status().unwrap().success(), "{c:?}");
        ok(Command::new(&ip).args(["netns", "add", &name]));
        let ns = Netns(name);
        let batch: String = (0..DEVICES)
            .map(|i| format!("link add ifb{i} type ifb\n"))
            .collect();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), batch).unwrap();
        ok(Command::new(&ip)
            .args(["-n", &ns.0, "-batch"])
            .arg(file.path()));
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn a_thousand_devices_and_eight_thousand_mounts_within_a_service_s_limits() {
    for tool in ["unshare", "nsenter", "prlimit"] {
        require_tool(tool, "util-linux");
    }
    let netns = Netns::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    // The mounts, made by one process (mount(2) through ctypes): a mount(8) each would
    // take longer than the exporter is given to start.
    std::fs::write(
        dir.path().join("mounts.py"),
        format!(
            "import ctypes, os\n\
             libc = ctypes.CDLL(None, use_errno=True)\n\
             for i in range({MOUNTS}):\n    \
                 p = '{d}/m/%d' % i\n    \
                 os.mkdir(p)\n    \
                 if libc.mount(b'm%d' % i, p.encode(), b'tmpfs', 0, None) != 0:\n        \
                     raise OSError(ctypes.get_errno(), p)\n"
        ),
    )
    .unwrap();
    // In the private mount namespace: the mounts, the device namespace's sysfs, then
    // the exporter under the limit.
    let script = format!(
        "set -e\n\
         mount -t tmpfs scale {d}/m 2>/dev/null || {{ mkdir -p {d}/m; mount -t tmpfs scale {d}/m; }}\n\
         python3 {d}/mounts.py\n\
         mkdir -p {d}/sys\n\
         nsenter --net=/run/netns/{ns} mount -t sysfs sysfs {d}/sys\n\
         exec prlimit --nofile=1024:1024 -- \"$@\"",
        ns = netns.0
    );
    let e = Exporter::start_under(
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            &script,
            "sh",
        ],
        &format!(
            "system:\n  sysfs: {d}/sys\n  filesystem:\n    timeout: 30s\ntextfile:\n  enabled: false\n"
        ),
        &[],
    );
    for _ in 0..5 {
        let m = e.metrics();
        for c in ["netclass", "filesystem"] {
            assert_collector_succeeded(&e, &m, c);
        }
        let devices = m.family("node_network_mtu_bytes").len();
        assert!(devices >= DEVICES, "{devices} devices");
        let mounts = m.family("node_filesystem_size_bytes").len();
        assert!(mounts >= MOUNTS, "{mounts} mounts");
        // A few dozen, and one for the scrape's own connection.
        let fds = m.value("process_open_fds", &[]).unwrap();
        assert!(fds < 70.0, "{fds} descriptors open");
        assert_eq!(m.value("process_max_fds", &[]), Some(1024.0));
    }
    assert!(
        !e.stderr().contains("Too many open files"),
        "{}",
        e.stderr()
    );
}
