"""The wire header's source extension (parse/wire.h): the guest says which
of its sockets (which container) made a connection; the proxy records it
as "src" on connect and close, and never decides anything by it. The
container extension after it names the Docker container ("container",
"container_id"), a claim too; sandbox-audit summary lists the names."""

import json
import os
import subprocess
import uuid

import pytest

import sbxtest
from sbxtest import read_http_response


def _raw(proxy, dest, src, request, timeout=10, ctr=None, ctr_id=None):
    args = [proxy.env.wire_client, "raw", "--proxy", f"unix:{proxy.sock}",
            "--dest", dest, "--timeout", str(timeout)]
    if src:
        args += ["--src", src]
    if ctr:
        args += ["--container", ctr]
    if ctr_id:
        args += ["--container-id", ctr_id]
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
    # the close record, the connection's last: then all of them are read
    proxy.wait_record(event="close", conn=c.get("conn"))
    recs = [x for x in proxy.audit() if x.get("conn") == c.get("conn")]
    assert recs and all("src" not in x for x in recs), recs


def test_source_grants_nothing(env, start_proxy):
    """A source claiming the host itself (or anything) does not widen the
    policy: an IP literal without a cidr: rule is still refused, and the
    server never sees the request."""
    p = start_proxy(sbxtest.base_policy(env, cidr=False))
    path = f"/liar-{uuid.uuid4().hex}"
    mark = env.http.mark()
    r = _raw(p, f"{sbxtest.UPSTREAM_IP}:{env.http.port}", "127.0.0.1:1",
             _get(env, path))
    assert b" 200 " not in r.stdout.split(b"\r\n", 1)[0], r.stdout[:200]
    d = p.wait_record(event="connect", decision="deny", port=env.http.port)
    assert d.get("src") == "127.0.0.1:1", d
    # the origin's view, once the connection is closed and served to its end
    p.wait_record(event="close", conn=d["conn"])
    env.http.quiet(mark)
    assert _upstream_paths(env, path) == [], "a source label opened the way"


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
    # The stream's close record, written after anything else of its: an
    # allow it led to would be on record by then.
    proxy.wait_record(event="close", reason=lambda r: r and (
        "bad wire header" in r or "before a complete header" in r))
    bad = [x for x in proxy.audit() if x.get("event") == "connect"
           and x.get("decision") == "allow"]
    assert not bad, f"{case}: a malformed header led to an allowed connection: {bad}"


def test_container_recorded_on_connect_and_close_and_summarised(env, proxy):
    synth = proxy.synth("allowed.test")
    path = f"/ctr-{uuid.uuid4().hex}"
    r = _raw(proxy, f"{synth}:{env.http.port}", "172.17.0.3:41000",
             _get(env, path), ctr="web_1.x-y", ctr_id="0123456789ab")
    assert r.returncode == 0, r.stderr.decode()
    assert _upstream_paths(env, path) == [path]
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          src="172.17.0.3:41000", container="web_1.x-y")
    assert c.get("container_id") == "0123456789ab", c
    cl = proxy.wait_record(event="close", conn=c.get("conn"))
    assert cl.get("container") == "web_1.x-y", cl
    assert cl.get("container_id") == "0123456789ab", cl
    # A name alone (no id) is fine too.
    r = _raw(proxy, f"{synth}:{env.http.port}", "172.17.0.4:41000",
             _get(env, path + "-2"), ctr="db")
    assert r.returncode == 0, r.stderr.decode()
    d = proxy.wait_record(event="connect", src="172.17.0.4:41000",
                          container="db")
    assert "container_id" not in d, d

    s = subprocess.run([os.path.join(env.build, "bin", "sandbox-audit"), "summary", "--json", "--host",
                        "allowed.test", proxy.audit_path],
                       capture_output=True, timeout=30)
    assert s.returncode == 0, s.stderr.decode()
    rows = [json.loads(x) for x in s.stdout.splitlines()]
    assert rows and set(rows[0]["container"]) == {"web_1.x-y", "db"}, rows
    t = subprocess.run([os.path.join(env.build, "bin", "sandbox-audit"), "summary", "--host", "allowed.test",
                        proxy.audit_path], capture_output=True, timeout=30)
    line = t.stdout.decode().splitlines()[1]
    assert line.split()[-1] in ("container=web_1.x-y,db", "container=db,web_1.x-y"), t.stdout


def test_container_grants_nothing(env, start_proxy):
    """A container label (any name) does not widen the policy either."""
    p = start_proxy(sbxtest.base_policy(env, cidr=False))
    path = f"/ctrliar-{uuid.uuid4().hex}"
    mark = env.http.mark()
    r = _raw(p, f"{sbxtest.UPSTREAM_IP}:{env.http.port}", "172.17.0.9:1",
             _get(env, path), ctr="host", ctr_id="00")
    assert b" 200 " not in r.stdout.split(b"\r\n", 1)[0], r.stdout[:200]
    d = p.wait_record(event="connect", decision="deny", port=env.http.port)
    assert d.get("container") == "host", d
    p.wait_record(event="close", conn=d["conn"])
    env.http.quiet(mark)
    assert _upstream_paths(env, path) == [], "a container label opened the way"


# The container extension after the source (wire.h): id length, name
# length, id, name.
_HEAD_CTR = "53425857" "01010403" "00500000" "7f000001" + "00" * 12


@pytest.mark.parametrize("case,hexbytes", [
    ("container_flag_without_source", "53425857" "01010402" "00500000"
     "7f000001" + "00" * 12 + "0001" + "61"),
    ("container_both_empty", _HEAD_CTR + _SRC4 + "0000"),
    ("container_cut_short", _HEAD_CTR + _SRC4 + "0005" + "6162"),
    ("container_name_too_long", _HEAD_CTR + _SRC4 + "0041" + "61" * 65),
    ("container_name_quote", _HEAD_CTR + _SRC4 + "0003" + "612262"),
    ("container_name_escape", _HEAD_CTR + _SRC4 + "0003" + "611b62"),
    ("container_name_newline", _HEAD_CTR + _SRC4 + "0003" + "610a62"),
    ("container_id_not_hex", _HEAD_CTR + _SRC4 + "0201" + "7a7a" + "61"),
])
def test_malformed_container_extension_closed(env, proxy, case, hexbytes):
    r = proxy.wire("header", "--hex", hexbytes, "--timeout", "5", timeout=15)
    out = r.stdout.decode()
    assert r.returncode == 0 and out.strip() == "closed after 0 bytes", \
        f"{case}: {out}{r.stderr.decode()}"
    assert proxy.alive(), f"{case}: the proxy died"
    # The stream's close record says why, and is written after anything
    # else of its: a connection it led to would be on record by then.
    proxy.wait_record(event="close", reason=lambda r: r and (
        "bad container extension" in r or "before a complete header" in r))
    recs = proxy.audit()
    bad = [x for x in recs if x.get("event") == "connect" or "container" in x]
    assert not bad, f"{case}: a malformed header led to a connection: {bad}"
