"""HTTP over raw sockets, curl, and waiting for a peer to close."""

import os
import socket
import time

from .procs import run


def read_http_response(sock, timeout=10):
    """Read one HTTP/1.x response: (status, headers dict lower-case, body).
    status None when the peer closed without a response."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            d = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            if not buf:
                return None, {}, b""
            raise AssertionError(f"connection closed mid-headers: {buf[:300]!r}")
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            d = sock.recv(65536)
            if not d:
                break
            body += d
    elif headers.get("connection", "").lower() == "close" or status >= 400:
        while True:
            try:
                d = sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not d:
                break
            body += d
    return status, headers, body


def http_exchange(port, request, timeout=10):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        return read_http_response(s, timeout)


def read_to_end(sock, timeout=10):
    """Every byte until the peer's end of stream: EOF, a TLS close_notify
    or a TLS stream cut without one (ssl.SSLEOFError), or a reset. A
    timeout is an error: the peer never ended the stream."""
    import ssl
    sock.settimeout(timeout)
    got = b""
    while True:
        try:
            d = sock.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            return got
        if not d:
            return got
        got += d


def split_responses(data):
    """HTTP/1.1 responses with Content-Length, one after another in data:
    [(status, body)], and whatever follows the last whole one (bytes that
    are not a whole response)."""
    out = []
    while b"\r\n\r\n" in data:
        head, rest = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        hdrs = {k.strip().lower(): v.strip() for k, _, v in
                (l.partition(":") for l in lines[1:])}
        n = int(hdrs.get("content-length", "-1"))
        if n < 0 or len(rest) < n:
            break
        out.append((int(lines[0].split()[1]), rest[:n]))
        data = rest[n:]
    return out, data


def wait_closed(sock, timeout):
    """Seconds until the peer closes sock (EOF or reset), None if it did
    not within timeout. Data received meanwhile is discarded."""
    t0 = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        if not d:
            return time.monotonic() - t0
    return None


def curl(env, *args, timeout=20):
    """curl with the test CA; proxies only as the test passes them (-x)."""
    cenv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return run(["curl", "--silent", "--show-error", "--max-time", "10",
                "--cacert", env.pki["ca"], *args], timeout=timeout, env=cenv)
