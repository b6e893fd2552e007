#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Keep a daemon busy until a file appears, checking every answer.

  load.py socketmap SOCKET STOPFILE   lookups "relay friend.com" (answer
                                      "OK OK"), on one kept connection and
                                      on a new one every 20 lookups
  load.py lmtp SOCKET STOPFILE        LMTP sessions to waypost-odmrd's intake,
                                      one message to RCPT each (env RCPT)

Prints "done N" (N good exchanges) and one "error ..." line per failure;
exits 1 if anything failed or nothing was done.
"""
import os
import socket
import sys
import time

mode, path, stopfile = sys.argv[1], sys.argv[2], sys.argv[3]
done = 0
errors = []


def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    return s


def recv_netstring(s, buf):
    while True:
        if b":" in buf:
            ln, rest = buf.split(b":", 1)
            ln = int(ln)
            if len(rest) >= ln + 1:
                return rest[:ln], rest[ln + 1:]
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed by the daemon")
        buf += d


def socketmap():
    global done
    kept = connect()
    buf = b""
    n = 0
    while not os.path.exists(stopfile):
        fresh = n % 20 == 0
        s = connect() if fresh else kept
        s.sendall(b"16:relay friend.com,")
        ans, rest = recv_netstring(s, b"" if fresh else buf)
        if fresh:
            s.close()
        else:
            buf = rest
        if ans != b"OK OK":
            errors.append("answer %r" % ans)
        else:
            done += 1
        n += 1


def lmtp_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise ConnectionError("closed by the daemon")
        lines.append(line.rstrip(b"\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            return lines


def lmtp():
    global done
    rcpt = os.environ.get("RCPT", "user@domain1.dom").encode()
    while not os.path.exists(stopfile):
        s = connect()
        f = s.makefile("rb")
        steps = [None, b"LHLO load.test", b"MAIL FROM:<sender@example.org>", b"RCPT TO:<" + rcpt + b">",
                 b"DATA", b"Subject: load\r\n\r\nbody\r\n.", b"QUIT"]
        ok = True
        for cmd in steps:
            if cmd is not None:
                s.sendall(cmd + b"\r\n")
            reply = lmtp_reply(f)
            code = reply[-1][:3]
            want = {None: b"220", b"DATA": b"354", b"QUIT": b"221"}.get(cmd, b"250")
            if code != want:
                errors.append("%r -> %r" % (cmd, reply[-1]))
                ok = False
                break
        s.close()
        if ok:
            done += 1


try:
    {"socketmap": socketmap, "lmtp": lmtp}[mode]()
except Exception as e:  # a dropped connection is a failure like a wrong answer
    errors.append("%s: %s" % (type(e).__name__, e))
for e in errors[:20]:
    print("error", e)
print("done", done)
sys.exit(1 if errors or done == 0 else 0)
