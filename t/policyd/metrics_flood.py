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
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402
import wire  # noqa: E402
from wire import netstring, read_netstring, unix  # noqa: E402

DIR, PORT, PID, NOFILE = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
CAP = min(int(os.environ["WP_METRICS_MAX_CONNECTIONS"]), NOFILE // 4)


def nfds():
    try:
        return len(os.listdir("/proc/%d/fd" % PID))
    except OSError:  # the daemon is gone
        return 10 ** 6


def policy(rcpt):
    return wire.policy(os.path.join(DIR, "policy.sock"), client_address="192.0.2.10", sender="s@example.net",
                       recipient=rcpt)


base = nfds()
limit = int([l.split()[3] for l in open("/proc/%d/limits" % PID) if l.startswith("Max open files")][0])
result(limit == NOFILE, "the daemon runs with RLIMIT_NOFILE %d" % NOFILE, limit)
idle = wire.idle_clients(PORT, 4 * NOFILE)  # far more than the process could hold
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
result(a == "DUNNO", "a policy request answered meanwhile", a)
for s in held:
    s.close()
for c in idle:
    c.close()
t = time.time()
try:
    head, body = wire.http_get(PORT, timeout=10)
except OSError as e:
    head, body = str(e), ""
result(" 200 " in head.split("\r\n")[0] and "waypost_policy_requests_total" in body,
       "the endpoint answers once the flood closes (%.2f s)" % (time.time() - t), (head[:80], body[:80]))
done()
