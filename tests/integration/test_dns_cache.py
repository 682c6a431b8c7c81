"""The proxy's upstream DNS cache: a cached answer saves the lookup only
within its TTL, and never stands in for a decision (a name a SIGHUP denied
is refused although its answer is still cached)."""

import os
import signal
import socket
import time
import uuid

import sbxtest


def _dnsmasq(env, ttl):
    """A dnsmasq of our own whose answers carry a known TTL: (port, the
    count of lookups of allowed.test since it started, sync: what
    Dnsmasq.sync() is for the shared one)."""
    d = os.path.join(env.workdir, f"dnsmasq-ttl{ttl}-{time.monotonic_ns()}")
    os.makedirs(d)
    log = os.path.join(d, "q.log")
    port = sbxtest.free_port(udp_too=True)
    argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--no-poll", "--cache-size=0",
            "--listen-address=127.0.0.1", "--bind-interfaces",
            f"--port={port}", "--pid-file=", f"--local-ttl={ttl}",
            "--log-queries", f"--log-facility={log}", "--local=/test/",
            f"--host-record=allowed.test,{sbxtest.UPSTREAM_IP}"]
    if os.geteuid() == 0:
        argv += ["--user=root", "--group=root"]
    with open(os.path.join(d, "stderr"), "wb") as err:
        env.procs.start(argv, stdout=err, stderr=err)
    sbxtest.wait_until(
        lambda: sbxtest.udp_dns_query(port, "allowed.test", timeout=0.3) is not None,
        5, what="dnsmasq to answer")

    def queried():
        try:
            text = open(log).read()
        except FileNotFoundError:
            return 0
        return text.count("query[A] allowed.test from ")
    def sync():
        name = f"sync-{uuid.uuid4().hex[:12]}.test"
        sbxtest.wait_until(
            lambda: sbxtest.udp_dns_query(port, name, timeout=1) is not None,
            10, what=f"dnsmasq to answer {name}")
        sbxtest.wait_until(lambda: f"query[A] {name} from " in open(log).read(),
                           10, what=f"dnsmasq to log {name}")
    # The readiness probe above was one query.
    base = queried()
    return port, lambda: queried() - base, sync


def _connect(p, env, host="allowed.test"):
    """CONNECT through the explicit proxy; returns the status line."""
    with socket.create_connection(("127.0.0.1", p.http_port), timeout=10) as s:
        s.sendall(f"CONNECT {host}:{env.tls.port} HTTP/1.1\r\n"
                  f"Host: {host}:{env.tls.port}\r\n\r\n".encode())
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.split(b"\r\n", 1)[0].decode(errors="replace")


def _closes(p, n):
    """The n close records of n tunnels to allowed.test (each client hangs
    up after the 200), waited for as audit records."""
    return sbxtest.wait_until(
        lambda: p.find(event="close", host="allowed.test")
        if len(p.find(event="close", host="allowed.test")) == n else None,
        5, what=f"{n} close records")


def test_cached_answer_used_within_ttl(env, start_proxy):
    port, queried, sync = _dnsmasq(env, ttl=300)
    p = start_proxy(args=["--resolver", f"127.0.0.1:{port}"])
    for _ in range(3):
        assert " 200 " in _connect(p, env)
    assert queried() == 1, "three tunnels within the TTL: one lookup"
    closes = _closes(p, 3)
    assert all(r.get("decision") == "allow" for r in closes), closes
    assert all(r.get("addr") == sbxtest.UPSTREAM_IP for r in closes), closes


def test_cached_answer_expires_with_its_ttl(env, start_proxy):
    # dnsmasq's own --local-ttl=1 shortens the answer's TTL (the proxy's
    # floor is 1 s too), so the test needs no TTL override in the product.
    port, queried, _ = _dnsmasq(env, ttl=1)
    p = start_proxy(args=["--resolver", f"127.0.0.1:{port}"])
    t0 = time.monotonic()
    assert " 200 " in _connect(p, env)
    assert queried() == 1
    # The entry was stored after t0 and lives 1 s, so a tunnel finished
    # before t0 + 1 s was served from the cache, whatever the load. Keep
    # connecting until one causes a second lookup: the event that the
    # entry expired; nothing else happens at expiry to wait on.
    tunnels = [(time.monotonic(), queried())]

    def relooked():
        assert " 200 " in _connect(p, env)
        tunnels.append((time.monotonic(), queried()))
        return tunnels[-1][1] >= 2
    sbxtest.wait_until(relooked, 15, interval=0.1,
                       what="a tunnel after the TTL to resolve the name again")
    assert queried() == 2, "one more lookup once the TTL ran out, not one per tunnel"
    early = [n for t, n in tunnels if t < t0 + 1.0]
    assert all(n == 1 for n in early), f"re-resolved within the TTL: {tunnels}"
    closes = _closes(p, len(tunnels))
    assert all(r.get("decision") == "allow" for r in closes), closes
    assert all(r.get("addr") == sbxtest.UPSTREAM_IP for r in closes), closes


def test_cached_answer_never_outlives_a_deny(env, start_proxy):
    port, queried, sync = _dnsmasq(env, ttl=300)
    p = start_proxy(args=["--resolver", f"127.0.0.1:{port}"])
    assert " 200 " in _connect(p, env)
    assert queried() == 1

    # The same file, with allowed.test now denied; the answer is still
    # cached for five minutes.
    text = sbxtest.base_policy(env).replace(
        "  - host: allowed.test\n", "  - host: unused.test\n").replace(
        "deny:\n", "deny:\n  - host: allowed.test\n    ports: [%d]\n"
        % env.tls.port)
    with open(p.policy + ".tmp", "w") as f:
        f.write(text)
    os.rename(p.policy + ".tmp", p.policy)
    os.kill(p.pid, signal.SIGHUP)
    p.wait_record(event="policy", reason="reloaded")

    status = _connect(p, env)
    assert " 403 " in status, status
    # the refusal's record is queued before the 403 and written just after
    def refusal_written():
        recs = p.find(event="connect", host="allowed.test")
        return bool(recs) and recs[-1].get("decision") == "deny"
    sbxtest.wait_until(refusal_written, 5, what="the refusal's connect record")
    d = p.find(event="connect", host="allowed.test")[-1]
    assert d.get("decision") == "deny", d
    assert d.get("rule") == p.rule("- host: allowed.test"), d
    assert not d.get("addr"), "a denied connection has no address: %r" % d
    # An absence: the refused connection's close record (queued after
    # anything it did), then every query that reached dnsmasq is logged.
    p.wait_record(event="close", conn=d["conn"])
    sync()
    assert queried() == 1, "a denied name is neither resolved nor connected"
