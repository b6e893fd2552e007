#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""send.py [options] -- FROM TO...: send one small message over SMTP and
print the server's answer to each step, one line each:
  XCLIENT <code> <text>     (with --xclient)
  MAIL <code> <text>
  RCPT <to> <code> <text>   (one per recipient)
  DATA <code> <text>        (sent even if every RCPT failed: the real answer)
Exit 0 if the message was queued (DATA 250), 1 if refused, 2 on a
connection/protocol failure.  Used by e2e_send in t/e2e/lib.sh."""
import argparse, smtplib, socket, sys, time
from email.utils import formatdate, make_msgid

ap = argparse.ArgumentParser()
ap.add_argument("--host", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--xclient", metavar="IP", help="XCLIENT ADDR=IP first (look untrusted)")
ap.add_argument("--xclient-name", default="[UNAVAILABLE]", help="XCLIENT NAME= value")
ap.add_argument("--helo", default="client.test")
ap.add_argument("--subject", default="e2e test")
ap.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
ap.add_argument("--body", default="e2e test body")
ap.add_argument("--timeout", type=float, default=30)
ap.add_argument("sender")
ap.add_argument("rcpts", nargs="+")
a = ap.parse_args()

def say(step, code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    print(step, code, " / ".join(text.splitlines()))
    sys.stdout.flush()

try:
    s = smtplib.SMTP(a.host, a.port, local_hostname=a.helo, timeout=a.timeout)
    s.ehlo()
    if a.xclient:
        code, text = s.docmd("XCLIENT", "ADDR=%s NAME=%s" % (a.xclient, a.xclient_name))
        say("XCLIENT", code, text)
        if code != 220:
            s.quit(); sys.exit(1)
        s.ehlo()                       # XCLIENT starts a new session
    code, text = s.mail(a.sender)
    say("MAIL", code, text)
    if code != 250:
        s.quit(); sys.exit(1)
    for r in a.rcpts:
        code, text = s.rcpt(r)
        say("RCPT <%s>" % r, code, text)
    hdrs = ["From: <%s>" % a.sender, "To: %s" % ", ".join("<%s>" % r for r in a.rcpts),
            "Subject: %s" % a.subject, "Date: %s" % formatdate(localtime=True),
            "Message-ID: %s" % make_msgid(domain="client.test")] + a.header
    msg = "\r\n".join(hdrs) + "\r\n\r\n" + a.body + "\r\n"
    try:
        code, text = s.data(msg.encode())
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    say("DATA", code, text)
    try:
        s.quit()
    except (smtplib.SMTPException, OSError):
        pass
    sys.exit(0 if code == 250 else 1)
except (smtplib.SMTPException, OSError) as e:
    print("ERROR", e)
    sys.exit(2)
