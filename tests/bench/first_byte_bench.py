#!/usr/bin/python3
"""Server-speaks-first latency: how long a silent client waits for the
server's banner, directly and through sandbox-proxy, in one run.

The integration tests check the order (the banner reaches a client that
has sent nothing); how fast is measured here, as a ratio against the
direct connection in the same run, never as a timed assertion under
sanitizers. A first-byte wait (the proxy once waited 2 s for the client
before connecting the upstream) shows up as a ratio in the thousands.

Everything is on loopback: dnsmasq, a banner server on 127.0.0.2, the
proxy with a unix wire listener (reached through `wire_client forward`,
as the guest's forwarder does) and its explicit-proxy port.

usage: first_byte_bench.py [ROUNDS]   (SANDBOX_BUILD: release build dir)
Result: build/bench/first_byte.txt
"""

import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

BUILD = os.path.abspath(os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build"))


class Env:
    pass


def banner_after(connect):
    """Seconds from starting to connect until the whole banner arrived."""
    t0 = time.perf_counter()
    s = connect()
    s.settimeout(10)
    got = b""
    while not got.endswith(b"\n"):
        d = s.recv(4096)
        if not d:
            raise RuntimeError(f"closed before the banner: {got!r}")
        got += d
    t = time.perf_counter() - t0
    s.close()
    assert got == sbxtest.BannerServer.BANNER, got
    return t


def via_connect(port, target):
    def connect():
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(1)
            if not d:
                raise RuntimeError("proxy closed before answering CONNECT")
            buf += d
        if not buf.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(buf)
        return s
    return connect


def main(argv):
    rounds = int(argv[1]) if len(argv) > 1 else 200
    if shutil.which("dnsmasq") is None:
        os.environ["PATH"] += os.pathsep + "/usr/sbin"
    env = Env()
    env.proxy_bin = os.path.join(BUILD, "bin", "sandbox-proxy")
    env.wire_client = os.path.join(BUILD, "tools", "wire_client")
    env.workdir = tempfile.mkdtemp(prefix="sbxfb-")
    env.procs = sbxtest.Procs()
    env.presets = os.path.join(env.workdir, "presets")
    os.makedirs(env.presets)
    banner = None
    try:
        env.dns = sbxtest.Dnsmasq(env.procs, env.workdir)
        banner = sbxtest.BannerServer(sbxtest.UPSTREAM_IP)
        b = banner.port
        policy = (f"version: 1\nallow:\n  - host: git.test\n    ports: [{b}]\n"
                  f"    protocols: [tcp]\n  - cidr: 127.0.0.2/32\n    ports: [{b}]\n"
                  f"    protocols: [tcp]\n")
        p = sbxtest.Proxy(env, "first-byte", [policy])
        synth = p.synth("git.test")
        fw = p.forwarder(f"{synth}:{b}")
        paths = {
            "direct": lambda: socket.create_connection((sbxtest.UPSTREAM_IP, b), timeout=10),
            "sandbox-proxy/wire": fw.connect,
            "sandbox-proxy/CONNECT": via_connect(p.http_port, f"git.test:{b}"),
        }
        res = {k: [] for k in paths}
        for k, f in paths.items():  # warm up: resolver cache, first accept
            banner_after(f)
        for _ in range(rounds):  # interleaved, so load hits every path alike
            for k, f in paths.items():
                res[k].append(banner_after(f))
        fw.close()
        p.stop()
    finally:
        env.procs.kill_all()
        if banner:
            banner.close()
        shutil.rmtree(env.workdir, ignore_errors=True)
    base = statistics.median(res["direct"])
    lines = [f"=== server-speaks-first: time to the banner, silent client, "
             f"{rounds} rounds (median, p90, ratio of medians to direct)"]
    for k, v in res.items():
        v.sort()
        med, p90 = statistics.median(v), v[int(len(v) * 0.9) - 1]
        lines.append(f"{k:24} {med * 1e3:8.3f} ms {p90 * 1e3:8.3f} ms "
                     f"{med / base:8.1f}x")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.join(SRC, "build", "bench"), exist_ok=True)
    with open(os.path.join(SRC, "build", "bench", "first_byte.txt"), "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
