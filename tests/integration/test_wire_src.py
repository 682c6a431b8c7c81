"""The wire header's source extension (parse/wire.h): the guest says which
of its sockets (which container) made a connection; the proxy records it
as "src" on connect and close, and never decides anything by it."""

import subprocess
import uuid

import pytest

import sbxtest
from sbxtest import read_http_response


def _raw(proxy, dest, src, request, timeout=10):
    args = [proxy.env.wire_client, "raw", "--proxy", f"unix:{proxy.sock}",
            "--dest", dest, "--timeout", str(timeout)]
    if src:
        args += ["--src", src]
    return subprocess.run(args, input=request, capture_output=True,
                          timeout=timeout + 5)


def _get(env, path, host="allowed.test"):
    return (f"GET {path} HTTP/1.1\r\nHost: {host}:{env.http.port}\r\n"
            "Connection: close\r\n\r\n").encode()


def _upstream_paths(env, path):
    return [q["path"] for q in env.http.requests.snapshot() if q["path"] == path]


@pytest.mark.parametrize("src", ["172.17.0.2:40000", "[fd00::2]:50000"])
def test_source_recorded_on_connect_and_close(env, proxy, src):
    synth = proxy.synth("allowed.test")
    path = f"/src-{uuid.uuid4().hex}"
    r = _raw(proxy, f"{synth}:{env.http.port}", src, _get(env, path))
    assert r.returncode == 0, r.stderr.decode()
    assert b" 200 " in r.stdout.split(b"\r\n", 1)[0], r.stdout[:200]
    assert _upstream_paths(env, path) == [path], "the request did not reach the server"
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          src=src)
    assert c.get("port") == env.http.port, c
    # The close record describes the connection as its connect did.
    proxy.wait_record(event="close", conn=c.get("conn"), src=src)


def test_header_without_source_still_valid_and_unlabelled(env, proxy):
    synth = proxy.synth("allowed.test")
    path = f"/nosrc-{uuid.uuid4().hex}"
    r = _raw(proxy, f"{synth}:{env.http.port}", None, _get(env, path))
    assert r.returncode == 0, r.stderr.decode()
    assert _upstream_paths(env, path) == [path]
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          port=env.http.port,
                          src=lambda s: s is None)
    recs = [x for x in proxy.audit() if x.get("conn") == c.get("conn")]
    assert recs and all("src" not in x for x in recs), recs


def test_source_grants_nothing(env, start_proxy):
    """A source claiming the host itself (or anything) does not widen the
    policy: an IP literal without a cidr: rule is still refused, and the
    server never sees the request."""
    p = start_proxy(sbxtest.base_policy(env, cidr=False))
    path = f"/liar-{uuid.uuid4().hex}"
    r = _raw(p, f"{sbxtest.UPSTREAM_IP}:{env.http.port}", "127.0.0.1:1",
             _get(env, path))
    assert b" 200 " not in r.stdout.split(b"\r\n", 1)[0], r.stdout[:200]
    assert _upstream_paths(env, path) == [], "a source label opened the way"
    d = p.wait_record(event="connect", decision="deny", port=env.http.port)
    assert d.get("src") == "127.0.0.1:1", d


# The 28-byte TCP header for 127.0.0.1:80 with the source flag, then the
# source extension (wire.h).
_HEAD = "53425857" "01010401" "00500000" "7f000001" + "00" * 12
_SRC4 = "0400" "9c40" "ac110002" + "00" * 12


@pytest.mark.parametrize("case,hexbytes", [
    ("flag_without_extension", _HEAD),
    ("extension_cut_short", _HEAD + _SRC4[:-8]),
    ("bad_source_family", _HEAD + "05" + _SRC4[2:]),
    ("source_port_zero", _HEAD + "04000000" + _SRC4[8:]),
    ("padding_after_ipv4_source", _HEAD + _SRC4[:-2] + "01"),
])
def test_malformed_source_extension_closed(env, proxy, case, hexbytes):
    r = proxy.wire("header", "--hex", hexbytes, "--timeout", "5", timeout=15)
    out = r.stdout.decode()
    assert r.returncode == 0 and out.strip() == "closed after 0 bytes", \
        f"{case}: {out}{r.stderr.decode()}"
    assert proxy.alive(), f"{case}: the proxy died"
    bad = [x for x in proxy.audit() if x.get("event") == "connect"
           and x.get("decision") == "allow"]
    assert not bad, f"{case}: a malformed header led to an allowed connection: {bad}"
