"""`inspect: all` (docs/secrets.md "Inspect all"), proxy alone on loopback.

Every allowed TLS connection by name is intercepted with the sandbox CA,
its request heads checked as plain HTTP (Host must be the SNI's host; a
secret's placeholder to a host not on its list is refused as an
exfiltration attempt) and recorded. The proxy holds TESTKEY for
allowed.test only; other.test is allowed and on no secret's list. The
recording HTTPS server of test_secrets is the oracle for what left the
host. Without inspect: all, other.test is spliced and gets the worthless
placeholder: test_secrets.test_other_hosts_spliced_never_get_the_value."""

import os
import ssl
import subprocess
import uuid

import pytest

import sbxtest
import test_secrets as ts

SECRETS = f"TESTKEY {ts.PH} {ts.VALUE} allowed.test\n"


@pytest.fixture(scope="module")
def servers(env):
    yield from ts.recording_servers(env)


def _policy(tls, plain, banner):
    ports = f"[{tls.port}, {plain.port}]"
    return (f"version: 1\nmode: enforce\ninspect: all\nallow:\n"
            f"  - host: allowed.test\n    ports: {ports}\n"
            # A server that speaks first needs a rule with tcp.
            f"  - host: other.test\n    ports: [{banner}]\n"
            f"    protocols: [tls, http, tcp]\n"
            f"  - host: allowed.test\n    ports: [{banner}]\n"
            f"    protocols: [tcp]\n"
            f"  - host: other.test\n    ports: {ports}\n"
            f"  - host: '*.allowed.test'\n    ports: {ports}\n"
            f"  - cidr: 127.0.0.2/32\n    ports: [{tls.port}, {plain.port}, {banner}]\n"
            f"    protocols: [tls, http, tcp]\n")


@pytest.fixture
def proxy_all(env, start_proxy, servers):
    tls, plain = servers
    return sbxtest.secrets_proxy(env, start_proxy,
                                 _policy(tls, plain, env.banner.port), SECRETS)


def _get(p, fw, host, port, path, *args):
    return sbxtest.run(["curl", "--silent", "--show-error", "--max-time", "10",
                        "-w", "%{http_code}", "--cacert", p.ca, "--connect-to",
                        f"{host}:{port}:127.0.0.1:{fw.port}", *args,
                        f"https://{host}:{port}{path}"], timeout=20)


def _reached(srv, path):
    return [q for q in srv.seen.snapshot() if q["path"].startswith(path)]


def test_placeholder_to_a_non_secret_host_over_tls_refused(proxy_all, servers):
    """The acceptance case: other.test is on no secret's list; under
    inspect: all its TLS is read, so the placeholder never leaves."""
    tls, _ = servers
    p = proxy_all
    path = "/exfil-" + uuid.uuid4().hex
    mark = tls.mark()
    with p.forwarder(f"{p.synth('other.test')}:{tls.port}") as fw:
        r = _get(p, fw, "other.test", tls.port, path,
                 "-H", f"Authorization: Bearer {ts.PH}")
        assert r.stdout.decode().endswith("403"), (r.stdout, r.stderr)
        # Basic credentials are decoded: the placeholder inside is seen.
        r = _get(p, fw, "other.test", tls.port, path + "b", "-u",
                 f"x:{ts.PH}")
        assert r.stdout.decode().endswith("403"), (r.stdout, r.stderr)
    rec = p.wait_record(event="intercept", decision="deny", secret="TESTKEY",
                        host="other.test")
    assert "exfiltration" in rec.get("reason", ""), rec
    assert rec.get("intercepted") is True, rec
    # both connections' close records: written after anything else of
    # theirs, once both sides are closed; then the server's view is complete
    p.wait_count(2, event="close", host="other.test")
    tls.quiet(mark)
    assert _reached(tls, path) == []
    assert not p.find(event="request", path=lambda s: s and s.startswith(path))
    assert ts.VALUE.encode() not in open(p.audit_path, "rb").read()


def test_every_tls_connection_intercepted_and_recorded(proxy_all, servers):
    tls, _ = servers
    p = proxy_all
    path = "/all-" + uuid.uuid4().hex
    tok = "t" + uuid.uuid4().hex
    for host in ("other.test", "www.allowed.test"):
        with p.forwarder(f"{p.synth(host)}:{tls.port}") as fw:
            # Trusting only the sandbox CA works: the proxy terminated TLS.
            r = _get(p, fw, host, tls.port, f"{path}/{host}?q={tok}")
        assert r.stdout.decode().endswith("200"), (host, r.stdout, r.stderr)
        p.wait_record(event="request", host=host, path=f"{path}/{host}")
    assert len(_reached(tls, path)) == 2
    recs = p.find(event="request", path=lambda s: s and s.startswith(path))
    assert all(q.get("intercepted") is True and q.get("proto") == "https"
               for q in recs), recs
    rec = p.wait_record(event="intercept", host="other.test", decision="allow")
    assert "inspect: all" in rec.get("reason", ""), rec
    # both connections' close records: written after anything else of theirs
    for host in ("other.test", "www.allowed.test"):
        p.wait_record(event="close", host=host)
    assert tok.encode() not in open(p.audit_path, "rb").read()
    # The secret's own host still gets the value.
    with p.forwarder(f"{p.synth('allowed.test')}:{tls.port}") as fw:
        r = _get(p, fw, "allowed.test", tls.port, path + "/key",
                 "-H", f"Authorization: Bearer {ts.PH}")
    assert r.stdout.decode().endswith("200"), (r.stdout, r.stderr)
    assert ts._hdr(_reached(tls, path + "/key")[0], "Authorization") == \
        [f"Bearer {ts.VALUE}"]


def test_ca_constrained_to_the_allowed_names(proxy_all):
    txt = subprocess.run(["openssl", "x509", "-noout", "-text", "-in",
                          proxy_all.ca],
                         capture_output=True, text=True, check=True).stdout
    assert "Name Constraints: critical" in txt, txt
    permitted = txt.split("Permitted:")[1].split("Excluded:")[0]
    names = sorted(x.strip() for x in permitted.split() if x.startswith("DNS:"))
    assert names == ["DNS:allowed.test", "DNS:other.test"], txt
    assert "IP:0.0.0.0/0.0.0.0" in txt and "IP:0:0:0:0:0:0:0:0/0" in txt, txt


def test_sni_of_one_name_host_of_another_refused(proxy_all, servers):
    tls, _ = servers
    p = proxy_all
    path = "/switch-" + uuid.uuid4().hex
    ctx = ssl.create_default_context(cafile=p.ca)
    mark = tls.mark()
    with p.forwarder(f"{p.synth('other.test')}:{tls.port}") as fw, \
            ctx.wrap_socket(fw.connect(), server_hostname="other.test") as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: allowed.test:{tls.port}\r\n"
                  f"Authorization: Bearer {ts.PH}\r\n\r\n".encode())
        st, _, body = sbxtest.read_http_response(s)
    assert st == 403, (st, body)
    p.wait_record(event="close", host="other.test")  # both sides closed
    tls.quiet(mark)
    assert _reached(tls, path) == []


def _head(path, port, extra=""):
    return ts._get_head("other.test", path, port, extra)


def _ended_instead(p, n):
    """The deny record of a refused later request: its number, and that
    the connection was ended instead of answered."""
    rec = p.wait_record(event="intercept", decision="deny", secret="TESTKEY",
                        host="other.test",
                        reason=lambda r: bool(r) and f"request {n}:" in r
                        and "ended instead of answered" in r)
    assert "exfiltration" in rec["reason"], rec
    return rec


def test_pipelined_second_head_with_placeholder_ends_the_connection(proxy_all, servers):
    """A (clean), B (the placeholder, to a host not on its list) and C
    (clean) in one write: the guest reads A's whole answer, then the end
    of the stream; a 403 there would be read as A's answer. Neither B nor
    anything after it leaves."""
    tls, _ = servers
    p = proxy_all
    a, b, c = ("/p" + x + "-" + uuid.uuid4().hex for x in "abc")
    ctx = ssl.create_default_context(cafile=p.ca)
    mark = tls.mark()
    with p.forwarder(f"{p.synth('other.test')}:{tls.port}") as fw, \
            ctx.wrap_socket(fw.connect(), server_hostname="other.test") as s:
        s.sendall(_head(a, tls.port) +
                  _head(b, tls.port, f"Cookie: k={ts.PH}\r\n") +
                  _head(c, tls.port))
        got = sbxtest.read_to_end(s)
    answers, rest = sbxtest.split_responses(got)
    assert answers == [(200, f"ok {a}\n".encode())] and rest == b"", got
    _ended_instead(p, 2)
    # The server closed (the session ends the guest's stream only after
    # the upstream is gone): what reached it is all it will get.
    tls.quiet(mark)
    assert len(_reached(tls, a)) == 1
    assert _reached(tls, b) == [] and _reached(tls, c) == []


def test_keepalive_second_request_with_placeholder_ends_the_connection(proxy_all, servers):
    """A sent and answered, then B with the placeholder on the same
    connection: the end of the stream, no 403. B alone on a new
    connection is its first request: the 403 with the reason."""
    tls, _ = servers
    p = proxy_all
    a, b = "/ka-" + uuid.uuid4().hex, "/kb-" + uuid.uuid4().hex
    ctx = ssl.create_default_context(cafile=p.ca)
    bad = _head(b, tls.port, f"Cookie: k={ts.PH}\r\n")
    mark = tls.mark()
    with p.forwarder(f"{p.synth('other.test')}:{tls.port}") as fw:
        with ctx.wrap_socket(fw.connect(), server_hostname="other.test") as s:
            s.sendall(_head(a, tls.port))
            st, _, body = sbxtest.read_http_response(s)
            assert (st, body) == (200, f"ok {a}\n".encode()), (st, body)
            s.sendall(bad)
            assert sbxtest.read_to_end(s) == b""
        _ended_instead(p, 2)
        with ctx.wrap_socket(fw.connect(), server_hostname="other.test") as s:
            s.sendall(bad)
            st, _, body = sbxtest.read_http_response(s)
    assert st == 403 and b"exfiltration" in body, (st, body)
    rec = p.wait_record(event="intercept", decision="deny", secret="TESTKEY",
                        reason=lambda r: bool(r) and "request 1:" in r)
    assert "ended instead" not in rec["reason"], rec
    tls.quiet(mark)  # every connection the origin accepted, served to its end
    assert _reached(tls, b) == []


def test_tls_by_address_refused_not_spliced(proxy_all, servers):
    """A cidr: rule allows 127.0.0.2, but the CA signs no address: TLS
    by address under inspect: all is refused, never spliced (a splice
    would carry any placeholder out unread)."""
    tls, _ = servers
    p = proxy_all
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    path = "/byaddr-" + uuid.uuid4().hex
    mark = tls.mark()
    with p.forwarder(f"{sbxtest.UPSTREAM_IP}:{tls.port}") as fw:
        with pytest.raises((ssl.SSLError, OSError)):
            with ctx.wrap_socket(fw.connect(), server_hostname=None) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if not s.recv(100):
                    raise OSError("closed")
    rec = p.wait_record(decision="deny",
                        reason=lambda s: s and "inspect: all" in s)
    assert "address" in rec["reason"], rec
    p.wait_record(event="close", port=tls.port)  # both sides closed
    tls.quiet(mark)
    assert _reached(tls, path) == []


def test_plain_http_recorded(proxy_all, servers):
    """Plain HTTP to an inspected host (here: every host) is on record
    too, in clear: proto http, not intercepted."""
    _, plain = servers
    p = proxy_all
    path = "/plain-" + uuid.uuid4().hex
    with p.forwarder(f"{p.synth('other.test')}:{plain.port}") as fw:
        r = sbxtest.run(["curl", "--silent", "--max-time", "10", "-w",
                         "%{http_code}", "--connect-to",
                         f"other.test:{plain.port}:127.0.0.1:{fw.port}",
                         f"http://other.test:{plain.port}{path}?k=v"],
                        timeout=20)
    assert r.stdout.decode().endswith("200"), (r.stdout, r.stderr)
    rec = p.wait_record(event="request", path=path)
    assert rec.get("proto") == "http" and not rec.get("intercepted"), rec
    assert rec.get("host") == "other.test" and rec.get("method") == "GET", rec


def test_tls_after_a_server_greeting_refused(env, proxy_all):
    """A server that speaks first turns the stream into a tcp rule's,
    spliced; a ClientHello after the greeting would then pass unread (an
    accomplice server could do that on purpose): refused instead."""
    p = proxy_all
    with p.forwarder(f"{p.synth('other.test')}:{env.banner.port}") as fw:
        s = fw.connect()
        s.settimeout(10)
        # The banner through the proxy is the event: the server spoke.
        assert s.recv(4096).startswith(sbxtest.BannerServer.BANNER[:8])
        s.sendall(sbxtest.client_hello("other.test"))
        got = sbxtest.read_to_end(s)
        s.close()
    assert b"echo:" not in got, got
    rec = p.wait_record(decision="deny",
                        reason=lambda r: r and "server spoke first" in r)
    assert rec.get("host") == "other.test", rec


def test_opaque_stream_to_a_secret_host_refused(env, proxy_all):
    """allowed.test holds TESTKEY: a tcp rule's stream to it (the server
    greets first) is neither TLS nor HTTP and is refused, as it was when
    the hook was at connect (the session closed what was not TLS)."""
    p = proxy_all
    with p.forwarder(f"{p.synth('allowed.test')}:{env.banner.port}") as fw:
        s = fw.connect()
        s.settimeout(10)
        got = sbxtest.read_to_end(s)
        s.close()
    assert sbxtest.BannerServer.BANNER not in got, got
    rec = p.wait_record(decision="deny",
                        reason=lambda r: r and "neither TLS nor HTTP" in r)
    assert rec.get("host") == "allowed.test", rec


def _stale_epoll_entries(pid):
    """Registrations in the proxy's epoll sets whose descriptor number no
    longer names the file registered (fdinfo's tfd and ino): what a
    socket dup()ed while registered leaves when the change list defers
    the delete past the close of its number."""
    stale = []
    fds = f"/proc/{pid}/fd"
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) != "anon_inode:[eventpoll]":
                continue
            info = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        for line in info.splitlines():
            f = line.split()
            if not f or f[0] != "tfd:" or "ino:" not in f:
                continue
            tfd, ino = f[1], int(f[f.index("ino:") + 1], 16)
            try:
                same = os.stat(os.path.join(fds, tfd)).st_ino == ino
            except OSError:
                same = False
            if not same:
                stale.append((fd, tfd, ino))
    return stale


def test_intercepted_upstream_leaves_no_stale_epoll_entry(proxy_all, servers):
    """The session takes the connection's upstream socket: while it is
    open, every epoll registration of the proxy still names its file
    (a guard: the dup() this replaced passed too, because libevent 2.1
    applies the change list's delete before it closes the original)."""
    tls, _ = servers
    p = proxy_all
    ctx = ssl.create_default_context(cafile=p.ca)
    with p.forwarder(f"{p.synth('other.test')}:{tls.port}") as fw:
        with ctx.wrap_socket(fw.connect(), server_hostname="other.test") as s:
            s.sendall(f"GET /held HTTP/1.1\r\nHost: other.test:{tls.port}"
                      f"\r\n\r\n".encode())
            assert s.recv(12).startswith(b"HTTP/1.1 200"), "no answer"
            p.wait_record(event="request", host="other.test", path="/held")
            assert _stale_epoll_entries(p.pid) == []
