#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""imap.py - small IMAP and Dovecot userdb client for the e2e tests
(t/e2e/dovecot.sh wraps it).

  imap.py [--host H] --port P count USER PASSWORD MAILBOX
      print the number of messages (exit 1: no such mailbox)
  imap.py [--host H] --port P fetch USER PASSWORD MAILBOX N [--crlf]
      print message N (1-based) unparsed, without setting \\Seen, CRLF
      turned into LF unless --crlf (exit 1: no such message)
  imap.py [--host H] --port P wait USER PASSWORD MAILBOX COUNT [SECONDS]
      until MAILBOX has >= COUNT messages (a missing mailbox counts as 0;
      default 10 s; exit 1 on timeout)
  imap.py [--host H] --port P list USER PASSWORD
      the user's mailboxes, one a line
  imap.py userdb SOCKET NAME [SERVICE]
      Dovecot auth-master USER lookup on SOCKET (auth-userdb); prints the
      answer line ("USER\\t1\\tNAME\\tk=v..." / "NOTFOUND\\t1" / "FAIL\\t1...");
      exit 0 USER, 1 NOTFOUND, 2 anything else

Exit 2 on a failed login or connection.  Mailbox names are quoted and
encoded in modified UTF-7 here (imaplib does neither).
"""
import argparse, base64, imaplib, re, socket, sys, time


def mutf7(name):
    out, buf = [], []

    def flush():
        if buf:
            b = "".join(buf).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            buf.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7e:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def quote(name):
    return '"' + mutf7(name).replace("\\", "\\\\").replace('"', '\\"') + '"'


def die(code, msg):
    sys.stderr.write("imap.py: %s\n" % msg)
    sys.exit(code)


def login(a):
    try:
        c = imaplib.IMAP4(a.host, a.port, timeout=a.timeout)
        c.login(a.user, a.password)
        return c
    except (OSError, imaplib.IMAP4.error) as e:
        die(2, "login %s on %s:%s: %s" % (a.user, a.host, a.port, e))


def messages(c, mailbox):
    """number of messages, or None if the mailbox does not exist"""
    typ, data = c.status(quote(mailbox), "(MESSAGES)")
    if typ != "OK":
        return None
    m = re.search(rb"MESSAGES (\d+)", data[0] or b"")
    return int(m.group(1)) if m else None


def cmd_count(a):
    c = login(a)
    n = messages(c, a.mailbox)
    c.logout()
    if n is None:
        die(1, "%s: no mailbox %s" % (a.user, a.mailbox))
    print(n)


def cmd_fetch(a):
    c = login(a)
    typ, data = c.select(quote(a.mailbox), readonly=True)
    if typ != "OK":
        die(1, "%s: cannot select %s: %s" % (a.user, a.mailbox, data))
    typ, data = c.fetch(str(a.n), "(BODY.PEEK[])")
    c.logout()
    msg = [d[1] for d in data if isinstance(d, tuple)] if typ == "OK" else []
    if not msg:
        die(1, "%s: %s has no message %d" % (a.user, a.mailbox, a.n))
    sys.stdout.buffer.write(msg[0] if a.crlf else msg[0].replace(b"\r\n", b"\n"))
    sys.stdout.buffer.flush()


def cmd_wait(a):
    c = login(a)
    deadline = time.monotonic() + a.seconds
    while True:
        n = messages(c, a.mailbox) or 0
        if n >= a.count:
            c.logout()
            return
        if time.monotonic() >= deadline:
            c.logout()
            die(1, "%s: %s has %d message(s) after %gs, wanted %d"
                % (a.user, a.mailbox, n, a.seconds, a.count))
        time.sleep(0.05)


def cmd_list(a):
    c = login(a)
    typ, data = c.list('""', "*")
    c.logout()
    for line in data or []:
        if isinstance(line, tuple):   # literal name
            line = line[0] + line[1]
        m = re.match(rb'\((.*?)\) (?:"[^"]*"|NIL) (.*)$', line)
        if m:
            name = m.group(2).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            print(name)


def cmd_userdb(a):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(a.timeout)
    try:
        s.connect(a.socket)
        s.sendall(("VERSION\t1\t0\nUSER\t1\t%s\tservice=%s\n" % (a.name, a.service)).encode())
        f = s.makefile("rb")
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            word = line.split("\t", 1)[0]
            if word in ("VERSION", "SPID"):
                continue
            print(line)
            sys.exit({"USER": 0, "NOTFOUND": 1}.get(word, 2))
    except OSError as e:
        die(2, "userdb %s: %s" % (a.socket, e))
    die(2, "userdb %s: no answer" % a.socket)


ap = argparse.ArgumentParser(description="IMAP / userdb helper for the e2e tests")
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int)
ap.add_argument("--timeout", type=float, default=20)
sub = ap.add_subparsers(dest="cmd", required=True)
for name in ("count", "fetch", "wait", "list"):
    p = sub.add_parser(name)
    p.add_argument("user")
    p.add_argument("password")
    if name != "list":
        p.add_argument("mailbox")
    if name == "fetch":
        p.add_argument("n", type=int)
        p.add_argument("--crlf", action="store_true", help="keep IMAP's CRLF line ends")
    if name == "wait":
        p.add_argument("count", type=int)
        p.add_argument("seconds", type=float, nargs="?", default=10)
p = sub.add_parser("userdb")
p.add_argument("socket")
p.add_argument("name")
p.add_argument("service", nargs="?", default="waypost")
a = ap.parse_args()
if a.cmd != "userdb" and not a.port:
    ap.error("--port is required")
{"count": cmd_count, "fetch": cmd_fetch, "wait": cmd_wait, "list": cmd_list,
 "userdb": cmd_userdb}[a.cmd](a)
