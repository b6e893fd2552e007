#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box tests of held-queue delivery by waypost-odmrd (ETRN releases).

Usage: deliver.py DIR PORT_MX PORT_HOST PORT_IP ODMRD-COMMAND...
DIR holds lmtp.sock, control.sock, the spool, cert.pem/key.pem and dsn/
(the reports the fake sendmail recorded).  The daemon's router: held queue
mxq.dom (MX mx1.mxq.dom -> 127.0.0.2, at odmr.smtp_port = PORT_MX;
mxq2.dom merged into it), sink.hostq.dom (a fixed host, A 127.0.0.3, port
PORT_HOST, offers STARTTLS) and [127.0.0.4]:PORT_IP.  This script plays the
customers' SMTP servers, starts and kills the daemon (ODMRD-COMMAND), and
prints TAP-style lines; exits 1 if anything failed.
"""
import glob
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import wire  # noqa: E402
from tap import done, result  # noqa: E402

DIR = sys.argv[1]
PORT_MX, PORT_HOST, PORT_IP = (int(p) for p in sys.argv[2:5])
ODMRD = sys.argv[5:]
LMTP = os.path.join(DIR, "lmtp.sock")
CTL = os.path.join(DIR, "control.sock")
SPOOL = os.path.join(DIR, "spool")


class Sink:
    """A customer's SMTP server: PIPELINING, optional STARTTLS, per-recipient
    codes (rcpt_code(addr) -> (code, text)), a data code, an optional delay
    before the final reply.  got: [(sender, [rcpts], body, tls)]."""

    def __init__(self, ip, port, tls=False):
        self.ip, self.port, self.tls = ip, port, tls
        self.got = []
        self.rcpt_code = lambda a: 250
        self.data_code = 250
        self.delay = 0
        self.sessions = 0
        self.lock = threading.Lock()
        self.srv = None
        self.start()

    def start(self):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((self.ip, self.port))
        self.srv.listen(8)
        threading.Thread(target=self.loop, args=(self.srv,), daemon=True).start()

    def stop(self):
        try:
            self.srv.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the loop thread
        except OSError:
            pass
        self.srv.close()

    def loop(self, srv):
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=self.session, args=(c,), daemon=True).start()

    def session(self, c):
        self.sessions += 1
        f = c.makefile("rb")
        tls = False

        def send(t):
            c.sendall(t.encode())

        try:
            send("220 sink ESMTP\r\n")
            sender, rcpts = None, []
            while True:
                line = f.readline()
                if not line:
                    return
                l = line.decode().rstrip("\r\n")
                u = l.upper()
                if u.startswith("EHLO"):
                    ext = ["PIPELINING", "8BITMIME"] + (["STARTTLS"] if self.tls and not tls else [])
                    send("".join("250-%s\r\n" % e for e in ["sink"] + ext[:-1]) + "250 %s\r\n" % ext[-1])
                elif u == "STARTTLS":
                    send("220 go ahead\r\n")
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                    ctx.load_cert_chain(os.path.join(DIR, "cert.pem"), os.path.join(DIR, "key.pem"))
                    c = ctx.wrap_socket(c, server_side=True)
                    f = c.makefile("rb")
                    tls = True
                elif u.startswith("MAIL FROM:"):
                    sender, rcpts = l[10:].strip("<>"), []
                    send("250 ok\r\n")
                elif u.startswith("RCPT TO:"):
                    a = l[8:].strip("<>")
                    code = self.rcpt_code(a)
                    if code == 250:
                        rcpts.append(a)
                    send("%d %s <%s>\r\n" % (code, "ok" if code == 250 else "no", a))
                elif u == "DATA":
                    if not rcpts:
                        send("554 no valid recipients\r\n")
                        continue
                    send("354 go\r\n")
                    body = []
                    while True:
                        bl = f.readline()
                        if bl in (b".\r\n", b""):
                            break
                        body.append(bl[1:] if bl.startswith(b"..") else bl)
                    if self.delay:
                        time.sleep(self.delay)
                    if self.data_code == 250:
                        with self.lock:
                            self.got.append((sender, rcpts, b"".join(body).decode(), tls))
                    send("%d final\r\n" % self.data_code)
                    sender, rcpts = None, []
                elif u == "RSET":
                    sender, rcpts = None, []
                    send("250 ok\r\n")
                elif u == "QUIT":
                    send("221 bye\r\n")
                    return
                else:
                    send("502 what\r\n")
        except (OSError, ssl.SSLError):
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def take(self):
        with self.lock:
            g, self.got = self.got, []
        return g


def lmtp_send(sender, rcpts, body):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(LMTP)
    f = s.makefile("rb")

    def reply():
        while True:
            l = f.readline().decode()
            if len(l) < 4 or l[3] != "-":
                return int(l[:3])

    reply()
    s.sendall(b"LHLO postfix.test\r\n")
    reply()
    s.sendall(("MAIL FROM:<%s>\r\n" % sender).encode())
    reply()
    codes = []
    for r in rcpts:
        s.sendall(("RCPT TO:<%s>\r\n" % r).encode())
        codes.append(reply())
    s.sendall(b"DATA\r\n")
    reply()
    stuffed = "".join(("." + l if l.startswith(".") else l) + "\r\n" for l in body.split("\n"))
    s.sendall(stuffed.encode() + b".\r\n")
    finals = [reply() for c in codes if c == 250]
    s.sendall(b"QUIT\r\n")
    s.close()
    return codes, finals


def control(line, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(CTL)
    s.sendall((line + "\n").encode())
    out = wire.recv_until(s, b"\n", 1024)
    s.close()
    return out.decode().strip()


def flush(queue):
    return control("FLUSH-WAIT " + queue)


def spool(queue):
    return sorted(glob.glob(os.path.join(glob.escape(SPOOL), glob.escape(queue), "[0-9a-f]*")))


def dsns():
    return sorted(glob.glob(os.path.join(DIR, "dsn", "*.msg")))


def rcpts_of(got):
    return sorted(r for g in got for r in g[1])


proc = None


def start_daemon():
    global proc
    if os.path.exists(CTL):
        os.unlink(CTL)
    proc = subprocess.Popen(ODMRD, stderr=open(os.path.join(DIR, "odmrd.log"), "a"))
    for _ in range(100):
        if os.path.exists(CTL) and os.path.exists(LMTP):
            return True
        time.sleep(0.05)
    return False


result(start_daemon(), "the daemon starts with its control socket")
mx = Sink("127.0.0.2", PORT_MX)
host = Sink("127.0.0.3", PORT_HOST, tls=True)
ip = Sink("127.0.0.4", PORT_IP)

# --- held mail goes to the spool, one queue per next hop, merged domains together
codes, _ = lmtp_send("s@example.org", ["a@mxq.dom"], "Subject: one\n\nfirst")
result(codes == [250], "LMTP takes a HOLD route (mxq.dom)", codes)
lmtp_send("s@example.org", ["b@mxq2.dom", "c@mxq.dom"], "Subject: two\n\n.leading dot\nsecond")
lmtp_send("s@example.org", ["h@hostq.dom"], "Subject: host\n\nhost")
lmtp_send("s@example.org", ["i@ipq.dom"], "Subject: ip\n\nip")
result(len(spool("mxq.dom")) == 2 and len(spool("sink.hostq.dom")) == 1 and len(spool("[127.0.0.4]")) == 1,
       "stored: mxq.dom 2, sink.hostq.dom 1, [127.0.0.4] 1",
       [os.path.basename(d) for d in glob.glob(os.path.join(SPOOL, "*"))])

# --- releasing one queue delivers that queue only
a = flush("mxq.dom")
result(a == "OK mxq.dom: 3 delivered, 0 returned, 0 waiting", "FLUSH-WAIT mxq.dom", a)
got = mx.take()
result(rcpts_of(got) == ["a@mxq.dom", "b@mxq2.dom", "c@mxq.dom"] and len(got) == 2,
       "the MX (from the local DNS server) got both messages, merged domain included, each once", got)
result(any("\n.leading dot\r\n" in g[2] for g in got), "dot-stuffing round trip", [g[2] for g in got])
result(spool("mxq.dom") == [], "the queue is empty afterwards")
result(host.take() == [] and ip.take() == [] and len(spool("sink.hostq.dom")) == 1 and len(spool("[127.0.0.4]")) == 1,
       "the other queues were not touched")
a = flush("sink.hostq.dom")
got = host.take()
result(a.startswith("OK sink.hostq.dom: 1 delivered") and rcpts_of(got) == ["h@hostq.dom"],
       "a fixed host with a port (A record from the local DNS server)", (a, got))
result(got and got[0][3], "STARTTLS was used when offered", got)
a = flush("[127.0.0.4]")
got = ip.take()
result(a.startswith("OK [127.0.0.4]: 1 delivered") and rcpts_of(got) == ["i@ipq.dom"], "an [ip]:port next hop",
       (a, got))
a = flush("mxq.dom")
result(a == "OK mxq.dom: 0 delivered, 0 returned, 0 waiting", "an empty queue releases nothing", a)

# --- 4xx waits, 5xx is returned with a DSN, nothing lost or duplicated
mx.rcpt_code = lambda a: 451 if a.startswith("temp") else 550 if a.startswith("bad") else 250
lmtp_send("s@example.org", ["good@mxq.dom", "temp@mxq.dom", "bad@mxq.dom"], "Subject: mixed\n\nmixed")
n_dsn = len(dsns())
a = flush("mxq.dom")
got = mx.take()
result(a == "OK mxq.dom: 1 delivered, 1 returned, 1 waiting", "4xx/5xx per recipient: 1 delivered, 1 returned, 1 waiting", a)
result(rcpts_of(got) == ["good@mxq.dom"], "only the accepted recipient got it", got)
ds = dsns()
result(len(ds) == n_dsn + 1 and "bad@mxq.dom" in open(ds[-1]).read(), "the 5xx recipient was returned with a DSN")
left = spool("mxq.dom")
result(len(left) == 1 and "R temp@mxq.dom\n" in open(left[0]).read() and "good@" not in open(left[0]).read(),
       "the 4xx recipient waits, alone, in the spool")
mx.rcpt_code = lambda a: 250
a = flush("mxq.dom")
got = mx.take()
result(a.startswith("OK mxq.dom: 1 delivered") and rcpts_of(got) == ["temp@mxq.dom"], "the next release delivers it",
       (a, got))

# --- a 4xx after the text: the whole message waits
mx.data_code = 452
lmtp_send("s@example.org", ["d1@mxq.dom", "d2@mxq.dom"], "Subject: later\n\nlater")
a = flush("mxq.dom")
result(a == "OK mxq.dom: 0 delivered, 0 returned, 2 waiting" and len(spool("mxq.dom")) == 1, "452 after DATA: it waits", a)
mx.data_code = 250
a = flush("mxq.dom")
result(a.startswith("OK mxq.dom: 2 delivered") and rcpts_of(mx.take()) == ["d1@mxq.dom", "d2@mxq.dom"],
       "and goes with the next release", a)

# --- the customer's server is not listening: everything waits
ip.stop()
lmtp_send("s@example.org", ["i2@ipq.dom"], "Subject: ip2\n\nip2")
a = flush("[127.0.0.4]")
result(a.startswith("FAIL [127.0.0.4]:") and len(spool("[127.0.0.4]")) == 1, "nobody listening: FAIL, the mail waits", a)
ip.start()
a = flush("[127.0.0.4]")
result(a.startswith("OK [127.0.0.4]: 1 delivered") and rcpts_of(ip.take()) == ["i2@ipq.dom"],
       "the next release after it came back delivers it", a)

# --- waypost queue flush: the administrator's release, with its result
waypost = os.environ.get("WAYPOST")
if waypost:
    lmtp_send("s@example.org", ["cli@mxq.dom"], "Subject: cli\n\ncli")
    r = subprocess.run([waypost, "-c", os.path.join(DIR, "waypost.conf"), "queue", "flush", "mxq.dom"],
                       capture_output=True, text=True)
    result(r.returncode == 0 and r.stdout.strip() == "OK mxq.dom: 1 delivered, 0 returned, 0 waiting"
           and rcpts_of(mx.take()) == ["cli@mxq.dom"], "waypost queue flush mxq.dom", (r.returncode, r.stdout, r.stderr))
    r = subprocess.run([waypost, "-c", os.path.join(DIR, "waypost.conf"), "queue", "flush", "[127.0.0.9]"],
                       capture_output=True, text=True)
    result(r.returncode == 1 and "no queue [127.0.0.9]" in r.stderr, "waypost queue flush: an unknown queue", r.stderr)

# --- an ATRN-only queue is not released by ETRN
lmtp_send("s@example.org", ["a@atrnq.dom"], "Subject: atrn\n\natrn")
a = flush("atrnq.dom")
result(a.startswith("FAIL atrnq.dom: queue atrnq.dom is not listed in router.hold_queues") and len(spool("atrnq.dom")) == 1,
       "an ATRN-only queue: FAIL, the mail stays for its customer", a)

# --- bad requests
for line, want in (("FLUSH-WAIT ../etc", "ERR"), ("FLUSH-WAIT", "ERR"), ("HELLO", "ERR"),
                   ("FLUSH-WAIT " + "x" * 300, "ERR")):
    a = control(line)
    result(a.startswith(want), "control: %r -> %s" % (line[:30], want), a)

# --- kill -9 during a delivery: nothing lost, at most the message in flight twice
for i in range(20):
    lmtp_send("s@example.org", ["k%d@mxq.dom" % i], "Subject: k%d\n\nkill" % i)
mx.delay = 0.1
a = control("FLUSH mxq.dom")
result(a.startswith("OK mxq.dom: release started"), "FLUSH answers at once", a)
time.sleep(0.55)
proc.send_signal(signal.SIGKILL)
proc.wait()
time.sleep(0.3)
mx.delay = 0
first = mx.take()
result(0 < len(first) < 20, "some were delivered before the kill (%d)" % len(first))
result(start_daemon(), "the daemon restarts")
time.sleep(0.3)
a = flush("mxq.dom")
second = mx.take()
allr = rcpts_of(first) + rcpts_of(second)
want = sorted("k%d@mxq.dom" % i for i in range(20))
dups = len(allr) - len(set(allr))
result(sorted(set(allr)) == want and dups <= 1 and spool("mxq.dom") == [],
       "after restart and release: all 20 delivered, %d duplicate(s)" % dups, (a, dups))

# --- kill -9 during intake: nothing half-stored
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(LMTP)
s.sendall(b"LHLO x\r\nMAIL FROM:<s@example.org>\r\nRCPT TO:<half@mxq.dom>\r\nDATA\r\nSubject: half\r\n\r\npart")
time.sleep(0.3)
proc.send_signal(signal.SIGKILL)
proc.wait()
s.close()
result(start_daemon(), "the daemon restarts after a kill during intake")
result(spool("mxq.dom") == [] and not glob.glob(os.path.join(SPOOL, "mxq.dom", ".*")),
       "a message killed during intake is neither stored nor left as a temporary file")

proc.terminate()
proc.wait()
done()
