#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A scripted stand-in for CommuniGate Pro's CLI over PWD (port 106), for
the tests of `waypost export cgp`.

It follows the session of CommuniGate's CLI.html: a "200 ..." greeting,
USER -> "300 please send the PASS", PASS -> "200 login OK" (or an error),
then commands; a command whose answer is in DATA (a file named after the
command and its argument, as `waypost import cgp` reads them) gets
"200 data follow" and the file's text on one line, an unknown one
"500 unknown command", and QUIT ends the session.  One connection, then it
exits.  Every line received is appended to LOG (PASS hidden).

usage: fakecli.py DATA PORTFILE LOG [--password PW] [--malformed CMD] [--garbage CMD]
"""
import argparse
import os
import socket
import sys


def unquote(arg):
    """The argument of a command: a CommuniGate quoted string or an atom."""
    arg = arg.strip()
    if not arg.startswith('"'):
        return arg
    out, i = [], 1
    while i < len(arg) and arg[i] != '"':
        if arg[i] == '\\' and i + 1 < len(arg):
            i += 1
        out.append(arg[i])
        i += 1
    return ''.join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('data')
    ap.add_argument('portfile')
    ap.add_argument('log')
    ap.add_argument('--password', default='secret')
    ap.add_argument('--malformed', default=None, help='answer this command with broken data')
    ap.add_argument('--garbage', default=None, help='answer this command with a line that is no CLI answer')
    a = ap.parse_args()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', 0))  # a free port, chosen by the kernel
    srv.listen(1)
    srv.settimeout(30)
    tmp = a.portfile + '.tmp'
    with open(tmp, 'w') as f:
        f.write('%d\n' % srv.getsockname()[1])
    os.rename(tmp, a.portfile)
    conn, _ = srv.accept()
    conn.settimeout(30)
    rfile = conn.makefile('rb')
    log = open(a.log, 'a')

    def send(line):
        conn.sendall(line.encode() + b'\r\n')

    send('200 CommuniGate Pro at fake.test PWD Server 6.1 ready')
    user = None
    logged_in = False
    while True:
        raw = rfile.readline()
        if not raw:
            break
        line = raw.decode('utf-8', 'replace').rstrip('\r\n')
        verb, _, arg = line.partition(' ')
        log.write(('PASS ***' if verb.upper() == 'PASS' else line) + '\n')
        log.flush()
        if verb.upper() == 'QUIT':
            send('200 CommuniGate Pro PWD connection closed')
            break
        if not logged_in:
            if verb.upper() == 'USER':
                user = arg
                send('300 please send the PASS')
            elif verb.upper() == 'PASS' and user is not None:
                if arg == a.password:
                    logged_in = True
                    send('200 login OK')
                else:
                    send('515 Incorrect password or account name')
            else:
                send('500 please log in first')
            continue
        name = verb + ('.' + unquote(arg) if arg else '')
        if verb == a.garbage:
            send('hello there')
            continue
        if verb == a.malformed:
            send('200 data follow')
            send('((5, "broken", ((From, is, "x"')
            continue
        path = os.path.join(a.data, name)
        if '/' in name or not os.path.isfile(path):
            send('500 unknown command or object')
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read().strip('\r\n')
        send('200 data follow')
        send(text)
    conn.close()
    srv.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
