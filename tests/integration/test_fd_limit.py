"""Descriptor limits (issue 13): sandbox-proxy raises its soft
RLIMIT_NOFILE to the hard limit at start and says how many tunnels that
allows; when accept() runs out of descriptors (EMFILE) the listener pauses
instead of spinning, the proxy stays up, and a connection waiting in the
backlog is served once descriptors free, with the upstream's own view as
the oracle."""

import os
import resource
import socket
import subprocess
import uuid

import sbxtest


def limits(pid):
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError("no 'Max open files' line")


def test_soft_limit_raised_to_hard(env, start_proxy):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(hard, 512) if hard != resource.RLIM_INFINITY else 512
    if low == hard:
        low = hard // 2
    # The proxy inherits this process's limits: lower the soft one only
    # for the time it takes to start it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        p = start_proxy(check_ready=False)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    p.wait_ready()
    s, h = limits(p.pid)
    assert (s, h) == (hard, hard), (s, h)
    assert f"soft limit raised from {low}" in p.stderr(), p.stderr()
    assert "tunnels" in p.stderr()
    out = subprocess.run([env.proxy_bin, "--help"], capture_output=True,
                         timeout=10).stdout.decode()
    assert "about" in out and "tunnels" in out and "RLIMIT_NOFILE" in out, out


def test_emfile_pauses_accept_then_serves_the_backlog(env, start_proxy):
    p = start_proxy()
    tag = uuid.uuid4().hex[:8]
    open_fds = len(os.listdir(f"/proc/{p.pid}/fd"))
    # Room for a few more descriptors only (prlimit on the running proxy:
    # its own raise at start is already done).
    room = 6
    lim = open_fds + room
    subprocess.run(["prlimit", f"--pid={p.pid}", f"--nofile={lim}:{lim}"],
                   check=True, timeout=10)
    held = []
    try:
        for _ in range(room + 4):
            held.append(socket.create_connection(("127.0.0.1", p.http_port),
                                                 timeout=5))
        sbxtest.wait_until(lambda: "Too many open files; pausing" in p.stderr(),
                           10, what="the listener to pause on EMFILE")
        assert p.alive()
        # this one waits in the backlog while every descriptor is taken
        waiting = socket.create_connection(("127.0.0.1", p.http_port), timeout=5)
        waiting.sendall(f"GET http://allowed.test:{env.http.port}/emfile-{tag} "
                        f"HTTP/1.1\r\nHost: allowed.test:{env.http.port}\r\n"
                        f"Connection: close\r\n\r\n".encode())
    finally:
        for s in held:
            s.close()
    # descriptors free as the held connections end: the listener resumes
    # and the waiting request reaches the upstream
    status, _, _ = sbxtest.read_http_response(waiting, timeout=15)
    waiting.close()
    assert status == 200, status
    paths = [r["path"] for r in env.http.requests.snapshot()]
    assert f"/emfile-{tag}" in paths, paths
    assert p.alive()
