#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reload under load: clients hammer waypost-policyd while the table is
changed (SIGHUP), then broken (SIGHUP).  No lookup may fail; answers are
old until the good reload and new after it, on every connection; the
broken reload changes nothing.

Usage: reload.py DIR PID    (DIR/sm.sock, DIR/policy.sock, DIR/router.table)
"""
import os
import signal
import socket
import sys
import threading
import time

DIR, PID = sys.argv[1], int(sys.argv[2])
TABLE = os.path.join(DIR, "router.table")
stop = threading.Event()
lock = threading.Lock()
errors = []
seqs = []  # per connection: list of (time, answer)


def netstring(b):
    return b"%d:%s," % (len(b), b)


def recv_netstring(s, buf):
    while True:
        if b":" in buf:
            ln, rest = buf.split(b":", 1)
            ln = int(ln)
            if len(rest) >= ln + 1:
                return rest[:ln], rest[ln + 1:]
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed")
        buf += d


def sm_client(idx):
    seq = []
    with lock:
        seqs.append(seq)
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(DIR, "sm.sock"))
    buf = b""
    keys = [b"virtual probe@company.dom", b"transport bob@client57.com", b"relay friend.com"]
    i = 0
    while not stop.is_set():
        k = keys[i % 3]
        i += 1
        try:
            s.sendall(netstring(k))
            ans, buf = recv_netstring(s, buf)
        except Exception as e:  # noqa
            with lock:
                errors.append("conn %d: %r" % (idx, e))
            return
        if k.startswith(b"virtual"):
            if ans not in (b"OK alice@company.dom", b"OK bob@company.dom"):
                with lock:
                    errors.append("conn %d: unexpected %r" % (idx, ans))
            seq.append((time.monotonic(), ans))
        elif not ans.startswith(b"OK "):
            with lock:
                errors.append("conn %d: %r -> %r" % (idx, k, ans))


def policy_client(idx):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.path.join(DIR, "policy.sock"))
    req = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.9\n"
           b"recipient=john@friend.com\n\n")
    buf = b""
    while not stop.is_set():
        try:
            s.sendall(req)
            while b"\n\n" not in buf:
                d = s.recv(4096)
                if not d:
                    raise ConnectionError("closed")
                buf += d
        except Exception as e:  # noqa
            with lock:
                errors.append("policy %d: %r" % (idx, e))
            return
        ans, buf = buf.split(b"\n\n", 1)
        if ans != b"action=DUNNO":
            with lock:
                errors.append("policy %d: %r" % (idx, ans))


def write_table(text):
    tmp = TABLE + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, TABLE)


base = open(TABLE).read()
write_table(base + "\n<probe> = alice\n")
os.kill(PID, signal.SIGHUP)
time.sleep(0.5)
threads = [threading.Thread(target=sm_client, args=(i,)) for i in range(6)]
threads += [threading.Thread(target=policy_client, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
time.sleep(1.0)
t_good = time.monotonic()
write_table(base + "\n<probe> = bob\n")
os.kill(PID, signal.SIGHUP)
time.sleep(1.0)
t_broken = time.monotonic()
write_table(base + "\n<probe> = security\n<unterminated = x\n")
os.kill(PID, signal.SIGHUP)
time.sleep(1.0)
stop.set()
for t in threads:
    t.join()

n = 0
failed = 0


def result(good, what, detail=""):
    global n, failed
    n += 1
    print(("ok %d - %s" if good else "not ok %d - %s") % (n, what))
    if not good:
        failed += 1
        if detail:
            print("#   %s" % str(detail)[:400])


total = sum(len(s) for s in seqs)
result(not errors, "no failed lookup during the reloads", errors[:5])
result(total > 1000, "the load ran (%d probe lookups)" % total)
monotonic = all(
    all(not (a == b"OK alice@company.dom" and prev == b"OK bob@company.dom") for (_, prev), (_, a) in zip(s, s[1:]))
    for s in seqs)
result(monotonic, "on every connection: old answers, then new ones, never back")
before = [a for s in seqs for (t, a) in s if t < t_good]
result(before and all(a == b"OK alice@company.dom" for a in before), "old answers before the good reload")
after = [a for s in seqs for (t, a) in s if t > t_good + 0.5]
result(after and all(a == b"OK bob@company.dom" for a in after), "new answers after the good reload")
after_broken = [a for s in seqs for (t, a) in s if t > t_broken + 0.3]
result(after_broken and all(a == b"OK bob@company.dom" for a in after_broken),
       "a broken table changes nothing")
print("1..%d" % n)
sys.exit(1 if failed else 0)
