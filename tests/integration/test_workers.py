"""sandbox-proxy --workers N: one event loop per worker, sharing one policy,
one synthetic address pool and one DNS cache. Which worker accepted a
connection is read from the proxy's --verbose line "conn ID on worker K";
the upstream's own view (what the origin server received) is the oracle
for what got through."""

import os
import re
import socket
import subprocess
import uuid

import sbxtest
from sbxtest import curl, run

WORKERS = 4  # more than the CPUs here: the spread is the kernel's choice


def worker_of(p):
    """conn id -> worker index, from the proxy's --verbose lines."""
    return {int(c): int(w) for c, w in
            re.findall(r"conn (\d+) on worker (\d+)", p.stderr())}


def test_name_keeps_its_synthetic_address_on_every_worker(env, start_proxy):
    port = sbxtest.free_port()
    spec = f"tcp:127.0.0.1:{port}"
    p = start_proxy(listen=spec, args=["--workers", str(WORKERS), "--verbose"])
    assert f"ready ({WORKERS} workers)" in p.stderr(), p.stderr()

    def dns(name):
        r = run([env.wire_client, "dns", "--proxy", spec, name])
        assert r.returncode == 0, r.stderr.decode()
        lines = r.stdout.decode().splitlines()
        assert lines[0] == "rcode NOERROR" and lines[1].startswith("A "), lines
        return lines[1].split()[1]

    # DNS streams until two different workers have answered for the name
    # (the TCP listener has a socket per worker: the kernel hashes each
    # new connection to one of them).
    # One other name first, on one stream: per-worker pools would now
    # disagree about which address allowed.test gets.
    dns("other.test")
    addrs = set()
    stream_workers = set()
    for _ in range(60):
        addrs.add(dns("allowed.test"))
        stream_workers = {worker_of(p).get(r["conn"])
                          for r in p.find(event="dns", host="allowed.test")}
        if len(stream_workers) >= 2:
            break
    assert len(stream_workers) >= 2 and None not in stream_workers, \
        f"DNS streams on workers {stream_workers}"
    assert len(addrs) == 1, f"one name, several synthetic addresses: {addrs}"
    synth = addrs.pop()

    # Connections to that address, until two different workers accepted
    # one: each must reach the origin as allowed.test.
    accepted_by = set()
    for _ in range(60):
        path = f"/w-{uuid.uuid4().hex}"
        req = (f"GET {path} HTTP/1.1\r\nHost: allowed.test:{env.http.port}\r\n"
               "Connection: close\r\n\r\n").encode()
        r = subprocess.run([env.wire_client, "raw", "--proxy", spec,
                            "--dest", f"{synth}:{env.http.port}"],
                           input=req, capture_output=True, timeout=20)
        assert r.returncode == 0 and b" 200 " in r.stdout.split(b"\r\n")[0], r
        seen = [q for q in env.http.requests.snapshot() if q["path"] == path]
        assert seen and seen[0]["host"] == [f"allowed.test:{env.http.port}"], seen
        recs = p.find(event="connect", host="allowed.test", decision="allow")
        accepted_by = {worker_of(p).get(x["conn"]) for x in recs}
        if len(accepted_by) >= 2:
            break
    assert len(accepted_by) >= 2, f"every connection on one worker: {accepted_by}"
    assert None not in accepted_by, "a connection without its worker line"


def test_control_change_applies_on_every_worker(env, start_proxy):
    sock = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
    p = start_proxy(args=["--workers", str(WORKERS), "--verbose",
                          "--control", f"unix:{sock}"])
    tool = os.path.join(env.build, "tools", "control_send")
    name = "reload.test"

    def get():
        # the proxy's answer to the CONNECT, then the origin's status
        r = curl(env, "-x", p.http_proxy_url(), "-w",
                 "\n%{http_connect} %{http_code}",
                 f"https://{name}:{env.tls.port}/")
        return r.stdout.decode().rpartition("\n")[2]

    def on_two_workers(decision, expect_code):
        # New connections to the explicit proxy (a socket per worker)
        # until two different workers decided one.
        ws = set()
        for n in range(1, 61):
            assert get() == expect_code
            ws = {worker_of(p).get(r["conn"]) for r in
                  p.find(event="connect", host=name, decision=decision)}
            if len(ws) >= 2:
                break
        assert len(ws) >= 2 and None not in ws, f"{decision} seen on workers {ws}"
        return n  # connections made

    def reached():  # the origin is shared with other tests: count
        return len([s for s in env.tls.snis.snapshot() if s == name])

    start, mark = reached(), env.tls.mark()
    n_denied = on_two_workers("deny", "403 000")
    # the origin's view, once every refused connection is closed (its close
    # record) and served to its end
    p.wait_count(n_denied, event="close", host=name, decision="deny")
    env.tls.quiet(mark)
    assert reached() == start, "a denied name reached the origin"

    spec = f"{name}:{env.tls.port}"
    r = run([tool, sock, f"allow {spec}"])
    assert r.returncode == 0, r.stdout
    p.wait_record(event="policy", reason=f"runtime allow {spec}")
    before = reached()
    on_two_workers("allow", "200 200")
    after = reached()
    # every connection the origin saw has its allow record
    p.wait_count(after - before, event="connect", host=name, decision="allow")

    r = run([tool, sock, f"remove {spec}"])
    assert r.returncode == 0, r.stdout
    p.wait_record(event="policy",
                  reason=lambda x: x and x.startswith(f"runtime remove {spec}"))
    n_denied = len(p.find(event="connect", host=name, decision="deny"))
    mark = env.tls.mark()
    for _ in range(8):
        assert get() == "403 000", "a removed rule still allowed on some worker"
    p.wait_count(n_denied + 8, event="connect", host=name, decision="deny")
    p.wait_count(n_denied + 8, event="close", host=name, decision="deny")
    env.tls.quiet(mark)
    after_remove = reached()
    assert after_remove == after, "the origin saw a connection after the remove"


def test_cut_closes_tunnels_on_every_worker(env, start_proxy):
    sock = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
    p = start_proxy(args=["--workers", str(WORKERS), "--verbose",
                          "--control", f"unix:{sock}"])
    # CONNECT tunnels to the banner server, held open, until two
    # different workers hold one; cut must close every one of them.
    holders = []
    try:
        ws = set()
        for _ in range(40):
            s = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
            s.sendall(f"CONNECT {sbxtest.UPSTREAM_IP}:{env.banner.port} HTTP/1.1\r\n"
                      f"Host: {sbxtest.UPSTREAM_IP}:{env.banner.port}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, f"closed before the CONNECT answer: {head!r}"
                head += chunk
            assert b" 200 " in head.split(b"\r\n")[0], head
            holders.append(s)
            ws = set(worker_of(p).values())
            if len(ws) >= 2:
                break
        assert len(ws) >= 2, f"every tunnel on one worker: {ws}"
        r = run([os.path.join(env.build, "tools", "control_send"), sock, "cut"])
        assert r.returncode == 0, r.stdout
        out = r.stdout.decode()
        assert f"{len(holders)} connection" in out, out
        for s in holders:
            sbxtest.read_to_end(s)  # each is ended by the cut
        p.wait_count(len(holders), event="close", reason="egress cut from the host")
    finally:
        for s in holders:
            s.close()


def test_unix_listener_hands_streams_to_every_worker(env, start_proxy):
    # The guest's streams arrive on a unix socket (the bridge's
    # connector): worker 0 accepts them and hands each to the next worker.
    p = start_proxy(args=["--workers", str(WORKERS), "--verbose"])
    addrs = {p.synth("allowed.test") for _ in range(2 * WORKERS)}
    assert len(addrs) == 1, addrs
    ws = set(worker_of(p).values())
    assert ws == set(range(WORKERS)), f"streams served by workers {ws}"
