"""Secrets and TLS interception (docs/secrets.md), proxy alone on loopback.

The proxy gets one secret on an inherited pipe (as the launcher gives it):
TESTKEY, whose placeholder the "guest" (these tests) holds, for
allowed.test. A recording HTTPS server on 127.0.0.2 (certificate from the
test CA, given to the proxy as --upstream-ca) is the oracle: what it saw
is what left the host. Clients are curl and Python's ssl, trusting only the
CA the proxy wrote with --ca-out."""

import base64
import http.server
import os
import socket
import ssl
import subprocess
import threading
import uuid

import pytest

import sbxtest

VALUE = "sk-test-REALVALUE-" + uuid.uuid4().hex
PH = "sk-test-" + "P" * 10 + uuid.uuid4().hex[:18]
OTHER_VALUE = "other-REAL-" + uuid.uuid4().hex
OTHER_PH = "other-" + "Q" * 8 + uuid.uuid4().hex[:17]
SECRETS = (f"TESTKEY {PH} {VALUE} allowed.test\n"
           f"OTHERKEY {OTHER_PH} {OTHER_VALUE} git.test\n")


class _Rec(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        self.server.seen.add({"path": self.path,
                              "headers": [(k, v) for k, v in self.headers.items()],
                              "body": body,
                              "sni": getattr(self.connection, "sni", None)})
        out = f"ok {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_GET


class RecordingTLS(sbxtest.QuietServer, http.server.HTTPServer):
    """Records every request (path, headers, body, SNI) before answering
    it; quiet() before checking that something did not reach it."""

    def __init__(self, pki, tls=True):
        self.seen = sbxtest.Recorder()
        self.quiet_setup()
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(pki["cert"], pki["key"])
            self.ctx.set_alpn_protocols(["h2", "http/1.1"])
        super().__init__((sbxtest.UPSTREAM_IP, 0), _Rec)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever,
                         kwargs={"poll_interval": 0.1}, daemon=True).start()

    def finish_request(self, request, client_address):
        request.settimeout(15)
        if self.ctx is not None:
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        super().finish_request(request, client_address)

    def all_bytes(self):
        return repr(self.seen.snapshot())


def recording_servers(env):
    """The HTTPS and the plain recording server, for a module-scoped
    fixture (this module's and the others that share it)."""
    tls, plain = RecordingTLS(env.pki), RecordingTLS(env.pki, tls=False)
    try:
        yield tls, plain
    finally:
        for s in (tls, plain):
            s.shutdown()
            s.server_close()


@pytest.fixture(scope="module")
def servers(env):
    yield from recording_servers(env)


def _policy(tls, plain):
    ports = f"[{tls.port}, {plain.port}]"
    return (f"version: 1\nmode: enforce\nallow:\n"
            f"  - host: allowed.test\n    ports: {ports}\n"
            f"  - host: other.test\n    ports: {ports}\n"
            f"  - host: git.test\n    ports: {ports}\n"
            f"  - cidr: 127.0.0.2/32\n    ports: {ports}\n")


def _start(env, start_proxy, servers, upstream_ca=True, secrets=SECRETS):
    """A proxy holding SECRETS, read from a pipe it inherits."""
    tls, plain = servers
    return sbxtest.secrets_proxy(env, start_proxy, _policy(tls, plain), secrets,
                                 upstream_ca=upstream_ca)


def _curl(p, fw_port, name, port, *args, scheme="https"):
    cenv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return sbxtest.run(["curl", "--silent", "--show-error", "--max-time", "10",
                        "--cacert", p.ca, "--connect-to",
                        f"{name}:{port}:127.0.0.1:{fw_port}", *args,
                        f"{scheme}://{name}:{port}/{uuid.uuid4().hex}"],
                       timeout=20, env=cenv)


def _no_value_anywhere(p, host):
    """No secret value in the audit log, any file of the proxy, its command
    line or environment. The log is read once the close record of a
    connection to host is in it: written after anything else of its."""
    p.wait_record(event="close", host=host)
    data = open(p.audit_path, "rb").read()
    assert VALUE.encode() not in data and OTHER_VALUE.encode() not in data
    for root, _, files in os.walk(p.dir):
        for f in files:
            if not os.path.isfile(os.path.join(root, f)):
                continue
            with open(os.path.join(root, f), "rb") as fh:
                assert VALUE.encode() not in fh.read(), f
    assert VALUE not in open(f"/proc/{p.pid}/cmdline", "rb").read().decode(errors="replace")
    assert VALUE.encode() not in open(f"/proc/{p.pid}/environ", "rb").read()


def _hdr(req, name):
    return [v for k, v in req["headers"] if k.lower() == name.lower()]


def test_bearer_replaced_on_secret_host(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port,
                  "-H", f"Authorization: Bearer {PH}", "-H", f"X-Api-Key: {PH}")
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    assert _hdr(req, "Authorization") == [f"Bearer {VALUE}"], req
    assert _hdr(req, "X-Api-Key") == [VALUE], req
    assert PH not in repr(req)
    rec = p.wait_record(event="intercept", secret="TESTKEY", decision="allow")
    assert rec.get("intercepted") is True and rec.get("host") == "allowed.test", rec
    _no_value_anywhere(p, "allowed.test")


def test_every_request_of_a_kept_alive_connection(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    before = len(tls.seen.snapshot())
    ctx = ssl.create_default_context(cafile=p.ca)
    with p.forwarder(f"{synth}:{tls.port}") as fw, fw.connect() as raw:
        with ctx.wrap_socket(raw, server_hostname="allowed.test") as s:
            for i in range(3):
                s.sendall(f"GET /ka{i} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
                          f"Authorization: Bearer {PH}\r\n\r\n".encode())
                st, _, body = sbxtest.read_http_response(s)
                assert st == 200, (st, body)
    got = tls.seen.snapshot()[before:]
    assert [q["path"] for q in got] == ["/ka0", "/ka1", "/ka2"], got
    assert all(_hdr(q, "Authorization") == [f"Bearer {VALUE}"] for q in got), got


def test_basic_auth_decoded_and_reencoded(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port, "-u", f"x-token:{PH}")
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    want = base64.b64encode(f"x-token:{VALUE}".encode()).decode()
    assert _hdr(req, "Authorization") == [f"Basic {want}"], req


def test_placeholder_for_another_intercepted_host_refused(env, start_proxy, servers):
    """git.test is intercepted (OTHERKEY); TESTKEY's placeholder sent there
    is an exfiltration attempt: refused, and the server never sees it."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("git.test")
    before, mark = len(tls.seen.snapshot()), tls.mark()
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "git.test", tls.port, "-w", "%{http_code}",
                  "-H", f"X-Leak: {PH}")
    assert r.stdout.decode().endswith("403"), (r.stdout, r.stderr)
    rec = p.wait_record(event="intercept", decision="deny", secret="TESTKEY")
    assert "exfiltration" in rec.get("reason", ""), rec
    _no_value_anywhere(p, "git.test")  # after the connection's close record
    tls.quiet(mark)
    assert tls.seen.snapshot()[before:] == []


def test_head_too_large_after_substitution_refused_on_record(env, start_proxy, servers):
    """A head that fits the limit with placeholders but not with the
    values (200 placeholders of a 1,000-byte secret: 7 KiB in, 200 KiB
    out) is refused with 431, on record as a deny, and nothing reaches the
    server."""
    tls, _ = servers
    big_value = "big-REAL-" + "v" * 991
    big_ph = "big-" + "B" * 10 + uuid.uuid4().hex[:22]
    p = _start(env, start_proxy, servers,
               secrets=SECRETS + f"BIGKEY {big_ph} {big_value} allowed.test\n")
    before, mark = len(tls.seen.snapshot()), tls.mark()
    with p.forwarder(f"{p.synth('allowed.test')}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port, "-w", "|%{http_code}",
                  "-H", "X-Many: " + " ".join([big_ph] * 200))
    out = r.stdout.decode()
    assert out.endswith("|431") and "too large after substitution" in out, (out, r.stderr)
    rec = p.wait_record(event="intercept", decision="deny",
                        reason=lambda x: bool(x) and x.startswith("request 1: ")
                        and "too large after substitution" in x)
    assert rec["host"] == "allowed.test", rec
    p.wait_record(event="close", host="allowed.test")
    assert big_value.encode() not in open(p.audit_path, "rb").read()
    tls.quiet(mark)
    assert tls.seen.snapshot()[before:] == []


def test_placeholder_in_plain_http_refused(env, start_proxy, servers):
    _, plain = servers
    p = _start(env, start_proxy, servers)
    for host in ("allowed.test", "other.test"):
        synth = p.synth(host)
        before, mark = len(plain.seen.snapshot()), plain.mark()
        with p.forwarder(f"{synth}:{plain.port}") as fw:
            r = _curl(p, fw.port, host, plain.port, "-w", "%{http_code}",
                      "-H", f"Authorization: Bearer {PH}", scheme="http")
        assert r.stdout.decode().endswith("403"), (host, r.stdout, r.stderr)
        # the server's view, once the connection is closed on both sides
        # (its close record) and served to its end
        p.wait_record(event="close", host=host, port=plain.port)
        plain.quiet(mark)
        assert plain.seen.snapshot()[before:] == [], host
    p.wait_count(2, decision="deny", reason=lambda s: s and "exfiltration" in s)


def _get_head(host, path, port, extra=""):
    """A GET head for host:port, with extra header lines."""
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
            f"\r\n").encode()


def _plain_ended_instead(p, n):
    """A later request refused in clear: the connection's close record is
    the deny, naming the request and that it was not answered."""
    rec = p.wait_record(event="close", decision="deny", host="allowed.test",
                        reason=lambda r: bool(r) and f"request {n}:" in r
                        and "ended instead of answered" in r)
    assert "exfiltration" in rec["reason"] and "TESTKEY" in rec["reason"], rec
    return rec


def test_pipelined_placeholder_in_plain_http_ends_the_connection(env, start_proxy, servers):
    """A (clean), B (the placeholder, in clear) and C (clean) in one
    write: the client reads A's whole answer, then EOF, never a 403 it
    would read as A's answer; neither B nor C reaches the server."""
    _, plain = servers
    p = _start(env, start_proxy, servers)
    a, b, c = ("/p" + x + "-" + uuid.uuid4().hex for x in "abc")
    with p.forwarder(f"{p.synth('allowed.test')}:{plain.port}") as fw, \
            fw.connect() as s:
        s.sendall(_get_head("allowed.test", a, plain.port) +
                  _get_head("allowed.test", b, plain.port, f"Authorization: Bearer {PH}\r\n") +
                  _get_head("allowed.test", c, plain.port))
        got = sbxtest.read_to_end(s)
    answers, rest = sbxtest.split_responses(got)
    assert answers == [(200, f"ok {a}\n".encode())] and rest == b"", got
    # The close record comes after the server closed its side: B would
    # have reached it before.
    _plain_ended_instead(p, 2)
    assert [q["path"] for q in plain.seen.snapshot()
            if q["path"] in (a, b, c)] == [a]


def test_keepalive_placeholder_in_plain_http_ends_the_connection(env, start_proxy, servers):
    """A answered, then B with the placeholder on the same connection:
    EOF, no 403. B alone on a new connection is first: its 403."""
    _, plain = servers
    p = _start(env, start_proxy, servers)
    a, b = "/ka-" + uuid.uuid4().hex, "/kb-" + uuid.uuid4().hex
    bad = _get_head("allowed.test", b, plain.port, f"Cookie: k={PH}\r\n")
    with p.forwarder(f"{p.synth('allowed.test')}:{plain.port}") as fw:
        with fw.connect() as s:
            s.sendall(_get_head("allowed.test", a, plain.port))
            st, _, body = sbxtest.read_http_response(s)
            assert (st, body) == (200, f"ok {a}\n".encode()), (st, body)
            s.sendall(bad)
            assert sbxtest.read_to_end(s) == b""
        _plain_ended_instead(p, 2)
        with fw.connect() as s:
            s.sendall(bad)
            st, _, body = sbxtest.read_http_response(s)
    assert st == 403 and b"exfiltration" in body, (st, body)
    rec = p.wait_record(event="close", decision="deny",
                        reason=lambda r: bool(r) and "request 1:" in r)
    assert "ended instead" not in rec["reason"], rec
    assert [q["path"] for q in plain.seen.snapshot()
            if q["path"] in (a, b)] == [a]


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_curl_retries_a_later_refused_request_on_a_new_connection(env, start_proxy, servers, scheme):
    """What a real client makes of the end of the stream: curl reuses the
    connection for B, sees it end before any answer, and sends B again on
    a new connection, where it is first and gets the 403 with its reason.
    In clear to the secret's own host, and inside TLS to git.test (an
    intercepted host not on TESTKEY's list)."""
    tls, plain = servers
    srv, host = (plain, "allowed.test") if scheme == "http" else (tls, "git.test")
    p = _start(env, start_proxy, servers)
    a, b = "/ca-" + uuid.uuid4().hex, "/cb-" + uuid.uuid4().hex
    with p.forwarder(f"{p.synth(host)}:{srv.port}") as fw:
        common = ["--cacert", p.ca, "--connect-to",
                  f"{host}:{srv.port}:127.0.0.1:{fw.port}", "-w", "|%{http_code}\n"]
        r = sbxtest.run(["curl", "--silent", "--max-time", "10", *common,
                         f"{scheme}://{host}:{srv.port}{a}", "--next", *common,
                         "-H", f"Cookie: k={PH}", f"{scheme}://{host}:{srv.port}{b}"],
                        timeout=20)
    out = r.stdout.decode()
    assert out.startswith(f"ok {a}\n|200\n") and out.endswith("|403\n"), out
    assert "exfiltration" in out, out
    # B came twice, on two connections: later on the first (ended), first
    # on the second (answered); it never reached the server.
    p.wait_record(decision="deny", reason=lambda r: bool(r) and "request 2:" in r
                  and "ended instead of answered" in r)
    p.wait_record(decision="deny", reason=lambda r: bool(r) and "request 1:" in r
                  and "exfiltration" in r)
    assert [q for q in srv.seen.snapshot() if q["path"] == b] == []
    assert len([q for q in srv.seen.snapshot() if q["path"] == a]) == 1


class _HoldServer:
    """Answers the first request of each connection, then reads to the
    client's end (recording anything more: nothing may come) and holds
    its socket open until released: a server that never closes."""

    def __init__(self, pki, tls):
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(pki["cert"], pki["key"])
        self.sock = socket.create_server((sbxtest.UPSTREAM_IP, 0))
        self.port = self.sock.getsockname()[1]
        self.release = threading.Event()
        self.saw_end = threading.Event()
        self.paths, self.extra = [], b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            c, _ = self.sock.accept()
            c.settimeout(30)
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += c.recv(65536)
            head, _, rest = buf.partition(b"\r\n\r\n")
            path = head.split(b" ")[1].decode()
            self.paths.append(path)
            out = f"ok {path}\n".encode()
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" %
                      len(out) + out)
            self.extra = rest
            while True:
                try:
                    d = c.recv(65536)
                except ssl.SSLError:
                    d = b""  # the end without close_notify
                if not d:
                    break
                self.extra += d
            self.saw_end.set()
            self.release.wait(60)
            c.close()
        except OSError:
            pass

    def close(self):
        self.release.set()
        self.sock.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_later_refusal_bounded_when_the_server_never_closes(env, start_proxy, scheme):
    """The end of the requests reaches the server, which answered A and
    never closes: the connection still ends, at --drain-timeout (1 s
    here), with A's answer whole and nothing of B at the server."""
    hold = _HoldServer(env.pki, tls=scheme == "https")
    host = "allowed.test" if scheme == "http" else "git.test"
    p = sbxtest.secrets_proxy(
        env, start_proxy,
        f"version: 1\nmode: enforce\nallow:\n"
        f"  - host: {host}\n    ports: [{hold.port}]\n"
        f"  - cidr: 127.0.0.2/32\n    ports: [{hold.port}]\n",
        SECRETS, args=["--drain-timeout", "1"])
    ca = p.ca
    a, b = "/ha-" + uuid.uuid4().hex, "/hb-" + uuid.uuid4().hex
    try:
        with p.forwarder(f"{p.synth(host)}:{hold.port}") as fw, fw.connect() as s:
            if scheme == "https":
                s = ssl.create_default_context(cafile=ca).wrap_socket(
                    s, server_hostname=host)
            s.sendall(f"GET {a} HTTP/1.1\r\nHost: {host}:{hold.port}\r\n\r\n"
                      f"GET {b} HTTP/1.1\r\nHost: {host}:{hold.port}\r\n"
                      f"Cookie: k={PH}\r\n\r\n".encode())
            got = sbxtest.read_to_end(s, timeout=30)
            # The stream ended while the server still held its side.
            assert not hold.release.is_set()
        answers, rest = sbxtest.split_responses(got)
        assert answers == [(200, f"ok {a}\n".encode())] and rest == b"", got
        assert hold.saw_end.wait(10), "the server never saw the end of the requests"
        assert hold.paths == [a] and hold.extra == b"", (hold.paths, hold.extra)
        p.wait_record(decision="deny", reason=lambda x: bool(x) and "request 2:" in x
                      and "ended instead of answered" in x)
    finally:
        hold.close()


def test_placeholder_in_plain_http_via_explicit_proxy_refused(env, start_proxy, servers):
    _, plain = servers
    p = _start(env, start_proxy, servers)
    before, mark = len(plain.seen.snapshot()), plain.mark()
    r = sbxtest.run(["curl", "--silent", "--max-time", "10", "-w", "%{http_code}",
                     "-x", p.http_proxy_url(), "-H", f"Cookie: k={PH}",
                     f"http://other.test:{plain.port}/x"], timeout=20)
    assert r.stdout.decode().endswith("403"), r.stdout
    p.wait_record(event="close", host="other.test")  # both sides closed
    plain.quiet(mark)
    assert plain.seen.snapshot()[before:] == []


def test_other_hosts_spliced_never_get_the_value(env, start_proxy, servers):
    """other.test holds no secret: spliced as before (the proxy cannot see
    inside it), and the upstream gets the worthless placeholder, never the
    value; the certificate it presents is the server's own."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("other.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        # Trusting only the sandbox CA fails: nothing is intercepted.
        r = _curl(p, fw.port, "other.test", tls.port, "-H", f"Authorization: Bearer {PH}")
        assert r.returncode != 0
        r = sbxtest.curl(env, "--http1.1", "--connect-to",
                         f"other.test:{tls.port}:127.0.0.1:{fw.port}",
                         "-H", f"Authorization: Bearer {PH}",
                         f"https://other.test:{tls.port}/spliced")
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    assert req["path"] == "/spliced" and _hdr(req, "Authorization") == [f"Bearer {PH}"]
    # both connections' close records: written after anything else of theirs
    p.wait_count(2, event="close", host="other.test")
    assert not p.find(event="intercept", host="other.test")


def test_body_never_rewritten(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port, "--data-binary", f"key={PH}")
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    assert req["body"] == f"key={PH}".encode(), req


def test_host_switch_inside_intercepted_connection_refused(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    before, mark = len(tls.seen.snapshot()), tls.mark()
    ctx = ssl.create_default_context(cafile=p.ca)
    with p.forwarder(f"{synth}:{tls.port}") as fw, fw.connect() as raw:
        with ctx.wrap_socket(raw, server_hostname="allowed.test") as s:
            s.sendall(f"GET /x HTTP/1.1\r\nHost: other.test:{tls.port}\r\n"
                      f"Authorization: Bearer {PH}\r\n\r\n".encode())
            st, _, _ = sbxtest.read_http_response(s)
    assert st == 403
    p.wait_record(event="close", host="allowed.test")  # both sides closed
    tls.quiet(mark)
    assert tls.seen.snapshot()[before:] == []


def test_upstream_verified(env, start_proxy, servers):
    """Without --upstream-ca the test server's certificate is not trusted:
    the value is never sent to it."""
    tls, _ = servers
    p = _start(env, start_proxy, servers, upstream_ca=False)
    synth = p.synth("allowed.test")
    before, mark = len(tls.seen.snapshot()), tls.mark()
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port, "-H", f"Authorization: Bearer {PH}")
    assert r.returncode != 0
    rec = p.wait_record(event="intercept", decision="deny",
                        reason=lambda s: s and "verif" in s)
    assert rec.get("host") == "allowed.test", rec
    p.wait_record(event="close", host="allowed.test")  # both sides closed
    tls.quiet(mark)
    assert tls.seen.snapshot()[before:] == []


def test_alpn_only_http11(env, start_proxy, servers):
    """The guest is offered HTTP/1.1 only; a client that asks for h2
    falls back (curl --http2, Python offering h2 first or only h2)."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = _curl(p, fw.port, "allowed.test", tls.port, "--http2",
                  "-w", "%{http_version}", "-H", f"Authorization: Bearer {PH}")
        assert r.returncode == 0 and r.stdout.decode().endswith("1.1"), (r.stdout, r.stderr)
        for offer, want in ((["h2", "http/1.1"], "http/1.1"), (["h2"], None)):
            ctx = ssl.create_default_context(cafile=p.ca)
            ctx.set_alpn_protocols(offer)
            with fw.connect() as raw, ctx.wrap_socket(raw, server_hostname="allowed.test") as s:
                assert s.selected_alpn_protocol() == want
                s.sendall(f"GET /alpn HTTP/1.1\r\nHost: allowed.test\r\n"
                          f"Authorization: Bearer {PH}\r\n\r\n".encode())
                st, _, _ = sbxtest.read_http_response(s)
                assert st == 200
    assert _hdr(tls.seen.snapshot()[-1], "Authorization") == [f"Bearer {VALUE}"]


def test_ca_name_constraints(env, start_proxy, servers):
    p = _start(env, start_proxy, servers)
    text = sbxtest.run(["openssl", "x509", "-noout", "-text", "-in", p.ca]).stdout.decode()
    assert "X509v3 Name Constraints: critical" in text, text
    permitted = text.split("Permitted:")[1].split("Excluded:")[0]
    assert "DNS:allowed.test" in permitted and "DNS:git.test" in permitted, text
    assert "other.test" not in text
    excluded = text.split("Excluded:")[1]
    assert "IP:0.0.0.0/0.0.0.0" in excluded, text
    assert "IP:0:0:0:0:0:0:0:0/0:0:0:0:0:0:0:0" in excluded, text
    assert "pathlen:0" in text
    assert "PRIVATE KEY" not in open(p.ca).read()


def test_constrained_ca_rejects_unlisted_name(env, tmp_path):
    """The constraints as the proxy writes them, on a CA whose key the test
    holds: a leaf for a listed name verifies, one for any other name or an
    IP address does not (what the guest's curl would do with a leaked key)."""
    d = str(tmp_path)

    def ossl(*a):
        r = sbxtest.run(["openssl", *a], timeout=30)
        assert r.returncode == 0, r.stderr.decode()

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "1",
         "-subj", "/CN=t", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
         "-addext", "keyUsage=critical,keyCertSign",
         "-addext", "nameConstraints=critical,permitted;DNS:allowed.test,"
                    "excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::")
    for name, san, ok in (("good", "DNS:allowed.test", True),
                          ("bad", "DNS:other.test", False),
                          ("ip", "IP:127.0.0.2", False)):
        ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName={san}\n")
        ossl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey",
             f"{d}/ca.key", "-CAcreateserial", "-out", f"{d}/{name}.pem", "-days", "1",
             "-extfile", f"{d}/{name}.ext")
        r = sbxtest.run(["openssl", "verify", "-CAfile", f"{d}/ca.pem", f"{d}/{name}.pem"])
        assert (r.returncode == 0) == ok, (name, r.stdout, r.stderr)


def test_bad_secrets_input_refused(env, start_proxy, servers):
    tls, plain = servers
    for bad, needle in ((f"TESTKEY short {VALUE} allowed.test\n", "placeholder"),
                        (f"TESTKEY {PH} {VALUE}\n", "want VAR"),
                        (f"1BAD {PH} {VALUE} allowed.test\n", "variable")):
        r, w = os.pipe()
        os.write(w, bad.encode())
        os.close(w)
        pol = os.path.join(env.workdir, f"bad-{uuid.uuid4().hex[:6]}.yaml")
        with open(pol, "w") as f:
            f.write(_policy(tls, plain))
        res = subprocess.run([env.proxy_bin, "--policy", pol, "--audit", "-",
                              "--secrets-fd", str(r), "--listen",
                              f"tcp:127.0.0.1:{sbxtest.free_port()}"],
                             pass_fds=(r,), capture_output=True, timeout=20)
        os.close(r)
        err = res.stderr.decode()
        assert res.returncode != 0 and needle in err, err
        assert VALUE not in err


def test_connect_tunnel_through_explicit_proxy_intercepted(env, start_proxy, servers):
    """HTTPS_PROXY clients (CONNECT) to a secret host are intercepted too."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    cenv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    r = sbxtest.run(["curl", "--silent", "--show-error", "--max-time", "10",
                     "--cacert", p.ca, "-x", p.http_proxy_url(),
                     "-H", f"Authorization: Bearer {PH}",
                     f"https://allowed.test:{tls.port}/via-connect"], timeout=20, env=cenv)
    assert r.returncode == 0, r.stderr.decode()
    req = [q for q in tls.seen.snapshot() if q["path"] == "/via-connect"]
    assert req and _hdr(req[0], "Authorization") == [f"Bearer {VALUE}"], req


def test_websocket_upgrade_passes_after_rewrite(env, start_proxy, servers):
    """An Upgrade request on an intercepted host has its headers rewritten;
    after the server's 101 the bytes pass both ways untouched."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    import socket as _s
    srv = _s.socket()
    srv.bind((sbxtest.UPSTREAM_IP, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = {}
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(env.pki["cert"], env.pki["key"])

    def serve():
        c, _ = srv.accept()
        with sctx.wrap_socket(c, server_side=True) as s:
            s.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            got["head"] = buf
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\n\r\n")
            data = b""
            while len(data) < 5:
                data += s.recv(100)
            got["data"] = data
            s.sendall(b"pong!")
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    # The policy allows the test servers' ports only: a fresh proxy whose
    # policy allows this one.
    pol = _policy(tls, servers[1]).replace(f"[{tls.port},", f"[{port}, {tls.port},")
    p = sbxtest.secrets_proxy(env, start_proxy, pol, SECRETS, ca_out=p.ca + ".2")
    synth = p.synth("allowed.test")
    ctx = ssl.create_default_context(
        cafile=[a for a in p.argv if a.endswith(".pem.2")][0])
    with p.forwarder(f"{synth}:{port}") as fw, fw.connect() as raw:
        with ctx.wrap_socket(raw, server_hostname="allowed.test") as s:
            s.sendall(f"GET /ws HTTP/1.1\r\nHost: allowed.test:{port}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Authorization: Bearer {PH}\r\n\r\n".encode())
            resp = b""
            while b"\r\n\r\n" not in resp:
                resp += s.recv(4096)
            assert resp.startswith(b"HTTP/1.1 101"), resp
            s.sendall(b"ping!")
            back = b""
            while len(back) < 5:
                back += s.recv(100)
    t.join(10)
    srv.close()
    assert f"Authorization: Bearer {VALUE}".encode() in got["head"], got
    assert got["data"] == b"ping!" and back == b"pong!"
