"""The explicit HTTP proxy (--http-proxy): CONNECT and absolute-form HTTP,
with curl and openssl s_client as the clients."""

import re
import uuid

import sbxtest
from sbxtest import curl, http_exchange, run


def connect_request(target):
    return f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()


def test_connect_allowed_https(env, proxy):
    path = f"/ok-{uuid.uuid4().hex}"
    url = f"https://allowed.test:{env.tls.port}{path}"
    r = curl(env, "-x", proxy.http_proxy_url(), "-w", "\n%{http_code}", url)
    assert r.returncode == 0, f"curl through the proxy failed: {r.stderr.decode()}"
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "200"
    assert f"origin https path={path}" in body
    assert "allowed.test" in env.tls.snis.snapshot()

    rule = proxy.rule("host: allowed.test")
    c = proxy.wait_record(event="connect", host="allowed.test", port=env.tls.port,
                          decision="allow")
    assert c.get("rule") == rule, c
    assert c.get("sni") == "allowed.test", c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c
    assert c.get("sandbox") == proxy.name, c
    close = proxy.wait_record(event="close", conn=c.get("conn"))
    assert close.get("bytes_up", 0) > 200, close  # at least the ClientHello
    assert close.get("bytes_down", 0) > len(body), close
    assert isinstance(close.get("duration_ms"), int) and close["duration_ms"] >= 0, close


def test_connect_allowed_via_openssl_s_server(env, proxy):
    """The same path against the real OpenSSL server tool."""
    url = f"https://allowed.test:{env.s_server.port}/"
    r = curl(env, "-x", proxy.http_proxy_url(), url)
    assert r.returncode == 0, r.stderr.decode()
    assert b"s_server" in r.stdout or b"Ciphers" in r.stdout, r.stdout[:300]
    c = proxy.wait_record(event="connect", host="allowed.test",
                          port=env.s_server.port, decision="allow")
    assert c.get("rule") == proxy.rule("host: allowed.test"), c


def test_connect_denied_by_rule_gets_403_naming_rule(env, proxy):
    target = f"denied.test:{env.tls.port}"
    r = curl(env, "-x", proxy.http_proxy_url(), f"https://{target}/")
    assert r.returncode != 0, "curl reached a denied name"
    assert "403" in r.stderr.decode(), r.stderr.decode()

    status, _, body = http_exchange(proxy.http_port, connect_request(target))
    assert status == 403
    text = body.decode(errors="replace")
    rule = proxy.rule("host: denied.test")
    assert "denied.test" in text, text
    assert proxy.policy in text, f"403 body does not name the policy file:\n{text}"
    lineno = rule.rsplit(":", 1)[1]
    assert rule in text or re.search(rf"line\s*{lineno}\b", text), \
        f"403 body does not name the rule {rule}:\n{text}"

    d = proxy.wait_record(event="connect", host="denied.test", decision="deny")
    assert d.get("rule") == rule, d
    assert d.get("port") == env.tls.port, d
    assert not d.get("addr"), f"a denied connection has an address: {d}"
    # An absence: both refused connections' close records (queued after
    # anything they did), then every query that reached dnsmasq is logged.
    proxy.wait_count(2, event="close", host="denied.test")
    env.dns.sync()
    assert "denied.test" not in env.dns.queried(), "a denied name was resolved upstream"


def test_connect_default_deny_says_no_rule_allows(env, proxy):
    target = f"nobody.test:{env.tls.port}"
    status, _, body = http_exchange(proxy.http_port, connect_request(target))
    assert status == 403
    text = body.decode(errors="replace")
    assert "no rule allows" in text, text
    assert "nobody.test" in text, text
    assert proxy.policy in text, f"403 body does not say which file to edit:\n{text}"
    d = proxy.wait_record(event="connect", host="nobody.test", decision="deny")
    assert d.get("rule") == "default", d


def test_connect_sni_mismatch_denied(env, proxy):
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    r = run(["openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.http_port}",
             "-connect", f"allowed.test:{env.tls.port}", "-servername", "other.test",
             "-CAfile", env.pki["ca"], "-verify_return_error", "-brief"],
            timeout=15)
    assert r.returncode != 0, f"TLS went through with a mismatched SNI: {r.stdout!r}"
    d = proxy.wait_record(decision="deny", sni="other.test")
    assert d.get("host") == "allowed.test", d
    assert "sni" in (d.get("reason") or "").lower(), d
    # the origin's view, once the connection is closed and served to its end
    proxy.wait_record(event="close", conn=d["conn"])
    env.tls.quiet(mark)
    assert "other.test" not in env.tls.snis.snapshot()[before:], \
        "the ClientHello with the mismatched SNI reached the server"


def test_connect_without_sni_denied(env, proxy):
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    r = run(["openssl", "s_client", "-proxy", f"127.0.0.1:{proxy.http_port}",
             "-connect", f"allowed.test:{env.tls.port}", "-noservername",
             "-CAfile", env.pki["ca"], "-brief"], timeout=15)
    assert r.returncode != 0, "TLS without SNI went through"
    d = proxy.wait_record(decision="deny", host="allowed.test",
                          port=env.tls.port)
    assert "sni" in (d.get("reason") or "").lower(), d
    proxy.wait_record(event="close", conn=d["conn"])
    env.tls.quiet(mark)
    assert len(env.tls.snis.snapshot()) == before


def test_plain_http_absolute_form_allowed(env, proxy):
    path = f"/abs-{uuid.uuid4().hex}"
    url = f"http://allowed.test:{env.http.port}{path}"
    r = curl(env, "-x", proxy.http_proxy_url(), "-w", "\n%{http_code}", url)
    assert r.returncode == 0, r.stderr.decode()
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "200", body
    seen = [q for q in env.http.requests.snapshot() if q["path"] == path]
    assert len(seen) == 1, seen
    # The origin gets origin-form, never the absolute URI, and the Host the
    # client meant.
    assert seen[0]["requestline"] == f"GET {path} HTTP/1.1", seen[0]
    assert seen[0]["host"] == [f"allowed.test:{env.http.port}"], seen[0]
    c = proxy.wait_record(event="connect", host="allowed.test", port=env.http.port,
                          decision="allow")
    assert c.get("rule") == proxy.rule("host: allowed.test"), c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c


def test_plain_http_absolute_form_denied(env, proxy):
    path = f"/deny-{uuid.uuid4().hex}"
    url = f"http://denied.test:{env.http.port}{path}"
    mark = env.http.mark()
    r = curl(env, "-x", proxy.http_proxy_url(), "-w", "\n%{http_code}", url)
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "403", r.stdout.decode()
    assert "denied.test" in body and proxy.policy in body, body
    d = proxy.wait_record(host="denied.test", decision="deny", port=env.http.port)
    assert d.get("rule") == proxy.rule("host: denied.test"), d
    proxy.wait_record(event="close", conn=d["conn"])
    env.http.quiet(mark)
    assert not [q for q in env.http.requests.snapshot() if q["path"] == path]


def test_https_absolute_form_rejected_400(env, proxy):
    req = (f"GET https://allowed.test:{env.tls.port}/ HTTP/1.1\r\n"
           f"Host: allowed.test:{env.tls.port}\r\n\r\n").encode()
    status, _, _ = http_exchange(proxy.http_port, req)
    assert status == 400


def test_ip_literal_connect_needs_cidr_rule(env, start_proxy):
    # No cidr: rule at all: the literal is denied (and so, by the loopback
    # rule, would the name be).
    no_cidr = start_proxy(sbxtest.base_policy(env, cidr=False))
    target = f"{sbxtest.UPSTREAM_IP}:{env.tls.port}"
    r = curl(env, "-x", no_cidr.http_proxy_url(), f"https://{target}/")
    assert r.returncode != 0 and "403" in r.stderr.decode(), r.stderr.decode()
    d = no_cidr.wait_record(event="connect", decision="deny",
                            host=sbxtest.UPSTREAM_IP)
    assert d.get("rule") == "default", d

    with_cidr = start_proxy(sbxtest.base_policy(env, cidr=True))
    r = curl(env, "-x", with_cidr.http_proxy_url(), "-w", "\n%{http_code}",
             f"https://{target}/lit")
    assert r.returncode == 0, r.stderr.decode()
    assert r.stdout.decode().endswith("\n200")
    c = with_cidr.wait_record(event="connect", decision="allow", port=env.tls.port)
    assert c.get("rule") == with_cidr.rule("cidr: 127.0.0.2/32"), c
    assert c.get("addr") == sbxtest.UPSTREAM_IP, c


def test_preset_rule_named_by_file_and_line(env, start_proxy):
    text = "version: 1\nextends: [itpreset]\nallow:\n" + \
        f"  - cidr: 127.0.0.2/32\n    ports: [{env.tls.port}]\n"
    p = start_proxy(text)
    r = curl(env, "-x", p.http_proxy_url(), f"https://preset.test:{env.tls.port}/")
    assert r.returncode == 0, r.stderr.decode()
    c = p.wait_record(event="connect", host="preset.test", decision="allow")
    assert re.search(r"itpreset\.yaml:4$", c.get("rule") or ""), c


def test_audit_record_format(env, proxy):
    curl(env, "-x", proxy.http_proxy_url(), f"https://allowed.test:{env.tls.port}/")
    http_exchange(proxy.http_port, connect_request(f"denied.test:{env.tls.port}"))
    proxy.dns("allowed.test")
    # every connection's close record, written after the rest of its
    # records: then every record the three made is checked below
    for host in ("allowed.test", "denied.test"):
        proxy.wait_record(event="close", host=host)
    proxy.wait_record(event="close", proto="dns")
    recs = proxy.audit()
    assert len(recs) >= 3
    for r in recs:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r.get("time", "")), r
        assert r.get("sandbox") == proxy.name, r
        assert r.get("event") in ("dns", "resolve", "connect", "close", "policy"), r
        if "decision" in r and r["decision"] is not None:
            assert r["decision"] in ("allow", "deny", "would-deny"), r
