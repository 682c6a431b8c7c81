"""Address classification of what names resolve to. Everything here stays on
loopback: names resolve to 127.0.0.2 or to the IPv4-mapped ::ffff:127.0.0.2,
never to metadata or other non-loopback addresses (the classifier's unit
tests cover those without sending packets)."""

import sbxtest
from sbxtest import curl


def _refused_as_loopback(env, p, name):
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    r = curl(env, "-x", p.http_proxy_url(), f"https://{name}:{env.tls.port}/")
    assert r.returncode != 0, f"{name} (loopback) was reachable without a cidr: rule"
    # Refused by an answer, not by curl giving up (exit 28): the proxy said
    # 403 to the CONNECT.
    assert r.returncode != 28 and b"403" in r.stderr, \
        f"not a 403 refusal: curl exit {r.returncode}: {r.stderr!r}"
    d = p.wait_record(host=name, decision="deny", port=env.tls.port)
    assert "loopback" in (d.get("reason") or "").lower(), d
    assert not d.get("addr"), f"denied, yet an address was connected: {d}"
    # the origin's view, once the connection is closed and served to its end
    p.wait_record(event="close", conn=d["conn"])
    env.tls.quiet(mark)
    assert len(env.tls.accepted.snapshot()) == mark, "the connection reached the server"
    assert len(env.tls.snis.snapshot()) == before, "the connection reached the server"
    return d


def test_name_resolving_to_loopback_needs_cidr_rule(env, start_proxy):
    p = start_proxy(sbxtest.base_policy(env, cidr=False))
    _refused_as_loopback(env, p, "allowed.test")


def test_ipv4_mapped_loopback_is_unwrapped(env, start_proxy):
    text = sbxtest.base_policy(
        env, cidr=False,
        extra_allow=f"  - host: mapped.test\n    ports: [{env.tls.port}]\n")
    p = start_proxy(text)
    _refused_as_loopback(env, p, "mapped.test")


def test_cidr_rule_alone_never_allows_a_name(env, start_proxy):
    # loop.test resolves to 127.0.0.2, which the cidr: rule covers; no host
    # rule allows the name.
    p = start_proxy(sbxtest.base_policy(env))
    r = curl(env, "-x", p.http_proxy_url(), f"https://loop.test:{env.tls.port}/")
    assert r.returncode != 0 and "403" in r.stderr.decode(), r.stderr.decode()
    d = p.wait_record(event="connect", host="loop.test", decision="deny")
    assert d.get("rule") == "default", d
    # An absence: first the connection's close record (queued after
    # anything it did, a lookup included), then every query that reached
    # dnsmasq is in its log.
    p.wait_record(event="close", conn=d["conn"])
    env.dns.sync()
    assert "loop.test" not in env.dns.queried(), "a denied name was resolved"
