#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Decision log lines and the metrics endpoint of a running waypost-policyd.

Usage: metrics.py DIR METRICS_PORT PID
DIR holds sm.sock, policy.sock, router.table and policyd.log; the last good
scrape is written to DIR/scrape.txt (for promtool).  Prints TAP-style lines.
"""
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402

DIR, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
LOG = os.path.join(DIR, "policyd.log")
TABLE = os.path.join(DIR, "router.table")


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
        buf += s.recv(1)
    n = int(buf[:-1])
    data = b""
    while len(data) < n + 1:
        data += s.recv(n + 1 - len(data))
    return data[:-1].decode()


SM = None


def lookup(m, key):
    s = SM
    s.sendall(netstring(("%s %s" % (m, key)).encode()))
    return read_netstring(s)


def policy(rcpt, client="192.0.2.10", sasl="", qid="", sender="s@example.net", name="mx.example.net"):
    s = unix(os.path.join(DIR, "policy.sock"))
    req = ("request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=%s\n"
           "client_name=%s\nsender=%s\nrecipient=%s\nsasl_username=%s\nqueue_id=%s\n\n"
           % (client, name, sender, rcpt, sasl, qid))
    s.sendall(req.encode())
    buf = b""
    while not buf.endswith(b"\n\n"):
        d = s.recv(4096)
        if not d:
            break
        buf += d
    s.close()
    return buf.decode().strip()[len("action="):]


def scrape(path="/metrics", timeout=5):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.sendall(b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode())
    buf = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head.decode(errors="replace"), body.decode()


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
idle = []
for _ in range(200):
    try:
        c = socket.create_connection(("127.0.0.1", PORT), timeout=2)
        c.sendall(b"GET /metr")  # a slow client: never finishes its request
        idle.append(c)
    except OSError:
        break
result(len(idle) >= 100, "the endpoint takes 100+ slow connections", len(idle))
slow = 0
t0 = time.time()
for i in range(300):
    t = time.time()
    a = lookup("transport", "bob@friend.com")
    slow = max(slow, time.time() - t)
    if not a.startswith("OK"):
        break
result(a.startswith("OK") and slow < 0.5, "lookups answered meanwhile (slowest %.3f s)" % slow, a)
time.sleep(6.5)  # past WP_METRICS_TIMEOUT: the slow clients are closed
closed = 0
for c in idle:
    try:
        c.settimeout(0.2)
        if c.recv(100) == b"":  # the server hung up (an answer would be bytes, silence a timeout)
            closed += 1
    except ConnectionResetError:
        closed += 1
    except (socket.timeout, OSError):
        pass
    c.close()
result(closed == len(idle), "slow clients closed after the timeout", "%d of %d" % (closed, len(idle)))
h, body = scrape()
result(" 200 " in h.split("\r\n")[0] and "waypost_policy_requests_total" in body, "the endpoint answers afterwards", h[:60])

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
