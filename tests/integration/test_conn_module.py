"""The connection module's own edges (docs/design.md, "The proxy's
connection module"): a connect that fails at once.

Two ways. The kernel's: a TCP connect to 127.255.255.255, the broadcast
address of the loopback /8 (the kernel's local table has a broadcast
route for it on lo), is refused by the route lookup with ENETUNREACH
before anything is sent, and libevent 2.1.12 returns the failure from
bufferevent_socket_connect(). It stays on loopback (the network rule) and
needs no shim. The newer libevent's: a
preload shim (tests/preload/sync_connect_fail.c) runs the event callback
from inside the call, before it returns, which 2.1.12 never does."""

import json
import errno
import os
import socket
import subprocess

import sbxtest
from sbxtest import curl, http_exchange

BROADCAST = "127.255.255.255"


def _kernel_refuses_at_once():
    """The premise, checked rather than assumed: a non-blocking connect to
    the loopback broadcast fails inside connect() with ENETUNREACH (not
    EINPROGRESS), so the proxy meets the synchronous failure path."""
    with socket.socket() as s:
        s.setblocking(False)
        return s.connect_ex((BROADCAST, 9))


def _policy(env):
    return sbxtest.base_policy(
        env, extra_allow=f"  - cidr: {BROADCAST}/32\n    ports: [{env.http.port}]\n")


def _closes(p, conn):
    return [r for r in p.audit() if r.get("event") == "close" and r.get("conn") == conn]


def _still_serves(env, p, after):
    """A later connection is served; returns once its close record is
    written, which comes after any record queued while connection `after`
    was being torn down (the writer appends in queue order)."""
    r = curl(env, "-x", p.http_proxy_url(), "-w", "\n%{http_code}",
             f"https://allowed.test:{env.tls.port}/after")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().rpartition("\n")[2] == "200"
    p.wait_record(event="close", host="allowed.test", decision="allow",
                  conn=lambda c: c is not None and c > after)


def test_loopback_broadcast_is_refused_by_the_kernel_at_once():
    assert _kernel_refuses_at_once() == errno.ENETUNREACH, \
        f"connect({BROADCAST}) did not fail at once; lo lacks its broadcast route?"


def test_connect_failing_at_once_is_a_502_then_one_close(env, start_proxy):
    p = start_proxy(_policy(env))
    target = f"{BROADCAST}:{env.http.port}"
    status, _, body = http_exchange(
        p.http_port, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    assert status == 502, (status, body)
    assert f"cannot connect to {target}" in body.decode(errors="replace"), body
    c = p.wait_record(event="connect", host=BROADCAST, port=env.http.port)
    # Unreachable is not a policy verdict: the record keeps the allow.
    assert c.get("decision") == "allow", c
    assert "unreachable" in (c.get("reason") or "").lower(), c
    close = p.wait_record(event="close", conn=c["conn"])
    assert close.get("bytes_up", 0) == 0, close
    # The proxy goes on (no state left behind), then the close record is
    # still the only one for that connection.
    _still_serves(env, p, c["conn"])
    assert len(_closes(p, c["conn"])) == 1, json.dumps(_closes(p, c["conn"]))
    assert p.alive()


def test_transparent_connect_failing_at_once_answers_the_request(env, start_proxy):
    """The same over a guest stream by address: the request is checked,
    the address decided by its cidr: rule, the connect fails at once and
    the client gets a 502 in HTTP."""
    p = start_proxy(_policy(env))
    req = (f"GET /x HTTP/1.1\r\nHost: {BROADCAST}:{env.http.port}\r\n"
           "Connection: close\r\n\r\n").encode()
    r = subprocess.run(
        [env.wire_client, "raw", "--proxy", f"unix:{p.sock}",
         "--dest", f"{BROADCAST}:{env.http.port}", "--timeout", "10"],
        input=req, capture_output=True, timeout=20)
    out = r.stdout.decode(errors="replace")
    assert out.startswith("HTTP/1.1 502"), (out, r.stderr.decode())
    c = p.wait_record(event="connect", host=BROADCAST, port=env.http.port)
    assert c.get("decision") == "allow" and "unreachable" in c.get("reason", "").lower(), c
    p.wait_record(event="close", conn=c["conn"])
    _still_serves(env, p, c["conn"])
    assert len(_closes(p, c["conn"])) == 1


def test_connect_failure_reported_inside_the_call(env, start_proxy, monkeypatch):
    """libevent reports the failure before bufferevent_socket_connect()
    returns: the proxy finishes the attempt it was making, then refuses
    with a 502 naming the error, once, and goes on serving."""
    shim = os.path.join(env.build, "tools", "sync_connect_fail.so")
    assert os.path.exists(shim), "build it with `make tests-build`"
    monkeypatch.setenv("LD_PRELOAD", shim)
    monkeypatch.setenv("SBX_SYNC_FAIL_ADDR", sbxtest.UPSTREAM_IP)
    # The shim comes before the sanitizer runtime in the library list.
    monkeypatch.setenv("ASAN_OPTIONS", ":".join(filter(None, [
        os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0"])))
    p = start_proxy(_policy(env))
    monkeypatch.undo()
    before = len(env.tls.snis.snapshot())
    target = f"allowed.test:{env.tls.port}"
    status, _, body = http_exchange(
        p.http_port, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    text = body.decode(errors="replace")
    assert status == 502, (status, text)
    assert f"{sbxtest.UPSTREAM_IP}: Connection refused" in text, text
    assert len(env.tls.snis.snapshot()) == before, "the upstream was reached"
    c = p.wait_record(event="connect", host="allowed.test", port=env.tls.port)
    assert c.get("decision") == "allow" and "refused" in c.get("reason", ""), c
    p.wait_record(event="close", conn=c["conn"])
    # Again over a guest stream, then the proxy still answers DNS.
    req = f"GET / HTTP/1.1\r\nHost: allowed.test:{env.http.port}\r\n\r\n".encode()
    with p.forwarder(f"{p.synth('allowed.test')}:{env.http.port}") as fw:
        with fw.connect() as s:
            s.sendall(req)
            st, _, _ = sbxtest.read_http_response(s)
    assert st == 502, st
    assert p.dns("allowed.test")[0] == "NOERROR"
    # the two later DNS streams' close records (synth's and this one's):
    # written after anything queued while the first connection ended
    p.wait_count(2, event="close", proto="dns",
                 conn=lambda x: x is not None and x > c["conn"])
    assert len(_closes(p, c["conn"])) == 1
    assert p.alive()
