#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Black-box protocol tests for a running waypost-policyd.

Usage: proto.py DIR TCP_BASE_PORT
DIR holds the daemon's sockets (sm.sock, policy.sock); tcp_table ports are
TCP_BASE_PORT+0 (transport), +1 (virtual), +2 (relay), +3 (recipient),
+4 (account); socketmap also on inet TCP_BASE_PORT+5; policy on +6.
Prints TAP-style "ok N - ..." lines; exits 1 if anything failed.
"""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, result  # noqa: E402

DIR, BASE = sys.argv[1], int(sys.argv[2])
SM_UNIX, POL_UNIX = os.path.join(DIR, "sm.sock"), os.path.join(DIR, "policy.sock")
TCP_MAPS = ["transport", "virtual", "relay", "recipient", "account"]


def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def connect_tcp(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def recv_until(s, done, limit=1 << 20):
    """Read until done(buf) or EOF; return (buf, eof)."""
    buf = b""
    while not done(buf):
        try:
            d = s.recv(65536)
        except socket.timeout:
            return buf, False
        except ConnectionResetError:
            return buf, True
        if not d:
            return buf, True
        buf += d
        if len(buf) > limit:
            break
    return buf, False


def netstring(b):
    return b"%d:%s," % (len(b), b)


def parse_netstring(buf):
    if b":" not in buf:
        return None
    ln, rest = buf.split(b":", 1)
    ln = int(ln)
    if len(rest) < ln + 1:
        return None
    return rest[:ln]


def sm_query(s, mapname, key):
    s.sendall(netstring(mapname.encode() + b" " + key.encode()))
    buf, _ = recv_until(s, lambda b: parse_netstring(b) is not None)
    return parse_netstring(buf).decode()


def tcp_query(s, key):
    enc = "".join(c if (c.isprintable() and c not in " %") else "%%%02X" % ord(c) for c in key)
    s.sendall(b"get " + enc.encode() + b"\n")
    buf, _ = recv_until(s, lambda b: b.endswith(b"\n"))
    line = buf.decode().rstrip("\n")
    if line.startswith("200 "):
        import urllib.parse
        return "200 " + urllib.parse.unquote(line[4:])
    return line


def policy_query(s, attrs):
    req = "".join("%s=%s\n" % kv for kv in attrs.items()) + "\n"
    s.sendall(req.encode())
    buf, _ = recv_until(s, lambda b: b.endswith(b"\n\n"))
    return buf.decode().strip()


def rcpt(recipient, client="192.0.2.10", sasl=""):
    return {"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
            "client_address": client, "sender": "someone@example.org", "recipient": recipient,
            "sasl_username": sasl, "queue_id": "", "instance": "1.2.3"}


# ------------------------------------------------------------ answers
sm = connect_unix(SM_UNIX)
expected = [
    ("transport", "bob@client57.com", "OK smtp:[sibling.company.dom]:26"),
    ("transport", "Bob@Client57.COM", "OK smtp:[sibling.company.dom]:26"),
    ("transport", "aname@domain.dom", "OK smtp:otherserver.dom"),
    ("transport", "aname@legacy.dom", "OK smtp:[11.22.33.44]"),
    ("transport", "john@friend.com", "OK smtp:friend.com"),
    ("transport", "u@nomx.dom", "OK smtp:[nomx.dom]:25"),
    ("transport", "x@domain2.dom", "OK smtp:domain1.dom"),
    ("transport", "carol@domain.dom", "OK lmtp:unix:private/dovecot-lmtp"),
    ("transport", "spam-trap@company.dom", "OK discard:Waypost route"),
    ("transport", "former-employee@company.dom", "OK error:5.1.6 This person has left the company"),
    ("transport", "nobody@company.dom", "OK error:5.1.1 User unknown"),
    ("transport", "*", "NOTFOUND "),
    ("transport", "company.dom", "NOTFOUND "),
    ("virtual", "postmaster@company.dom", "OK alice@company.dom"),
    ("virtual", "LoginPage@carol.domain.dom", "OK carol@domain.dom"),
    ("virtual", "u%d.example@company.dom", "OK u@d.example"),
    ("virtual", "alice@company.dom", "NOTFOUND "),
    ("virtual", "Alice@Company.Dom", "NOTFOUND "),
    ("virtual", "aname@domain.dom", "NOTFOUND "),
    ("virtual", "company.dom", "NOTFOUND "),
    ("relay", "company.dom", "OK OK"),
    ("relay", "MAIL.company.dom", "OK OK"),
    ("relay", "friend.com", "OK OK"),
    ("relay", "domain3.dom", "OK OK"),
    ("relay", "alice.company.dom", "OK OK"),
    ("relay", "evil.example", "NOTFOUND "),
    ("recipient", "alice@company.dom", "OK OK"),
    ("recipient", "aname@domain.dom", "OK OK"),
    ("recipient", "nobody@company.dom", "NOTFOUND "),
    ("recipient", "former-employee@company.dom", "NOTFOUND "),
    ("account", "security-officer", "OK security@company.dom"),
    ("account", "alice", "OK alice@company.dom"),
    ("account", "nobody", "NOTFOUND "),
    ("nosuchmap", "x@y", "PERM unknown map nosuchmap"),
]
for mapname, key, want in expected:
    got = sm_query(sm, mapname, key)
    result(got == want, "socketmap %s %s -> %s" % (mapname, key, want), got)

smi = connect_tcp(BASE + 5)
got = sm_query(smi, "transport", "bob@client57.com")
result(got == "OK smtp:[sibling.company.dom]:26", "socketmap over inet", got)

tcp_expected = [
    ("transport", "bob@client57.com", "200 smtp:[sibling.company.dom]:26"),
    ("transport", "*", "500 not found"),
    ("virtual", "postmaster@company.dom", "200 alice@company.dom"),
    ("virtual", "alice@company.dom", "500 not found"),
    ("relay", "friend.com", "200 OK"),
    ("recipient", "nobody@company.dom", "500 not found"),
    ("account", "security-officer", "200 security@company.dom"),
    ("transport", "former-employee@company.dom", "200 error:5.1.6 This person has left the company"),
    ("virtual", "\"john doe%d.example\"@company.dom", "200 \"john doe\"@d.example"),
]
tcp_conns = {m: connect_tcp(BASE + i) for i, m in enumerate(TCP_MAPS)}
for mapname, key, want in tcp_expected:
    got = tcp_query(tcp_conns[mapname], key)
    result(got == want, "tcp_table %s %s -> %s" % (mapname, key, want), got)

pol = connect_unix(POL_UNIX)
policy_expected = [
    (rcpt("alice@company.dom"), "action=DUNNO"),
    (rcpt("nobody@company.dom"), "action=550 5.1.1 User unknown"),
    (rcpt("former-employee@company.dom"), "action=550 5.1.6 This person has left the company"),
    (rcpt("john@friend.com"), "action=DUNNO"),
    (rcpt("x@domain2.dom"), "action=DUNNO"),
    (rcpt("aname@domain.dom"), "action=DUNNO"),
    (rcpt("u@d.example"), "action=554 5.7.1 Relay access denied"),
    (rcpt("u@d.example", client="127.0.0.1"), "action=DUNNO"),
    (rcpt("u@d.example", sasl="alice"), "action=DUNNO"),
    (rcpt("x@hq"), "action=554 5.7.1 Relay access denied"),
    (rcpt("x@hq", sasl="alice"), "action=DUNNO"),
    (rcpt("bob@client57.com"), "action=554 5.7.1 Relay access denied"),
    ({"request": "smtpd_access_policy", "protocol_state": "MAIL", "sender": "a@b"}, "action=DUNNO"),
]
tricks = ["u%d.example@company.dom", '"u@d.example"@company.dom', "@company.dom:u@d.example",
          "d.example!u@company.dom", "u@d.example@company.dom", "u%d.example@[127.0.0.1]",
          "U%D.EXAMPLE@COMPANY.DOM", "u%d.example.@company.dom.", "u%friend.com@company.dom",
          "u%d.example@mail.company.dom", "u@[192.0.2.99]", "u@d.example.via", "bob%friend.com@company.dom"]
for t in tricks:
    policy_expected.append((rcpt(t), "action=554 5.7.1 Relay access denied"))
for attrs, want in policy_expected:
    got = policy_query(pol, attrs)
    result(got == want, "policy RCPT %s from %s%s -> %s" % (attrs.get("recipient", attrs.get("protocol_state")),
                                                            attrs.get("client_address", ""),
                                                            " sasl" if attrs.get("sasl_username") else "", want), got)
# attributes in another order, unknown ones ignored, CRLF tolerated
got = policy_query(pol, {"zzz_unknown": "1", "recipient": "nobody@company.dom", "ccert_subject": "x",
                         "protocol_state": "RCPT", "request": "smtpd_access_policy"})
result(got == "action=550 5.1.1 User unknown", "policy attributes in any order", got)

# ------------------------------------------------------------ hostile input
control = {"sm": sm, "pol": pol, "tcp": tcp_conns["transport"]}


def control_still_answers():
    a = sm_query(control["sm"], "transport", "bob@client57.com") == "OK smtp:[sibling.company.dom]:26"
    b = policy_query(control["pol"], rcpt("alice@company.dom")) == "action=DUNNO"
    c = tcp_query(control["tcp"], "bob@client57.com") == "200 smtp:[sibling.company.dom]:26"
    return a and b and c


def hostile(kind, connect, payload, accept):
    """Send payload on a new connection; accept(reply, eof) must hold, and a
    well-formed request on the control connections must still be answered."""
    s = connect()
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)  # an incomplete request then ends in a close
    except (BrokenPipeError, ConnectionResetError, OSError):
        pass
    reply, eof = recv_until(s, lambda b: False, limit=1 << 16)
    s.close()
    good = accept(reply, eof) and control_still_answers()
    result(good, "%s hostile: %r" % (kind, payload[:60]), (reply[:200], eof))


rnd = random.Random(1234)
sm_cases = [b"", b":", b",", b"x:", b"5x:hello,", b"-1:a,", b"00:,", b"01:a,", b"3:abc;", b"3:ab", b"1234567890:x,",
            b"99999999:" + b"a" * 10, b"20000:" + b"a" * 20000 + b",", b"5:hello", b"4:tran,", b"9:transport,",
            b"11:transport ,", b" 3:abc,", b"3 :abc,", b"3:a\x00c,", b"\xff\xfe\xfd", b"GET / HTTP/1.0\r\n\r\n",
            netstring(b"transport"), netstring(b" alice@company.dom"), netstring(b"transport\x00x@y")]
for _ in range(80):
    k = rnd.randrange(6)
    if k == 0:
        p = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 200)))
    elif k == 1:
        ln = rnd.randrange(1, 50)
        p = b"%d:%s" % (ln, bytes(rnd.randrange(32, 127) for _ in range(ln + rnd.choice([-3, -1, 1, 2]))))
    elif k == 2:
        p = b"%d:" % rnd.randrange(10001, 10 ** 8) + b"x" * rnd.randrange(100)
    elif k == 3:
        p = netstring(b"transport " + bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(1, 300))))
    elif k == 4:
        p = netstring(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 100))))
    else:
        p = netstring(b"transport " + b"a" * rnd.randrange(2000, 9000) + b"@x.example")
    sm_cases.append(p)


def sm_accept(reply, eof):
    # either complete netstring replies (then possibly a close), or a clean close
    buf = reply
    while buf:
        ns = parse_netstring(buf) if buf[:1].isdigit() else None
        if ns is None:
            return False
        if not (ns.startswith(b"OK ") or ns.startswith(b"NOTFOUND ") or ns.startswith(b"PERM ") or ns.startswith(b"TEMP ")):
            return False
        buf = buf[len(b"%d:" % len(ns)) + len(ns) + 1:]
    return True


for p in sm_cases:
    hostile("socketmap", lambda: connect_unix(SM_UNIX), p, sm_accept)

tcp_cases = [b"\n", b"get\n", b"get \n", b"put a b\n", b"GET x\n", b"get a%\n", b"get a%4\n", b"get a%zz\n",
             b"get a%00b\n", b"get " + b"x" * 20000 + b"\n", b"get " + b"y" * 20000, b"\x00\x01\x02\n",
             b"get a b c\n", b"get %41%42%43@x\n", b"get\tx\n"]
for _ in range(90):
    k = rnd.randrange(4)
    if k == 0:
        p = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300))) + b"\n"
    elif k == 1:
        p = b"get " + "".join(rnd.choice(["%", "%4", "%g1", "a", "@", " ", "%00", "%0a"]) for _ in range(20)).encode() + b"\n"
    elif k == 2:
        p = b"get " + b"k" * rnd.randrange(10001, 30000) + b"\n"
    else:
        p = b"get " + bytes(rnd.randrange(33, 127) for _ in range(rnd.randrange(1, 500))) + b"\n"
    tcp_cases.append(p)


def tcp_accept(reply, eof):
    for line in reply.split(b"\n"):
        if line and line[:4] not in (b"200 ", b"500 ", b"400 "):
            return False
        if len(line) + 1 > 4096:
            return False
    return True


for i, p in enumerate(tcp_cases):
    m = TCP_MAPS[i % len(TCP_MAPS)]
    hostile("tcp_table(%s)" % m, lambda: connect_tcp(BASE + TCP_MAPS.index(m)), p, tcp_accept)

pol_cases = [b"\n", b"junk\n\n", b"=x\n\n", b"request=other\n\n", b"request=smtpd_access_policy\x00\n\n",
             b"recipient=" + b"r" * 5000 + b"\nrequest=smtpd_access_policy\n\n", b"a=b\n" * 5000,
             b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=<>\n\n",
             b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=@@@\n\n",
             b"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=" + b"\xff" * 50 + b"\n\n",
             b"\r\n\r\n"]
for _ in range(90):
    k = rnd.randrange(4)
    if k == 0:
        p = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 400))) + b"\n\n"
    elif k == 1:
        p = b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=" + \
            bytes(rnd.randrange(32, 127) for _ in range(rnd.randrange(1, 60))) + b"\nrecipient=" + \
            bytes(rnd.randrange(33, 127) for _ in range(rnd.randrange(1, 300))) + b"\n\n"
    elif k == 2:
        p = b"x" * rnd.randrange(10001, 40000)
    else:
        p = b"request=smtpd_access_policy\n" + b"".join(b"k%d=%s\n" % (j, b"v" * rnd.randrange(0, 100)) for j in range(rnd.randrange(1, 200))) + b"\n"
    pol_cases.append(p)


def pol_accept(reply, eof):
    for chunk in reply.split(b"\n\n"):
        if chunk and not chunk.startswith(b"action="):
            return False
    return True


for p in pol_cases:
    hostile("policy", lambda: connect_unix(POL_UNIX), p, pol_accept)

# ------------------------------------------------------------ slow, half-closed, limits
slow = connect_unix(SM_UNIX)
slow.sendall(b"40:transport bob@cl")  # half a request, then nothing
result(control_still_answers(), "a stalled client does not hold up others")
half = connect_unix(SM_UNIX)
half.sendall(netstring(b"transport bob@client57.com") + netstring(b"virtual postmaster@company.dom"))
half.shutdown(socket.SHUT_WR)
buf, eof = recv_until(half, lambda b: False)
result(buf == netstring(b"OK smtp:[sibling.company.dom]:26") + netstring(b"OK alice@company.dom") and eof,
       "half-closed socket still gets every answer, then a close", buf)
hp = connect_unix(POL_UNIX)
hp.sendall(("".join("%s=%s\n" % kv for kv in rcpt("alice@company.dom").items()) + "\n").encode())
hp.shutdown(socket.SHUT_WR)
buf, eof = recv_until(hp, lambda b: False)
result(buf == b"action=DUNNO\n\n" and eof, "policy: half-closed socket gets its answer", buf)
# byte-at-a-time client
bt = connect_unix(SM_UNIX)
for ch in netstring(b"transport bob@client57.com"):
    bt.sendall(bytes([ch]))
buf, _ = recv_until(bt, lambda b: parse_netstring(b) is not None)
result(parse_netstring(buf) == b"OK smtp:[sibling.company.dom]:26", "a request sent byte by byte is answered", buf)
# many requests pipelined in one write
pipe = connect_unix(SM_UNIX)
pipe.sendall(netstring(b"transport bob@client57.com") * 500)
buf, _ = recv_until(pipe, lambda b: b.count(b",") >= 500)
result(buf == netstring(b"OK smtp:[sibling.company.dom]:26") * 500, "500 pipelined requests, 500 answers in order")
# a client that sends 20 000 requests and reads nothing for a second: the
# answers fill its socket, the rest waits in the server (a send that finds
# the socket full) and follows once it reads; nothing lost, nothing twice
flood = connect_unix(SM_UNIX)
sender = threading.Thread(target=lambda: flood.sendall(netstring(b"transport bob@client57.com") * 20000))
sender.start()
time.sleep(1)
want = netstring(b"OK smtp:[sibling.company.dom]:26") * 20000
buf, _ = recv_until(flood, lambda b: len(b) >= len(want), limit=len(want) + 1)
sender.join()
result(buf == want, "20 000 pipelined requests read late: every answer once, in order", (len(buf), len(want)))
flood.close()
# the idle timeout closes the stalled client (idle_timeout = 2 in the test config)
time.sleep(2.5)
buf, eof = recv_until(slow, lambda b: False)
result(eof, "idle timeout closes a stalled client", buf)
# connection limit: max_connections = 40 per endpoint in the test config
for c in [pipe, bt, half, hp, slow, smi, sm, pol] + list(tcp_conns.values()):
    c.close()
time.sleep(0.3)
# the idle timeout also closed the control connections: open new ones
sm, pol = connect_unix(SM_UNIX), connect_unix(POL_UNIX)
control.update(sm=sm, pol=pol, tcp=connect_tcp(BASE))
extra = []
for _ in range(40 - 1):  # the control connection sm: 1 in use on this endpoint
    extra.append(connect_unix(SM_UNIX))
for e in extra:
    e.sendall(netstring(b"relay company.dom"))
answered = sum(1 for e in extra if parse_netstring(recv_until(e, lambda b: parse_netstring(b) is not None)[0]) == b"OK OK")
over = connect_unix(SM_UNIX)
buf, eof = recv_until(over, lambda b: False)
result(answered == len(extra) and eof and buf == b"", "connection over max_connections is closed at once",
       (answered, buf, eof))
# Per endpoint (issue 17): with the socketmap socket full, a new connection
# to the policy socket is served all the same.
pol2 = connect_unix(POL_UNIX)
got = policy_query(pol2, rcpt("alice@company.dom"))
result(got == "action=DUNNO", "a full endpoint does not take another endpoint's connections", got)
pol2.close()
for e in extra:
    e.close()
time.sleep(0.3)
result(control_still_answers(), "served again below the limit")

done()
