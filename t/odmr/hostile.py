#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# t/odmr/hostile.py MODE ... - hostile clients of waypost-odmrd (issue 17),
# driven by t/odmr/hostile.sh.  Prints "ok"/"not ok" lines of its own.
#
#   flood DIR PORT N        N idle connections to the customer port while
#                           the LMTP intake (DIR/lmtp.sock) takes 5 messages
#   perip PORT LIMIT        LIMIT+2 connections from one address: 2 refused
#   guess DIR PORT SECONDS  200 parallel AUTH guessers from one address
#   noop PORT               NOOP every 0.4 s does not outlive auth_timeout
#   cr DIR                  a bare CR in a quoted sender: 501 at MAIL
#   hold PORT N FILE        hold N connections until FILE exists
import base64
import socket
import sys
import threading
import time

n_fail = 0


def result(ok, what, detail=None):
    global n_fail
    print("%s - %s" % ("ok" if ok else "not ok", what))
    if not ok:
        n_fail += 1
        if detail is not None:
            print("#   %r" % (detail,))


def reply(f):
    while True:
        line = f.readline()
        if len(line) < 4:
            raise EOFError("closed")
        if line[3:4] != b"-":
            return int(line[:3]), line


def lmtp_deliver(path, sender, rcpt, n):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(path)
    f = s.makefile("rb")
    codes = [reply(f)[0]]
    for cmd in [b"LHLO t"] + [c for i in range(n) for c in (
            b"MAIL FROM:<" + sender + b">", b"RCPT TO:<" + rcpt + b">", b"DATA",
            b"Subject: flood %d\r\n\r\nx\r\n." % i)]:
        s.sendall(cmd + b"\r\n")
        codes.append(reply(f)[0])
    s.close()
    return codes


def tcp(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return s, s.makefile("rb")


def flood(d, port, n):
    held = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            held.append(s)
        except OSError as e:
            result(False, "opened %d connections" % len(held), repr(e))
            break
    time.sleep(1)
    try:
        codes = lmtp_deliver(d + "/lmtp.sock", b"s@sender.test", b"u@domain1.dom", 5)
    except Exception as e:  # noqa: BLE001
        codes = [repr(e)]
    want = [220, 250] + [250, 250, 354, 250] * 5
    result(codes == want, "%d idle customer connections: the LMTP intake takes 5 messages" % len(held), codes)
    for s in held:
        s.close()


def perip(port, limit):
    held, codes = [], []
    for _ in range(limit + 2):
        s, f = tcp(port)
        held.append((s, f))
        codes.append(reply(f)[0])
    result(codes.count(220) == limit and codes.count(421) == 2,
           "%d connections from one address: %d served, 2 get 421" % (limit + 2, limit), codes)
    for s, _ in held:
        s.close()


def cram_guess(s, f, i):
    s.sendall(b"AUTH CRAM-MD5\r\n")
    code, _ = reply(f)
    if code != 334:
        return code
    s.sendall(base64.b64encode(b"cust1 %032d" % i) + b"\r\n")
    code, line = reply(f)
    # A 421 for the time to authenticate running out is no answer to the
    # guess: it was never checked.
    return -code if b"timeout" in line.lower() else code


def guess(d, port, seconds):
    lock = threading.Lock()
    answered = []  # times of answers to a checked guess (535, or 421 after the third)
    stop = time.time() + seconds

    def guesser(k):
        i = 0
        while time.time() < stop:
            try:
                s, f = tcp(port, timeout=seconds + 20)
                if reply(f)[0] != 220:
                    s.close()
                    time.sleep(0.1)
                    continue
                s.sendall(b"EHLO x\r\n")
                reply(f)
                while time.time() < stop:
                    code = cram_guess(s, f, k * 1000 + i)
                    i += 1
                    if code > 0:
                        with lock:
                            answered.append(time.time())
                    if code != 535:
                        break
                s.close()
            except Exception:  # noqa: BLE001
                time.sleep(0.1)

    threads = [threading.Thread(target=guesser, args=(k,)) for k in range(200)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - t0
    rate = len(answered) / seconds
    print("# %d guesses answered in %.1f s (%.1f a second)" % (len(answered), elapsed, rate))
    result(rate <= 3, "200 parallel AUTH guessers from one address: at most 3 guesses a second (%.1f)" % rate,
           len(answered))


def noop(port, limit):
    s, f = tcp(port, timeout=limit + 10)
    reply(f)
    t0 = time.time()
    code = 0
    try:
        while time.time() < t0 + limit + 5:
            s.sendall(b"NOOP\r\n")
            code = reply(f)[0]
            if code != 250:
                break
            time.sleep(0.4)
    except (EOFError, OSError):
        code = -1
    took = time.time() - t0
    result(code == 421 and took < limit + 1.5,
           "NOOPs do not extend the time to authenticate: 421 after %.1f s (auth_timeout %d)" % (took, limit), code)


def cr(d):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(d + "/lmtp.sock")
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"LHLO t\r\n")
    reply(f)
    got = []
    for sender in (b'"a\\\rb"@sender.test', b'"a\rb"@sender.test', b'a\rb@sender.test'):
        s.sendall(b"MAIL FROM:<" + sender + b">\r\n")
        got.append(reply(f)[0])
    s.sendall(b"MAIL FROM:<s@sender.test>\r\n")
    got.append(reply(f)[0])
    s.sendall(b"RCPT TO:<\"u\\\r\"@domain1.dom>\r\n")
    got.append(reply(f)[0])
    result(got == [501, 501, 501, 250, 501], "a bare CR in an envelope address: 501 at MAIL and RCPT", got)


def hold(port, n, path):
    import os
    held = []
    for _ in range(n):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    print("# holding %d connections" % len(held))
    sys.stdout.flush()
    while not os.path.exists(path):
        time.sleep(0.1)
    for s in held:
        s.close()


mode = sys.argv[1]
if mode == "flood":
    flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
elif mode == "perip":
    perip(int(sys.argv[2]), int(sys.argv[3]))
elif mode == "guess":
    guess(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
elif mode == "noop":
    noop(int(sys.argv[2]), int(sys.argv[3]))
elif mode == "cr":
    cr(sys.argv[2])
elif mode == "hold":
    hold(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
sys.exit(1 if n_fail else 0)
