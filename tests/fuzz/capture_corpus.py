#!/usr/bin/python3
"""Capture the seed corpora for the tls_hello, http_req and dns_msg fuzzers
from real clients talking to a throwaway listener on 127.0.0.1.

    /usr/bin/python3 tests/fuzz/capture_corpus.py [REPO_ROOT]

TLS: openssl s_client (TLS 1.3, 1.2, a big ffdhe8192 key share) and curl;
HTTP: curl in origin form, as a proxy client (absolute form and CONNECT),
POST with Content-Length and with chunked upload; DNS: glibc's resolver
(getent) pointed at our listener inside a private mount namespace.
The unit tests embed some of these files, so re-running changes them.
"""
import os
import socket
import struct
import subprocess
import sys
import threading

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def tls_complete(b):
    """True once the bytes hold a whole (possibly fragmented) ClientHello."""
    hs = b""
    off = 0
    while off + 5 <= len(b):
        n = struct.unpack("!H", b[off + 3:off + 5])[0]
        if off + 5 + n > len(b):
            return False
        hs += b[off + 5:off + 5 + n]
        off += 5 + n
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            return True
    return False


def http_complete(b):
    end = b.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = b[:end].lower()
    if b"transfer-encoding: chunked" in head:
        return b.endswith(b"0\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(b) >= end + 4 + int(line.split(b":")[1])
    return True


def capture_tcp(client_argv, complete, reply=b""):
    """Run client_argv with {port} filled in; return the first bytes it sent."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}

    def serve():
        c, _ = srv.accept()
        c.settimeout(5)
        data = b""
        try:
            while not complete(data):
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            if reply:
                c.sendall(reply)
        except socket.timeout:
            pass
        got["data"] = data
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    argv = [a.replace("{port}", str(port)) for a in client_argv]
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=20,
                   input=None)
    t.join(10)
    srv.close()
    return got.get("data", b"")


def capture_dns(names):
    """Queries glibc sends for `getent ahosts NAME` (A and AAAA, EDNS0)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 53))
    srv.settimeout(0.5)
    seen = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                q, peer = srv.recvfrom(65535)
            except socket.timeout:
                continue
            seen.append(q)
            # REFUSED keeps getent from retrying for long.
            resp = bytearray(q[:12]) + q[12:]
            resp[2] |= 0x80
            resp[3] = (resp[3] & 0xf0) | 5
            srv.sendto(bytes(resp), peer)

    t = threading.Thread(target=serve)
    t.start()
    script = ("echo 'nameserver 127.0.0.1\noptions edns0 attempts:1 timeout:1'"
              " > /tmp/capture-resolv.conf && "
              "mount --bind /tmp/capture-resolv.conf /etc/resolv.conf && "
              + " ; ".join("getent ahosts %s" % n for n in names))
    subprocess.run(["unshare", "-m", "sh", "-c", script],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=60)
    stop.set()
    t.join()
    srv.close()
    return seen


def save(kind, name, data):
    d = os.path.join(CORPUS, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
    print("%s/%s: %d bytes" % (kind, name, len(data)))


def fragment(hello, size):
    """Re-split a single-record hello into records of `size` payload bytes."""
    assert hello[0] == 22
    n = struct.unpack("!H", hello[3:5])[0]
    body = hello[5:5 + n]
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += hello[:3] + struct.pack("!H", len(part)) + part
    return out


def main():
    s_client = ["openssl", "s_client", "-connect", "127.0.0.1:{port}",
                "-servername", "x"]
    tls = {
        "openssl_tls13": s_client,
        "openssl_tls12": s_client + ["-tls1_2"],
        "openssl_ffdhe8192": s_client + ["-tls1_3", "-groups", "ffdhe8192"],
        "openssl_nosni": ["openssl", "s_client", "-connect",
                          "127.0.0.1:{port}", "-noservername"],
        "curl": ["curl", "-sk", "--max-time", "3", "--resolve",
                 "example.test:{port}:127.0.0.1",
                 "https://example.test:{port}/"],
        "curl_tls12": ["curl", "-sk", "--max-time", "3", "--tlsv1.2",
                       "--tls-max", "1.2", "--resolve",
                       "www.example.org:{port}:127.0.0.1",
                       "https://www.example.org:{port}/"],
    }
    for name, argv in tls.items():
        data = capture_tcp(argv, tls_complete)
        if not tls_complete(data):
            sys.exit("capture of %s failed (%d bytes)" % (name, len(data)))
        save("tls_hello", name, data)
    big = capture_tcp(tls["openssl_ffdhe8192"], tls_complete)
    save("tls_hello", "frag_ffdhe8192_100", fragment(big, 100))
    save("tls_hello", "frag_curl_1", fragment(
        capture_tcp(tls["curl"], tls_complete), 1))

    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    conn_ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    curl = ["curl", "-s", "--max-time", "3"]
    http = {
        "curl_get": (curl + ["http://127.0.0.1:{port}/a?b=c"], ok),
        "curl_http10": (curl + ["-0", "http://127.0.0.1:{port}/"], ok),
        "curl_proxy_absolute": (curl + ["-x", "http://127.0.0.1:{port}",
                                        "http://example.test/p"], ok),
        "curl_proxy_connect": (curl + ["-x", "http://127.0.0.1:{port}",
                                       "-p", "http://example.test:8443/"],
                               conn_ok),
        "curl_post": (curl + ["-d", "hello=world",
                              "http://127.0.0.1:{port}/form"], ok),
        "curl_chunked": (curl + ["-H", "Transfer-Encoding: chunked",
                                 "--data-binary", "some body bytes",
                                 "http://127.0.0.1:{port}/up"], ok),
        "curl_options": (curl + ["-X", "OPTIONS", "--request-target", "*",
                                 "http://127.0.0.1:{port}/"], ok),
        "curl_ipv6_proxy": (curl + ["-x", "http://127.0.0.1:{port}",
                                    "http://[::1]:8080/x"], ok),
    }
    for name, (argv, reply) in http.items():
        data = capture_tcp(argv, http_complete, reply)
        if not http_complete(data):
            sys.exit("capture of %s failed: %r" % (name, data))
        save("http_req", name, data)

    queries = capture_dns(["example.test", "Mixed-Case.Example.ORG",
                           "_srv-like.example.com"])
    if not queries:
        sys.exit("no DNS queries captured (needs root for unshare -m)")
    for i, q in enumerate(queries):
        save("dns_msg", "glibc_%d" % i, q)


if __name__ == "__main__":
    main()
