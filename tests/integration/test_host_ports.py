"""Host services by port (--host-port, host_ports:): the guest reaches the
host's loopback on exactly the listed ports under the one name
host.sandbox.internal, through the transparent path (DNS, then the wire
header) and the explicit proxy. Any other port is refused and audited, and
the other host server never sees a connection; neither an address literal
nor another name, nor a host rule for the name itself, opens loopback."""

import pytest

import sbxtest
from sbxtest import curl, read_http_response

NAME = "host.sandbox.internal"


@pytest.fixture
def servers():
    a = sbxtest.OriginServer("127.0.0.1")
    b = sbxtest.OriginServer("127.0.0.1")
    yield a, b
    for s in (a, b):
        s.shutdown()
        s.server_close()


def _policy(env, extra=""):
    return sbxtest.base_policy(env) + extra


def _get_via_wire(p, port, path):
    addr = p.synth(NAME)
    with p.forwarder(f"{addr}:{port}") as fw, fw.connect() as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: {NAME}:{port}\r\n"
                  "Connection: close\r\n\r\n".encode())
        return read_http_response(c)


def test_listed_port_reached_other_refused(env, start_proxy, servers):
    ok_srv, other = servers
    p = start_proxy(_policy(env), args=["--host-port", str(ok_srv.port)])
    status, _, body = _get_via_wire(p, ok_srv.port, "/via-wire")
    assert status == 200 and b"path=/via-wire" in body
    r = curl(env, "-x", p.http_proxy_url(), f"http://{NAME}:{ok_srv.port}/via-proxy")
    assert r.returncode == 0 and b"path=/via-proxy" in r.stdout, r.stderr
    assert [q["path"] for q in ok_srv.requests.snapshot()] == ["/via-wire", "/via-proxy"]
    rec = p.wait_record(event="connect", host=NAME, port=ok_srv.port,
                        decision="allow")
    assert rec["rule"] == "--host-port"
    p.wait_record(event="close", host=NAME, port=ok_srv.port,
                  addr="127.0.0.1")

    # Another live host port: refused, audited, and it never sees us.
    status, _, _ = _get_via_wire(p, other.port, "/no")
    assert status != 200
    r = curl(env, "-x", p.http_proxy_url(), f"http://{NAME}:{other.port}/no")
    assert b"path=/no" not in r.stdout
    # The refusal says the way out, not "edit that rule".
    assert f"open it with --host-port {other.port}".encode() in r.stdout, r.stdout
    p.wait_count(2, event="close", host=NAME, port=other.port)
    other.quiet(0)  # every connection it got was served to its end
    assert other.accepted.snapshot() == [] and other.requests.snapshot() == []


def test_policy_file_host_ports(env, start_proxy, servers):
    ok_srv, other = servers
    p = start_proxy(_policy(env, f"host_ports: [{ok_srv.port}]\n"))
    status, _, body = _get_via_wire(p, ok_srv.port, "/file")
    assert status == 200 and b"path=/file" in body
    rec = p.wait_record(event="connect", host=NAME, decision="allow")
    assert rec["rule"].startswith(p.policy + ":")
    p.wait_record(event="close", conn=rec["conn"])
    other.quiet(0)
    assert other.accepted.snapshot() == []


def test_no_other_way_to_the_host_loopback(env, start_proxy, servers):
    """The exception belongs to the name and the listed port: not to a
    host rule for the name, an address literal, or another name that
    resolves to loopback."""
    ok_srv, other = servers
    loop_srv = sbxtest.OriginServer("127.0.0.2")  # what loop.test resolves to
    try:
        extra = ("  - host: " + NAME + "\n    ports: any\n"
                 "  - host: loop.test\n    ports: any\n")
        p = start_proxy(sbxtest.base_policy(env, extra_allow=extra),
                        args=["--host-port", str(ok_srv.port),
                              "--host-port", str(loop_srv.port)])
        # The name, on the other port, despite "ports: any".
        status, _, _ = _get_via_wire(p, other.port, "/rule")
        assert status != 200
        # Address literals of the host loopback, on a listed port.
        for lit in ("127.0.0.1", "[::1]"):
            with p.forwarder(f"{lit}:{ok_srv.port}") as fw, fw.connect() as c:
                c.sendall(b"GET /literal HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_http_response(c)[0] != 200
        # A literal carrying the name in Host.
        with p.forwarder(f"127.0.0.1:{ok_srv.port}") as fw, fw.connect() as c:
            c.sendall(f"GET /literal-host HTTP/1.1\r\nHost: {NAME}:{ok_srv.port}"
                      "\r\n\r\n".encode())
            assert read_http_response(c)[0] != 200
        r = curl(env, "-x", p.http_proxy_url(),
                 f"http://127.0.0.1:{ok_srv.port}/proxy-literal")
        assert b"path=/proxy-literal" not in r.stdout
        # Another name, allowed on any port, that resolves to loopback,
        # on a port that is a host port.
        r = curl(env, "-x", p.http_proxy_url(),
                 f"http://loop.test:{loop_srv.port}/other-name")
        assert b"path=/other-name" not in r.stdout
        rec = p.wait_record(event="connect", host="loop.test", decision="deny")
        assert "loopback" in rec["reason"], rec
        # the six refused connections' close records, then the servers have
        # served whatever reached them to its end
        p.wait_count(6, event="close", decision="deny")
        for srv in (ok_srv, loop_srv, other):
            srv.quiet(0)
        assert ok_srv.requests.snapshot() == []
        assert loop_srv.accepted.snapshot() == []
        assert other.accepted.snapshot() == []
    finally:
        loop_srv.shutdown()
        loop_srv.server_close()


def test_without_host_ports_the_name_does_not_exist(env, start_proxy, servers):
    ok_srv, _ = servers
    p = start_proxy(_policy(env))
    assert p.dns(NAME)[0] == "NXDOMAIN"
    r = curl(env, "-x", p.http_proxy_url(), f"http://{NAME}:{ok_srv.port}/")
    assert b"sandbox-proxy blocked a request to " + NAME.encode() in r.stdout
    d = p.wait_record(event="connect", host=NAME, decision="deny")
    p.wait_record(event="close", conn=d["conn"])
    ok_srv.quiet(0)
    assert ok_srv.accepted.snapshot() == []


def test_bad_host_port_option(env, start_proxy):
    p = start_proxy(args=["--host-port", "0"], check_ready=False)
    assert p.proc.wait(timeout=10) == 2
    assert "--host-port 0" in p.stderr()
