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


@pytest.fixture(scope="module")
def servers(env):
    tls, plain = RecordingTLS(env.pki), RecordingTLS(env.pki, tls=False)
    yield tls, plain
    for s in (tls, plain):
        s.shutdown()
        s.server_close()


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
    r, w = os.pipe()
    os.write(w, secrets.encode())
    os.close(w)
    d = os.path.join(env.workdir, "ca-" + uuid.uuid4().hex[:8])
    os.makedirs(d)
    ca = os.path.join(d, "sandbox-ca.pem")
    args = ["--secrets-fd", str(r), "--ca-out", ca]
    if upstream_ca:
        args += ["--upstream-ca", env.pki["ca"]]
    procs = env.procs
    orig = procs.start
    procs.start = lambda argv, **kw: orig(
        argv, **{**kw, "pass_fds": tuple(kw.get("pass_fds", ())) + (r,)})
    try:
        p = start_proxy(_policy(tls, plain), args=args)
    finally:
        del procs.start
        os.close(r)
    p.ca = ca
    return p


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
    r, w = os.pipe()
    os.write(w, SECRETS.encode())
    os.close(w)
    procs = env.procs
    orig = procs.start
    procs.start = lambda argv, **kw: orig(
        argv, **{**kw, "pass_fds": tuple(kw.get("pass_fds", ())) + (r,)})
    try:
        p = start_proxy(pol, args=["--secrets-fd", str(r), "--ca-out", p.ca + ".2",
                                   "--upstream-ca", env.pki["ca"]])
    finally:
        del procs.start
        os.close(r)
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
