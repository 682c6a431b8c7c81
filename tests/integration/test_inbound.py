"""Published ports, the host side (sandbox-proxy --publish, proxy/inbound.c):
the proxy listens on the published host address, reaches the guest through
the bridge's host-to-guest socket ("CONNECT 1081", then the inbound header
naming the guest port, docs/vsock.md and parse/inbound.h), relays, and
writes one "inbound" audit record per connection.

The bridge and the guest's forwarder are stood in for by GuestStandIn: it
speaks the bridge's documented CONNECT/OK exchange and, like the guest's
forwarder, connects to loopback on the port the header names, where a real
HTTP server runs. The guest side itself is tested with a real guest in
tests/e2e/test_ports.py."""

import os
import socket
import struct
import threading
import urllib.request
import uuid

import pytest

import sbxtest
from sbxtest import run


class GuestStandIn:
    """A unix listener speaking the bridge's host-to-guest protocol; with
    refuse=True it closes every stream as a guest with nothing on the
    vsock port would (the bridge closes on RST)."""

    def __init__(self, path, refuse=False):
        self.path = path
        self.refuse = refuse
        self.seen = sbxtest.Recorder()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(16)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read_exact(c, n):
        out = b""
        while len(out) < n:
            d = c.recv(n - len(out))
            if not d:
                break
            out += d
        return out

    def _serve(self, c):
        # Byte by byte up to the newline: nothing past it is consumed.
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            d = c.recv(1)
            if not d:
                break
            line += d
        if self.refuse:
            self.seen.add((line, None))
            c.close()
            return
        c.sendall(b"OK 49152\n")
        hdr = self._read_exact(c, 8)
        magic, version, reserved, port = struct.unpack(">4sBBH", hdr)
        self.seen.add((line, (magic, version, reserved, port)))
        up = socket.create_connection(("127.0.0.1", port))

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
                b.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        t = threading.Thread(target=pump, args=(c, up), daemon=True)
        t.start()
        pump(up, c)
        t.join(5)
        c.close()
        up.close()


@pytest.fixture
def origin():
    srv = sbxtest.OriginServer("127.0.0.1")
    yield srv
    srv.shutdown()
    srv.server_close()


def _sock_path(env):
    return os.path.join(env.workdir, f"g-{uuid.uuid4().hex[:8]}.sock")


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.read().decode()


def _v6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_published_port_reaches_the_guest_port_and_is_audited(env, start_proxy,
                                                             origin):
    g = GuestStandIn(_sock_path(env))
    hp = sbxtest.free_port()
    p = start_proxy(args=["--guest-connect", g.path,
                          "--publish", f"{hp}:{origin.port}"])
    status, body = _get(f"http://127.0.0.1:{hp}/via-v4")
    assert status == 200 and "path=/via-v4" in body
    urls = ["/via-v4"]
    if _v6_loopback():
        status, body = _get(f"http://[::1]:{hp}/via-v6")
        assert status == 200 and "path=/via-v6" in body
        urls.append("/via-v6")
    # The upstream's own view: the requests reached the guest-side server.
    assert [r["path"] for r in origin.requests.snapshot()] == urls
    # What the stand-in was asked: the inbound vsock port and a header
    # naming the published guest port.
    for line, hdr in g.seen.snapshot():
        assert line == b"CONNECT 1081\n"
        assert hdr == (b"SBXI", 1, 0, origin.port)
    rec = p.wait_record(event="inbound", addr="127.0.0.1")
    assert rec["port"] == origin.port and rec["host_port"] == hp
    assert rec["peer"].startswith("127.0.0.1:")
    assert rec["bytes_down"] > 0 and rec["bytes_up"] > len(body)
    assert rec["decision"] == "allow" and "closed by the" in rec["reason"]
    assert rec["duration_ms"] >= 0 and rec["conn"] > 0
    if len(urls) == 2:
        rec6 = p.wait_record(event="inbound", addr="::1")
        assert rec6["peer"].startswith("[::1]:") and rec6["host_port"] == hp


def test_explicit_address_binds_only_that_address(env, start_proxy, origin):
    g = GuestStandIn(_sock_path(env))
    hp = sbxtest.free_port("127.0.0.1")
    start_proxy(args=["--guest-connect", g.path,
                      "--publish", f"127.0.0.1:{hp}:{origin.port}"])
    assert _get(f"http://127.0.0.1:{hp}/x")[0] == 200
    if _v6_loopback():
        with pytest.raises(OSError):
            socket.create_connection(("::1", hp), timeout=5).close()


def test_port_in_use_is_a_clear_error(env, start_proxy):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    hp = busy.getsockname()[1]
    try:
        p = start_proxy(args=["--guest-connect", _sock_path(env),
                              "--publish", f"127.0.0.1:{hp}:8000"],
                        check_ready=False)
        assert p.proc.wait(timeout=10) != 0
        err = p.stderr()
        assert f"cannot listen on 127.0.0.1:{hp}" in err, err
        assert "in use" in err, err
        assert "sandbox-proxy: ready" not in err
    finally:
        busy.close()


@pytest.mark.parametrize("spec,why", [
    ("8080", "expected"),
    ("localhost:8080:80", "HOST_IP"),
    ("::1:8080:80", "brackets"),
    ("8080:0", "GUEST_PORT"),
])
def test_bad_spec_stops_the_start(env, start_proxy, spec, why):
    p = start_proxy(args=["--guest-connect", _sock_path(env),
                          "--publish", spec], check_ready=False)
    assert p.proc.wait(timeout=10) == 2
    assert f"--publish {spec}: " in p.stderr() and why in p.stderr()


def test_guest_refusal_closes_and_is_audited(env, start_proxy):
    g = GuestStandIn(_sock_path(env), refuse=True)
    hp = sbxtest.free_port()
    p = start_proxy(args=["--guest-connect", g.path,
                          "--publish", f"127.0.0.1:{hp}:8000"])
    with socket.create_connection(("127.0.0.1", hp), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        # Closed with the request unread: EOF or a reset, never an answer.
        try:
            assert c.recv(100) == b""
        except ConnectionResetError:
            pass
    rec = p.wait_record(event="inbound", host_port=hp)
    assert "refused" in rec["reason"] and rec["bytes_up"] == 0


def test_bridge_unreachable_is_audited(env, start_proxy):
    hp = sbxtest.free_port()
    p = start_proxy(args=["--guest-connect", _sock_path(env),
                          "--publish", f"127.0.0.1:{hp}:8000"])
    with socket.create_connection(("127.0.0.1", hp), timeout=10) as c:
        assert c.recv(100) == b""
    rec = p.wait_record(event="inbound", host_port=hp)
    assert "vsock bridge unreachable" in rec["reason"], rec


def test_control_socket_add_list_rm(env, start_proxy, origin):
    g = GuestStandIn(_sock_path(env))
    ctl = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
    p = start_proxy(args=["--guest-connect", g.path,
                          "--control", f"unix:{ctl}"])
    tool = os.path.join(env.build, "tools", "control_send")

    def c(line):
        r = run([tool, ctl, line])
        return r.returncode, r.stdout.decode().strip() + r.stderr.decode().strip()

    hp = sbxtest.free_port()
    assert c("port list") == (0, "ok ports=0")
    spec = f"127.0.0.1:{hp}:{origin.port}"
    assert c(f"port add {spec}") == (0, f"ok published {spec}")
    assert c("port list") == (0, f"ok ports=1: {spec}")
    assert _get(f"http://127.0.0.1:{hp}/live")[0] == 200
    p.wait_record(event="inbound", host_port=hp)
    p.wait_record(event="policy", reason="port published", rule=spec)
    rc, out = c(f"port add {spec}")
    assert rc != 0 and "already published" in out, out

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        rc, out = c(f"port add 127.0.0.1:{busy.getsockname()[1]}:80")
        assert rc != 0 and "in use" in out, out
    finally:
        busy.close()
    assert c("port list") == (0, f"ok ports=1: {spec}")

    assert c(f"port rm {spec}") == (0, f"ok removed {spec}")
    assert c("port list") == (0, "ok ports=0")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hp), timeout=5).close()
    p.wait_record(event="policy", reason="port unpublished", rule=spec)
    rc, out = c(f"port rm {spec}")
    assert rc != 0 and "not published" in out, out
    rc, out = c("port add 1.2.3:4:5")
    assert rc != 0 and "HOST_IP" in out, out


def test_publish_needs_a_way_to_the_guest(env, start_proxy):
    p = start_proxy(args=["--publish", "127.0.0.1:9:8000"], check_ready=False)
    assert p.proc.wait(timeout=10) != 0
    assert "--guest-connect" in p.stderr()


def test_max_conns_bounds_published_connections(env, start_proxy, origin):
    g = GuestStandIn(_sock_path(env))
    hp = sbxtest.free_port()
    start_proxy(args=["--guest-connect", g.path, "--max-conns", "1",
                      "--publish", f"127.0.0.1:{hp}:{origin.port}"])
    with socket.create_connection(("127.0.0.1", hp), timeout=10) as first:
        # The first is relayed (the stand-in saw it) and stays open.
        sbxtest.wait_until(lambda: g.seen.snapshot(), 10, what="first stream")
        with socket.create_connection(("127.0.0.1", hp), timeout=10) as second:
            second.sendall(b"GET /second HTTP/1.0\r\n\r\n")
            try:
                assert second.recv(100) == b""
            except ConnectionResetError:
                pass
        first.sendall(b"GET /first HTTP/1.0\r\n\r\n")
        got = b""
        while True:  # HTTP/1.0: the server closes after the answer
            d = first.recv(65536)
            if not d:
                break
            got += d
        assert b"path=/first" in got
    assert [r["path"] for r in origin.requests.snapshot()] == ["/first"]
