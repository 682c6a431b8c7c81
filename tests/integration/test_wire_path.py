"""The transparent path: wire-header streams as the guest forwarder sends
them, driven by wire_client (dns, forward, raw)."""

import ipaddress
import select
import subprocess
import time
import uuid

import sbxtest
from sbxtest import curl, read_http_response

POOL = ipaddress.ip_network("198.18.0.0/15")


def in_pool(a):
    return ipaddress.ip_address(a) in POOL


# --- DNS ----------------------------------------------------------------------

def test_dns_allowed_name_gets_stable_synthetic_address(env, proxy):
    # dnsmasq's log is shared (its own readiness probe asks for
    # allowed.test): count this proxy's lookups from here
    asked = env.dns.queried().count("allowed.test")
    a1 = proxy.synth("allowed.test")
    a2 = proxy.synth("allowed.test")
    assert in_pool(a1), f"{a1} is not in 198.18.0.0/15"
    assert a1 == a2, "the same name got two synthetic addresses"
    b = proxy.synth("www.allowed.test")
    assert in_pool(b) and b != a1, (a1, b)
    d = proxy.wait_record(event="dns", host="allowed.test", decision="allow")
    assert d.get("qtype") == "A", d
    assert d.get("rule") == proxy.rule("host: allowed.test"), d
    sbxtest.wait_until(lambda: env.dns.queried().count("allowed.test") > asked, 5,
                       what="allowed.test in dnsmasq's log: the proxy checks the "
                            "name upstream")


def test_dns_denied_name_nxdomain_never_upstream(env, proxy):
    rcode, ans = proxy.dns("denied.test")
    assert rcode == "NXDOMAIN" and not ans, (rcode, ans)
    rcode, _ = proxy.dns("nobody-at-all.test")
    assert rcode == "NXDOMAIN"
    # An absence. A later allowed query shows up in dnsmasq's log (other
    # tests asked for other.test too: its name proves nothing, sync()
    # does), and the three streams' close records come after anything
    # else of theirs.
    proxy.synth("other.test")
    proxy.wait_count(3, event="close", proto="dns")
    env.dns.sync()
    q = env.dns.queried()
    assert "denied.test" not in q and "nobody-at-all.test" not in q, q
    d = proxy.wait_record(event="dns", host="denied.test", decision="deny")
    assert d.get("rule") == proxy.rule("host: denied.test"), d
    d = proxy.wait_record(event="dns", host="nobody-at-all.test", decision="deny")
    assert d.get("rule") == "default", d


def test_dns_aaaa_and_https_empty(env, proxy):
    for qtype in ("AAAA", "HTTPS", "SVCB"):
        rcode, ans = proxy.dns("allowed.test", qtype)
        assert rcode == "NOERROR", f"{qtype}: {rcode}"
        assert ans == [], f"{qtype} answered {ans}"
    proxy.wait_record(event="dns", host="allowed.test", qtype="AAAA")
    proxy.wait_record(event="dns", host="allowed.test", qtype="HTTPS")


def test_dns_allowed_pattern_nonexistent_name_nxdomain(env, start_proxy):
    p = start_proxy(sbxtest.base_policy(
        env, extra_allow=f"  - host: \"*.sub.test\"\n    ports: [{env.tls.port}]\n"))
    assert in_pool(p.synth("one.sub.test"))
    rcode, ans = p.dns("two.sub.test")
    assert rcode == "NXDOMAIN" and not ans, (rcode, ans)
    sbxtest.wait_until(lambda: "two.sub.test" in env.dns.queried(), 5,
                       what="two.sub.test in dnsmasq's log (checked upstream)")
    d = p.wait_record(event="dns", host="two.sub.test")
    assert d.get("rule") == p.rule('host: "*.sub.test"'), d


# --- TCP through the synthetic address ------------------------------------------

def test_tls_via_synthetic_address(env, proxy):
    synth = proxy.synth("allowed.test")
    path = f"/wire-{uuid.uuid4().hex}"
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw:
        r = curl(env, "-w", "\n%{http_code}", "--connect-to",
                 f"allowed.test:{env.tls.port}:127.0.0.1:{fw.port}",
                 f"https://allowed.test:{env.tls.port}{path}")
    assert r.returncode == 0, r.stderr.decode()
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "200" and f"path={path}" in body, r.stdout
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          port=env.tls.port)
    assert c.get("sni") == "allowed.test", c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c
    assert c.get("rule") == proxy.rule("host: allowed.test"), c
    close = proxy.wait_record(event="close", conn=c.get("conn"))
    assert close.get("bytes_up", 0) > 200, close
    assert close.get("bytes_down", 0) > len(body), close
    assert close.get("duration_ms", -1) >= 0, close


def test_tls_sni_mismatch_denied(env, proxy):
    synth = proxy.synth("allowed.test")
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw:
        # other.test is itself allowed; it is still not the name this
        # address stands for.
        r = curl(env, "--connect-to", f"other.test:{env.tls.port}:127.0.0.1:{fw.port}",
                 f"https://other.test:{env.tls.port}/")
    assert r.returncode != 0, "a TLS connection with someone else's SNI went through"
    d = proxy.wait_record(decision="deny", sni="other.test")
    proxy.wait_record(event="close", port=env.tls.port)  # upstream closed
    env.tls.quiet(mark)
    assert len(env.tls.snis.snapshot()) == before, "the ClientHello reached the server"
    assert d.get("host") == "allowed.test", d
    assert "sni" in (d.get("reason") or "").lower(), d


def test_unknown_synthetic_address_denied(env, proxy):
    proxy.synth("allowed.test")
    with proxy.forwarder(f"198.19.255.250:{env.tls.port}") as fw:
        r = curl(env, "--connect-to", f"allowed.test:{env.tls.port}:127.0.0.1:{fw.port}",
                 f"https://allowed.test:{env.tls.port}/")
    assert r.returncode != 0
    d = proxy.wait_record(event="connect", decision="deny", port=env.tls.port)
    assert not d.get("addr"), d


def test_ip_literal_destination_denied_without_cidr_rule(env, start_proxy):
    p = start_proxy(sbxtest.base_policy(env, cidr=False))
    before, mark = len(env.tls.requests.snapshot()), env.tls.mark()
    with p.forwarder(f"{sbxtest.UPSTREAM_IP}:{env.tls.port}") as fw:
        r = curl(env, "--connect-to", f"allowed.test:{env.tls.port}:127.0.0.1:{fw.port}",
                 f"https://allowed.test:{env.tls.port}/")
    assert r.returncode != 0, "an IP literal without a cidr: rule went through"
    d = p.wait_record(event="connect", decision="deny", port=env.tls.port)
    assert not d.get("addr"), d
    p.wait_record(event="close", conn=d["conn"])  # upstream closed, if any
    env.tls.quiet(mark)
    assert len(env.tls.requests.snapshot()) == before


def _banner_exchange(proxy, dest, timeout=10):
    """Open a raw stream, wait for the server to speak first, answer, and
    return everything received. b'' when the proxy closed without data."""
    p = proxy.env.procs.start(
        [proxy.env.wire_client, "raw", "--proxy", f"unix:{proxy.sock}",
         "--dest", dest, "--timeout", str(timeout)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while b"\n" not in got and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = p.stdout.read1(4096)
                if not chunk:
                    break
                got += chunk
        if got:
            out, _ = p.communicate(input=b"ping\n", timeout=timeout)
            got += out
    finally:
        sbxtest.stop_process(p)
    return got


def test_opaque_tcp_decided_by_name_and_port(env, start_proxy):
    text = sbxtest.base_policy(
        env, extra_allow=f"  - host: git.test\n    ports: [{env.banner.port}]\n"
        "    protocols: [tcp]\n")
    p = start_proxy(text)
    synth = p.synth("git.test")
    got = _banner_exchange(p, f"{synth}:{env.banner.port}")
    assert got.startswith(sbxtest.BannerServer.BANNER), got
    assert b"echo:ping" in got, got
    c = p.wait_record(event="connect", host="git.test", decision="allow",
                      port=env.banner.port)
    assert c.get("rule") == p.rule("host: git.test"), c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c
    p.wait_record(event="close", conn=c.get("conn"))

    # Same name, a port no host rule lists (the cidr: rule does list it).
    before = len(env.banner2.accepted.snapshot())
    got = _banner_exchange(p, f"{synth}:{env.banner2.port}", timeout=5)
    assert got == b"", f"unlisted port reached the server: {got!r}"
    d = p.wait_record(event="connect", host="git.test", decision="deny",
                      port=env.banner2.port)
    assert d.get("rule") == "default", d
    p.wait_record(event="close", conn=d["conn"])
    env.banner2.sync()  # every connection made to it so far is recorded
    assert len(env.banner2.accepted.snapshot()) == before


# --- plain HTTP on the transparent path -----------------------------------------

def _http_forwarder(proxy, env):
    synth = proxy.synth("allowed.test")
    return proxy.forwarder(f"{synth}:{env.http.port}")


def test_http_keepalive_second_host_refused(env, proxy):
    path = f"/ka-{uuid.uuid4().hex}"
    with _http_forwarder(proxy, env) as fw, fw.connect() as s:
        s.sendall(f"GET {path}/1 HTTP/1.1\r\nHost: allowed.test:{env.http.port}\r\n\r\n"
                  .encode())
        st1, _, body1 = read_http_response(s)
        assert st1 == 200, body1
        # other.test is allowed by the policy, but this connection is for
        # allowed.test.
        second = (f"GET {path}/2 HTTP/1.1\r\nHost: other.test:{env.http.port}"
                  f"\r\n\r\n").encode()
        s.sendall(second)
        # A later request gets no status (it would be read as an earlier
        # request's answer): the end of the stream.
        st2, _, body2 = read_http_response(s)
        assert st2 is None, (st2, body2)
        # Alone on a new connection it is first: the 403 naming the host.
        with fw.connect() as s2:
            s2.sendall(second)
            st3, _, body3 = read_http_response(s2)
    assert st3 == 403, (st3, body3)
    assert b"other.test" in body3, body3
    seen = [q["path"] for q in env.http.requests.snapshot() if q["path"].startswith(path)]
    assert seen == [f"{path}/1"], seen
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          port=env.http.port)
    # The refusal is recorded on that connection and names the other host.
    proxy.wait_record(conn=c.get("conn"), decision="deny",
                      reason=lambda r: bool(r) and "other.test" in r
                      and "request 2" in r and "ended instead" in r)


def _one_request(proxy, env, raw):
    with _http_forwarder(proxy, env) as fw, fw.connect() as s:
        s.sendall(raw)
        return read_http_response(s)


def test_http_duplicate_host_400(env, proxy):
    path = f"/dup-{uuid.uuid4().hex}"
    mark = env.http.mark()
    st, _, _ = _one_request(proxy, env, (
        f"GET {path} HTTP/1.1\r\nHost: allowed.test\r\nHost: other.test\r\n\r\n").encode())
    assert st == 400
    proxy.wait_record(decision="deny", port=env.http.port)
    proxy.wait_record(event="close", port=env.http.port)  # upstream closed
    env.http.quiet(mark)
    assert not [q for q in env.http.requests.snapshot() if q["path"] == path]


def test_http_cl_te_conflict_400(env, proxy):
    path = f"/clte-{uuid.uuid4().hex}"
    mark = env.http.mark()
    st, _, _ = _one_request(proxy, env, (
        f"POST {path} HTTP/1.1\r\nHost: allowed.test:{env.http.port}\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n").encode())
    assert st == 400
    proxy.wait_record(decision="deny", port=env.http.port)
    proxy.wait_record(event="close", port=env.http.port)  # upstream closed
    env.http.quiet(mark)
    assert not [q for q in env.http.requests.snapshot() if q["path"] == path]
