# SPDX-License-Identifier: MIT
"""What the Python tests share to talk to a running Waypost daemon: unix
sockets, netstrings (socketmap), a policy request, a GET of a metrics
endpoint and its samples, idle clients of the endpoint.  Every call has a
timeout: a daemon that stops answering fails the test instead of hanging it.
"""
import socket


def unix(path, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def netstring(b):
    return b"%d:%s," % (len(b), b)


def read_netstring(s):
    """One netstring's text; ConnectionError if the peer closes first."""
    buf = b""
    while b":" not in buf:
        d = s.recv(1)
        if not d:
            raise ConnectionError("closed")
        buf += d
    n = int(buf[:-1])
    data = b""
    while len(data) < n + 1:
        d = s.recv(n + 1 - len(data))
        if not d:
            raise ConnectionError("closed")
        data += d
    return data[:-1].decode()


def recv_until(s, end, size=4096):
    """Bytes from s until they end with end, or the peer closes."""
    buf = b""
    while not buf.endswith(end):
        d = s.recv(size)
        if not d:
            break
        buf += d
    return buf


def policy(path, **attrs):
    """One policy request (RCPT state unless attrs say otherwise) on a new
    connection to path; the answer's action, without "action="."""
    req = {"request": "smtpd_access_policy", "protocol_state": "RCPT"}
    req.update(attrs)
    s = unix(path)
    s.sendall(("".join("%s=%s\n" % kv for kv in req.items()) + "\n").encode())
    buf = recv_until(s, b"\n\n")
    s.close()
    text = buf.decode().strip()
    return text[len("action="):] if text.startswith("action=") else text


def http_get(port, path="/metrics", timeout=5):
    """GET path from 127.0.0.1:port over HTTP/1.0: (head, body) as text."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
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


def samples(body):
    """The samples of an exposition text: {'name{labels}': value}."""
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def idle_clients(port, n, timeout=2):
    """Up to n clients of the endpoint that send the start of a request and
    nothing more (fewer if connecting fails)."""
    out = []
    for _ in range(n):
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            c.sendall(b"GET /metr")
            out.append(c)
        except OSError:
            break
    return out
