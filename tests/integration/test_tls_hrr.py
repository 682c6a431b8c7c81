"""The second ClientHello after a HelloRetryRequest (RFC 8446 4.1.4) is
checked like the first, or the stream is refused before any of it reaches
the server.

The origin here is a real OpenSSL server (Python's ssl over memory BIOs)
whose only key-exchange group is P-384: a client that offers a key share
for X25519 only (OpenSSL's and curl's default) gets a real
HelloRetryRequest. The server keeps every byte it was sent, so the oracle
is what reached it, not only the proxy's answer. A "script" mode replays
a recorded HelloRetryRequest (twice, for the second-HRR case) or answers
with an alert. The hostile client is a real OpenSSL client whose retry is
rewritten (another SNI, no SNI, ECH) before it goes out."""

import os
import socket
import ssl
import subprocess
import threading

import pytest

import sbxtest
from sbxtest import wait_closed

CCS = b"\x14\x03\x03\x00\x01\x01"
GREETING = b"220 origin ready\r\n"


def _hellos(rx):
    """The ClientHello messages in rx, one TLS record each (what these
    tests' clients send), as the origin received them."""
    out, off = [], 0
    while len(rx) - off >= 5:
        n = int.from_bytes(rx[off + 3:off + 5], "big")
        body = rx[off + 5:off + 5 + n]
        if len(body) < n:
            break
        if rx[off] == 0x16 and body[:1] == b"\x01":
            out.append(body)
        off += 5 + n
    return out


# --- the origin ---------------------------------------------------------------

class HrrOrigin:
    """TLS origin on 127.0.0.2 that makes default clients retry. Each
    connection's received bytes and end are recorded (conns[i]["rx"],
    conns[i]["done"]); mode is "tls" (serve "hrr-ok" after the handshake),
    "hrr2" (answer every ClientHello with the same HelloRetryRequest) or
    "alert" (answer the first bytes with a fatal alert)."""

    def __init__(self, pki):
        self.pki = pki
        self.mode = "tls"
        self.conns = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind((sbxtest.UPSTREAM_IP, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hrr = None
        threading.Thread(target=self._loop, daemon=True).start()

    def ctx(self):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(self.pki["cert"], self.pki["key"])
        c.minimum_version = ssl.TLSVersion.TLSv1_3
        c.set_ecdh_curve("secp384r1")  # the only group: X25519 shares retry
        return c

    def _loop(self):
        while True:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            rec = {"rx": b"", "done": threading.Event()}
            with self.lock:
                self.conns.append(rec)
            threading.Thread(target=self._serve, args=(s, rec, self.mode),
                             daemon=True).start()

    def _recv(self, s, rec):
        d = s.recv(65536)
        rec["rx"] += d
        return d

    def _serve(self, s, rec, mode):
        s.settimeout(30)
        try:
            if mode == "tls":
                self._serve_tls(s, rec)
            elif mode == "greet":  # a banner first, then TLS (late peek)
                s.sendall(GREETING)
                self._serve_tls(s, rec)
            elif mode == "hrr2":
                sent = 0
                while self._recv(s, rec):
                    hellos = _hellos(rec["rx"])
                    while len(hellos) > sent:
                        # The recorded retry, echoing this client's
                        # legacy_session_id as RFC 8446 4.1.3 requires.
                        sid = hellos[0][4 + 2 + 32 + 1:4 + 2 + 32 + 33]
                        hrr = self.hrr[:44] + sid + self.hrr[44 + 32:]
                        sent += 1
                        s.sendall(hrr)
            elif mode == "alert":
                if self._recv(s, rec):
                    s.sendall(b"\x15\x03\x03\x00\x02\x02\x28")
                while self._recv(s, rec):
                    pass
        except OSError:
            pass
        finally:
            # Drain until the proxy closes: everything it sent is in rx.
            try:
                while self._recv(s, rec):
                    pass
            except OSError:
                pass
            s.close()
            rec["done"].set()

    def _serve_tls(self, s, rec):
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx().wrap_bio(inc, out, server_side=True)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = out.read()
                if pending:
                    s.sendall(pending)
                d = self._recv(s, rec)
                if not d:
                    return
                inc.write(d)
        s.sendall(out.read())
        req = b""
        while b"\r\n\r\n" not in req:
            try:
                req += obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            d = self._recv(s, rec)
            if not d:
                return
            inc.write(d)
        obj.write(b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhrr-ok")
        s.sendall(out.read())
        try:
            obj.unwrap()
        except ssl.SSLError:
            pass
        s.sendall(out.read())

    def record_hrr(self):
        """A real HelloRetryRequest (with its CCS) for the script mode."""
        c, co, _ = _client("allowed.test")
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx().wrap_bio(inc, out, server_side=True)
        inc.write(co.read())
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.hrr = out.read()
        assert self.hrr[5 + 6:5 + 6 + 4] == b"\xcf\x21\xad\x74", \
            "the server did not send a HelloRetryRequest"

    def new_conn(self, before):
        sbxtest.wait_until(lambda: len(self.conns) > before, 10,
                           what="the proxy to connect the origin")
        return self.conns[before]

    def close(self):
        self.sock.close()


# --- the hostile client -------------------------------------------------------

def _client(sni):
    """A real OpenSSL client (default groups: one X25519 key share) and
    its first flight in the out BIO."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, out, inc


def _ext_rewrite(record, sni, extra=None):
    """The ClientHello in record (one TLS record) with its server_name set
    to sni (None: removed) and extra (type, data) appended."""
    assert record[0] == 0x16
    hs = record[5:]
    assert hs[0] == 1
    off = 4 + 2 + 32
    off += 1 + hs[off]
    off += 2 + int.from_bytes(hs[off:off + 2], "big")
    off += 1 + hs[off]
    end = off + 2 + int.from_bytes(hs[off:off + 2], "big")
    exts, p = [], off + 2
    while p < end:
        t = int.from_bytes(hs[p:p + 2], "big")
        n = int.from_bytes(hs[p + 2:p + 4], "big")
        exts.append((t, hs[p + 4:p + 4 + n]))
        p += 4 + n
    out = []
    for t, d in exts:
        if t == 0:
            if sni is None:
                continue
            name = sni.encode()
            entry = b"\x00" + len(name).to_bytes(2, "big") + name
            d = len(entry).to_bytes(2, "big") + entry
        out.append((t, d))
    if extra:
        out.append(extra)
    blob = b"".join(t.to_bytes(2, "big") + len(d).to_bytes(2, "big") + d
                    for t, d in out)
    body = hs[4:off] + len(blob).to_bytes(2, "big") + blob
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(msg).to_bytes(2, "big") + msg


def _until_retry(sock, obj, inc, out):
    """Read the server's answer until the client has its retry ready:
    returns (bytes the client got, the client's CCS + retry)."""
    got = b""
    while True:
        d = sock.recv(65536)
        assert d, f"closed before the HelloRetryRequest came: {got!r}"
        got += d
        inc.write(d)
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        flight = out.read()
        if flight:
            assert got[11:15] == b"\xcf\x21\xad\x74", "no HelloRetryRequest"
            return got, flight


def _split_retry(flight):
    """(CCS, retry record) from the client's second flight."""
    assert flight.startswith(CCS), flight[:8]
    return flight[:len(CCS)], flight[len(CCS):]


# --- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="module")
def origin(env):
    o = HrrOrigin(env.pki)
    o.record_hrr()
    yield o
    o.close()


@pytest.fixture
def hproxy(env, start_proxy, origin):
    ports = f"[{origin.port}]"
    return start_proxy(
        "version: 1\nallow:\n"
        f"  - host: allowed.test\n    ports: {ports}\n"
        f"  - host: other.test\n    ports: {ports}\n"
        f"  - cidr: 127.0.0.2/32\n    ports: {ports}\n",
        args=["--handshake-timeout", "2"])


def _open(hproxy, origin):
    synth = hproxy.synth("allowed.test")
    fw = hproxy.forwarder(f"{synth}:{origin.port}")
    return fw, fw.connect()


def _refused(hproxy, origin, rec, s, reason_has):
    """The proxy refused: the client's stream ends, the origin's ends
    (so everything that reached it is in rec), and the close record
    says why."""
    assert wait_closed(s, 15) is not None, "stream stayed open"
    assert rec["done"].wait(15), "the origin's connection stayed open"
    r = hproxy.wait_record(event="close", decision="deny",
                           reason=lambda x: x and reason_has in x)
    return r


# --- a real client through the retry ---------------------------------------------

def test_curl_through_hello_retry(env, hproxy, origin):
    """curl offers an X25519 share, the origin wants P-384: the real
    retry passes the checks and the request completes (CONNECT)."""
    origin.mode = "tls"
    before = len(origin.conns)
    r = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--curves", "X25519:P-384",
         "--tlsv1.3", "--cacert", env.pki["ca"],
         "-x", hproxy.http_proxy_url(),
         f"https://allowed.test:{origin.port}/"],
        capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout == b"hrr-ok", r.stdout
    rec = origin.conns[before]
    # The origin's view: two ClientHellos, both for allowed.test.
    hellos = _hellos(rec["rx"])
    assert len(hellos) == 2 and all(b"allowed.test" in h for h in hellos), \
        rec["rx"][:64]
    hproxy.wait_record(event="connect", decision="allow", sni="allowed.test")


def test_transparent_client_through_hello_retry(env, hproxy, origin):
    """The same over a transparent stream, with a verifying client."""
    origin.mode = "tls"
    fw, s = _open(hproxy, origin)
    with fw:
        tls = sbxtest.ManualTLS(env.pki["ca"], "allowed.test")
        s.sendall(tls.hello)
        tls.finish(s)
        body = tls.request(s, b"GET / HTTP/1.0\r\nHost: allowed.test\r\n\r\n")
        s.close()
    assert body.endswith(b"hrr-ok"), body


# --- hostile retries ----------------------------------------------------------------

def _hostile(hproxy, origin, rewrite):
    origin.mode = "tls"
    before = len(origin.conns)
    fw, s = _open(hproxy, origin)
    with fw:
        obj, out, inc = _client("allowed.test")
        s.sendall(out.read())
        rec = origin.new_conn(before)
        _, flight = _until_retry(s, obj, inc, out)
        ccs, retry = _split_retry(flight)
        s.sendall(ccs + rewrite(retry))
        return rec, s


@pytest.mark.parametrize("name,rewrite,reason", [
    ("other_sni", lambda r: _ext_rewrite(r, "other.test"),
     "second ClientHello (after a HelloRetryRequest) names 'other.test' "
     "but the first named 'allowed.test'"),
    ("no_sni", lambda r: _ext_rewrite(r, None),
     "second ClientHello (after a HelloRetryRequest) has no SNI"),
    ("ech", lambda r: _ext_rewrite(r, "allowed.test",
                                   (0xfe0d, b"\x00\x01\x02\x03")),
     "offers ECH"),
    ("appdata", lambda r: b"\x17\x03\x03\x00\x0bother.test!",
     "second ClientHello: TLS application_data record before the ClientHello"),
    ("not_tls", lambda r: b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\n",
     "something other than a ClientHello"),
    ("too_large", lambda r: b"\x16\x03\x03\x00\x04\x01\x01\x00\x00",
     "second ClientHello: ClientHello larger than TLS_HELLO_MAX"),
])
def test_hostile_retry_refused(env, hproxy, origin, name, rewrite, reason):
    rec, s = _hostile(hproxy, origin, rewrite)
    _refused(hproxy, origin, rec, s, reason)
    s.close()
    # The upstream's view: one ClientHello, for allowed.test; nothing of
    # the refused retry reached it.
    assert b"other.test" not in rec["rx"], name
    assert len(_hellos(rec["rx"])) == 1, rec["rx"][:80]
    assert CCS not in rec["rx"], "the retry's CCS went on before the check"


def test_retry_sent_before_the_hrr_is_held_and_checked(env, hproxy, origin):
    """A client that sends its "retry" with the first hello, before any
    HelloRetryRequest: held until the server's answer, then checked."""
    origin.mode = "tls"
    before = len(origin.conns)
    fw, s = _open(hproxy, origin)
    with fw:
        _, out1, _ = _client("allowed.test")
        _, out2, _ = _client("other.test")
        s.sendall(out1.read() + CCS + out2.read())
        rec = origin.new_conn(before)
        _refused(hproxy, origin, rec, s, "names 'other.test'")
        s.close()
    assert b"other.test" not in rec["rx"]


def test_retry_split_forever_times_out(env, hproxy, origin):
    """A retry that never completes: refused at the handshake timeout
    (2 s here), and none of it reached the server."""
    rec, s = _hostile(hproxy, origin, lambda r: _ext_rewrite(
        r, "allowed.test")[:40])
    _refused(hproxy, origin, rec, s, "second ClientHello incomplete")
    s.close()
    assert len(_hellos(rec["rx"])) == 1


def test_second_hrr_refused(env, hproxy, origin):
    """RFC 8446 4.1.4: one HelloRetryRequest per handshake. A server that
    sends another would get a third hello the proxy never sees."""
    origin.mode = "hrr2"
    before = len(origin.conns)
    fw, s = _open(hproxy, origin)
    try:
        with fw:
            obj, out, inc = _client("allowed.test")
            s.sendall(out.read())
            rec = origin.new_conn(before)
            _, flight = _until_retry(s, obj, inc, out)
            s.sendall(flight)
            r = _refused(hproxy, origin, rec, s, "a second HelloRetryRequest")
            s.close()
    finally:
        origin.mode = "tls"
    assert r.get("sni") == "allowed.test", r
    assert len(_hellos(rec["rx"])) == 2


def test_server_alert_stops_the_client(env, hproxy, origin):
    """After the server's alert the handshake is over: the alert reaches
    the client and nothing the client sends after it reaches the server."""
    origin.mode = "alert"
    before = len(origin.conns)
    fw, s = _open(hproxy, origin)
    try:
        with fw:
            _, out, _ = _client("allowed.test")
            s.sendall(out.read())
            rec = origin.new_conn(before)
            s.settimeout(10)
            assert s.recv(7) == b"\x15\x03\x03\x00\x02\x02\x28"
            _, out2, _ = _client("other.test")
            s.sendall(out2.read())
            s.shutdown(socket.SHUT_WR)
            assert rec["done"].wait(15), "the origin's connection stayed open"
            s.close()
    finally:
        origin.mode = "tls"
    assert b"other.test" not in rec["rx"]
    assert len(_hellos(rec["rx"])) == 1


# --- the rest of the first flight ---------------------------------------------------

def test_two_hellos_in_one_record_refused(env, hproxy, origin):
    """A second ClientHello packed into the first's record never reaches
    the server: the peek refuses the record (the retry check would never
    see it, since a server may take both messages from one record)."""
    origin.mode = "tls"
    before = len(origin.conns)
    fw, s = _open(hproxy, origin)
    with fw:
        _, out1, _ = _client("allowed.test")
        _, out2, _ = _client("other.test")
        h1, h2 = out1.read(), out2.read()
        both = h1[5:] + h2[5:]
        s.sendall(b"\x16\x03\x01" + len(both).to_bytes(2, "big") + both)
        assert wait_closed(s, 15) is not None, "stream stayed open"
        s.close()
    d = hproxy.wait_record(event="connect", decision="deny",
                           reason="data after the ClientHello in its record")
    # The origin was never connected, or saw nothing: rx is complete once
    # the proxy closed its side (the close record) and the origin's
    # connection ended.
    hproxy.wait_record(event="close", conn=d["conn"])
    assert all(c["done"].wait(15) for c in origin.conns[before:]), \
        "the origin's connection stayed open"
    assert all(b"other.test" not in c["rx"] for c in origin.conns[before:])


def test_retry_after_a_server_greeting_checked(env, start_proxy, origin):
    """On a rule with tcp, a server may greet first; a ClientHello the
    client sends then is checked (late peek), and so is its retry."""
    ports = f"[{origin.port}]"
    p = start_proxy(
        "version: 1\nallow:\n"
        f"  - host: allowed.test\n    ports: {ports}\n"
        "    protocols: [tls, tcp]\n"
        f"  - cidr: 127.0.0.2/32\n    ports: {ports}\n"
        "    protocols: [tls, tcp]\n")
    origin.mode = "greet"
    before = len(origin.conns)
    try:
        fw, s = _open(p, origin)
        with fw:
            s.settimeout(10)
            got = b""
            while len(got) < len(GREETING):
                d = s.recv(len(GREETING) - len(got))
                assert d, "no greeting"
                got += d
            assert got == GREETING
            obj, out, inc = _client("allowed.test")
            s.sendall(out.read())
            rec = origin.new_conn(before)
            _, flight = _until_retry(s, obj, inc, out)
            ccs, retry = _split_retry(flight)
            s.sendall(ccs + _ext_rewrite(retry, "other.test"))
            _refused(p, origin, rec, s, "names 'other.test'")
            s.close()
    finally:
        origin.mode = "tls"
    assert b"other.test" not in rec["rx"]
    assert len(_hellos(rec["rx"])) == 1
