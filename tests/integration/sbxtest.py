"""Helpers for the sandbox-proxy integration tests: loopback servers, the
proxy process, clients and the audit log.

Everything here talks to loopback only (127.0.0.0/8). Every wait is bounded.
"""

import hashlib
import http.server
import json
import os
import re
import select
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time

# The servers all live on this address; dnsmasq maps the test names to it.
UPSTREAM_IP = "127.0.0.2"

# dnsmasq answers for these names (A unless the address is IPv6). Every
# other name under .test is NXDOMAIN (--local=/test/).
DNS_RECORDS = {
    "allowed.test": "127.0.0.2",
    "www.allowed.test": "127.0.0.2",
    "other.test": "127.0.0.2",
    "denied.test": "127.0.0.2",
    "would.test": "127.0.0.2",
    "reload.test": "127.0.0.2",
    "git.test": "127.0.0.2",
    "loop.test": "127.0.0.2",
    "preset.test": "127.0.0.2",
    "one.sub.test": "127.0.0.2",
    # IPv4-mapped loopback: the proxy must unwrap it and refuse it as
    # loopback; if it did not, the connection still stays on loopback.
    "mapped.test": "::ffff:127.0.0.2",
}
CERT_NAMES = [n for n in DNS_RECORDS] + ["*.allowed.test"]

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


class HarnessError(Exception):
    pass


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port(host="127.0.0.1", udp_too=False):
    """A port free on host for TCP (and UDP when asked). There is a small
    race between closing the probe socket and the real bind; callers that
    can, retry."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        if udp_too:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((host, port))
            except OSError:
                t.close()
                u.close()
                continue
            u.close()
        t.close()
        return port
    raise HarnessError("no free port found")


def line_of(text, needle):
    """1-based line number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise HarnessError(f"{needle!r} not in policy text")


# --- processes --------------------------------------------------------------

class Procs:
    """Every process the tests start, so that teardown can kill them all."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in self.procs:
            stop_process(p, timeout=2)
        self.procs.clear()


def stop_process(p, sig=signal.SIGTERM, timeout=3.0):
    """Send sig, wait up to timeout, then SIGKILL. Returns the exit code."""
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=5)


def run(argv, timeout=15, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    try:
        return subprocess.run(argv, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv[0]} did not finish within {timeout}s: "
                             f"{' '.join(map(str, argv))}") from e


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError(f"no VmRSS for pid {pid}")


# --- PKI --------------------------------------------------------------------

def make_pki(d):
    """A test CA and one server certificate whose SAN lists every test name
    and 127.0.0.2, made with the openssl CLI."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "srv.ext")

    def ossl(*args):
        r = run(["openssl", *args], timeout=30)
        if r.returncode:
            raise HarnessError(f"openssl {' '.join(args)}: {r.stderr.decode()}")

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=sandbox-proxy integration test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=allowed.test")
    sans = ",".join([f"DNS:{n}" for n in CERT_NAMES] + [f"IP:{UPSTREAM_IP}"])
    with open(ext, "w") as f:
        f.write(f"subjectAltName={sans}\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return {"ca": ca, "cert": crt, "key": key}


# --- dnsmasq ----------------------------------------------------------------

class Dnsmasq:
    def __init__(self, procs, d):
        self.log = os.path.join(d, "dnsmasq.log")
        last_err = ""
        for _ in range(5):
            self.port = free_port(udp_too=True)
            argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                    "--no-resolv", "--no-hosts", "--no-poll",
                    "--listen-address=127.0.0.1", "--bind-interfaces",
                    f"--port={self.port}", "--pid-file=", "--cache-size=0",
                    "--log-queries", f"--log-facility={self.log}",
                    "--local=/test/"]
            if os.geteuid() == 0:
                argv += ["--user=root", "--group=root"]
            argv += [f"--host-record={n},{a}" for n, a in DNS_RECORDS.items()]
            errf = os.path.join(d, "dnsmasq.stderr")
            with open(errf, "wb") as err:
                self.proc = procs.start(argv, stdout=err, stderr=err)
            if self._wait_ready():
                return
            stop_process(self.proc)
            last_err = open(errf).read()
        raise HarnessError(f"dnsmasq did not start: {last_err}")

    def _wait_ready(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if udp_dns_query(self.port, "allowed.test", timeout=0.3) is not None:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def queried(self):
        """Names dnsmasq was asked about (any type), in order."""
        try:
            text = open(self.log, errors="replace").read()
        except FileNotFoundError:
            return []
        return re.findall(r"query\[\w+\] (\S+) from", text)


def dns_question(name, qtype):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def udp_dns_query(port, name, qtype=1, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(dns_question(name, qtype), ("127.0.0.1", port))
        return s.recv(4096)
    except socket.timeout:
        return None
    finally:
        s.close()


# --- upstream servers -------------------------------------------------------

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


class OriginServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """HTTP/1.1 origin (keep-alive) that records every request; with a TLS
    context it records the SNI of every handshake too. Every accepted
    connection is recorded first (accepted), before any byte is read."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host, ctx=None):
        self.tls = ctx is not None
        self.ctx = ctx
        self.requests = Recorder()
        self.snis = Recorder()
        self.accepted = Recorder()
        self._big = None
        self._big_lock = threading.Lock()
        super().__init__((host, 0), _Handler)
        self.port = self.server_address[1]
        if ctx is not None:
            ctx.sni_callback = lambda sslobj, name, c: self.snis.add(name)
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()

    def big(self):
        with self._big_lock:
            if self._big is None:
                self._big = big_payload()
            return self._big

    def finish_request(self, request, client_address):
        self.accepted.add(client_address)
        # The TLS handshake happens in the handler thread, with a timeout,
        # so that a client that stalls cannot block anyone else.
        request.settimeout(15)
        if self.ctx is not None:
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)


class BannerServer:
    """A server that speaks first (like SSH), then echoes lines."""

    BANNER = b"SSH-2.0-sbx-integration\r\n"

    def __init__(self, host):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = Recorder()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
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


def base_policy(env, extra_allow="", extra_deny="", mode="enforce", cidr=True):
    """The usual policy: the test names on the upstream servers' ports,
    loopback reachable through a cidr: rule. Lines are found again with
    Proxy.rule(needle)."""
    ports = f"[{env.tls.port}, {env.http.port}, {env.s_server.port}]"
    text = (f"version: 1\nmode: {mode}\nallow:\n"
            f"  - host: allowed.test\n    ports: {ports}\n"
            f"  - host: www.allowed.test\n    ports: {ports}\n"
            f"  - host: other.test\n    ports: {ports}\n")
    if cidr:
        # The banner servers speak first: opaque TCP (protocols: [tcp]).
        text += (f"  - cidr: 127.0.0.2/32\n    ports: [{env.tls.port}, "
                 f"{env.http.port}, {env.s_server.port}]\n"
                 f"  - cidr: 127.0.0.2/32\n    ports: [{env.banner.port}, "
                 f"{env.banner2.port}]\n    protocols: [tcp]\n")
    text += extra_allow
    text += f"deny:\n  - host: denied.test\n    ports: {ports}\n" + extra_deny
    return text


# --- the proxy --------------------------------------------------------------

class Proxy:
    """One running sandbox-proxy with its own policy files, audit log and
    sockets."""

    def __init__(self, env, name, policies, args=(), check_ready=True, listen=None):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.policy_paths = []
        for i, text in enumerate(policies):
            p = os.path.join(self.dir, f"policy{i}.yaml")
            with open(p, "w") as f:
                f.write(text)
            self.policy_paths.append(p)
        self.policy = self.policy_paths[0] if self.policy_paths else None
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        self.sock = os.path.join(self.dir, "t.sock")
        self.http_port = free_port()
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.argv = [env.proxy_bin]
        for p in self.policy_paths:
            self.argv += ["--policy", p]
        self.argv += ["--presets", env.presets, "--audit", self.audit_path,
                      "--sandbox", name,
                      "--resolver", f"127.0.0.1:{env.dns.port}",
                      "--listen", listen or f"unix:{self.sock}",
                      "--http-proxy", f"tcp:127.0.0.1:{self.http_port}",
                      *args]
        penv = dict(os.environ)
        # ASan keeps freed memory in a quarantine (256 MB by default) that
        # would hide whether the proxy's own buffering is bounded.
        asan = penv.get("ASAN_OPTIONS", "")
        penv["ASAN_OPTIONS"] = ":".join(filter(None, [
            asan, "quarantine_size_mb=8", "abort_on_error=0"]))
        with open(self.stderr_path, "wb") as err:
            self.proc = env.procs.start(self.argv, stdout=err, stderr=err, env=penv)
        self.pid = self.proc.pid
        if check_ready:
            self.wait_ready()

    # stderr ---------------------------------------------------------------
    def stderr(self):
        try:
            return open(self.stderr_path, errors="replace").read()
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=10):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"sandbox-proxy exited with {self.proc.returncode} before "
                    f"'ready'; argv: {' '.join(self.argv)}\nstderr:\n{self.stderr()}")
            return "sandbox-proxy: ready" in self.stderr()
        try:
            wait_until(ready, timeout, what="sandbox-proxy: ready")
        except AssertionError as e:
            raise AssertionError(f"{e}\nstderr:\n{self.stderr()}") from None
        text = self.stderr()
        for want in (f"listening on tcp:127.0.0.1:{self.http_port} (http-proxy)",):
            assert want in text, f"proxy stderr lacks {want!r}:\n{text}"
        assert "(transparent)" in text, f"proxy stderr lacks the transparent listener line:\n{text}"

    def alive(self):
        return self.proc.poll() is None

    def sanitizer_report(self):
        text = self.stderr()
        if any(m in text for m in SANITIZER_MARKERS):
            return text
        return None

    def stop(self, timeout=5):
        return stop_process(self.proc, timeout=timeout)

    # audit ----------------------------------------------------------------
    def audit(self):
        """Every audit record so far, parsed. A line that is not a JSON
        object fails the test: the log must be valid JSON Lines."""
        try:
            data = open(self.audit_path, "rb").read()
        except FileNotFoundError:
            return []
        out = []
        lines = data.split(b"\n")
        # A record is written with one write(2); a trailing partial line
        # would be a bug, but give the writer a moment before calling it.
        if lines and lines[-1] != b"":
            time.sleep(0.05)
            data = open(self.audit_path, "rb").read()
            lines = data.split(b"\n")
            assert lines[-1] == b"", f"audit log ends in a partial line: {lines[-1][:200]!r}"
        for raw in lines[:-1]:
            try:
                rec = json.loads(raw)
            except ValueError:
                raise AssertionError(f"audit line is not JSON: {raw[:300]!r}") from None
            assert isinstance(rec, dict), f"audit line is not an object: {raw[:300]!r}"
            out.append(rec)
        return out

    def find(self, **match):
        """Records where every given field equals the given value; a
        callable value is a predicate on the field."""
        res = []
        for r in self.audit():
            for k, v in match.items():
                have = r.get(k)
                if callable(v):
                    if not v(have):
                        break
                elif have != v:
                    break
            else:
                res.append(r)
        return res

    def wait_record(self, timeout=5, **match):
        try:
            return wait_until(lambda: self.find(**match), timeout,
                              what=f"audit record {match}")[0]
        except AssertionError:
            recs = "\n".join(json.dumps(r) for r in self.audit()[-15:])
            raise AssertionError(
                f"no audit record matching {match} within {timeout}s; last records:\n"
                f"{recs}") from None

    def rule(self, needle, idx=0):
        """"file:line" of the rule line containing needle in policy idx."""
        path = self.policy_paths[idx]
        return f"{path}:{line_of(open(path).read(), needle)}"

    # clients --------------------------------------------------------------
    def http_proxy_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def wire(self, *args, timeout=15, **kw):
        return run([self.env.wire_client, args[0], "--proxy", f"unix:{self.sock}",
                    *args[1:]], timeout=timeout, **kw)

    def dns(self, name, qtype="A", timeout=5):
        """(rcode, [(type, value)...]) from one query over a DNS stream."""
        r = self.wire("dns", "--timeout", str(timeout), name, qtype,
                      timeout=timeout + 5)
        out = r.stdout.decode()
        if r.returncode != 0:
            raise AssertionError(f"wire_client dns {name} {qtype} failed "
                                 f"({r.returncode}): {r.stderr.decode()}{out}")
        lines = out.splitlines()
        assert lines and lines[0].startswith("rcode "), out
        answers = [tuple(l.split(" ", 1)) for l in lines[1:]]
        return lines[0].split()[1], answers

    def synth(self, name):
        rcode, ans = self.dns(name, "A")
        assert rcode == "NOERROR", f"A {name}: rcode {rcode}"
        a = [v for t, v in ans if t == "A"]
        assert len(a) == 1, f"A {name}: want one A record, got {ans}"
        return a[0]

    def forwarder(self, dest):
        return Forwarder(self, dest)


class Forwarder:
    """wire_client forward: a local port whose every connection becomes a
    wire stream claiming --dest."""

    def __init__(self, proxy, dest):
        self.proc = proxy.env.procs.start(
            [proxy.env.wire_client, "forward", "--proxy", f"unix:{proxy.sock}",
             "--listen", "127.0.0.1:0", "--dest", dest],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r, _, _ = select.select([self.proc.stdout], [], [], 5)
        line = self.proc.stdout.readline().decode() if r else ""
        m = re.match(r"listening 127\.0\.0\.1:(\d+)", line)
        if not m:
            stop_process(self.proc)
            raise HarnessError(f"wire_client forward did not start: {line!r} "
                               f"{self.proc.stderr.read().decode()}")
        self.port = int(m.group(1))

    def connect(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def close(self):
        stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# --- HTTP over raw sockets ----------------------------------------------------

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


def client_hello(sni="allowed.test"):
    """The bytes of a real OpenSSL ClientHello for sni (None: no SNI)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=False, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


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


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


# --- hand-driven TLS clients ------------------------------------------------------

def _hello_parts(hello):
    """Split one-record ClientHello bytes into (handshake message, offset of
    the extensions length within it)."""
    assert hello[0] == 0x16 and len(hello) == 5 + int.from_bytes(hello[3:5], "big")
    hs = hello[5:]
    assert hs[0] == 1 and len(hs) == 4 + int.from_bytes(hs[1:4], "big")
    off = 4 + 2 + 32
    off += 1 + hs[off]                                 # session id
    off += 2 + int.from_bytes(hs[off:off + 2], "big")  # cipher suites
    off += 1 + hs[off]                                 # compression
    return hs, off


def add_extension(hello, ext_type, data):
    """A ClientHello record with one more extension appended."""
    hs, off = _hello_parts(hello)
    ext_len = int.from_bytes(hs[off:off + 2], "big")
    ext = ext_type.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data
    body = hs[4:off] + (ext_len + len(ext)).to_bytes(2, "big") + hs[off + 2:] + ext
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(msg).to_bytes(2, "big") + msg


def split_records(hello, at):
    """The same handshake message carried in two TLS records."""
    hs, _ = _hello_parts(hello)
    a, b = hs[:at], hs[at:]
    return (b"\x16\x03\x01" + len(a).to_bytes(2, "big") + a,
            b"\x16\x03\x01" + len(b).to_bytes(2, "big") + b)


class ManualTLS:
    """A verifying TLS client over a plain socket whose first flight the test
    may rewrite or fragment before it goes out."""

    def __init__(self, ca, sni):
        ctx = ssl.create_default_context(cafile=ca)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hello = self.out.read()

    def finish(self, sock, timeout=10):
        """Complete the handshake after the hello was sent by the test."""
        sock.settimeout(timeout)
        while True:
            try:
                self.obj.do_handshake()
                sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                pending = self.out.read()
                if pending:
                    sock.sendall(pending)
                d = sock.recv(65536)
                if not d:
                    raise ConnectionError("closed during the TLS handshake")
                self.inc.write(d)

    def request(self, sock, raw):
        """Send raw over TLS and read until the peer closes."""
        self.obj.write(raw)
        sock.sendall(self.out.read())
        data = b""
        while True:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    break
                data += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            d = sock.recv(65536)
            if not d:
                break
            self.inc.write(d)
        return data
