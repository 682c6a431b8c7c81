"""A stream's protocol is established or the stream is refused (issue 8,
items 1 and 2), on both listeners: the transparent one (wire header) and
the explicit proxy (CONNECT tunnels, plain requests).

The oracle is the upstream's own view: RawServer sits behind the allowed
name, records every byte that reaches it, and answers any request for any
Host, like a lenient name-based virtual host (a CDN or shared front end)
would. A bypass is a request for denied.test that reaches it."""

import socket
import threading

import pytest

import sbxtest
from sbxtest import client_hello, read_http_response

BANNER = b"220 banner.test ESMTP\r\n"


class RawServer:
    """Plain TCP on 127.0.0.2: records what arrives, per connection; answers
    every request head with 200 (whatever its Host), or greets first."""

    def __init__(self, greet=False, switch=False):
        self.greet = greet
        self.switch = switch  # answer an Upgrade with 101, then echo
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((sbxtest.UPSTREAM_IP, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # bytearray per accepted connection
        self.peers = []  # the peer address of each
        self.ended = []  # whether each has ended (EOF or error)
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            with self.lock:
                i = len(self.conns)
                self.conns.append(buf)
                self.peers.append(peer)
                self.ended.append(False)
            threading.Thread(target=self._serve, args=(c, buf, i),
                             daemon=True).start()

    def _serve(self, c, buf, i):
        try:
            self._talk(c, buf)
        finally:
            with self.lock:
                self.ended[i] = True

    def _talk(self, c, buf):
        c.settimeout(15)
        pending = b""
        try:
            if self.greet:
                c.sendall(BANNER)
            while True:
                d = c.recv(65536)
                if not d:
                    break
                with self.lock:
                    buf += d
                pending += d
                if self.switch and b"\r\n\r\n" in pending:
                    head, _, rest = pending.partition(b"\r\n\r\n")
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                              b"Upgrade: websocket\r\n"
                              b"Connection: Upgrade\r\n\r\n")
                    if rest:
                        c.sendall(b"echo:" + rest)
                    while True:
                        d = c.recv(65536)
                        if not d:
                            return
                        with self.lock:
                            buf += d
                        c.sendall(b"echo:" + d)
                while b"\r\n\r\n" in pending:
                    _, _, pending = pending.partition(b"\r\n\r\n")
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"
                              b"vhost\n")
                if self.greet:
                    c.sendall(b"echo:" + d)
        except OSError:
            pass
        finally:
            c.close()

    def received(self):
        with self.lock:
            return b"".join(bytes(b) for b in self.conns)

    def mark(self):
        """How many connections were accepted so far (for quiet())."""
        with self.lock:
            return len(self.conns)

    def quiet(self, since, timeout=10):
        """Wait until every connection accepted since mark() `since` has
        ended, including any still in the listen queue: a probe connection
        made now is accepted after them (the queue is in order), and every
        byte the proxy sent on one arrived before its end. Then received()
        holds all the proxy ever sent, and a test may check an absence
        without a fixed sleep. Call it after the client's stream ended (the
        proxy closes the upstream with it)."""
        probe = socket.create_connection((sbxtest.UPSTREAM_IP, self.port),
                                         timeout=timeout)
        me = probe.getsockname()

        def probe_index():
            with self.lock:
                return self.peers.index(me) + 1 if me in self.peers else 0
        k = sbxtest.wait_until(probe_index, timeout,
                               what="the probe connection to be accepted") - 1
        probe.close()

        def ended():
            with self.lock:
                return all(self.ended[since:k])
        sbxtest.wait_until(ended, timeout,
                           what="the upstream connections to end")

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def servers():
    s = {"vhost": RawServer(), "opaque": RawServer(),
         "switch": RawServer(switch=True),
         "greet": RawServer(greet=True), "greet_tcp": RawServer(greet=True)}
    yield s
    for v in s.values():
        v.close()


def _policy(env, servers):
    v, o = servers["vhost"].port, servers["opaque"].port
    g, gt = servers["greet"].port, servers["greet_tcp"].port
    w = servers["switch"].port
    return sbxtest.base_policy(env, extra_allow=(
        f"  - host: allowed.test\n    ports: [{v}, {g}, {w}]\n"
        f"  - host: allowed.test\n    ports: [{o}, {gt}]\n"
        f"    protocols: [tcp]\n"
        f"  - host: www.allowed.test\n    ports: [{v}]\n"
        f"    protocols: [tls]\n"
        f"  - cidr: 127.0.0.2/32\n    ports: [{v}, {o}, {g}, {gt}, {w}]\n"
        f"    protocols: [tcp]\n"))


@pytest.fixture(scope="module")
def proto_proxy(env, servers, request):
    p = sbxtest.Proxy(env, "stream-protocol", [_policy(env, servers)])
    yield p
    p.stop()
    rep = p.sanitizer_report()
    assert not rep, rep[-4000:]


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


class Listener:
    """Open a stream to allowed.test:port through one of the two listeners."""

    def __init__(self, proxy, kind):
        self.proxy, self.kind = proxy, kind
        self.fws = {}

    def open(self, port):
        if self.kind == "connect":
            return _tunnel(self.proxy, f"allowed.test:{port}")
        if port not in self.fws:
            synth = self.proxy.synth("allowed.test")
            self.fws[port] = self.proxy.forwarder(f"{synth}:{port}")
        return self.fws[port].connect()

    def close(self):
        for fw in self.fws.values():
            fw.close()


@pytest.fixture(params=["wire", "connect"])
def listener(request, proto_proxy):
    lst = Listener(proto_proxy, request.param)
    yield lst
    lst.close()


def _drain(s, timeout=10):
    """Everything the proxy sends until it closes the stream."""
    s.settimeout(timeout)
    got = b""
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not d:
            break
        got += d
    return got


def _refused(listener, server, port, data):
    """Send data on a fresh stream; return what came back. The server must
    have received nothing of it."""
    before = len(server.received())
    conns = server.mark()
    s = listener.open(port)
    s.sendall(data)
    got = _drain(s)
    s.close()
    server.quiet(conns)
    arrived = server.received()[before:]
    assert arrived == b"", f"bytes reached the upstream: {arrived!r}"
    return got


def _mark(proxy):
    """The last connection id on record: later records are this test's."""
    return max((r.get("conn") or 0 for r in proxy.audit()), default=0)


def _last_deny(proxy, mark, event="connect", **match):
    return proxy.wait_record(event=event, decision="deny",
                             host="allowed.test",
                             conn=lambda c: c is not None and c > mark,
                             **match)


def _ended_instead(proxy, mark, n):
    """A later request refused: no status (the client would read it as an
    earlier request's answer), the connection ended instead; its close
    record is the deny and says so."""
    return _last_deny(proxy, mark, event="close",
                      reason=lambda r: bool(r) and f"request {n}" in r
                      and "ended instead of answered" in r)


# --- item 1: HTTP read as servers read it ---------------------------------------

HIDDEN = [
    ("leading-crlf", b"\r\nGET / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 403),
    ("three-crlf", b"\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: denied.test\r\n\r\n",
     403),
    ("lowercase-method", b"get / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 403),
    ("odd-method", b"M_X-1 / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 403),
    ("leading-space", b" GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 400),
    ("leading-tab", b"\tGET / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 400),
    ("leading-lf", b"\nGET / HTTP/1.1\r\nHost: denied.test\r\n\r\n", 400),
    ("space-in-target", b"GET /a b HTTP/1.1\r\nHost: denied.test\r\n\r\n",
     400),
    ("lowercase-version", b"GET / http/1.1\r\nHost: denied.test\r\n\r\n",
     400),
    ("absolute-form", b"GET http://denied.test/ HTTP/1.1\r\n"
     b"Host: allowed.test\r\n\r\n", 403),
    ("duplicate-host", b"GET / HTTP/1.1\r\nHost: allowed.test\r\n"
     b"Host: denied.test\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nX: a\r\n denied.test\r\n"
     b"Host: allowed.test\r\n\r\n", 400),
]


@pytest.mark.parametrize("rule", ["http", "tcp"])
@pytest.mark.parametrize("name,data,status", HIDDEN, ids=[h[0] for h in HIDDEN])
def test_hidden_request_refused(listener, servers, rule, name, data, status):
    """Whether the rule allows tcp or not, a request some server would read
    is checked as that server reads it."""
    mark = _mark(listener.proxy)
    srv = servers["vhost" if rule == "http" else "opaque"]
    got = _refused(listener, srv, srv.port, data)
    assert got.startswith(f"HTTP/1.1 {status}".encode()), (name, got[:200])
    d = _last_deny(listener.proxy, mark, port=srv.port, proto="http")
    assert d.get("reason"), d


def test_leading_empty_line_to_allowed_host_passes(listener, servers):
    srv = servers["vhost"]
    before = len(srv.received())
    s = listener.open(srv.port)
    req = f"\r\nGET / HTTP/1.1\r\nHost: allowed.test:{srv.port}\r\n\r\n".encode()
    s.sendall(req)
    status, _, body = read_http_response(s)
    s.close()
    assert status == 200 and body == b"vhost\n", (status, body)
    assert srv.received()[before:] == req


def test_second_request_on_kept_alive_stream_checked(listener, servers):
    """Refused without a status: the end of the stream instead."""
    srv = servers["vhost"]
    mark = _mark(listener.proxy)
    before = len(srv.received())
    conns = srv.mark()
    s = listener.open(srv.port)
    first = f"GET / HTTP/1.1\r\nHost: allowed.test:{srv.port}\r\n\r\n".encode()
    s.sendall(first)
    status, _, _ = read_http_response(s)
    assert status == 200
    s.sendall(b"\r\nget / HTTP/1.1\r\nHost: denied.test\r\n\r\n")
    got = _drain(s)
    s.close()
    srv.quiet(conns)
    assert got == b"", got[:200]
    assert srv.received()[before:] == first
    assert "denied.test" in _ended_instead(listener.proxy, mark, 2)["reason"]


def test_request_without_host_refused(listener, servers):
    """HTTP/1.0 lets a request leave out Host; a name-based server then
    serves a site of its own choosing, as it would for a ClientHello
    without SNI. A connection by name must say which site it wants."""
    srv = servers["vhost"]
    got = _refused(listener, srv, srv.port, b"GET / HTTP/1.0\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 400"), got[:200]
    assert b"without Host" in got, got[:400]


def test_later_request_without_host_refused(listener, servers):
    srv = servers["vhost"]
    mark = _mark(listener.proxy)
    before = len(srv.received())
    conns = srv.mark()
    s = listener.open(srv.port)
    first = (f"GET / HTTP/1.0\r\nHost: allowed.test:{srv.port}\r\n"
             f"Connection: keep-alive\r\n\r\n").encode()
    s.sendall(first)
    status, _, _ = read_http_response(s)
    assert status == 200
    s.sendall(b"GET /other HTTP/1.0\r\n\r\n")
    got = _drain(s)
    s.close()
    srv.quiet(conns)
    assert got == b"", got[:200]
    assert srv.received()[before:] == first
    assert "without Host" in _ended_instead(listener.proxy, mark, 2)["reason"]


def test_h2_prior_knowledge(listener, servers):
    mark = _mark(listener.proxy)
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    srv = servers["vhost"]
    _refused(listener, srv, srv.port, preface)
    d = _last_deny(listener.proxy, mark, port=srv.port)
    assert "HTTP/2 prior-knowledge" in d.get("reason", ""), d
    assert "only tls, http" in d.get("reason", ""), d
    # A rule with tcp lets it through as an opaque stream.
    srv = servers["opaque"]
    before = len(srv.received())
    s = listener.open(srv.port)
    s.sendall(preface)
    sbxtest.wait_until(lambda: srv.received()[before:] == preface, 5,
                       what="the preface at the tcp upstream")
    s.close()


@pytest.mark.parametrize("data", [b"hello there\r\n", b"\x00\x01\x02\x03junk",
                                  b"SSH-2.0-OpenSSH_9.6\r\n"])
def test_other_protocol_needs_tcp(listener, servers, data):
    mark = _mark(listener.proxy)
    srv = servers["vhost"]
    got = _refused(listener, srv, srv.port, data)
    assert got == b"", got
    d = _last_deny(listener.proxy, mark, port=srv.port, proto="tcp")
    reason = d.get("reason", "")
    assert "not TLS or HTTP/1" in reason and "first bytes" in reason, d
    assert data[:4].hex(" ")[:11] in reason, d
    assert d.get("rule") not in (None, "default"), d  # the allow rule
    # The same bytes on a rule with tcp are relayed.
    srv = servers["opaque"]
    before = len(srv.received())
    s = listener.open(srv.port)
    s.sendall(data)
    sbxtest.wait_until(lambda: srv.received()[before:] == data, 5,
                       what="the bytes at the tcp upstream")
    s.close()


def test_explicit_proxy_request_with_leading_empty_line(proto_proxy, servers):
    """The explicit proxy decides what the request names, even behind an
    empty line."""
    srv = servers["vhost"]
    before = len(srv.received())
    conns = srv.mark()
    status, _, _ = sbxtest.http_exchange(
        proto_proxy.http_port,
        f"\r\nGET http://denied.test:{srv.port}/ HTTP/1.1\r\n"
        f"Host: denied.test:{srv.port}\r\n\r\n".encode())
    assert status == 403
    with socket.create_connection(("127.0.0.1", proto_proxy.http_port),
                                  timeout=10) as s:
        s.sendall(f"\r\nget http://allowed.test:{srv.port}/ HTTP/1.1\r\n"
                  f"Host: allowed.test:{srv.port}\r\n\r\n".encode())
        status, _, body = read_http_response(s)
        assert status == 200, (status, body)
        bad = (f"\r\nget http://allowed.test:{srv.port}/ HTTP/1.1\r\n"
               f"Host: denied.test\r\n\r\n").encode()
        s.sendall(bad)
        # A later request: the end of the stream, not a status.
        status, _, body = read_http_response(s)
        assert status is None, (status, body)
    # Alone on a new connection it is first: the 403.
    status, _, _ = sbxtest.http_exchange(proto_proxy.http_port, bad)
    assert status == 403
    srv.quiet(conns)
    seen = srv.received()[before:]
    assert b"denied.test" not in seen, seen
    assert seen.count(b"allowed.test") == 1, seen


# --- item 2: TLS, only handshake records before the ClientHello -----------------

PRE_RECORDS = [
    ("alert", bytes([0x15, 3, 1, 0, 2, 1, 0]), "alert"),
    ("ccs", bytes([0x14, 3, 1, 0, 1, 1]), "change_cipher_spec"),
    ("appdata", bytes([0x17, 3, 3, 0, 0]), "application_data"),
    ("heartbeat", bytes([0x18, 3, 1, 0, 3, 1, 0, 0]), "heartbeat"),
]


@pytest.mark.parametrize("rule", ["http", "tcp"])
@pytest.mark.parametrize("name,rec,word", PRE_RECORDS,
                         ids=[r[0] for r in PRE_RECORDS])
def test_record_before_hello_refused(listener, servers, rule, name, rec, word):
    mark = _mark(listener.proxy)
    srv = servers["vhost" if rule == "http" else "opaque"]
    got = _refused(listener, srv, srv.port, rec + client_hello("denied.test"))
    assert got == bytes([0x15, 3, 1, 0, 2, 2, 0x31]), got  # access_denied
    d = _last_deny(listener.proxy, mark, port=srv.port, proto="tls")
    assert f"TLS {word} record before the ClientHello" in d.get("reason", ""), d


@pytest.mark.parametrize("rule", ["http", "tcp"])
def test_sslv2_hello_refused(listener, servers, rule):
    mark = _mark(listener.proxy)
    srv = servers["vhost" if rule == "http" else "opaque"]
    # SSLv2-format CLIENT-HELLO (version 3.1), as old clients sent it.
    body = bytes([1, 3, 1, 0, 3, 0, 0, 0, 16, 0, 0, 0x2f]) + b"\x11" * 16
    hello = bytes([0x80 | (len(body) >> 8), len(body) & 0xff]) + body
    _refused(listener, srv, srv.port, hello)
    d = _last_deny(listener.proxy, mark, port=srv.port, proto="tls")
    assert "SSLv2-format ClientHello" in d.get("reason", ""), d


def test_hello_in_handshake_records_still_passes(listener, env):
    s = listener.open(env.tls.port)
    before = len(env.tls.snis.snapshot())
    s.sendall(client_hello("allowed.test"))
    s.settimeout(10)
    assert s.recv(1) == b"\x16", "no ServerHello"
    s.close()
    assert env.tls.snis.snapshot()[before:] == ["allowed.test"]


# --- the upstream speaks first ---------------------------------------------------

def test_greeting_on_rule_without_tcp_refused(listener, servers):
    """TLS and HTTP servers never speak first: on a rule without tcp a
    greeting ends the stream, and nothing of it reaches the client."""
    mark = _mark(listener.proxy)
    srv = servers["greet"]
    s = listener.open(srv.port)
    got = _drain(s)
    s.close()
    assert BANNER not in got, got
    d = _last_deny(listener.proxy, mark, port=srv.port)
    assert "upstream spoke first" in d.get("reason", ""), d


LATE = [
    ("leading-crlf", b"\r\nGET / HTTP/1.1\r\nHost: denied.test\r\n\r\n"),
    ("lowercase-method", b"get / HTTP/1.1\r\nHost: denied.test\r\n\r\n"),
    ("leading-space", b" GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n"),
    ("alert-then-hello", bytes([0x15, 3, 1, 0, 2, 1, 0]) + b"HELLO"),
]


@pytest.mark.parametrize("name,data", LATE, ids=[x[0] for x in LATE])
def test_late_request_after_greeting_checked(listener, servers, name, data):
    """On a tcp rule the client may answer a greeting with anything, but a
    request or TLS record it sends is still checked first."""
    mark = _mark(listener.proxy)
    if data.endswith(b"HELLO"):
        data = data[:-5] + client_hello("denied.test")
    srv = servers["greet_tcp"]
    before = len(srv.received())
    conns = srv.mark()
    s = listener.open(srv.port)
    s.settimeout(10)
    assert s.recv(len(BANNER)) == BANNER
    s.sendall(data)
    got = _drain(s)
    s.close()
    srv.quiet(conns)
    assert b"echo:" not in got, got
    assert srv.received()[before:] == b"", srv.received()[before:]
    d = _last_deny(listener.proxy, mark, event="close", port=srv.port)
    assert d.get("bytes_up") == 0, d


def test_late_line_protocol_still_relayed(listener, servers):
    srv = servers["greet_tcp"]
    s = listener.open(srv.port)
    s.settimeout(10)
    assert s.recv(len(BANNER)) == BANNER
    s.sendall(b"EHLO client.example\r\n")
    assert s.recv(4096) == b"echo:EHLO client.example\r\n"
    s.close()


# --- nothing turns an HTTP stream opaque by the client's say-so ------------------

UPGRADE = ("GET / HTTP/1.1\r\nHost: allowed.test:{port}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\n\r\n")


@pytest.mark.parametrize("pipelined", [False, True])
def test_refused_upgrade_keeps_checking(listener, servers, pipelined):
    """The server (like most) ignores the Upgrade and answers 200: the
    stream is still HTTP, and the next request is checked (refused: the
    200 whole, then the end of the stream)."""
    srv = servers["vhost"]
    before = len(srv.received())
    conns = srv.mark()
    s = listener.open(srv.port)
    first = UPGRADE.format(port=srv.port).encode()
    second = b"GET / HTTP/1.1\r\nHost: denied.test\r\n\r\n"
    if pipelined:
        s.sendall(first + second)
        got = _drain(s)
        assert got == b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nvhost\n", \
            got[:400]
    else:
        s.sendall(first)
        status, _, _ = read_http_response(s)
        assert status == 200
        s.sendall(second)
        got = _drain(s)
        assert got == b"", got[:200]
    s.close()
    srv.quiet(conns)
    assert srv.received()[before:] == first


def test_accepted_upgrade_passes(listener, servers):
    """WebSocket still works: after the server's 101 the frames (even ones
    sent right behind the request) reach it unchecked."""
    srv = servers["switch"]
    s = listener.open(srv.port)
    frame = b"\x82\x05hello"
    s.sendall(UPGRADE.format(port=srv.port).encode() + frame)
    s.settimeout(10)
    got = b""
    while b"echo:" + frame not in got:
        d = s.recv(4096)
        assert d, f"closed early: {got!r}"
        got += d
    assert got.startswith(b"HTTP/1.1 101"), got
    s.sendall(b"\x82\x03abc")
    while b"echo:\x82\x03abc" not in got:
        d = s.recv(4096)
        assert d, f"closed early: {got!r}"
        got += d
    s.close()


def test_h2c_upgrade_not_honoured(listener, servers):
    """HTTP/2 over cleartext multiplexes requests whose :authority nothing
    checks: even when the server switches, the client's HTTP/2 bytes are
    refused and never reach it (the stream ends: a request went before)."""
    srv = servers["switch"]
    before = len(srv.received())
    conns = srv.mark()
    s = listener.open(srv.port)
    req = (f"GET / HTTP/1.1\r\nHost: allowed.test:{srv.port}\r\n"
           "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
           "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n").encode()
    s.sendall(req)
    s.settimeout(10)
    got = s.recv(4096)
    assert got.startswith(b"HTTP/1.1 101"), got
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    got = _drain(s)
    s.close()
    srv.quiet(conns)
    assert srv.received()[before:] == req, srv.received()[before:]
    assert got == b"", got[:200]


def test_connect_inside_stream_refused(listener, servers):
    srv = servers["vhost"]
    got = _refused(listener, srv, srv.port,
                   f"CONNECT allowed.test:{srv.port} HTTP/1.1\r\n"
                   f"Host: allowed.test:{srv.port}\r\n\r\n".encode())
    assert got.startswith(b"HTTP/1.1 403"), got[:200]


# --- a rule that names only tls refuses HTTP, on both listeners ------------------

def test_tls_only_rule_refuses_http(proto_proxy, servers):
    p, srv = proto_proxy, servers["vhost"]
    mark = _mark(p)
    before = len(srv.received())
    conns = srv.mark()
    status, _, body = sbxtest.http_exchange(
        p.http_port, f"GET http://www.allowed.test:{srv.port}/ HTTP/1.1\r\n"
        f"Host: www.allowed.test:{srv.port}\r\n\r\n".encode())
    assert status == 403, (status, body)
    assert b"protocols: [http]" in body, body
    synth = p.synth("www.allowed.test")
    with p.forwarder(f"{synth}:{srv.port}") as fw:
        s = fw.connect()
        s.sendall(f"GET / HTTP/1.1\r\nHost: www.allowed.test:{srv.port}"
                  "\r\n\r\n".encode())
        status, _, body = read_http_response(s)
        s.close()
    assert status == 403, (status, body)
    srv.quiet(conns)
    assert srv.received()[before:] == b""
    recs = p.wait_count(2, event="connect", decision="deny", host="www.allowed.test",
                        conn=lambda c: c is not None and c > mark)
    for d in recs:
        assert "stream is http and the rule allows only tls" in d["reason"], d
