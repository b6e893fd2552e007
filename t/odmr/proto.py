#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box protocol tests for a running waypost-odmrd.

Usage: proto.py DIR PORT TLS_PORT [METRICS_PORT]
DIR holds lmtp.sock, spool/, cert.pem, and dsn/ (where the fake sendmail
drops the reports it is given).  PORT is the customer endpoint, TLS_PORT the
implicit-TLS one, METRICS_PORT the metrics endpoint (then a known mix of
commands, bad lines and idle connections runs first and the counters must
move by exactly what it sent).  held.dom is a held (ETRN) queue.  The daemon runs with timeout = 3, auth_failure_delay = 1,
max_message_size = 65536, max_connections = 60 (t/odmr/proto.sh).
Prints TAP-style "ok N - ..." lines; exits 1 if anything failed.
"""
import base64
import fcntl
import glob
import hashlib
import hmac
import os
import random
import socket
import subprocess
import ssl
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402
import wire  # noqa: E402

DIR, PORT, TLS_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
METRICS = int(sys.argv[4]) if len(sys.argv) > 4 else 0
LMTP = os.path.join(DIR, "lmtp.sock")
SPOOL = os.path.join(DIR, "spool")


class Session:
    """A line-oriented SMTP/LMTP client over a socket (TLS-capable)."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    @classmethod
    def tcp(cls, port=None, timeout=10):
        return cls(socket.create_connection(("127.0.0.1", port or PORT), timeout=timeout))

    @classmethod
    def lmtp(cls):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(LMTP)
        return cls(s)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError("closed")
            self.buf += d
        l, _, self.buf = self.buf.partition(b"\n")
        return l.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """A whole (multi-line) reply: (code, [lines])."""
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), lines

    def cmd(self, c):
        self.send(c + "\r\n")
        return self.reply()

    def eof(self, wait=5):
        """True if the server closes the connection (after any output)."""
        self.s.settimeout(wait)
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return True
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True

    def starttls(self):
        ctx = ssl.create_default_context(cafile=os.path.join(DIR, "cert.pem"))
        self.s = ctx.wrap_socket(self.s, server_hostname="127.0.0.1")
        self.buf = b""

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def cram(sess, user, password):
    code, lines = sess.cmd("AUTH CRAM-MD5")
    if code != 334:
        return code
    ch = base64.b64decode(lines[0][4:])
    d = hmac.new(password.encode(), ch, hashlib.md5).hexdigest()
    return sess.cmd(base64.b64encode(("%s %s" % (user, d)).encode()).decode())[0]


def plain(sess, user, password):
    b = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    return sess.cmd("AUTH PLAIN " + b)[0]


def login(user="cust1", password="secret", tls=False):
    s = Session.tcp()
    s.reply()
    s.cmd("EHLO customer.test")
    if tls:
        s.cmd("STARTTLS")
        s.starttls()
        s.cmd("EHLO customer.test")
    code = cram(s, user, password)
    assert code == 235, code
    return s


def lmtp_send(sender, rcpts, body):
    """One LMTP transaction: ([(rcpt, code)], [final per-rcpt replies])."""
    s = Session.lmtp()
    s.reply()
    s.cmd("LHLO postfix.test")
    s.cmd("MAIL FROM:<%s>" % sender)
    rc = [(r, s.cmd("RCPT TO:<%s>" % r)[0]) for r in rcpts]
    finals = []
    if any(c == 250 for _, c in rc):
        code, _ = s.cmd("DATA")
        assert code == 354, code
        stuffed = "".join(("." + l if l.startswith(".") else l) + "\r\n" for l in body.split("\n"))
        s.send(stuffed + ".\r\n")
        finals = [s.reply() for _, c in rc if c == 250]
    s.cmd("QUIT")
    s.close()
    return rc, finals


def spool_files(queue):
    return sorted(glob.glob(os.path.join(SPOOL, queue, "[0-9a-f]*")))


def serve_reversed(sess, rcpt_code=lambda r: 250, data_code=250, pipelining=True):
    """Play the customer's SMTP server on a reversed connection: returns
    the list of (sender, [rcpts accepted], text) received."""
    got = []
    sess.send("220 customer.test ESMTP\r\n")
    sender, rcpts = None, []
    while True:
        l = sess.line()
        if l.startswith("EHLO"):
            sess.send("250-customer.test\r\n" + ("250-PIPELINING\r\n" if pipelining else "") + "250 8BITMIME\r\n")
        elif l.startswith("MAIL FROM:"):
            sender, rcpts = l[11:-1], []
            sess.send("250 2.1.0 ok\r\n")
        elif l.startswith("RCPT TO:"):
            r = l[9:-1]
            code = rcpt_code(r)
            if code == 250:
                rcpts.append(r)
            sess.send("%d %s.1.5 <%s> %s\r\n" % (code, str(code)[0], r, "ok" if code == 250 else "no"))
        elif l == "DATA":
            if not rcpts:
                sess.send("554 5.5.1 no valid recipients\r\n")
                continue
            sess.send("354 go ahead\r\n")
            text = []
            while True:
                d = sess.line()
                if d == ".":
                    break
                text.append(d)
            got.append((sender, rcpts, text))
            sess.send("%d done\r\n" % data_code)
        elif l == "RSET":
            sess.send("250 ok\r\n")
        elif l == "QUIT":
            sess.send("221 bye\r\n")
            return got
        else:
            sess.send("500 what\r\n")


# ---------------------------------------------------------------- counters
def scrape():
    """The metrics endpoint's samples: {'name{labels}': value}."""
    return wire.samples(wire.http_get(METRICS)[1])


def delta(after, before, prefix):
    """The samples under prefix that moved, as {labels: increase}."""
    return {k[len(prefix):]: after[k] - before.get(k, 0) for k in after
            if k.startswith(prefix) and after[k] != before.get(k, 0)}


def cmd_key(proto, command, answer):
    return '{protocol="%s",command="%s",answer="%s"}' % (proto, command, answer)


if METRICS:
    # Run first, while nothing else talks to the daemon: every count below
    # is what this mix sends, no more.
    before = scrape()
    idle = [Session.tcp(), Session.lmtp()]  # say nothing: odmr.timeout (3 s) closes them
    for i in idle:
        i.reply()
    s = Session.lmtp()
    s.reply()
    got = [s.cmd("LHLO postfix.test")[0], s.cmd("MAIL FROM:<s@sender.test>")[0], s.cmd("RCPT TO:<h@held.dom>")[0],
           s.cmd("RCPT TO:<u@company.dom>")[0], s.cmd("DATA")[0]]
    s.send("Subject: held\r\n\r\nx\r\n.\r\n")
    got.append(s.reply()[0])
    stored = time.time()
    got += [s.cmd(c)[0] for c in ("MAIL FROM:<a@b> SIZE=99999999", "DATA", "MAIL FROM:a@b", "XYZZY", "NOOP", "RSET",
                                  "QUIT")]
    s.close()
    s = Session.lmtp()
    s.reply()
    got.append(s.cmd("LHLO postfix.test")[0])
    s.send("NOOP " + "x" * 5000 + "\r\n")
    got.append(s.reply()[0])
    s.close()
    want = [250, 250, 250, 550, 354, 250, 552, 503, 501, 502, 250, 250, 221, 250, 500]
    s = Session.tcp()
    s.reply()
    got += [s.cmd(c)[0] for c in ("EHLO customer.test", "NOOP", "ATRN", "MAIL FROM:<a@b>", "HELP")]
    got += [cram(s, "cust1", "wrong"), cram(s, "cust1", "secret")]
    got += [s.cmd(c)[0] for c in ("ATRN other.dom", "RSET", "QUIT")]
    s.close()
    s = Session.tcp()
    s.reply()
    s.send("EHLO a\0b\r\n")
    got.append(s.reply()[0])
    s.close()
    want += [250, 250, 530, 503, 502, 535, 235, 450, 250, 221, 500]
    for i in idle:
        got.append(i.reply()[0])
        got.append(i.eof())
        i.close()
    want += [421, True, 421, True]
    result(got == want, "metrics mix: the replies are the expected ones", got)
    time.sleep(0.2)  # the idle connections' ends reach the loop
    after = scrape()
    commands = delta(after, before, "waypost_odmr_commands_total")
    want_commands = {
        cmd_key("lmtp", "LHLO", "2xx"): 2, cmd_key("lmtp", "MAIL", "2xx"): 1, cmd_key("lmtp", "MAIL", "5xx"): 2,
        cmd_key("lmtp", "RCPT", "2xx"): 1, cmd_key("lmtp", "RCPT", "5xx"): 1, cmd_key("lmtp", "DATA", "3xx"): 1,
        cmd_key("lmtp", "DATA", "5xx"): 1, cmd_key("lmtp", "END-OF-MESSAGE", "2xx"): 1,
        cmd_key("lmtp", "other", "5xx"): 1, cmd_key("lmtp", "NOOP", "2xx"): 1, cmd_key("lmtp", "RSET", "2xx"): 1,
        cmd_key("lmtp", "QUIT", "2xx"): 1,
        cmd_key("odmr", "EHLO", "2xx"): 1, cmd_key("odmr", "NOOP", "2xx"): 1, cmd_key("odmr", "ATRN", "5xx"): 1,
        cmd_key("odmr", "MAIL", "5xx"): 1, cmd_key("odmr", "HELP", "5xx"): 1, cmd_key("odmr", "AUTH", "3xx"): 2,
        cmd_key("odmr", "AUTH-RESPONSE", "5xx"): 1, cmd_key("odmr", "AUTH-RESPONSE", "2xx"): 1,
        cmd_key("odmr", "ATRN", "4xx"): 1, cmd_key("odmr", "RSET", "2xx"): 1, cmd_key("odmr", "QUIT", "2xx"): 1}
    result(commands == want_commands, "metrics: commands_total moved by exactly the mix (26 commands)",
           sorted(set(commands.items()) ^ set(want_commands.items())))
    errors = delta(after, before, "waypost_odmr_errors_total")
    want_errors = {'{protocol="lmtp",kind="line"}': 1, '{protocol="lmtp",kind="syntax"}': 1,
                   '{protocol="lmtp",kind="sequence"}': 1, '{protocol="lmtp",kind="unknown"}': 1,
                   '{protocol="odmr",kind="line"}': 1, '{protocol="odmr",kind="sequence"}': 2,
                   '{protocol="odmr",kind="unknown"}': 1}
    result(errors == want_errors, "metrics: errors_total by protocol and kind", errors)
    timeouts = delta(after, before, "waypost_odmr_timeouts_total")
    result(timeouts == {'{protocol="lmtp",kind="idle"}': 1, '{protocol="odmr",kind="idle"}': 1},
           "metrics: one idle timeout on each side", timeouts)
    hist = "waypost_odmr_command_duration_seconds"
    n = after[hist + "_count"] - before.get(hist + "_count", 0)
    inf = after[hist + '_bucket{le="+Inf"}'] - before.get(hist + '_bucket{le="+Inf"}', 0)
    spent = after[hist + "_sum"] - before.get(hist + "_sum", 0)
    result(n == sum(want_commands.values()) == inf, "metrics: the histogram measured each command once (%d)" % n,
           (n, inf))
    result(0 < spent < 1.0, "metrics: a failed AUTH's 1 s delay is not in the latency (sum %.6f s)" % spent, spent)
    files = spool_files("held.dom")
    key = '{queue="held.dom",kind="held"}'
    age = after.get("waypost_odmr_queue_oldest_age_seconds" + key, -1)
    result(len(files) == 1 and after.get("waypost_odmr_queue_messages" + key) == 1 and
           after.get("waypost_odmr_queue_bytes" + key) == os.path.getsize(files[0]) and
           0 <= age <= time.time() - stored + 1,
           "metrics: the held queue's messages, bytes and age (kind=held)",
           (files, {k: v for k, v in after.items() if "held.dom" in k}))

# ---------------------------------------------------------------- LMTP intake
body = "Subject: proto\n\n.starts with a dot\n..two dots\nend"
rc, finals = lmtp_send("s@sender.test", ["a@domain1.dom", "b@domain2.dom", "c@other.dom", "u@company.dom",
                                          "x@elsewhere.example"], body)
codes = [c for _, c in rc]
result(codes == [250, 250, 250, 550, 550], "LMTP RCPT: ODMR routes 250, others 550", rc)
result(len(finals) == 3 and all(f[0] == 250 for f in finals), "LMTP: one 250 per accepted recipient after DATA",
       finals)
f1, fo = spool_files("domain1.dom"), spool_files("other.dom")
result(len(f1) == 1 and len(fo) == 1, "one spool file per queue (merged domains share domain1.dom)", (f1, fo))
if f1:
    data = open(f1[0], "rb").read()
    env, _, text = data.partition(b"\n\n")
    result(b"R a@domain1.dom" in env and b"R b@domain2.dom" in env and b"c@other.dom" not in env,
           "the queue file names its own recipients", env)
    result(text == b"Subject: proto\r\n\r\n.starts with a dot\r\n..two dots\r\nend\r\n",
           "LMTP DATA is dot-unstuffed in the spool", text)
big = "Subject: big\n\n" + ("x" * 1000 + "\n") * 80
rc, finals = lmtp_send("s@sender.test", ["big@domain1.dom"], big)
result(finals and finals[0][0] == 552, "LMTP: a message over max_message_size gets 552", finals)
result(len(spool_files("domain1.dom")) == 1, "the oversized message is not spooled")
s = Session.lmtp()
s.reply()
result(s.cmd("MAIL FROM:<a@b>")[0] == 503, "LMTP: MAIL before LHLO is 503")
s.cmd("LHLO x")
result(s.cmd("RCPT TO:<a@domain1.dom>")[0] == 503, "LMTP: RCPT before MAIL is 503")
result(s.cmd("DATA")[0] == 503, "LMTP: DATA before MAIL is 503")
s.cmd("MAIL FROM:<>")
result(s.cmd("RCPT TO:a@domain1.dom")[0] == 501, "LMTP: RCPT without <> is 501")
result(s.cmd("DATA")[0] == 503, "LMTP: DATA without recipients is 503")
result(s.cmd("RSET")[0] == 250 and s.cmd("QUIT")[0] == 221 and s.eof(), "LMTP: RSET, QUIT")
s.close()

# ---------------------------------------------------------------- customer side
s = Session.tcp()
greet = s.reply()
result(greet[0] == 220, "customer greeting 220", greet)
code, ehlo = s.cmd("EHLO customer.test")
result(code == 250 and "250-AUTH CRAM-MD5" in ehlo and "250-STARTTLS" in ehlo and ehlo[-1] == "250 ATRN",
       "EHLO advertises AUTH CRAM-MD5, STARTTLS and ATRN (no PLAIN in the clear)", ehlo)
result(s.cmd("ATRN")[0] == 530, "ATRN before AUTH: 530")
result(s.cmd("MAIL FROM:<a@b>")[0] == 503, "MAIL before ATRN: 503")
result(s.cmd("VRFY x")[0] == 503, "VRFY: 503")
result(s.cmd("HELP")[0] == 502, "unknown command: 502")
result(plain(s, "cust1", "secret") == 538, "AUTH PLAIN without TLS: 538")
t0 = time.time()
result(cram(s, "cust1", "wrong") == 535 and time.time() - t0 >= 0.9, "wrong CRAM-MD5 password: 535 after the delay")
result(cram(s, "nosuchuser", "x") == 535, "unknown user: 535")
result(cram(s, "cust2", "secret") == 235, "CRAM-MD5 against Dovecot's stored {CRAM-MD5} contexts: 235")
result(s.cmd("AUTH CRAM-MD5")[0] == 503, "second AUTH: 503")
result(s.cmd("ATRN domain1.dom")[0] == 450, "ATRN for a queue the account does not own: 450")
result(s.cmd("ATRN bad..domain")[0] == 501, "ATRN with a bad domain: 501")
result(s.cmd("QUIT")[0] == 221 and s.eof(), "QUIT closes")
s.close()

s = Session.tcp()
s.reply()
s.cmd("EHLO customer.test")
result(s.cmd("STARTTLS")[0] == 220, "STARTTLS: 220")
s.starttls()
code, ehlo = s.cmd("EHLO customer.test")
result("250-AUTH CRAM-MD5 PLAIN" in ehlo and "250-STARTTLS" not in ehlo, "under TLS: AUTH PLAIN offered, STARTTLS not",
       ehlo)
result(plain(s, "hashed", "wrong") == 535, "AUTH PLAIN, wrong password for a {SHA512-CRYPT} entry: 535")
result(plain(s, "hashed", "secret") == 235, "AUTH PLAIN against {SHA512-CRYPT} under TLS: 235")
result(s.cmd("ATRN nothing.dom")[0] == 453, "ATRN with nothing queued: 453 You have no mail")
s.cmd("QUIT")
s.close()

s = Session.tcp()
s.reply()
s.cmd("EHLO customer.test")
result(cram(s, "cust3", "secret") == 535, "an account without odmr.accounts entry cannot log in")
s.close()

# Implicit TLS port, PLAIN (cust1), ATRN of a merged domain releases its queue.
raw = socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10)
ctx = ssl.create_default_context(cafile=os.path.join(DIR, "cert.pem"))
s = Session(ctx.wrap_socket(raw, server_hostname="127.0.0.1"))
s.reply()
code, ehlo = s.cmd("EHLO customer.test")
result("250-AUTH CRAM-MD5 PLAIN" in ehlo, "tls: endpoint: TLS from the first byte, PLAIN offered", ehlo)
result(plain(s, "cust1", "secret") == 235, "AUTH PLAIN on the TLS endpoint: 235")
code, _ = s.cmd("ATRN domain3.dom")
result(code == 250, "ATRN domain3.dom (merged into domain1.dom): 250")
got = serve_reversed(s)
result(len(got) == 1 and sorted(got[0][1]) == ["a@domain1.dom", "b@domain2.dom"] and got[0][0] == "s@sender.test",
       "reversed: the queue's message arrives with its envelope", got)
if got:
    result(got[0][2] == ["Subject: proto", "", "..starts with a dot", "...two dots", "end"],
           "reversed: DATA is dot-stuffed", got[0][2])
result(s.eof(), "reversed: the provider closes after QUIT")
s.close()
result(spool_files("domain1.dom") == [], "delivered mail left the spool")

# Per-recipient outcome: 250 leaves, 4xx stays, 5xx returns to the sender.
lmtp_send("bounce-me@sender.test", ["ok@domain1.dom", "later@domain1.dom", "gone@domain2.dom"], "Subject: mixed\n\nx")
lmtp_send("", ["ok2@domain1.dom"], "Subject: null sender\n\nx")
s = login()
s.cmd("ATRN")
codes = {"later@domain1.dom": 450, "gone@domain2.dom": 550}
got = serve_reversed(s, rcpt_code=lambda r: codes.get(r, 250), pipelining=False)
result(len(got) == 2, "reversed without PIPELINING: both messages sent", got)
s.close()
left = spool_files("domain1.dom")
env = open(left[0], "rb").read().partition(b"\n\n")[0] if len(left) == 1 else b""
result(len(left) == 1 and b"R later@domain1.dom" in env and b"ok@" not in env and b"gone@" not in env,
       "a 4xx recipient stays in the spool, 250 and 5xx ones leave", (left, env))
time.sleep(0.2)
dsns = glob.glob(os.path.join(DIR, "dsn", "*.msg"))
text = open(dsns[0]).read() if len(dsns) == 1 else ""
result(len(dsns) == 1 and "Final-Recipient: rfc822; gone@domain2.dom" in text and "Status: 5.1.5" in text and
       "later@" not in text and "Subject: mixed" in text,
       "the 5xx recipient is returned to its sender with a DSN (the null-sender message is not)", (dsns, text[:300]))
if dsns:
    args = open(dsns[0][:-4] + ".args").read().split("\n")
    result(args[:5] == ["-i", "-f", "", "--", "bounce-me@sender.test"],
           "the DSN goes with a null sender to the original sender", args)

# A second session cannot take a queue that is being delivered.
s = login()
s.cmd("ATRN domain1.dom")
s.send("220 customer.test\r\n")
s.line()  # EHLO: hold the session here
s2 = login()
result(s2.cmd("ATRN domain1.dom")[0] == 451, "ATRN for a queue another session is delivering: 451")
# The session holds the queue's lock too: `waypost queue delete` waits for it.
held = spool_files("domain1.dom")
waypost = [os.path.join(os.environ["top_builddir"], "waypost"), "-c", os.path.join(DIR, "waypost.conf")]
if held:
    qid = os.path.basename(held[0])
    rm = subprocess.run(waypost + ["queue", "delete", "domain1.dom", qid], capture_output=True, text=True)
    result(rm.returncode == 1 and "being delivered" in rm.stderr and os.path.exists(held[0]),
           "waypost queue delete during an ATRN session: refused, the message stays", (rm.returncode, rm.stderr))
else:
    result(False, "waypost queue delete during an ATRN session: a message waits in domain1.dom", held)
s.close()  # the customer disappears mid-session: the queue is released
time.sleep(0.3)
# Another process holding the lock (a release process, waypost queue delete).
lockfd = os.open(os.path.join(SPOOL, "domain1.dom"), os.O_RDONLY | os.O_DIRECTORY)
fcntl.flock(lockfd, fcntl.LOCK_EX)
result(s2.cmd("ATRN domain1.dom")[0] == 451, "ATRN for a queue another process holds locked: 451")
os.close(lockfd)
result(s2.cmd("ATRN domain1.dom")[0] == 250, "after the first session dies the queue can be released again")
got = serve_reversed(s2)
result(len(got) == 1 and got[0][1] == ["later@domain1.dom"], "the deferred recipient is delivered next time", got)
s2.close()

# ---------------------------------------------------------------- hostile sessions
good = login(tls=True)  # a good session that must stay served throughout
hostile_ok = 0
hostile_total = 0
hostile_bad = []


def hostile(kind, fn):
    global hostile_ok, hostile_total
    hostile_total += 1
    try:
        ok = fn()
    except Exception as e:  # noqa: BLE001 - any failure of the check counts
        ok = False
        kind = "%s (%r)" % (kind, e)
    if ok:
        hostile_ok += 1
    else:
        hostile_bad.append(kind)


def h_long_line(port_lmtp=False):
    s = Session.lmtp() if port_lmtp else Session.tcp()
    s.reply()
    s.send("EHLO " + "x" * 6000 + "\r\n")
    code = s.reply()[0]
    return code == 500 and s.eof()


def h_no_newline():
    s = Session.tcp()
    s.reply()
    s.send("A" * 5000)
    return s.reply()[0] == 500 and s.eof()


def h_out_of_order():
    s = Session.tcp()
    s.reply()
    want = [("DATA", 503), ("RCPT TO:<a@b>", 503), ("ATRN", 530), ("AUTH PLAIN", 503), ("BDAT 10", 503)]
    cmds = random.sample(want, len(want))
    return all(s.cmd(c)[0] == w for c, w in cmds)


def h_bad_flood():
    s = Session.tcp()
    s.reply()
    for i in range(9):
        if s.cmd("XYZZY%d" % i)[0] != 502:
            return False
    s.send("XYZZY\r\n")
    return s.reply()[0] == 502 and s.reply()[0] == 421 and s.eof()


def h_tls_garbage():
    s = Session.tcp()
    s.reply()
    s.cmd("EHLO x")
    if s.cmd("STARTTLS")[0] != 220:
        return False
    s.send(os.urandom(random.randint(1, 3000)))
    return s.eof()


def h_tls_port_garbage():
    s = Session.tcp(TLS_PORT)
    s.send(os.urandom(random.randint(1, 3000)))
    return s.eof()


def h_plaintext_on_tls_port():
    s = Session.tcp(TLS_PORT)
    s.send("EHLO x\r\nAUTH PLAIN AGN1c3QxAHNlY3JldA==\r\n")
    return s.eof()


def h_nul():
    s = Session.tcp()
    s.reply()
    s.send("EHLO a\0b\r\n")
    return s.reply()[0] == 500 and s.eof()


def h_auth_garbage():
    s = Session.tcp()
    s.reply()
    s.cmd("EHLO x")
    s.cmd("AUTH CRAM-MD5")
    code = s.cmd("!!!not base64!!!")[0]
    s.cmd("AUTH CRAM-MD5")
    return code == 501 and s.cmd("*")[0] == 501


def h_injection_after_starttls():
    s = Session.tcp()
    s.reply()
    s.cmd("EHLO x")
    s.send("STARTTLS\r\nAUTH PLAIN AGN1c3QxAHNlY3JldA==\r\n")  # the second line must be dropped
    if s.reply()[0] != 220:
        return False
    s.starttls()
    code, ehlo = s.cmd("EHLO x")
    return code == 250 and s.cmd("ATRN")[0] == 530


def h_lmtp_garbage():
    s = Session.lmtp()
    s.reply()
    s.cmd("LHLO x")
    s.cmd("MAIL FROM:<a@b>")
    c1 = s.cmd("RCPT TO:<a@domain1.dom\x01>")[0]
    c2 = s.cmd("RCPT TO:<" + "a" * 1100 + "@domain1.dom>")[0]
    return c1 == 501 and c2 == 501


def h_reversed_garbage():
    s = login()
    lmtp_send("s@sender.test", ["keep@domain1.dom"], "Subject: keep\n\nx")
    if s.cmd("ATRN domain1.dom")[0] != 250:
        return False
    s.send("this is not an SMTP greeting\r\n")
    return s.eof() and len(spool_files("domain1.dom")) >= 1


kinds = [("long line", h_long_line), ("long LMTP line", lambda: h_long_line(True)), ("no newline", h_no_newline),
         ("out of order", h_out_of_order), ("unknown-command flood", h_bad_flood), ("TLS garbage", h_tls_garbage),
         ("garbage on the TLS port", h_tls_port_garbage), ("plain text on the TLS port", h_plaintext_on_tls_port),
         ("NUL byte", h_nul), ("AUTH garbage", h_auth_garbage), ("injection after STARTTLS", h_injection_after_starttls),
         ("LMTP garbage", h_lmtp_garbage)]


def hostile_rounds():
    while hostile_total < 108:
        for kind, fn in kinds:
            hostile(kind, fn)
    for _ in range(4):
        hostile("reversed-session garbage", h_reversed_garbage)


# The hostile sessions run in a thread; meanwhile the good session is
# served a NOOP every half second (a hostile session may take up to the
# daemon's timeout, as TLS garbage announcing a long record does).
worker = threading.Thread(target=hostile_rounds)
worker.start()
while worker.is_alive():
    code = good.cmd("NOOP")[0]
    if code != 250:
        hostile_bad.append("good session NOOP %d" % code)
        break
    time.sleep(0.5)
worker.join()


# Authentication floods, in parallel: each ends in 421 after 3 failures.
def flood(results):
    try:
        s = Session.tcp()
        s.reply()
        s.cmd("EHLO x")
        codes = [cram(s, "cust1", "bad%d" % i) for i in range(2)]
        code, _ = s.cmd("AUTH CRAM-MD5")
        s.send(base64.b64encode(b"cust1 00000000000000000000000000000000").decode() + "\r\n")
        results.append(codes == [535, 535] and s.reply()[0] == 421 and s.eof())
    except Exception as e:  # noqa: BLE001
        results.append(repr(e))


res = []
threads = [threading.Thread(target=flood, args=(res,)) for _ in range(6)]
for t in threads:
    t.start()
# Half-open connections: connect, say nothing; they are timed out (timeout = 3).
half = [Session.tcp() for _ in range(8)]
started = time.time()
noop_during = []
while any(t.is_alive() for t in threads) or time.time() < started + 4.5:  # timeout = 3
    noop_during.append(good.cmd("NOOP")[0])
    time.sleep(0.5)
for t in threads:
    t.join()
hostile_total += len(res) + len(half)
hostile_ok += sum(1 for r in res if r is True)
hostile_bad += ["auth flood: %r" % r for r in res if r is not True]
for h in half:
    try:
        h.reply()  # the 220
        code = h.reply()[0]
        if code == 421 and h.eof():
            hostile_ok += 1
        else:
            hostile_bad.append("half-open got %d" % code)
    except Exception as e:  # noqa: BLE001
        hostile_bad.append("half-open: %r" % e)
result(hostile_total >= 100 and hostile_ok == hostile_total,
       "%d hostile sessions, each refused cleanly" % hostile_total, hostile_bad[:10])
result(set(noop_during) == {250}, "the good session was served during the floods", noop_during)
# The good session survived all of it: it still releases its queue.
lmtp_send("s@sender.test", ["final@domain2.dom"], "Subject: final\n\nx")
code = good.cmd("ATRN")[0]
got = serve_reversed(good) if code == 250 else []
result(code == 250 and any("final@domain2.dom" in g[1] for g in got),
       "the good session (open since before the floods) still gets its mail", (code, got))
good.close()

# Connection limit: beyond max_connections, a 421 and a close.
held = []
try:
    for _ in range(70):
        held.append(Session.tcp())
    codes = []
    for h in held:
        try:
            codes.append(h.reply()[0])
        except Exception:  # noqa: BLE001
            codes.append(0)
    result(codes.count(421) >= 10 and codes.count(220) >= 55, "connection limit: the excess gets 421",
           (codes.count(220), codes.count(421)))
finally:
    for h in held:
        h.close()

done()
