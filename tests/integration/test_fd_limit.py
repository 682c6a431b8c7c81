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
        # room + 2: the listener meets EMFILE on an accept, and the two
        # held streams still in the backlog when they close leave the
        # waiting request its three descriptors (client, resolver,
        # upstream): with more held streams in the backlog, their
        # accepts after the resume could take them first (a 502)
        for _ in range(room + 2):
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


def _peers(socks):
    """{client socket: the inode of its accepted end} (ss -x: an end
    still in the backlog shows peer 0)."""
    inos = {os.fstat(s.fileno()).st_ino: s for s in socks}
    out = subprocess.run(["ss", "-xn"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    peers = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 4 and f[-3].isdigit() and int(f[-3]) in inos:
            peers[inos[int(f[-3])]] = int(f[-1])
    return peers


def test_emfile_pause_lifted_by_another_workers_closes(env, start_proxy):
    """The unix listener is accepted on worker 0 only, which hands the
    streams to the workers in turn (the i-th to worker i % 2). Worker 0
    pauses on EMFILE; only worker 1's streams end. No close on worker 0
    wakes its listener: its back-off timer, which looks for free
    descriptors whichever loop freed them (docs/design.md, "Descriptors"),
    resumes it, and the stream waiting in the backlog is answered."""
    p = start_proxy(args=["--workers", "2", "--handshake-timeout", "120"])
    fds = f"/proc/{p.pid}/fd"
    room = 12
    lim = len(os.listdir(fds)) + room
    subprocess.run(["prlimit", f"--pid={p.pid}", f"--nofile={lim}:{lim}"],
                   check=True, timeout=10)
    held = []
    try:
        for _ in range(room + 8):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(p.sock)
            held.append(s)
        sbxtest.wait_until(lambda: "Too many open files; pausing" in p.stderr(),
                           10, what="the listener to pause on EMFILE")
        # Every accept before the failing one is done: which streams the
        # proxy holds, in the order they were accepted (the backlog's).
        mine = {os.readlink(f"{fds}/{x}") for x in os.listdir(fds)}
        peers = _peers(held)
        accepted = [s for s in held if f"socket:[{peers.get(s)}]" in mine]
        assert accepted == held[:len(accepted)], "accepted out of order"
        worker1 = accepted[1::2]
        assert len(worker1) >= 4, (len(accepted), p.stderr()[-2000:])
        assert p.alive()
        waiting = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        waiting.settimeout(30)
        waiting.connect(p.sock)
        held.append(waiting)
        q = sbxtest.dns_question("denied.test", 1)
        waiting.sendall(b"SBXW\x01\x02\x00\x00" + bytes(20) +
                        len(q).to_bytes(2, "big") + q)
        # The streams still in the backlog go first once accepting
        # resumes; they are closed too, so each ends at once.
        for s in worker1 + held[len(accepted):-1]:
            s.close()
        # Answered (NXDOMAIN, from the policy: no upstream needed) while
        # every stream worker 0 holds is still open.
        n = int.from_bytes(waiting.recv(2), "big")
        answer = b""
        while len(answer) < n:
            d = waiting.recv(n - len(answer))
            assert d, "the waiting stream was closed unanswered"
            answer += d
        assert answer[:2] == b"\x42\x42" and answer[3] & 0x0f == 3, answer
        assert p.alive()
    finally:
        for s in held:
            s.close()
