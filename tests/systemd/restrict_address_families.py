#!/usr/bin/python3
"""Runs a command with socket(2) refused for every address family but the ones named,
as systemd's RestrictAddressFamilies= does it: a seccomp filter on socket()'s first
argument, the refused families failing with EAFNOSUPPORT. Needs Debian's python3-seccomp.

Usage: restrict_address_families.py AF_INET AF_UNIX ... -- COMMAND [ARG...]
"""
import errno
import os
import socket
import sys

import seccomp

split = sys.argv.index("--")
names, command = sys.argv[1:split], sys.argv[split + 1:]
allowed = {int(getattr(socket, name)) for name in names}
# The kernel's families are numbered below 64 (AF_MAX is 46 in Linux 6.x).
LIMIT = 64
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
refuse = seccomp.ERRNO(errno.EAFNOSUPPORT)
for family in range(LIMIT):
    if family not in allowed:
        f.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.EQ, family))
f.add_rule(refuse, "socket", seccomp.Arg(0, seccomp.GE, LIMIT))
f.load()
os.execvp(command[0], command)
