//! The systemd collector against a D-Bus bus and a service that answers as systemd's
//! manager (`tests/systemd/manager.py`, with Debian's python3-dbus): systemd is not PID 1
//! on the test machines, so the real manager cannot be asked. node_exporter's systemd
//! collector asks the same service (it takes the bus from DBUS_SYSTEM_BUS_ADDRESS), and
//! both exporters' series are compared.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{
    assert_collector_succeeded, require_tool, wait_until, Exporter, Exposition, KillOnDrop,
};

/// A private bus (dbus-daemon with a config of its own: no service activation), with
/// the system bus's limit on a connection's pending replies (dbus-daemon's built-in
/// default, which Debian's system.conf keeps: 128).
struct Bus {
    _daemon: KillOnDrop,
    address: String,
}

impl Bus {
    fn start(dir: &Path) -> Bus {
        let daemon = require_tool("dbus-daemon", "dbus-daemon");
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>unix:path={}</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\">\
                 <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>\
                 <allow own=\"*\"/></policy>\
                 <limit name=\"max_replies_per_connection\">128</limit></busconfig>\n",
                dir.join("bus").display()
            ),
        )
        .unwrap();
        let mut child = Command::new(daemon)
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let address = common::first_line(&mut child);
        assert!(
            address.starts_with("unix:path="),
            "dbus-daemon said {address:?}"
        );
        Bus {
            _daemon: KillOnDrop(child),
            address,
        }
    }
}

/// The manager service, answering from `state`.
fn start_manager(bus: &Bus, state: &Path) -> KillOnDrop {
    let python = PathBuf::from("/usr/bin/python3");
    let ok = Command::new(&python)
        .args(["-c", "import dbus, dbus.mainloop.glib, gi"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "Debian's python3-dbus and python3-gi are needed (scripts/test installs them)"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/systemd/manager.py");
    let mut child: Child = Command::new(python)
        .arg(script)
        .arg(&bus.address)
        .arg(state)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        common::first_line(&mut child),
        "ready",
        "the manager service did not start"
    );
    KillOnDrop(child)
}

fn write_state(path: &Path, shop_state: &str) {
    let text = serde_json::json!({
        "version": "252.39-1~deb12u1",
        "system_state": if shop_state == "failed" { "degraded" } else { "running" },
        "units": [
            {"name": "shop.service", "load": "loaded", "active": shop_state,
             "props": {"Type": "s:notify", "NRestarts": "u:3"}},
            {"name": "shoehub-backup.service", "load": "loaded", "active": "inactive",
             "props": {"Type": "s:oneshot", "NRestarts": "u:0"}},
            {"name": "shoehub-backup.timer", "load": "loaded", "active": "active",
             "props": {"LastTriggerUSec": "t:1764460800123456"}},
            {"name": "ssh.socket", "load": "loaded", "active": "active",
             "props": {"NAccepted": "u:42", "NConnections": "u:2", "NRefused": "u:1"}},
            {"name": "mariadb.service", "load": "loaded", "active": "reloading",
             "props": {"Type": "s:notify", "NRestarts": "u:0"}},
            // Left out by the default exclude, counted in the summary.
            {"name": "home.mount", "load": "loaded", "active": "active",
             "props": {"Type": "s:ext4"}},
            {"name": "user.slice", "load": "loaded", "active": "active"},
            // Not loaded: counted in the summary only.
            {"name": "gone.service", "load": "not-found", "active": "inactive"},
            {"name": "multi-user.target", "load": "loaded", "active": "active"},
        ]
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text.to_string()).unwrap();
    std::fs::rename(tmp, path).unwrap();
}

/// An exporter's node_systemd_* series, sorted, with their values.
fn series(x: &Exposition) -> Vec<String> {
    x.series_with_prefix(&["node_systemd_"])
}

#[test]
fn unit_states_are_node_exporters_and_a_failed_unit_shows() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::start(dir.path());
    let state = dir.path().join("state.json");
    write_state(&state, "active");
    let mut manager = start_manager(&bus, &state);

    let (_node, node_port) = common::start_node_exporter_env(
        &[
            "--collector.disable-defaults",
            "--collector.systemd",
            "--collector.systemd.enable-restarts-metrics",
        ],
        &[("DBUS_SYSTEM_BUS_ADDRESS", bus.address.as_str())],
    );
    let e = Exporter::start(&format!(
        "system:\n  systemd:\n    address: \"{}\"\n",
        bus.address
    ));
    let peer = || common::scrape_port(node_port);
    let ours = e.metrics();
    assert_collector_succeeded(&e, &ours, "systemd");
    let (a, b) = (series(&ours), series(&peer()));
    assert!(b.len() > 25, "node_exporter gave {b:#?}");
    assert_eq!(a, b, "this exporter, then node_exporter");
    // What the comparison covers, so that two empty lists cannot pass.
    assert_eq!(
        ours.value(
            "node_systemd_unit_state",
            &[
                ("name", "shop.service"),
                ("state", "active"),
                ("type", "notify")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        ours.value(
            "node_systemd_socket_accepted_connections_total",
            &[("name", "ssh.socket")]
        ),
        Some(42.0)
    );
    assert_eq!(
        ours.value("node_systemd_units", &[("state", "reloading")]),
        Some(1.0)
    );
    assert!(ours
        .family("node_systemd_unit_state")
        .iter()
        .all(|s| s.labels["name"] != "home.mount" && s.labels["name"] != "gone.service"));

    // The shop's service fails: the mixin's failed-unit alert expression has its series.
    write_state(&state, "failed");
    let failed = [
        ("name", "shop.service"),
        ("state", "failed"),
        ("type", "notify"),
    ];
    wait_until("the failed unit is reported", || {
        e.metrics().value("node_systemd_unit_state", &failed) == Some(1.0)
    });
    let ours = e.metrics();
    assert_eq!(ours.value("node_systemd_system_running", &[]), Some(0.0));
    assert_eq!(series(&ours), series(&peer()));

    // The manager goes away: a failure that names the bus, then recovery on its return.
    drop(manager);
    wait_until("the collector fails", || {
        e.metrics().value(
            "shoehub_scrape_collector_success",
            &[("collector", "systemd")],
        ) == Some(0.0)
    });
    assert!(
        e.stderr().contains("systemd over D-Bus at unix:path="),
        "{}",
        e.stderr()
    );
    manager = start_manager(&bus, &state);
    wait_until("the collector recovers", || {
        e.metrics().value(
            "shoehub_scrape_collector_success",
            &[("collector", "systemd")],
        ) == Some(1.0)
    });
    drop(manager);
}

/// A host has hundreds of units, and the collector asks for two or three properties of
/// each: far more calls than the bus lets one connection have waiting. Every one must
/// still be answered, scrape after scrape.
#[test]
fn hundreds_of_units_stay_within_the_bus_limit_on_pending_replies() {
    let dir = tempfile::tempdir().unwrap();
    let bus = Bus::start(dir.path());
    let state = dir.path().join("state.json");
    let units: Vec<_> = (0..300)
        .map(|i| {
            serde_json::json!({"name": format!("app{i}.service"), "load": "loaded",
                "active": "active", "props": {"Type": "s:simple", "NRestarts": format!("u:{i}")}})
        })
        .collect();
    let text = serde_json::json!({"version": "252.39-1~deb12u1", "system_state": "running",
        "units": units});
    std::fs::write(&state, text.to_string()).unwrap();
    let _manager = start_manager(&bus, &state);
    let e = Exporter::start(&format!(
        "system:\n  systemd:\n    address: \"{}\"\n",
        bus.address
    ));
    for _ in 0..3 {
        let ours = e.metrics();
        assert_collector_succeeded(&e, &ours, "systemd");
        assert_eq!(ours.family("node_systemd_unit_state").len(), 300 * 5);
        assert_eq!(
            ours.value(
                "node_systemd_service_restart_total",
                &[("name", "app299.service")]
            ),
            Some(299.0)
        );
    }
}

#[test]
fn without_systemd_as_pid_1_the_collector_is_off_with_one_line() {
    let e = Exporter::start("");
    let listed = e.stderr().contains("\"systemd\"");
    if Path::new("/run/systemd/system").is_dir() {
        assert!(listed, "systemd is PID 1 here: {}", e.stderr());
    } else {
        assert!(!listed, "{}", e.stderr());
        assert_eq!(
            e.stderr().matches("systemd is not PID 1").count(),
            1,
            "{}",
            e.stderr()
        );
        assert!(e.metrics().family("node_systemd_units").is_empty());
    }
}
