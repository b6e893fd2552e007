#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# t/daemon/notify.py SOCKET OUT: stand in for systemd's notification socket.
# Binds a unix datagram socket at SOCKET (world-writable, for daemons that
# drop privileges) and appends every message to OUT, one assignment a line,
# a "--" line after each message, until killed.
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "a", buffering=1) as f:
    f.write("listening\n--\n")
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        f.write(msg.rstrip("\n") + "\n--\n")
