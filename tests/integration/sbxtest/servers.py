"""Upstream servers on 127.0.0.2 that record what reached them: the
upstream's own view, which security tests use as the oracle."""

import hashlib
import http.server
import os
import socket
import socketserver
import ssl
import threading

from .names import UPSTREAM_IP
from .procs import HarnessError, free_port, wait_until


class Recorder:
    """Thread-safe list of what an upstream server saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, item):
        with self.lock:
            self.items.append(item)

    def snapshot(self):
        with self.lock:
            return list(self.items)


BIG_SIZE = 50 * 1024 * 1024


def big_payload():
    """50 MB of deterministic, incompressible-looking bytes."""
    block = hashlib.sha256(b"sbx").digest() * 2048  # 64 KiB
    out = bytearray()
    i = 0
    while len(out) < BIG_SIZE:
        out += hashlib.sha256(i.to_bytes(4, "big")).digest() + block[32:]
        i += 1
    return bytes(out[:BIG_SIZE])


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sbx-origin"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.add({"requestline": self.requestline, "path": self.path,
                          "host": self.headers.get_all("Host"),
                          "tls": srv.tls})
        if self.path.startswith("/big"):
            body = srv.big()
            ctype = "application/octet-stream"
        else:
            body = (f"origin {'https' if srv.tls else 'http'} path={self.path} "
                    f"host={self.headers.get('Host')}\n").encode()
            ctype = "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        for i in range(0, len(body), 1 << 20):
            self.wfile.write(view[i:i + (1 << 20)])

    do_POST = do_GET


class QuietServer(socketserver.ThreadingMixIn):
    """A threading socketserver that knows when each connection it
    accepted has been served to its end: mark() and quiet(since). What a
    handler thread records is complete only once that thread ended, so a
    test that checks what did NOT reach the server calls quiet() first.
    Call quiet_setup() before the server starts serving; on_accept(addr)
    runs in accept order, before the connection's thread starts."""

    daemon_threads = True

    def quiet_setup(self):
        self._q_lock = threading.Lock()
        self._q_ended = []  # per accepted connection: its thread ended
        self._q_index = {}  # id(request) -> its index in _q_ended
        self._q_probes = {}  # quiet()'s probe address -> its index, once accepted

    def on_accept(self, client_address):
        pass

    def process_request(self, request, client_address):
        # serve_forever's thread: in accept order
        with self._q_lock:
            if client_address in self._q_probes:
                self._q_probes[client_address] = len(self._q_ended)
                self.shutdown_request(request)
                return
            self._q_index[id(request)] = len(self._q_ended)
            self._q_ended.append(False)
            self.on_accept(client_address)
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        with self._q_lock:
            i = self._q_index.pop(id(request))
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._q_lock:
                self._q_ended[i] = True

    def mark(self):
        """How many connections were accepted so far (for quiet())."""
        with self._q_lock:
            return len(self._q_ended)

    def quiet(self, since, timeout=10):
        """Wait until every connection accepted since mark() `since` has
        been served to its end, including any still in the listen queue:
        a probe connection made now is accepted after them (the queue is
        in order; the probe is not recorded). Then what the server records
        (an OriginServer's accepted, snis and requests) holds everything
        that reached it, and a test may check an absence without a fixed
        sleep. Call it once the proxy has closed the upstream side (the
        connection's close record)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(("127.0.0.1", 0))
            me = probe.getsockname()
            with self._q_lock:
                self._q_probes[me] = None
            probe.settimeout(timeout)
            probe.connect(self.server_address)

            def accepted_at():
                with self._q_lock:
                    k = self._q_probes[me]
                return k + 1 if k is not None else 0
            k = wait_until(accepted_at, timeout,
                           what="the probe connection to be accepted") - 1
        finally:
            probe.close()
        with self._q_lock:
            self._q_probes.pop(me, None)

        def ended():
            with self._q_lock:
                return all(self._q_ended[since:k])
        wait_until(ended, timeout, what="the connections to the server to end")


class OriginServer(QuietServer, http.server.HTTPServer):
    """HTTP/1.1 origin (keep-alive) that records every request; with a TLS
    context it records the SNI of every handshake too. Every accepted
    connection is recorded first (accepted, in accept order), before any
    byte is read; what a connection recorded is complete once quiet()
    returns."""

    allow_reuse_address = True

    def __init__(self, host, ctx=None):
        self.tls = ctx is not None
        self.ctx = ctx
        self.requests = Recorder()
        self.snis = Recorder()
        self.accepted = Recorder()
        self._big = None
        self._big_lock = threading.Lock()
        self.quiet_setup()
        super().__init__((host, 0), _Handler)
        self.port = self.server_address[1]
        if ctx is not None:
            ctx.sni_callback = lambda sslobj, name, c: self.snis.add(name)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def on_accept(self, client_address):
        self.accepted.add(client_address)

    def big(self):
        with self._big_lock:
            if self._big is None:
                self._big = big_payload()
            return self._big

    def finish_request(self, request, client_address):
        # The TLS handshake happens in the handler thread, with a timeout,
        # so that a client that stalls cannot block anyone else.
        request.settimeout(15)
        if self.ctx is not None:
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


def recording_server(addr, port, seen, cert=None, key=None, body=b"",
                     files=None, groups=None):
    """A small HTTP(S) server for the e2e tests, started in a thread:
    each GET is added to seen (a Recorder) as {"path", "host", "auth" (every
    Authorization header), "headers" (each header's values by lower-case
    name), "ua"}, then answered with body, or under
    /repo.git/ with the file of that path below files (git's dumb HTTP;
    404 outside it). TLS with cert and key when given, offering only the
    key-exchange groups named by groups (an OpenSSL list) when given. Stop it with
    shutdown() and server_close()."""

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            seen.add({"path": self.path, "host": self.headers.get("Host"),
                      "auth": self.headers.get_all("Authorization") or [],
                      "headers": {k.lower(): self.headers.get_all(k)
                                  for k in set(self.headers.keys())},
                      "ua": self.headers.get("User-Agent", "")})
            data = body
            if files and self.path.startswith("/repo.git/"):
                rel = self.path[len("/repo.git/"):].split("?")[0]
                p = os.path.normpath(os.path.join(files, rel))
                if not p.startswith(files + os.sep) or not os.path.isfile(p):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with open(p, "rb") as f:
                    data = f.read()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = http.server.ThreadingHTTPServer((addr, port), H)
    if cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        if groups:
            ctx.set_ecdh_curve(groups)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class BannerServer:
    """A server that speaks first (like SSH), then echoes lines. accepted
    is recorded in accept order; sync() before checking that nothing
    reached it."""

    BANNER = b"SSH-2.0-sbx-integration\r\n"

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = Recorder()
        self._probes = Recorder()
        self._probe_lock = threading.Lock()
        self._probe_addrs = set()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            with self._probe_lock:
                probe = addr in self._probe_addrs
            if probe:
                self._probes.add(addr)
                c.close()
                continue
            self.accepted.add(addr)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        c.settimeout(15)
        try:
            c.sendall(self.BANNER)
            while True:
                data = c.recv(4096)
                if not data:
                    break
                c.sendall(b"echo:" + data)
        except OSError:
            pass
        finally:
            c.close()

    def sync(self, timeout=10):
        """Wait until every connection made to it before this call is in
        accepted: a probe connection (not recorded) made now is accepted
        after them, the listen queue being in order. Call it once the
        proxy is done with the connection (its close record)."""
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind(("127.0.0.1", 0))
            me = probe.getsockname()
            with self._probe_lock:
                self._probe_addrs.add(me)
            probe.settimeout(timeout)
            probe.connect(self.sock.getsockname())
            wait_until(lambda: me in self._probes.snapshot(), timeout,
                       what="the probe connection to be accepted")
        finally:
            probe.close()

    def close(self):
        self.sock.close()


class OpensslServer:
    """openssl s_server -www on 127.0.0.2: the real OpenSSL server tool.
    It serves one connection at a time, so only a few tests use it."""

    def __init__(self, procs, pki, d):
        self.port = free_port(UPSTREAM_IP)
        errf = os.path.join(d, "s_server.log")
        with open(errf, "wb") as err:
            self.proc = procs.start(
                ["openssl", "s_server", "-www", "-quiet", "-naccept", "1000",
                 "-accept", f"{UPSTREAM_IP}:{self.port}",
                 "-cert", pki["cert"], "-key", pki["key"]],
                stdout=err, stderr=err)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError(f"openssl s_server exited: {open(errf).read()}")
            try:
                socket.create_connection((UPSTREAM_IP, self.port), 0.2).close()
                return True
            except OSError:
                return False
        wait_until(up, 10, what="openssl s_server to listen")
