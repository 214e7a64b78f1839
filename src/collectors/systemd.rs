//! `systemd`: unit states from systemd's manager over D-Bus, as node_exporter's
//! systemd collector names them: each unit's active state (with its service type),
//! the count of units per state, whether the system is running, systemd's version,
//! service restarts, timers' last trigger and socket connections.
//!
//! One connection to the system bus is kept between scrapes. A scrape makes two round
//! trips: the manager's properties with the unit list, then every unit property it
//! needs, pipelined within the bus's limit on pending replies
//! ([`crate::dbus::Connection::call_all`]).
//!
//! Where systemd is not PID 1 (no /run/systemd/system) there is no manager to ask: the
//! collector is off, which one log line says at start. An `address:` in the config
//! turns it on anyway (another bus, for tests or a container).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Run, BuildError, CollectError, Collector, Env, Served, Settings};
use crate::dbus::{Call, Connection, Value};
use crate::exposition::{Family, MetricWriter};
use crate::value::{Builtin, DurationValue, NameFilter, Pattern};

/// What the collector reads, as the docs and the configuration reference say it.
pub const ABOUT: &str = "Unit states from systemd over D-Bus (where systemd is PID 1).";

/// The node_exporter collectors whose series it serves: its names in
/// `node_scrape_collector_*`.
pub const NODE_EXPORTER: &[&str] = &["systemd"];

/// Its section, `system.systemd:`.
pub type Config = SystemdConfig;

/// The system bus, where systemd's manager answers.
pub const SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";

/// `system.systemd:`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemdConfig {
    pub enabled: bool,
    pub timeout: DurationValue,
    /// The bus to ask; the system bus when systemd is PID 1 if unset.
    pub address: Option<String>,
    pub units_include: Option<Pattern>,
    pub units_exclude: Pattern,
}

impl Default for SystemdConfig {
    fn default() -> Self {
        SystemdConfig {
            enabled: true,
            timeout: DurationValue(Duration::from_secs(5)),
            address: None,
            units_include: None,
            units_exclude: Pattern::builtin(Builtin::SystemdUnits),
        }
    }
}

pub static VERSION: Family = Family::gauge(
    "node_systemd_version",
    "systemd's version as a number (252.39); the whole version string is the label.",
);
pub static SYSTEM_RUNNING: Family = Family::gauge(
    "node_systemd_system_running",
    "Whether systemd says the system is running (1), as `systemctl is-system-running` does, or not (0).",
);
pub static UNITS: Family = Family::gauge(
    "node_systemd_units",
    "Units systemd has loaded, by active state (all of them, before the unit filters).",
);
pub static UNIT_STATE: Family = Family::gauge(
    "node_systemd_unit_state",
    "Whether the unit is in this active state (1) or not (0); type is a service's or mount's Type.",
);
pub static RESTARTS: Family = Family::counter(
    "node_systemd_service_restart_total",
    "Times systemd restarted the service by its Restart= setting (NRestarts).",
);
pub static TIMER_LAST_TRIGGER: Family = Family::gauge(
    "node_systemd_timer_last_trigger_seconds",
    "When the timer last fired, in seconds since the epoch (0: never).",
)
.unit("seconds");
pub static SOCKET_ACCEPTED: Family = Family::counter(
    "node_systemd_socket_accepted_connections_total",
    "Connections the socket unit accepted.",
);
pub static SOCKET_CURRENT: Family = Family::gauge(
    "node_systemd_socket_current_connections",
    "Connections the socket unit holds now.",
);
pub static SOCKET_REFUSED: Family = Family::counter(
    "node_systemd_socket_refused_connections_total",
    "Connections the socket unit refused.",
);

pub static SERVED: Served = Served::families(&[
    &VERSION,
    &SYSTEM_RUNNING,
    &UNITS,
    &UNIT_STATE,
    &RESTARTS,
    &TIMER_LAST_TRIGGER,
    &SOCKET_ACCEPTED,
    &SOCKET_CURRENT,
    &SOCKET_REFUSED,
]);

/// The active states reported for every unit, each as its own series.
pub const STATES: [&str; 5] = ["active", "activating", "deactivating", "inactive", "failed"];

const DESTINATION: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// One unit of the manager's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub name: String,
    pub load_state: String,
    pub active_state: String,
    pub path: String,
}

/// A unit property the collector reads, by the unit's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prop {
    Type,
    Restarts,
    LastTrigger,
    Accepted,
    Current,
    Refused,
}

/// The properties read for a unit, with their interface and name.
fn props_of(name: &str) -> &'static [(Prop, &'static str, &'static str)] {
    const SERVICE: &str = "org.freedesktop.systemd1.Service";
    const SOCKET: &str = "org.freedesktop.systemd1.Socket";
    match name.rsplit_once('.').map(|(_, kind)| kind) {
        Some("service") => &[
            (Prop::Type, SERVICE, "Type"),
            (Prop::Restarts, SERVICE, "NRestarts"),
        ],
        Some("mount") => &[(Prop::Type, "org.freedesktop.systemd1.Mount", "Type")],
        Some("timer") => &[(
            Prop::LastTrigger,
            "org.freedesktop.systemd1.Timer",
            "LastTriggerUSec",
        )],
        Some("socket") => &[
            (Prop::Accepted, SOCKET, "NAccepted"),
            (Prop::Current, SOCKET, "NConnections"),
            (Prop::Refused, SOCKET, "NRefused"),
        ],
        _ => &[],
    }
}

/// The number in a version string (`252.39` of `252.39-1~deb12u1`): three or more
/// digits, and a dot and digits after them if there are.
pub fn version_number(v: &str) -> Option<f64> {
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i - start >= 3 {
            let mut end = i;
            if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                end = i + 1;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
            }
            return v[start..end].parse().ok();
        }
        if i == start {
            i += 1;
        }
    }
    None
}

/// Parses ListUnits' reply, `a(ssssssouso)`.
pub fn parse_units(mut r: crate::dbus::Reader<'_>) -> Result<Vec<Unit>, crate::dbus::Error> {
    let end = r.array(8)?;
    let mut out = Vec::new();
    while r.position() < end {
        r.align(8)?;
        let name = r.string()?.to_owned();
        let _description = r.string()?;
        let load_state = r.string()?.to_owned();
        let active_state = r.string()?.to_owned();
        let _sub_state = r.string()?;
        let _followed = r.string()?;
        let path = r.string()?.to_owned();
        let _job_id = r.u32()?;
        let _job_type = r.string()?;
        let _job_path = r.string()?;
        out.push(Unit {
            name,
            load_state,
            active_state,
            path,
        });
    }
    Ok(out)
}

pub struct Systemd {
    address: String,
    timeout: Duration,
    filter: NameFilter,
    connection: Mutex<Option<Connection>>,
}

pub fn build(s: &Settings<'_>, env: &Env) -> Result<Option<Run>, BuildError> {
    let c = &s.system.systemd;
    let address = match &c.address {
        Some(a) => a.clone(),
        None if Path::new("/run/systemd/system").is_dir() => SYSTEM_BUS.to_owned(),
        None => {
            if env.start {
                tracing::info!(
                    "systemd is not PID 1 on this host (no /run/systemd/system): the systemd collector is off"
                );
            }
            return Ok(None);
        }
    };
    Ok(Some(super::blocking(Systemd {
        address,
        timeout: c.timeout.get(),
        filter: NameFilter::new(c.units_include.clone(), Some(c.units_exclude.clone())),
        connection: Mutex::new(None),
    })))
}

/// What one scrape read.
#[derive(Debug, Default)]
struct Reading {
    version: Option<String>,
    running: Option<bool>,
    units: Vec<Unit>,
    /// Per unit of `units` that passed the filters: its index and property values.
    props: Vec<(usize, Prop, Value)>,
    failed: usize,
    asked: usize,
    first_failure: String,
}

impl Systemd {
    fn read(&self, conn: &mut Connection) -> Result<Reading, crate::dbus::Error> {
        let get = |prop: &'static str| Call {
            destination: DESTINATION,
            path: MANAGER_PATH,
            interface: PROPERTIES,
            member: "Get",
            args: match prop {
                "Version" => &[MANAGER, "Version"],
                _ => &[MANAGER, "SystemState"],
            },
        };
        let mut replies = conn
            .call_all(
                &[
                    get("Version"),
                    get("SystemState"),
                    Call {
                        destination: DESTINATION,
                        path: MANAGER_PATH,
                        interface: MANAGER,
                        member: "ListUnits",
                        args: &[],
                    },
                ],
                self.timeout,
            )?
            .into_iter();
        let mut reading = Reading::default();
        let mut string_of =
            |r: Option<Result<crate::dbus::Body, crate::dbus::Error>>| -> Option<String> {
                reading.asked += 1;
                match r.map(|b| b.and_then(|b| b.reader().variant())) {
                    Some(Ok(Value::Str(s))) => Some(s),
                    Some(Err(e)) => {
                        reading.failed += 1;
                        if reading.first_failure.is_empty() {
                            reading.first_failure = e.to_string();
                        }
                        None
                    }
                    _ => None,
                }
            };
        let version = string_of(replies.next());
        let state = string_of(replies.next());
        reading.version = version;
        reading.running = state.map(|s| s == "running");
        let list = replies
            .next()
            .unwrap_or(Err(crate::dbus::Error::Malformed("no reply to ListUnits")))?;
        reading.units = parse_units(list.reader())?;

        let mut wanted: Vec<(usize, Prop)> = Vec::new();
        let mut calls: Vec<Call<'_>> = Vec::new();
        let mut args: Vec<[&str; 2]> = Vec::new();
        for (i, u) in reading.units.iter().enumerate() {
            if u.load_state != "loaded" || !self.filter.accepts(&u.name) {
                continue;
            }
            for (prop, interface, name) in props_of(&u.name) {
                wanted.push((i, *prop));
                args.push([interface, name]);
            }
        }
        for ((i, _), a) in wanted.iter().zip(&args) {
            calls.push(Call {
                destination: DESTINATION,
                path: &reading.units[*i].path,
                interface: PROPERTIES,
                member: "Get",
                args: &a[..],
            });
        }
        let replies = if calls.is_empty() {
            Vec::new()
        } else {
            conn.call_all(&calls, self.timeout)?
        };
        let mut props = Vec::new();
        let (mut failed, mut first) = (0, String::new());
        for ((i, prop), reply) in wanted.into_iter().zip(replies) {
            match reply.and_then(|b| b.reader().variant()) {
                Ok(v) => props.push((i, prop, v)),
                Err(e) => {
                    failed += 1;
                    if first.is_empty() {
                        first = format!("{}: {e}", reading.units[i].name);
                    }
                }
            }
        }
        reading.asked += calls.len();
        reading.failed += failed;
        if reading.first_failure.is_empty() {
            reading.first_failure = first;
        }
        reading.props = props;
        Ok(reading)
    }
}

fn encode(r: &Reading, filter: &NameFilter, w: &mut MetricWriter<'_>) {
    if let Some(v) = &r.version {
        w.sample(
            &VERSION,
            &[("version", v)],
            version_number(v).unwrap_or(0.0),
        );
    }
    if let Some(running) = r.running {
        w.sample_u64(&SYSTEM_RUNNING, &[], u64::from(running));
    }
    // Every unit counts here, whatever the filters say; the five states always appear.
    let mut summary: Vec<(&str, u64)> = STATES.iter().map(|s| (*s, 0)).collect();
    for u in &r.units {
        match summary.iter_mut().find(|(s, _)| *s == u.active_state) {
            Some((_, n)) => *n += 1,
            None => summary.push((&u.active_state, 1)),
        }
    }
    for (state, n) in &summary {
        w.sample_u64(&UNITS, &[("state", state)], *n);
    }
    let prop = |i: usize, want: Prop| {
        r.props
            .iter()
            .find(|(j, p, _)| *j == i && *p == want)
            .map(|(_, _, v)| v)
    };
    for (i, u) in r.units.iter().enumerate() {
        if u.load_state != "loaded" || !filter.accepts(&u.name) {
            continue;
        }
        let kind = match prop(i, Prop::Type) {
            Some(Value::Str(s)) => s.as_str(),
            _ => "",
        };
        for s in STATES {
            w.sample_u64(
                &UNIT_STATE,
                &[("name", &u.name), ("state", s), ("type", kind)],
                u64::from(u.active_state == s),
            );
        }
    }
    let numeric = [
        (Prop::Restarts, &RESTARTS),
        (Prop::LastTrigger, &TIMER_LAST_TRIGGER),
        (Prop::Accepted, &SOCKET_ACCEPTED),
        (Prop::Current, &SOCKET_CURRENT),
        (Prop::Refused, &SOCKET_REFUSED),
    ];
    for (want, family) in numeric {
        for (i, p, v) in &r.props {
            if *p != want {
                continue;
            }
            let labels = [("name", r.units[*i].name.as_str())];
            match (want, v) {
                (Prop::LastTrigger, Value::U64(us)) => {
                    w.sample_quotient(family, &labels, *us, 1_000_000)
                }
                (_, Value::U32(n)) => w.sample_u64(family, &labels, u64::from(*n)),
                (_, Value::U64(n)) => w.sample_u64(family, &labels, *n),
                _ => {}
            }
        }
    }
}

impl Collector for Systemd {
    fn collect(&self, w: &mut MetricWriter<'_>) -> Result<(), CollectError> {
        let mut slot = match self.connection.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let failed = |e: crate::dbus::Error| {
            CollectError::Remote(format!("systemd over D-Bus at {}: {e}", self.address))
        };
        let mut conn = match slot.take() {
            Some(c) => c,
            None => Connection::open(&self.address, self.timeout).map_err(failed)?,
        };
        // A connection that fails is dropped; the next scrape opens a new one.
        let reading = self.read(&mut conn).map_err(failed)?;
        *slot = Some(conn);
        drop(slot);
        encode(&reading, &self.filter, w);
        if reading.failed > 0 {
            return Err(CollectError::Partial {
                what: "systemd properties",
                failed: reading.failed,
                total: reading.asked,
                first: reading.first_failure,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_numbers() {
        assert_eq!(version_number("252.39-1~deb12u1"), Some(252.39));
        assert_eq!(version_number("257"), Some(257.0));
        assert_eq!(version_number("v245.4-4ubuntu3"), Some(245.4));
        assert_eq!(version_number("12.5"), None);
        assert_eq!(version_number(""), None);
    }

    #[test]
    fn unit_kinds_and_their_properties() {
        assert_eq!(props_of("ssh.service").len(), 2);
        assert_eq!(props_of("logrotate.timer")[0].2, "LastTriggerUSec");
        assert_eq!(props_of("dbus.socket").len(), 3);
        assert!(props_of("multi-user.target").is_empty());
    }
}
