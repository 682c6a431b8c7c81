"""Server-speaks-first protocols (SSH, SMTP, MySQL, FTP): the proxy decides a
silent client's stream by name and port at once and opens the upstream
while waiting, so the server's greeting reaches the client without the old
2 s first-byte wait. The checks stay: whatever the client sends later is
peeked (TLS SNI, HTTP Host) before any byte of it reaches the upstream, and
a denied name or port is refused at once.

Nothing here is timed (the tests run under sanitizers): "at once" is checked
as order. The banner arrives while the client has sent nothing, and a
denied port is refused (the deny record, the closed stream) with no
upstream connection and no byte from the client."""

import socket

import sbxtest
from sbxtest import client_hello, read_http_response, wait_closed


def _policy(env):
    # Server-speaks-first streams are opaque TCP: the rules say so.
    return sbxtest.base_policy(env, extra_allow=(
        f"  - host: git.test\n    ports: [{env.banner.port}]\n"
        f"    protocols: [tcp]\n"
        f"  - host: allowed.test\n    ports: [{env.banner.port}]\n"
        f"    protocols: [tcp]\n"))


def _recv_line(s, timeout=10):
    s.settimeout(timeout)
    got = b""
    while b"\n" not in got:
        d = s.recv(4096)
        if not d:
            break
        got += d
    return got


def _recv_until_closed(s, timeout=10):
    s.settimeout(timeout)
    got = b""
    while True:
        try:
            d = s.recv(4096)
        except ConnectionResetError:
            break
        if not d:
            break
        got += d
    return got


def _tunnel(proxy, target):
    s = socket.create_connection(("127.0.0.1", proxy.http_port), timeout=10)
    s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(1)
        assert d, "proxy closed before answering CONNECT"
        buf += d
    assert buf.startswith(b"HTTP/1.1 200"), buf
    return s


def _check_late_refusal(p, why, **match):
    """After the banner the stream was opaque, allowed by name and port
    (the connect record); the late peek's refusal ends it (the close
    record)."""
    d = p.wait_record(event="close", decision="deny", host="allowed.test",
                      **match)
    assert why in d.get("reason", ""), d
    assert d.get("bytes_up") == 0, d
    c = p.find(event="connect", conn=d["conn"])
    assert len(c) == 1, c
    assert c[0].get("decision") == "allow" and c[0].get("proto") == "tcp", c


def test_wire_banner_arrives_at_once(env, start_proxy):
    p = start_proxy(_policy(env))
    synth = p.synth("git.test")
    with p.forwarder(f"{synth}:{env.banner.port}") as fw:
        s = fw.connect()
        # The client is silent: the banner can only come from an upstream
        # the proxy connected for a client that has not spoken.
        banner = _recv_line(s)
        assert banner == sbxtest.BannerServer.BANNER, banner
        s.sendall(b"ping\n")
        assert _recv_line(s) == b"echo:ping\n"
        s.close()
    c = p.wait_record(event="connect", host="git.test", port=env.banner.port)
    assert c.get("decision") == "allow", c
    assert c.get("proto") == "tcp", c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c
    assert c.get("rule") == p.rule("host: git.test"), c
    cl = p.wait_record(event="close", conn=c["conn"])
    assert cl.get("bytes_up") == 5, cl
    assert cl.get("bytes_down") == len(sbxtest.BannerServer.BANNER) + 10, cl
    assert len(p.find(event="connect", conn=c["conn"])) == 1


def test_connect_banner_arrives_at_once(env, start_proxy):
    p = start_proxy(_policy(env))
    s = _tunnel(p, f"git.test:{env.banner.port}")
    banner = _recv_line(s)
    assert banner == sbxtest.BannerServer.BANNER, banner
    s.sendall(b"EHLO client.example\r\n")
    assert _recv_line(s) == b"echo:EHLO client.example\r\n"
    s.close()
    c = p.wait_record(event="connect", host="git.test", port=env.banner.port)
    assert c.get("decision") == "allow" and c.get("proto") == "tcp", c


def test_wire_sni_mismatch_after_banner_refused(env, start_proxy):
    p = start_proxy(_policy(env))
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{env.banner.port}") as fw:
        s = fw.connect()
        assert _recv_line(s) == sbxtest.BannerServer.BANNER
        s.sendall(client_hello("other.test"))
        rest = _recv_until_closed(s)
        s.close()
    # The banner server echoes whatever reaches it.
    assert b"echo:" not in rest, f"the ClientHello reached the server: {rest!r}"
    _check_late_refusal(p, "SNI names 'other.test'", sni="other.test")


def test_connect_sni_mismatch_after_banner_refused(env, start_proxy):
    p = start_proxy(_policy(env))
    s = _tunnel(p, f"allowed.test:{env.banner.port}")
    assert _recv_line(s) == sbxtest.BannerServer.BANNER
    s.sendall(client_hello("other.test"))
    rest = _recv_until_closed(s)
    s.close()
    assert b"echo:" not in rest, f"the ClientHello reached the server: {rest!r}"
    _check_late_refusal(p, "SNI names 'other.test'", sni="other.test")


def test_wire_host_mismatch_after_banner_refused(env, start_proxy):
    p = start_proxy(_policy(env))
    synth = p.synth("allowed.test")
    with p.forwarder(f"{synth}:{env.banner.port}") as fw:
        s = fw.connect()
        assert _recv_line(s) == sbxtest.BannerServer.BANNER
        s.sendall(f"GET / HTTP/1.1\r\nHost: other.test:{env.banner.port}\r\n"
                  "\r\n".encode())
        rest = _recv_until_closed(s)
        s.close()
    assert b"echo:" not in rest, f"the request reached the server: {rest!r}"
    assert rest.startswith(b"HTTP/1.1 403"), rest
    assert b"other.test" in rest, rest
    _check_late_refusal(p, "Host names 'other.test'")


def test_client_first_after_early_connect_still_peeked(env, start_proxy):
    """A client that pauses (so the upstream is already connected) and
    then speaks first still gets the normal peek, and the record names
    its protocol and SNI."""
    p = start_proxy(_policy(env))
    synth = p.synth("allowed.test")
    before = len(env.tls.snis.snapshot())

    def upstream_connected(accepted):
        # The event that the client "paused": the origin accepted the
        # proxy's connection while the client had sent nothing.
        sbxtest.wait_until(lambda: len(env.tls.accepted.snapshot()) > accepted,
                           10, what="the proxy to connect the upstream")
    with p.forwarder(f"{synth}:{env.tls.port}") as fw:
        accepted = len(env.tls.accepted.snapshot())
        s = fw.connect()
        upstream_connected(accepted)
        s.sendall(client_hello("other.test"))
        assert wait_closed(s, 10) is not None, "connection stayed open"
        s.close()
        d = p.wait_record(event="connect", decision="deny", sni="other.test")
        assert d.get("proto") == "tls" and d.get("host") == "allowed.test", d
        # the origin's view, once the connection is closed and served to its end
        p.wait_record(event="close", conn=d["conn"])
        env.tls.quiet(accepted)
        assert "other.test" not in env.tls.snis.snapshot()[before:]

        accepted = len(env.tls.accepted.snapshot())
        s = fw.connect()
        upstream_connected(accepted)
        s.sendall(client_hello("allowed.test"))
        s.settimeout(10)
        assert s.recv(1) == b"\x16", "no ServerHello"
        s.close()
    c = p.wait_record(event="connect", decision="allow", sni="allowed.test")
    assert c.get("proto") == "tls" and c.get("host") == "allowed.test", c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c


def test_denied_port_refused_at_once(env, start_proxy):
    p = start_proxy(_policy(env))
    synth = p.synth("git.test")
    before = len(env.banner2.accepted.snapshot())
    with p.forwarder(f"{synth}:{env.banner2.port}") as fw:
        s = fw.connect()
        # Silent client: the stream is refused (closed) without it ever
        # speaking, so the decision did not wait for a first byte.
        got = _recv_until_closed(s)
        s.close()
    assert got == b"", got
    d = p.wait_record(event="connect", host="git.test", decision="deny",
                      port=env.banner2.port)
    assert d.get("rule") == "default", d
    assert not d.get("addr"), d
    p.wait_record(event="close", conn=d["conn"])
    env.banner2.sync()  # every connection made to it so far is recorded
    assert len(env.banner2.accepted.snapshot()) == before, \
        "a denied port reached the server"


def test_denied_port_http_client_still_gets_403(env, start_proxy):
    """Decided at once, but an HTTP client that speaks right after the
    stream opens still gets a readable 403, not a bare close."""
    p = start_proxy(_policy(env))
    synth = p.synth("git.test")  # allowed on the banner port only
    before, mark = len(env.http.requests.snapshot()), env.http.mark()
    with p.forwarder(f"{synth}:{env.http.port}") as fw:
        s = fw.connect()
        s.sendall(f"GET / HTTP/1.1\r\nHost: git.test:{env.http.port}\r\n"
                  "\r\n".encode())
        status, _, body = read_http_response(s)
        s.close()
    assert status == 403, (status, body)
    assert b"git.test" in body and b"to change:" in body, body
    d = p.wait_record(event="connect", host="git.test", decision="deny",
                      port=env.http.port)
    assert d.get("rule") == "default", d
    p.wait_record(event="close", conn=d["conn"])
    env.http.quiet(mark)
    assert len(env.http.requests.snapshot()) == before
