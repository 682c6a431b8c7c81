"""Review regression: a client that stays silent until the proxy has
connected its upstream must not get an unchecked tunnel.

The proxy no longer has a first-byte timeout. A silent client is decided by
name and port at once, and an allowed upstream is connected while the
client says nothing (server-speaks-first protocols, state WAIT_FIRST); the
client's first bytes, whenever they come, still pass the same checks (the
late peek). Attack: CONNECT to (or resolve) an allowed name, wait until the
upstream connection exists (the origin server has accepted it: the event
these tests wait on, instead of a fixed sleep), then send a ClientHello
whose SNI names another host on the same address (domain fronting on a
shared CDN IP) or a plain HTTP request with another Host. The oracle is the
origin server: what it saw (SNIs, request paths), not only the proxy's
answer. No test here waits on a clock: the old 2.6 s wait for a first-byte
timeout went with the timeout."""

import socket
import time

import sbxtest
from sbxtest import client_hello, read_http_response, wait_closed


def _connect_tunnel(proxy, target):
    s = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        assert d, "proxy closed before answering CONNECT"
        buf += d
    assert buf.startswith(b"HTTP/1.1 200"), buf
    return s


def _upstream_connected(server, before):
    """Wait until server accepted a connection after the count before: the
    proxy connected the upstream for a client that has not spoken."""
    sbxtest.wait_until(lambda: len(server.accepted.snapshot()) > before, 10,
                       what="the proxy to connect the upstream")


def test_connect_late_clienthello_with_other_sni_denied(env, proxy):
    before = len(env.tls.snis.snapshot())
    accepted = len(env.tls.accepted.snapshot())
    s = _connect_tunnel(proxy, f"allowed.test:{env.tls.port}")
    _upstream_connected(env.tls, accepted)
    s.sendall(client_hello("other.test"))
    assert wait_closed(s, 10) is not None, "tunnel stayed open"
    s.close()
    d = proxy.wait_record(decision="deny", sni="other.test")
    assert d.get("host") == "allowed.test", d
    # the origin's view is complete once the connection is closed on both
    # sides (its close record) and the origin has served it to its end
    proxy.wait_record(event="close", conn=d["conn"])
    env.tls.quiet(accepted)
    assert "other.test" not in env.tls.snis.snapshot()[before:], \
        "a late ClientHello with another SNI reached the server"


def test_connect_late_clienthello_with_same_sni_allowed(env, proxy):
    before = len(env.tls.snis.snapshot())
    accepted = len(env.tls.accepted.snapshot())
    s = _connect_tunnel(proxy, f"allowed.test:{env.tls.port}")
    _upstream_connected(env.tls, accepted)
    s.sendall(client_hello("allowed.test"))
    s.settimeout(10)
    assert s.recv(1) == b"\x16", "no ServerHello through the tunnel"
    s.close()
    sbxtest.wait_until(
        lambda: "allowed.test" in env.tls.snis.snapshot()[before:], 5,
        what="the server saw the ClientHello")


def test_transparent_late_clienthello_with_other_sni_denied(env, proxy):
    synth = proxy.synth("allowed.test")
    before = len(env.tls.snis.snapshot())
    accepted = len(env.tls.accepted.snapshot())
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw:
        s = fw.connect()
        _upstream_connected(env.tls, accepted)
        s.sendall(client_hello("other.test"))
        assert wait_closed(s, 10) is not None, "connection stayed open"
        s.close()
    d = proxy.wait_record(decision="deny", sni="other.test")
    proxy.wait_record(event="close", conn=d["conn"])
    env.tls.quiet(accepted)
    assert "other.test" not in env.tls.snis.snapshot()[before:], \
        "a late ClientHello with another SNI reached the server"


def test_transparent_late_http_with_other_host_denied(env, proxy):
    synth = proxy.synth("allowed.test")
    accepted = len(env.http.accepted.snapshot())
    with proxy.forwarder(f"{synth}:{env.http.port}") as fw:
        s = fw.connect()
        _upstream_connected(env.http, accepted)
        s.sendall(f"GET /late HTTP/1.1\r\nHost: other.test:{env.http.port}\r\n"
                  "\r\n".encode())
        status, _, body = read_http_response(s)
        s.close()
    assert status == 403, (status, body)
    assert b"other.test" in body, body
    # The upstream's own view: the request never reached it (complete once
    # the proxy closed the connection and the origin served it to its end).
    proxy.wait_record(event="close", port=env.http.port)
    env.http.quiet(accepted)
    assert not [r for r in env.http.requests.snapshot() if r["path"] == "/late"], \
        "a late request with another Host reached the origin"


def test_late_smtp_like_line_still_relayed(env, proxy):
    """The server-speaks-first path still serves protocols whose client
    lines start like an HTTP method ("EHLO x")."""
    with proxy.forwarder(f"{sbxtest.UPSTREAM_IP}:{env.banner.port}") as fw:
        s = fw.connect()
        s.settimeout(10)
        # The banner arriving is the event: the upstream is connected and
        # has spoken, so the client's line below comes late, after it.
        greeting = s.recv(4096)
        assert greeting.startswith(sbxtest.BannerServer.BANNER[:8]), \
            f"no banner through the proxy: {greeting!r}"
        s.sendall(b"EHLO client.example\r\n")
        got = b""
        t0 = time.monotonic()
        while b"EHLO" not in got and time.monotonic() - t0 < 10:
            d = s.recv(4096)
            if not d:
                break
            got += d
        s.close()
    assert b"EHLO client.example" in got, (greeting, got)
