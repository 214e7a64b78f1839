#!/usr/bin/python3
"""The part of systemd's org.freedesktop.systemd1 bus API that the systemd collector
calls, for tests on machines where systemd is not PID 1.

Usage: manager.py ADDRESS STATE_FILE

It takes the name org.freedesktop.systemd1 on the bus at ADDRESS, prints "ready", and
answers from STATE_FILE, read again for every call so that a test can change a unit's
state between scrapes:

  {"version": "252.39-1~deb12u1", "system_state": "running",
   "units": [{"name": "shop.service", "load": "loaded", "active": "active",
              "sub": "running", "props": {"Type": "s:notify", "NRestarts": "u:2"}}]}

A property value is "<D-Bus type>:<value>", with the type one of s, u, t. Object paths
are systemd's: /org/freedesktop/systemd1/unit/ and the name with every byte that is
not a letter or a digit written as _xx.
"""

import json
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

MANAGER = "org.freedesktop.systemd1.Manager"
PROPERTIES = "org.freedesktop.DBus.Properties"
UNIT_PREFIX = "/org/freedesktop/systemd1/unit/"


def escape(name):
    return "".join(
        c if c.isascii() and c.isalnum() else "_%02x" % b
        for c, b in ((chr(b), b) for b in name.encode())
    )


def typed(text):
    kind, _, value = text.partition(":")
    if kind == "s":
        return dbus.String(value)
    if kind == "u":
        return dbus.UInt32(int(value))
    if kind == "t":
        return dbus.UInt64(int(value))
    raise ValueError(text)


def unknown(prop):
    return dbus.exceptions.DBusException(
        "Unknown property " + prop,
        name="org.freedesktop.DBus.Error.UnknownProperty",
    )


class Systemd(dbus.service.Object):
    def __init__(self, bus, state_file):
        super().__init__(bus, "/org/freedesktop/systemd1")
        self.state_file = state_file
        self.calls = 0

    def state(self):
        with open(self.state_file) as f:
            return json.load(f)

    @dbus.service.method(MANAGER, in_signature="", out_signature="a(ssssssouso)")
    def ListUnits(self):
        return [
            (
                u["name"], u.get("description", u["name"]), u["load"], u["active"],
                u.get("sub", u["active"]), "",
                dbus.ObjectPath(UNIT_PREFIX + escape(u["name"])),
                dbus.UInt32(0), "", dbus.ObjectPath("/"),
            )
            for u in self.state()["units"]
        ]

    @dbus.service.method(PROPERTIES, in_signature="ss", out_signature="v",
                         rel_path_keyword="rel")
    def Get(self, interface, prop, rel=None):
        state = self.state()
        if rel in (None, "/"):
            if interface == MANAGER and prop == "Version":
                return dbus.String(state["version"])
            if interface == MANAGER and prop == "SystemState":
                return dbus.String(state["system_state"])
            raise unknown(prop)
        for u in state["units"]:
            if "/unit/" + escape(u["name"]) == rel:
                kind = u["name"].rsplit(".", 1)[-1].capitalize()
                if interface == "org.freedesktop.systemd1." + kind and prop in u.get("props", {}):
                    return typed(u["props"][prop])
                raise unknown(prop)
        raise dbus.exceptions.DBusException(
            "No such unit", name="org.freedesktop.systemd1.NoSuchUnit")


class Fallback(dbus.service.FallbackObject):
    """Every unit path answers through the manager's Get."""

    def __init__(self, bus, manager):
        super().__init__(bus, "/org/freedesktop/systemd1/unit")
        self.manager = manager

    @dbus.service.method(PROPERTIES, in_signature="ss", out_signature="v",
                         rel_path_keyword="rel")
    def Get(self, interface, prop, rel=None):
        return self.manager.Get(interface, prop, rel="/unit" + rel)


def main():
    address, state_file = sys.argv[1], sys.argv[2]
    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    manager = Systemd(bus, state_file)
    fallback = Fallback(bus, manager)
    # Held: the name is released when this object is collected.
    name = dbus.service.BusName("org.freedesktop.systemd1", bus, do_not_queue=True)
    print("ready", flush=True)
    GLib.MainLoop().run()
    del fallback, name


if __name__ == "__main__":
    main()
