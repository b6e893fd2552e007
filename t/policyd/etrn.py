#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box tests of ETRN requests to a running waypost-policyd.

Usage: etrn.py DIR
DIR holds the daemon's policy.sock; this script plays waypost-odmrd's
control socket at DIR/control.sock (policyd.etrn_socket): it appends each
request line to DIR/flush.log, sleeps DIR/sleep seconds if that file
exists, and answers "OK queue: release started", or "FAIL queue: ..." when
DIR/status holds a non-zero number.
The daemon's config: held queues domain1.dom (only the SASL login cust1
may release it; domain2.dom and domain3.dom are merged into it) and
client.isp.dom (trusted clients; isp1.dom merged), etrn_timeout 2 s.
Prints TAP-style lines; exits 1 if anything failed.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wire  # noqa: E402
from tap import done, result  # noqa: E402

DIR = sys.argv[1]
POL = os.path.join(DIR, "policy.sock")
LOG = os.path.join(DIR, "flush.log")
CTL = os.path.join(DIR, "control.sock")


def fake_odmrd():
    if os.path.exists(CTL):
        os.unlink(CTL)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(CTL)
    srv.listen(16)

    def serve(c):
        line = wire.recv_until(c, b"\n", 512)
        text = line.decode("utf-8", "replace").strip()
        with open(LOG, "a") as f:
            f.write(text + "\n")
        p = os.path.join(DIR, "sleep")
        if os.path.exists(p):
            time.sleep(float(open(p).read()))
        p = os.path.join(DIR, "status")
        failed = os.path.exists(p) and open(p).read().strip() != "0"
        queue = text.split(" ", 1)[-1]
        try:
            c.sendall((("FAIL %s: cannot start the release\n" if failed else "OK %s: release started\n")
                       % queue).encode())
        except OSError:
            pass
        c.close()

    def loop():
        while True:
            c, _ = srv.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


fake_odmrd()


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(POL)
    return s


def etrn_request(domain, client="192.0.2.10", sasl=""):
    attrs = [("request", "smtpd_access_policy"), ("protocol_state", "ETRN"), ("protocol_name", "ESMTP"),
             ("client_address", client), ("client_name", "unknown"), ("helo_name", "customer.test"),
             ("sasl_method", "plain" if sasl else ""), ("sasl_username", sasl), ("etrn_domain", domain)]
    return b"".join(b"%s=%s\n" % (k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in attrs) + b"\n"


pending = {}  # socket -> bytes read past the last answer


def read_answer(s):
    buf = pending.pop(s, b"")
    while b"\n\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    answer, sep, rest = buf.partition(b"\n\n")
    if rest:
        pending[s] = rest
    return answer.decode("utf-8", "replace").strip()


def ask(domain, client="192.0.2.10", sasl="", s=None):
    own = s is None
    s = s or connect()
    s.sendall(etrn_request(domain, client, sasl))
    a = read_answer(s)
    if own:
        s.close()
    return a


def runs():
    try:
        with open(LOG) as f:
            return [l.split() for l in f.read().splitlines()]
    except FileNotFoundError:
        return []


def reset(sleep=None, status=None):
    for name, value in (("flush.log", None), ("sleep", sleep), ("status", status)):
        p = os.path.join(DIR, name)
        if os.path.exists(p):
            os.unlink(p)
        if value is not None:
            with open(p, "w") as f:
                f.write(str(value))


# --- authorised: waypost-odmrd is asked to release the queue (merged domains included)
reset()
a = ask("domain1.dom", sasl="cust1")
result(a == "action=OK", "cust1 releases domain1.dom: OK", a)
r = runs()
result(r == [["FLUSH", "domain1.dom"]], "one FLUSH domain1.dom to waypost-odmrd", r)
reset()
a = ask("DOMAIN1.Dom.", sasl="CUST1")
result(a == "action=OK" and runs() == [["FLUSH", "domain1.dom"]], "case and a trailing dot do not matter", a)
reset()
a = ask("client.isp.dom", client="127.0.0.1")
result(a == "action=OK", "trusted network releases client.isp.dom", a)
result(runs() == [["FLUSH", "client.isp.dom"]], "queue client.isp.dom released", runs())
a = ask("client.isp.dom", client="192.0.2.10", sasl="anyone")
result(a == "action=OK", "an authenticated client is trusted", a)

# --- refused
reset()
for domain, client, sasl, what in (("domain1.dom", "192.0.2.10", "", "outside client"),
                                   ("domain1.dom", "127.0.0.1", "", "trusted network without the account"),
                                   ("domain1.dom", "192.0.2.10", "mallory", "another account"),
                                   ("domain2.dom", "192.0.2.10", "", "a merged domain"),
                                   ("client.isp.dom", "192.0.2.10", "", "outside client, trusted queue")):
    a = ask(domain, client, sasl)
    result(a.startswith("action=459 4.7.1 this client may not release queue "), "refused: %s" % what, a)
result(runs() == [], "refusals run nothing", runs())

# --- not a held queue: Postfix decides
for domain in ("friend.com", "elsewhere.example", "[192.0.2.1]", "company.dom"):
    a = ask(domain, sasl="cust1")
    result(a == "action=DUNNO", "not held: %s -> DUNNO" % domain, a)
reset()
a = ask("domain2.dom", sasl="cust1")
result(a == "action=OK" and runs() == [["FLUSH", "domain1.dom"]], "a merged domain releases its whole queue",
       (a, runs()))

# --- hostile arguments: a clear 501, nothing run, the daemon keeps serving
hostile = [b"", b"@", b"#", b"domain1.dom;id", b"domain1.dom extra", b"-s", b"--help", b"../../etc/passwd",
           b"$(touch /tmp/x)", b"`id`", b"\xff\xfe.dom", b"x." * 127, b"a..b", b"[1.2.3",
           b"domain1.dom%0Aaction=OK", b"<domain1.dom>", b"domain1.dom,domain2.dom"]
reset()
bad = 0
for h in hostile:
    s = connect()
    s.sendall(etrn_request(h, sasl="cust1"))
    a = read_answer(s)
    s.close()
    if not (a in ("action=501 5.5.4 invalid ETRN argument", "action=DUNNO")):
        bad += 1
        print("#   %r -> %r" % (h, a))
result(bad == 0, "%d hostile ETRN arguments answered 501 or DUNNO" % len(hostile))
r = runs()
result(r == [], "no hostile argument reached waypost-odmrd", r)
long_req = b"request=smtpd_access_policy\nprotocol_state=ETRN\netrn_domain=" + b"d" * 5000 + b"\n\n"
s = connect()
s.sendall(long_req)
a = read_answer(s)
s.close()
result(a == "", "an over-long etrn_domain closes the connection", a)

# --- several requests on one connection, the ETRN in the middle
reset()
s = connect()
s.sendall(b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.10\nrecipient=x@domain1.dom\n\n"
          + etrn_request("domain1.dom", sasl="cust1")
          + b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.10\nrecipient=u@d.example\n\n")
answers = [read_answer(s) for _ in range(3)]
s.close()
result(answers == ["action=DUNNO", "action=OK", "action=554 5.7.1 Relay access denied"],
       "pipelined requests are answered in order around the ETRN", answers)

# --- waypost-odmrd says FAIL: 458
reset(status=69)
a = ask("domain1.dom", sasl="cust1")
result(a == "action=458 4.3.0 unable to release queue domain1.dom now", "odmrd fails: 458", a)
result(len(runs()) == 1, "one request", runs())

# --- a slow waypost-odmrd: other connections are answered meanwhile; bounded by etrn_timeout
reset(sleep=30)
slow = connect()
t0 = time.time()
slow.sendall(etrn_request("domain1.dom", sasl="cust1"))
time.sleep(0.3)
quick = []
for _ in range(20):
    t = time.time()
    a = ask("friend.com")
    quick.append((a, time.time() - t))
result(all(a == "action=DUNNO" and dt < 0.5 for a, dt in quick),
       "20 other requests answered while odmrd hangs", quick[:3])
a = read_answer(slow)
dt = time.time() - t0
slow.close()
result(a == "action=458 4.3.0 unable to release queue domain1.dom now" and 1.5 < dt < 5,
       "a hanging odmrd is given up after etrn_timeout (2 s): 458 after %.1f s" % dt, a)
result(len(runs()) == 1, "one request", runs())

# --- the client hangs up while the flush runs: no harm, the daemon goes on
reset(sleep=1)
s = connect()
s.sendall(etrn_request("domain1.dom", sasl="cust1"))
s.close()
time.sleep(2.5)
a = ask("friend.com")
result(a == "action=DUNNO", "a client gone during the flush does not disturb the daemon", a)
reset()
a = ask("domain1.dom", sasl="cust1")
result(a == "action=OK" and len(runs()) == 1, "and the next release works", a)

done()
