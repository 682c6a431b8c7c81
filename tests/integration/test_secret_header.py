"""A secret's header: (policy `header:`/`format:`, docs/secrets.md): the
proxy sets that header on every request to the secret's hosts, rendered
from the format with the real value, whether or not the guest sent a
placeholder, and a guest line of that name never reaches the server beside
it. The recording HTTPS server (test_secrets.RecordingTLS) is the oracle:
what it saw is what left the host. Attacks of a hostile guest on the
header: any case, repeated, split over writes, pipelined, after a
100-continue, HTTP/2 prior knowledge."""

import os
import socket
import ssl
import subprocess
import uuid

import pytest

import sbxtest
import test_secrets as ts

VALUE = ts.VALUE
PH = ts.PH
OTHER_VALUE = ts.OTHER_VALUE
# TESTKEY sets "Authorization: token VALUE" on allowed.test; OTHERKEY
# (git.test, intercepted) sets none.
SECRETS = (f"TESTKEY {PH} {VALUE} allowed.test Authorization token {{value}}\n"
           f"OTHERKEY {ts.OTHER_PH} {OTHER_VALUE} git.test\n")
WANT = f"token {VALUE}"


@pytest.fixture(scope="module")
def servers(env):
    yield from ts.recording_servers(env)


def _proxy(env, start_proxy, servers):
    return ts._start(env, start_proxy, servers, secrets=SECRETS)


def _tls(p, fw, name="allowed.test"):
    ctx = ssl.create_default_context(cafile=p.ca)
    return ctx.wrap_socket(fw.connect(), server_hostname=name)


def _read_until(s, needles):
    s.settimeout(10)
    buf = b""
    while not all(n in buf for n in needles):
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf


def _seen(tls, path):
    return [q for q in tls.seen.snapshot() if q["path"] == path]


def test_header_set_without_placeholder(env, start_proxy, servers):
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = ts._curl(p, fw.port, "allowed.test", tls.port)
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    assert ts._hdr(req, "Authorization") == [WANT], req
    rec = p.wait_record(event="intercept", secret="TESTKEY", decision="allow")
    assert rec.get("intercepted") is True, rec
    assert "header set" in rec.get("reason", ""), rec
    ts._no_value_anywhere(p, "allowed.test")


def test_guest_header_replaced_in_any_case_and_repeat(env, start_proxy, servers):
    """The guest's own lines of that name (any case, several, with or
    without the placeholder) are dropped: exactly one, the proxy's."""
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    path = "/case-" + uuid.uuid4().hex
    with p.forwarder(f"{synth}:{tls.port}") as fw, _tls(p, fw) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
                  f"authorization: Bearer guest-chosen\r\n"
                  f"AUTHORIZATION: Bearer {PH}\r\n"
                  f"Authorization: token {PH}\r\n"
                  f"X-Other: kept\r\n\r\n".encode())
        st, _, body = sbxtest.read_http_response(s)
    assert st == 200, (st, body)
    req = _seen(tls, path)
    assert len(req) == 1, req
    assert ts._hdr(req[0], "Authorization") == [WANT], req
    assert ts._hdr(req[0], "X-Other") == ["kept"], req
    assert "guest-chosen" not in repr(req) and PH not in repr(req)


def test_head_split_over_writes_and_pipelined(env, start_proxy, servers):
    """A head written a few bytes at a time (split inside the header's
    name) and two pipelined requests in one write: each request gets the
    header once."""
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    a, b, c = ("/split-" + uuid.uuid4().hex, "/pipe1-" + uuid.uuid4().hex,
               "/pipe2-" + uuid.uuid4().hex)
    head = (f"GET {a} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
            f"Authoriz").encode()
    rest = b"ation: Bearer guest\r\n\r\n"
    with p.forwarder(f"{synth}:{tls.port}") as fw, _tls(p, fw) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(head), 7):
            s.sendall(head[i:i + 7])
        s.sendall(rest)
        got = _read_until(s, [f"ok {a}".encode()])
        assert f"ok {a}".encode() in got, got
        two = b"".join(
            (f"GET {q} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
             f"Authorization: Bearer {PH}\r\n\r\n").encode() for q in (b, c))
        s.sendall(two)
        got = _read_until(s, [f"ok {b}".encode(), f"ok {c}".encode()])
        assert f"ok {c}".encode() in got, got
    for q in (a, b, c):
        req = _seen(tls, q)
        assert len(req) == 1 and ts._hdr(req[0], "Authorization") == [WANT], req


def test_after_100_continue_body_untouched_next_head_set(env, start_proxy, servers):
    """A body sent after the server's 100 Continue is a body: a header-like
    line in it is not rewritten (the placeholder stays a placeholder), and
    the next request on the connection gets the header again."""
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    a, b = "/cont-" + uuid.uuid4().hex, "/after-" + uuid.uuid4().hex
    body = f"Authorization: Bearer {PH}\r\n\r\n".encode()
    with p.forwarder(f"{synth}:{tls.port}") as fw, _tls(p, fw) as s:
        s.sendall(f"POST {a} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
                  f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
                  .encode())
        got = _read_until(s, [b"100 Continue\r\n\r\n"])
        assert b" 100 " in got, got
        s.sendall(body)
        got = _read_until(s, [f"ok {a}".encode()])
        assert f"ok {a}".encode() in got, got
        s.sendall(f"GET {b} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n\r\n"
                  .encode())
        got = _read_until(s, [f"ok {b}".encode()])
        assert f"ok {b}".encode() in got, got
    ra, rb = _seen(tls, a), _seen(tls, b)
    assert len(ra) == 1 and ts._hdr(ra[0], "Authorization") == [WANT], ra
    assert ra[0]["body"] == body, ra
    assert len(rb) == 1 and ts._hdr(rb[0], "Authorization") == [WANT], rb


def test_http2_prior_knowledge_refused(env, start_proxy, servers):
    """HTTP/2 with prior knowledge to an intercepted host would carry
    headers the rewriter does not read: refused, nothing reaches the
    server."""
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("allowed.test")
    before, mark = len(tls.seen.snapshot()), tls.mark()
    with p.forwarder(f"{synth}:{tls.port}") as fw, _tls(p, fw) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 9)
        st, _, body = sbxtest.read_http_response(s)
    assert st == 400, (st, body)
    rec = p.wait_record(event="intercept", decision="deny")
    assert "HTTP/2" in rec.get("reason", ""), rec
    p.wait_record(event="close", host="allowed.test")  # both sides closed
    tls.quiet(mark)
    assert tls.seen.snapshot()[before:] == []


def test_header_only_on_its_hosts(env, start_proxy, servers):
    """git.test is intercepted for OTHERKEY, which sets no header: the
    request reaches it with the guest's Authorization as sent, never
    TESTKEY's value."""
    tls, _ = servers
    p = _proxy(env, start_proxy, servers)
    synth = p.synth("git.test")
    with p.forwarder(f"{synth}:{tls.port}") as fw:
        r = ts._curl(p, fw.port, "git.test", tls.port,
                     "-H", "Authorization: Bearer mine")
    assert r.returncode == 0, r.stderr.decode()
    req = tls.seen.snapshot()[-1]
    assert req["sni"] in (None, "git.test")
    assert ts._hdr(req, "Authorization") == ["Bearer mine"], req
    assert VALUE not in repr(tls.seen.snapshot()[-1])
    ts._no_value_anywhere(p, "git.test")


@pytest.mark.parametrize("line,needle", [
    (f"TESTKEY {PH} {VALUE} allowed.test Authorization\n", "want HEADER FORMAT"),
    (f"TESTKEY {PH} {VALUE} allowed.test Authorization token\n", "exactly one {value}"),
    (f"TESTKEY {PH} {VALUE} allowed.test Author:ization {{value}}\n", "want HEADER FORMAT"),
    (f"TESTKEY {PH} {VALUE} allowed.test X {{value}}{{value}}\n", "want HEADER FORMAT"),
    (f"TESTKEY {PH} {VALUE} allowed.test X a{{value}}}}\n", "want HEADER FORMAT"),
    (f"TESTKEY {PH} {VALUE} allowed.test X {{value}}\n"
     f"OTHERKEY {ts.OTHER_PH} {OTHER_VALUE} git.test,allowed.test x {{value}}\n",
     "sets header"),
])
def test_bad_header_input_refused(env, servers, line, needle):
    tls, plain = servers
    r, w = os.pipe()
    os.write(w, line.encode())
    os.close(w)
    pol = os.path.join(env.workdir, f"badh-{uuid.uuid4().hex[:6]}.yaml")
    with open(pol, "w") as f:
        f.write(ts._policy(tls, plain))
    res = subprocess.run([env.proxy_bin, "--policy", pol, "--audit", "-",
                          "--secrets-fd", str(r), "--listen",
                          f"tcp:127.0.0.1:{sbxtest.free_port()}"],
                         pass_fds=(r,), capture_output=True, timeout=20)
    os.close(r)
    err = res.stderr.decode()
    assert res.returncode != 0 and needle in err, err
    assert VALUE not in err and OTHER_VALUE not in err
