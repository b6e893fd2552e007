#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A waypost-policyd started under a low `ulimit -n` keeps answering Postfix
while its metrics endpoint is flooded with idle clients.

Usage: metrics_flood.py DIR METRICS_PORT PID NOFILE
DIR holds sm.sock and policy.sock; NOFILE is the daemon's RLIMIT_NOFILE.
The endpoint's cap is then a quarter of NOFILE (lib/metrics.h): the flood
takes at most that many descriptors, and new Postfix connections get the
rest.  Prints TAP-style lines.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402

DIR, PORT, PID, NOFILE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
CAP = min(int(os.environ["WP_METRICS_MAX_CONNECTIONS"]), NOFILE // 4)


def nfds():
    try:
        return len(os.listdir("/proc/%d/fd" % PID))
    except OSError:  # the daemon is gone
        return 10 ** 6


def unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def netstring(b):
    return b"%d:%s," % (len(b), b)


def read_netstring(s):
    buf = b""
    while b":" not in buf:
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed")
        buf += d
    n = int(buf[:-1])
    data = b""
    while len(data) < n + 1:
        d = s.recv(n + 1 - len(data))
        if not d:
            raise ConnectionError("closed")
        data += d
    return data[:-1].decode()


def policy(rcpt):
    s = unix(os.path.join(DIR, "policy.sock"))
    s.sendall(("request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.10\n"
               "sender=s@example.net\nrecipient=%s\n\n" % rcpt).encode())
    buf = b""
    while not buf.endswith(b"\n\n"):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    s.close()
    return buf.decode().strip()


base = nfds()
limit = int([l.split()[3] for l in open("/proc/%d/limits" % PID) if l.startswith("Max open files")][0])
result(limit == NOFILE, "the daemon runs with RLIMIT_NOFILE %d" % NOFILE, limit)
idle = []
for _ in range(4 * NOFILE):  # far more than the process could hold
    try:
        c = socket.create_connection(("127.0.0.1", PORT), timeout=2)
        c.sendall(b"GET /metr")
        idle.append(c)
    except OSError:
        break
time.sleep(0.5)
flooded = nfds()
result(len(idle) >= 2 * NOFILE and flooded - base <= CAP + 1,
       "%d idle endpoint clients take %d descriptors (cap %d; %d at rest, limit %d)" %
       (len(idle), flooded - base, CAP, base, NOFILE), flooded)
# Postfix's side: many connections held open at once, each answered
held, answers = [], []
for i in range(NOFILE - CAP - base - 4):
    try:
        s = unix(os.path.join(DIR, "sm.sock"))
        s.sendall(netstring(b"transport bob@friend.com"))
        answers.append(read_netstring(s))
        held.append(s)
    except OSError as e:
        answers.append("error: %s" % e)
        break
result(answers and all(a.startswith("OK") for a in answers),
       "%d socketmap connections open at once, each answered" % len(answers), answers[-3:])
a = policy("bob@friend.com")
result(a == "action=DUNNO", "a policy request answered meanwhile", a)
for s in held:
    s.close()
for c in idle:
    c.close()
t = time.time()
body = b""
try:
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    while True:
        d = s.recv(65536)
        if not d:
            break
        body += d
    s.close()
except OSError as e:
    body = str(e).encode()
result(b" 200 " in body.split(b"\r\n")[0] and b"waypost_policy_requests_total" in body,
       "the endpoint answers once the flood closes (%.2f s)" % (time.time() - t), body[:80])
done()
