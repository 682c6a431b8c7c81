"""Inspected hosts (policy `inspect: true`, docs/secrets.md "Inspected
hosts"), proxy alone on loopback: allowed.test is inspected, no secret
names it. The proxy intercepts it with the sandbox CA (written with
--ca-out), checks every request head as plain HTTP is, and writes one
`request` record per head: method, host, path without its query, never a
header value. The recording HTTPS server of test_secrets is the oracle for
what left the host; other.test (not inspected) is spliced as before."""

import os
import ssl
import subprocess
import uuid

import pytest

import sbxtest
import test_secrets as ts


@pytest.fixture(scope="module")
def servers(env):
    yield from ts.recording_servers(env)


def _policy(tls, plain):
    ports = f"[{tls.port}, {plain.port}]"
    return (f"version: 1\nmode: enforce\nallow:\n"
            f"  - host: allowed.test\n    ports: {ports}\n    inspect: true\n"
            f"  - host: other.test\n    ports: {ports}\n"
            f"  - host: git.test\n    ports: {ports}\n"
            # The names resolve to loopback, which needs its own rule.
            f"  - cidr: 127.0.0.2/32\n    ports: {ports}\n")


def _start(env, start_proxy, servers):
    tls, plain = servers
    d = os.path.join(env.workdir, "ca-" + uuid.uuid4().hex[:8])
    os.makedirs(d)
    ca = os.path.join(d, "sandbox-ca.pem")
    p = start_proxy(_policy(tls, plain),
                    args=["--ca-out", ca, "--upstream-ca", env.pki["ca"]])
    p.ca = ca
    return p


def test_inspected_host_intercepted_and_each_request_recorded(env, start_proxy, servers):
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    tok, hdr = "q" + uuid.uuid4().hex, "h" + uuid.uuid4().hex
    path = "/insp-" + uuid.uuid4().hex
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        # Trusting only the sandbox CA works: the proxy terminated TLS.
        r = sbxtest.run(["curl", "--silent", "--show-error", "--max-time", "10",
                         "--cacert", p.ca, "--connect-to",
                         f"allowed.test:{tls.port}:127.0.0.1:{fw.port}",
                         "-H", f"Authorization: Bearer {hdr}",
                         f"https://allowed.test:{tls.port}{path}?token={tok}",
                         f"https://allowed.test:{tls.port}{path}/2"],
                        timeout=20)
    assert r.returncode == 0, (r.stderr.decode(), p.audit()[-3:])
    seen = [q for q in tls.seen.snapshot() if q["path"].startswith(path)]
    assert [q["path"] for q in seen] == [f"{path}?token={tok}", f"{path}/2"], seen
    # Passed through unchanged: inspection reads, it does not rewrite.
    assert ts._hdr(seen[0], "Authorization") == [f"Bearer {hdr}"], seen
    p.wait_record(event="request", path=f"{path}/2")
    reqs = p.find(event="request", host="allowed.test")
    got = [(q["method"], q["path"]) for q in reqs]
    assert got == [("GET", path), ("GET", f"{path}/2")], reqs
    assert all(q.get("intercepted") is True and q.get("port") == tls.port
               for q in reqs), reqs
    rec = p.wait_record(event="intercept", host="allowed.test", decision="allow")
    assert "inspected" in rec.get("reason", ""), rec
    # Neither the query nor a header value is on record: read once the
    # connection's close record, written after the rest of its records, is.
    p.wait_record(event="close", host="allowed.test")
    log = open(p.audit_path, "rb").read()
    assert tok.encode() not in log and hdr.encode() not in log


def test_ca_constrained_to_the_inspected_host(env, start_proxy, servers):
    p = _start(env, start_proxy, servers)
    txt = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", p.ca],
                         capture_output=True, text=True, check=True).stdout
    assert "Name Constraints: critical" in txt, txt
    assert "DNS:allowed.test" in txt, txt
    assert "other.test" not in txt and "git.test" not in txt, txt


def test_host_switch_inside_inspected_connection_refused(env, start_proxy, servers):
    """The per-request checker of plain HTTP: a kept-alive inspected
    connection cannot name another host; that request never reaches the
    server."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    path = "/switch-" + uuid.uuid4().hex
    ctx = ssl.create_default_context(cafile=p.ca)
    mark = tls.mark()
    with p.forwarder(f"{synth}:{tls.port}") as fw, \
            ctx.wrap_socket(fw.connect(), server_hostname="allowed.test") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: other.test:{tls.port}\r\n\r\n"
                  .encode())
        st, _, body = sbxtest.read_http_response(s)
    assert st == 403, (st, body)
    p.wait_record(event="intercept", decision="deny", host="allowed.test")
    # the connection's close record: written after anything else of its,
    # once both sides are closed; then the server has served it to its end
    p.wait_record(event="close", host="allowed.test")
    tls.quiet(mark)
    assert not [q for q in tls.seen.snapshot() if q["path"] == path]
    assert not p.find(event="request", path=path)


def test_not_inspected_host_spliced(env, start_proxy, servers):
    """other.test is not inspected: spliced, its own certificate reaches
    the client (trusting only the sandbox CA fails), no request record."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("other.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = ts._curl(p, fw.port, "other.test", tls.port)
        assert r.returncode != 0
        r = sbxtest.curl(env, "--http1.1", "--connect-to",
                         f"other.test:{tls.port}:127.0.0.1:{fw.port}",
                         f"https://other.test:{tls.port}/spliced-insp")
    assert r.returncode == 0, r.stderr.decode()
    assert [q for q in tls.seen.snapshot() if q["path"] == "/spliced-insp"]
    # both connections' close records: written after anything else of theirs
    p.wait_count(2, event="close", host="other.test")
    assert not p.find(event="request", host="other.test")
    assert not p.find(event="intercept", host="other.test")


def test_placeholder_to_inspected_host_refused(env, start_proxy, servers):
    """With secrets too: allowed.test is inspected but on no secret's
    list, so TESTKEY's placeholder sent there is refused before the
    server sees it (TESTKEY's one host is git.test)."""
    tls, plain = servers
    p = sbxtest.secrets_proxy(env, start_proxy, _policy(tls, plain),
                              f"TESTKEY {ts.PH} {ts.VALUE} git.test\n")
    ca = p.ca
    path = "/leak-" + uuid.uuid4().hex
    synth = p.synth("allowed.test")
    mark = tls.mark()
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        res = sbxtest.run(["curl", "--silent", "--max-time", "10", "-w",
                           "%{http_code}", "--cacert", ca, "--connect-to",
                           f"allowed.test:{tls.port}:127.0.0.1:{fw.port}",
                           "-H", f"X-Leak: {ts.PH}",
                           f"https://allowed.test:{tls.port}{path}"],
                          timeout=20)
    assert res.stdout.decode().endswith("403"), (res.stdout, res.stderr)
    rec = p.wait_record(event="intercept", decision="deny", secret="TESTKEY")
    assert "exfiltration" in rec.get("reason", ""), rec
    # the connection's close record: written after anything else of its,
    # once both sides are closed; then the server has served it to its end
    p.wait_record(event="close", host="allowed.test")
    tls.quiet(mark)
    assert not [q for q in tls.seen.snapshot() if q["path"] == path]
    assert not p.find(event="request", path=path)
    log = open(p.audit_path, "rb").read()
    assert ts.VALUE.encode() not in log


def test_absolute_form_and_pipelined_heads_recorded_without_query(env, start_proxy, servers):
    """Two pipelined heads in one write, the second in absolute form with
    a query: each is recorded, neither query (a fragment is refused
    by the checker with a 400)."""
    tls, _ = servers
    p = _start(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    a, b = "/pa-" + uuid.uuid4().hex, "/pb-" + uuid.uuid4().hex
    tok = "t" + uuid.uuid4().hex
    ctx = ssl.create_default_context(cafile=p.ca)
    with p.forwarder(f"{synth}:{tls.port}") as fw, \
            ctx.wrap_socket(fw.connect(), server_hostname="allowed.test") as s:
        s.sendall((f"GET {a}?k={tok} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n\r\n"
                   f"POST https://allowed.test:{tls.port}{b}?k={tok} HTTP/1.1\r\n"
                   f"Host: allowed.test:{tls.port}\r\nContent-Length: 0\r\n\r\n")
                  .encode())
        for _ in range(2):
            st, _, body = sbxtest.read_http_response(s)
            assert st == 200, (st, body)
    p.wait_record(event="request", path=b)
    # the connection's close record: written after anything else of its,
    # so no further record of it can come after the reads below
    p.wait_record(event="close", host="allowed.test")
    got = [(q["method"], q["path"]) for q in p.find(event="request")
           if q["path"] in (a, b)]
    assert got == [("GET", a), ("POST", b)], got
    assert tok.encode() not in open(p.audit_path, "rb").read()


def test_plain_http_to_inspected_host_recorded(env, start_proxy, servers):
    """Plain HTTP to an inspected host gets its `request` record too (in
    clear: proto http, not intercepted); a host not inspected gets none."""
    _, plain = servers
    p = _start(env, start_proxy, servers)
    path = "/plain-insp-" + uuid.uuid4().hex
    for host in ("allowed.test", "other.test"):
        with p.forwarder(f"{p.synth(host)}:{plain.port}") as fw:
            r = sbxtest.run(["curl", "--silent", "--max-time", "10", "-w",
                             "%{http_code}", "--connect-to",
                             f"{host}:{plain.port}:127.0.0.1:{fw.port}",
                             f"http://{host}:{plain.port}{path}/{host}?k=v"],
                            timeout=20)
        assert r.stdout.decode().endswith("200"), (host, r.stdout, r.stderr)
    rec = p.wait_record(event="request", path=f"{path}/allowed.test")
    assert rec.get("proto") == "http" and not rec.get("intercepted"), rec
    assert rec.get("port") == plain.port and rec.get("method") == "GET", rec
    assert len([q for q in plain.seen.snapshot() if q["path"].startswith(path)]) == 2
    # other.test's connection is not allowed.test's (another worker, maybe):
    # wait for its own close record, written after anything else of its.
    p.wait_record(event="close", host="other.test")
    assert not p.find(event="request", host="other.test")
