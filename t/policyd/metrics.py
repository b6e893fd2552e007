#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Decision log lines and the metrics endpoint of a running waypost-policyd.

Usage: metrics.py DIR METRICS_PORT PID (WP_METRICS_MAX_CONNECTIONS and
WP_METRICS_TIMEOUT in the environment)
DIR holds sm.sock, policy.sock, router.table and policyd.log; the last good
scrape is written to DIR/scrape.txt (for promtool).  Prints TAP-style lines.
"""
import os
import re
import select
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402
import wire  # noqa: E402
from wire import netstring, read_netstring, unix  # noqa: E402

DIR, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
# the endpoint's connection cap and timeout (lib/metrics.h), from metrics.sh
CAP = int(os.environ["WP_METRICS_MAX_CONNECTIONS"])
WP_TIMEOUT = int(os.environ["WP_METRICS_TIMEOUT"])
LOG = os.path.join(DIR, "policyd.log")
TABLE = os.path.join(DIR, "router.table")


SM = None


def lookup(m, key):
    s = SM
    s.sendall(netstring(("%s %s" % (m, key)).encode()))
    return read_netstring(s)


def policy(rcpt, client="192.0.2.10", sasl="", qid="", sender="s@example.net", name="mx.example.net"):
    return wire.policy(os.path.join(DIR, "policy.sock"), protocol_name="ESMTP", client_address=client,
                       client_name=name, sender=sender, recipient=rcpt, sasl_username=sasl, queue_id=qid)


def scrape(path="/metrics", timeout=5):
    return wire.http_get(PORT, path, timeout)


def nfds():
    return len(os.listdir("/proc/%d/fd" % PID))


class FdWatch:
    """The highest descriptor count of the daemon, sampled every 20 ms."""

    def __init__(self):
        self.peak = nfds()
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            self.peak = max(self.peak, nfds())
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak


def flood(n):
    """n slow clients of the endpoint: each sends the start of a request."""
    return wire.idle_clients(PORT, n)


def hung_up(conns):
    """The connections the server has closed (EOF or reset), by a poll."""
    out = []
    p = select.poll()
    for c in conns:
        p.register(c, select.POLLIN)
    ready = {fd for fd, _ in p.poll(200)}
    for c in conns:
        if c.fileno() in ready:
            try:
                if c.recv(100, socket.MSG_DONTWAIT) == b"":
                    out.append(c)
            except ConnectionResetError:
                out.append(c)
            except OSError:
                pass
    return out


LINE = re.compile(r'^([a-z_]+)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def samples(body):
    out = {}
    for l in body.splitlines():
        if l.startswith("#") or not l:
            continue
        m = LINE.match(l)
        if not m:
            out.setdefault("__bad__", []).append(l)
            continue
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def get(sm, name, **labels):
    return sm.get((name, tuple(sorted(labels.items()))), 0)


def record_hits(sm, prefix):
    """{line: hits} of the records whose text starts with prefix."""
    return {int(dict(k[1])["line"]): v for k, v in sm.items()
            if k[0] == "waypost_router_record_hits_total" and dict(k[1])["record"].startswith(prefix)}


def table_line(text):
    with open(TABLE) as f:
        for i, l in enumerate(f, 1):
            if l.startswith(text):
                return i
    return None


SM = unix(os.path.join(DIR, "sm.sock"))
# --- a known mix of lookups: the tally of what came back is what the endpoint must say
want = {}
kinds = {"OK": "found", "NOTFOUND": "notfound", "TEMP": "temp", "PERM": "perm"}
mix = [("transport", "bob@friend.com")] * 3 + [("transport", "ann@friend.net")] * 2 + \
      [("relay", "friend.com"), ("relay", "nowhere.example"), ("recipient", "former-employee@company.dom"),
       ("virtual", "x@oldcompany.com"), ("transport", "nosuchuser@domain.dom"), ("account", "alice")]
for m, k in mix:
    a = lookup(m, k)
    kind = kinds[a.split(" ", 1)[0]]
    want[("socketmap", m, kind)] = want.get(("socketmap", m, kind), 0) + 1

# --- policy decisions: refusals and relaying opened leave a log line
pol = [
    ("x@elsewhere.example", "reject", "AAA111"),     # relay refused
    ("former-employee@company.dom", "reject", "AAA112"),  # an error record
    ("bob@friend.com", "relay", "AAA113"),           # Relay: record
    ("newbie1@domain.dom", "relay", "AAA114"),       # Mail to Unknown reroute
    ("newbie2@domain.dom", "relay", ""),             # the same, no queue id yet
    ("alice@company.dom", "accept", "AAA116"),       # local: no line at info
]
for rcpt, kind, qid in pol:
    a = policy(rcpt, qid=qid)
    expect = {"reject": lambda x: x[:1] == "5", "relay": lambda x: x == "DUNNO", "accept": lambda x: x == "DUNNO"}
    result(expect[kind](a), "policy %s -> %s" % (rcpt, kind), a)
    want[("policy", "policy", kind)] = want.get(("policy", "policy", kind), 0) + 1

head, body = scrape()
result(head.startswith("HTTP/1.") and " 200 " in head.splitlines()[0], "GET /metrics: 200", head[:80])
result("text/plain; version=0.0.4" in head, "exposition content type", head)
with open(os.path.join(DIR, "scrape.txt"), "w") as f:
    f.write(body)
sm = samples(body)
result("__bad__" not in sm, "every sample line parses", sm.get("__bad__"))
got = {}
for (name, labels), v in sm.items():
    if name == "waypost_policy_requests_total":
        d = dict(labels)
        got[(d["protocol"], d["map"], d["answer"])] = v
result(got == want, "requests by protocol, map and answer: exactly the mix sent", "got %s want %s" % (got, want))
hist = get(sm, "waypost_policy_request_duration_seconds_count")
result(hist == sum(want.values()), "latency histogram counts every request", hist)

fc_line, fn_line = table_line("Relay:<*@friend.com>"), table_line("Relay:<*@friend.net>")
fc, fn = record_hits(sm, "Relay:<*@friend.com>"), record_hits(sm, "Relay:<*@friend.net>")
# friend.com: 3 transport lookups, 1 relay? (domain-level lookups resolve no address), 1 policy
result(fc == {fc_line: 4}, "Relay:<*@friend.com> (line %s): 3 lookups + 1 policy request" % fc_line, fc)
result(fn == {fn_line: 2}, "Relay:<*@friend.net> (line %s): 2 lookups" % fn_line, fn)
fe = record_hits(sm, "<former-employee")
result(list(fe.values()) == [2], "the error record: 1 lookup + 1 policy request", fe)
result(get(sm, "waypost_router_unknown_reroutes_total", domain="domain.dom") == 2,
       "2 recipients rerouted for domain.dom (policy requests only)",
       get(sm, "waypost_router_unknown_reroutes_total", domain="domain.dom"))
result(get(sm, "waypost_router_unknown_reroutes_last_hour", domain="domain.dom") == 2,
       "... 2 of them in the last hour", get(sm, "waypost_router_unknown_reroutes_last_hour", domain="domain.dom"))
result(get(sm, "waypost_policy_relay_total", **{"class": "relay"}) == 1 and
       get(sm, "waypost_policy_relay_total", **{"class": "unknown_reroute"}) == 2,
       "relay classes: 1 Relay:, 2 Mail to Unknown", [(k, v) for k, v in sm.items() if k[0] == "waypost_policy_relay_total"])

# --- the log lines
time.sleep(0.3)
with open(LOG) as f:
    log = [l for l in f.read().splitlines() if "event=policy" in l]


def line_for(rcpt):
    return [l for l in log if "recipient=%s " % rcpt in l]


fields = ["event", "queue_id", "client", "sasl_username", "sender", "recipient", "action", "decision", "record",
          "unknown"]
for rcpt, kind, qid in pol:
    ls = line_for(rcpt)
    if kind == "accept":
        result(ls == [], "no info line for an accepted local recipient", ls)
        continue
    ok = len(ls) == 1
    l = ls[0] if ls else ""
    body_ = l[l.index("event="):] if "event=" in l else ""
    keys = re.findall(r'(?:^| )([a-z_]+)=', body_)
    result(ok and keys == fields, "%s: one line, fields in the documented order" % rcpt, ls)
    result(("queue_id=%s " % qid if qid else 'queue_id="" ') in l, "%s: queue_id" % rcpt, l)
    result("client=mx.example.net[192.0.2.10]" in l and "sender=s@example.net" in l, "%s: client, sender" % rcpt, l)
    result("decision=%s" % ("refuse" if kind == "reject" else "relay") in l, "%s: decision" % rcpt, l)
ls = line_for("bob@friend.com")
result(ls and "record=router.table:%d " % fc_line in ls[0], "Relay: record named file:line", ls)
ls = line_for("newbie1@domain.dom")
result(ls and ls[0].endswith("unknown=domain.dom"), "Mail to Unknown names its domain", ls)
ls = line_for("former-employee@company.dom")
result(ls and re.search(r'record=router\.table:%d ' % table_line("<former-employee>"), ls[0]) and
       'action="550 5.1.6 This person has left the company"' in ls[0], "error record: action quoted, record", ls)
# hostile text is escaped: no new log line, no forged field
policy("evil@elsewhere.example", sender="a\x01b c=d\"e", qid="Q1")
time.sleep(0.3)
with open(LOG) as f:
    evil = [l for l in f.read().splitlines() if "evil@elsewhere" in l]
result(len(evil) == 1 and 'sender="a\\x01b c=d\\"e"' in evil[0], "control characters and quotes escaped", evil)

# --- reload: an unchanged record keeps its count (at its new line), a changed one starts again
with open(TABLE) as f:
    text = f.read()
text = "; a new first line moves every record down\n" + text.replace(
    "Relay:<*@friend.net>        = *%friend.net@firewall.friend.net.via",
    "Relay:<*@friend.net>        = *%friend.net@firewall2.friend.net.via")
with open(TABLE, "w") as f:
    f.write(text)
os.kill(PID, signal.SIGHUP)
for _ in range(50):
    with open(LOG) as f:
        if "reloaded" in f.read():
            break
    time.sleep(0.1)
SM.close()
SM = unix(os.path.join(DIR, "sm.sock"))
lookup("transport", "bob@friend.com")
lookup("transport", "ann@friend.net")
sm = samples(scrape()[1])
fc2, fn2 = record_hits(sm, "Relay:<*@friend.com>"), record_hits(sm, "Relay:<*@friend.net>")
result(fc2 == {fc_line + 1: 5}, "unchanged record: 4 before the reload + 1, at its new line", fc2)
result(fn2 == {fn_line + 1: 1}, "changed record: counts from zero", fn2)
result(get(sm, "waypost_reloads_total", result="success") == 1 and get(sm, "waypost_config_generation") >= 1,
       "the reload is counted", [(k, v) for k, v in sm.items() if "reload" in k[0] or "generation" in k[0]])

# --- hostile scrapers while Postfix's lookups go on
h, _ = scrape("/" + "a" * 20000)
result(" 200 " not in h.split("\r\n")[0], "a 20 kB URL is refused", h[:60])
h, _ = scrape("/other")
result(" 404 " in h.split("\r\n")[0], "another path: 404", h[:60])
# Many more slow clients than the endpoint's connection cap: it holds at
# most CAP open (the rest wait in the kernel's backlog, costing no
# descriptor), so the daemon's descriptors stay bounded and Postfix's new
# connections are still accepted.
base = nfds()
idle = flood(200)
result(len(idle) >= 100, "100+ slow clients connect (past the cap they wait in the backlog)", len(idle))
time.sleep(0.5)  # the endpoint accepts what it will
peak = FdWatch()
during = nfds()
result(CAP - 2 <= during - base <= CAP + 2,
       "descriptors bounded by the cap (%d): %d at rest, %d with %d slow clients" % (CAP, base, during, len(idle)),
       during - base)
slow = 0
for i in range(300):
    t = time.time()
    a = lookup("transport", "bob@friend.com")
    slow = max(slow, time.time() - t)
    if not a.startswith("OK"):
        break
result(a.startswith("OK") and slow < 0.5, "lookups answered meanwhile (slowest %.3f s)" % slow, a)
fresh = []
for i in range(20):  # new Postfix connections need descriptors of their own
    try:
        c = unix(os.path.join(DIR, "sm.sock"))
        c.sendall(netstring(b"transport bob@friend.com"))
        fresh.append(read_netstring(c))
        c.close()
    except OSError as e:
        fresh.append(str(e))
result(fresh == [fresh[0]] * 20 and fresh[0].startswith("OK"), "20 new socketmap connections answered meanwhile",
       fresh[:3])
result(policy("bob@friend.com") == "DUNNO", "a new policy connection answered meanwhile")
try:
    scrape(timeout=1)
    waited = False
except OSError:  # socket.timeout: connected (the backlog) but not accepted
    waited = True
result(waited, "at the cap a new scraper waits (not accepted)")
time.sleep(WP_TIMEOUT + 1.5)  # past the endpoint's timeout: the first CAP are closed, the next accepted
closed = hung_up(idle)
result(CAP <= len(closed) < len(idle), "slow clients closed after the timeout, CAP at a time (%d of %d)" %
       (len(closed), len(idle)))
result(peak.stop() - base <= CAP + 2, "descriptors stayed bounded while they rotated (peak %d over %d)" %
       (peak.peak - base, base), peak.peak)
for c in idle:
    c.close()
t = time.time()
h, body = scrape(timeout=10)
result(" 200 " in h.split("\r\n")[0] and "waypost_policy_requests_total" in body,
       "the endpoint answers once they close (%.2f s)" % (time.time() - t), h[:60])
time.sleep(0.3)
result(nfds() <= base + 1, "descriptors back to the rest level", nfds() - base)

# --- the migration drain: an account created on this server stops counting
with open(os.path.join(DIR, "users.passwd"), "a") as f:
    f.write("newbie1:{PLAIN}x::::::\n")
os.kill(PID, signal.SIGHUP)
for _ in range(50):
    sm = samples(scrape()[1])
    if get(sm, "waypost_reloads_total", result="success") == 2:
        break
    time.sleep(0.1)
a = policy("newbie1@domain.dom", qid="AAA120")
a3 = policy("newbie3@domain.dom", qid="AAA121")
sm = samples(scrape()[1])
result(a == "DUNNO" and a3 == "DUNNO" and
       get(sm, "waypost_router_unknown_reroutes_total", domain="domain.dom") == 3,
       "newbie1 has an account now: only newbie3 is one more reroute (3)",
       get(sm, "waypost_router_unknown_reroutes_total", domain="domain.dom"))
done()
