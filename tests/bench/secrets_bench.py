#!/usr/bin/python3
"""Interception cost (docs/secrets.md): the same HTTPS download through
sandbox-proxy's explicit proxy (CONNECT), once to a host that is spliced
(other.test), once to a secret host that is intercepted (allowed.test:
TLS terminated, heads rewritten, re-encrypted), and once through Squid
with `ssl_bump bump` (squid_bump.py: the same termination and
re-encryption, the same upstream and payload), and once through a second
sandbox-proxy whose policy says `inspect: all` to other.test (no secret:
intercepted only because of inspect: all), rounds interleaved, in one
run on loopback. Prints the median throughput of each and the ratios, and
writes build/bench/secrets.txt.

Environment: SANDBOX_BUILD (binaries), BENCH_ROUNDS [5], BENCH_MB [64]."""
import http.server
import os
import socketserver
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build")))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402
import squid_bump  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SIZE = int(os.environ.get("BENCH_MB", "64")) << 20
BODY = os.urandom(1 << 20)


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(SIZE))
        self.end_headers()
        for _ in range(SIZE >> 20):
            self.wfile.write(BODY)


class Srv(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    d = tempfile.mkdtemp(prefix="sbx-secbench-")
    procs = sbxtest.Procs()
    try:
        pki = sbxtest.make_pki(os.path.join(d, "pki"))
        dns = sbxtest.Dnsmasq(procs, d)
        srv = Srv((sbxtest.UPSTREAM_IP, 0), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki["cert"], pki["key"])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.server_address[1]
        pol = os.path.join(d, "policy.yaml")
        with open(pol, "w") as f:
            f.write(f"version: 1\nallow:\n  - host: allowed.test\n    ports: [{port}]\n"
                    f"  - host: other.test\n    ports: [{port}]\n"
                    f"  - cidr: 127.0.0.2/32\n    ports: [{port}]\n")
        pol_all = os.path.join(d, "policy-all.yaml")
        with open(pol_all, "w") as f:
            f.write(open(pol).read() + "inspect: all\n")

        def start_proxy(name, policy):
            ca = os.path.join(d, f"{name}-ca.pem")
            hport = sbxtest.free_port()
            ready = sbxtest.ReadyPipe()
            r, w = os.pipe()
            os.write(w, b"BENCHKEY bench-PPPPPPPPPPPPPPPPPPPP bench-real-value allowed.test\n")
            os.close(w)
            log = open(os.path.join(d, f"{name}.log"), "wb")
            proxy = procs.start([os.path.join(BUILD, "bin", "sandbox-proxy"), "--policy", policy,
                                 "--audit", os.path.join(d, f"{name}-audit.jsonl"),
                                 "--resolver", f"127.0.0.1:{dns.port}",
                                 "--http-proxy", f"tcp:127.0.0.1:{hport}",
                                 "--secrets-fd", str(r), "--ca-out", ca,
                                 "--upstream-ca", pki["ca"], "--ready-fd", str(ready.w)],
                                pass_fds=(r, ready.w), stdout=log, stderr=log)
            os.close(r)
            ready.child_started()
            if not ready.wait(10):
                raise SystemExit("sandbox-proxy exited before ready:\n"
                                 + open(log.name, errors="replace").read())
            return proxy, hport, ca

        proxy, hport, ca = start_proxy("proxy", pol)
        proxy_all, hport_all, ca_all = start_proxy("proxy-all", pol_all)
        squid_port = sbxtest.free_port()
        why = squid_bump.available()
        if why:
            raise SystemExit(f"secrets bench: {why}")
        os.chmod(d, 0o711)  # Squid runs as nobody when we are root
        squid_dir = os.path.join(d, "squid")
        os.mkdir(squid_dir)
        _, squid_ca = squid_bump.start(procs, squid_dir, {"other.test": sbxtest.UPSTREAM_IP},
                                       pki["ca"], squid_port, port)
        cenv = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

        # Each path is proved by the one CA curl trusts for it: the test
        # CA only when spliced (the upstream's own certificate), the
        # sandbox CA only when intercepted, Squid's CA only when bumped.
        # --fail: a refusal (a 403 is small and fast) must not count as a
        # download. The placeholder goes to allowed.test only: under
        # inspect: all it would be refused anywhere else.
        def once(host, cafile, proxy_port=hport):
            auth = (["-H", "Authorization: Bearer bench-PPPPPPPPPPPPPPPPPPPP"]
                    if host == "allowed.test" else [])
            t = time.monotonic()
            res = subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null",
                                  "--cacert", cafile,
                                  "-x", f"http://127.0.0.1:{proxy_port}", *auth,
                                  f"https://{host}:{port}/"], env=cenv, timeout=300,
                                 capture_output=True)
            dt = time.monotonic() - t
            if res.returncode:
                raise SystemExit(f"curl {host}: {res.stderr.decode()}")
            return SIZE / dt / 1e6

        spliced, intercepted, bumped, inspect_all = [], [], [], []
        for _ in range(ROUNDS):
            spliced.append(once("other.test", pki["ca"]))
            intercepted.append(once("allowed.test", ca))
            bumped.append(once("other.test", squid_ca, squid_port))
            inspect_all.append(once("other.test", ca_all, hport_all))
        s, i = statistics.median(spliced), statistics.median(intercepted)
        b = statistics.median(bumped)
        a = statistics.median(inspect_all)
        text = (f"secrets bench: {SIZE >> 20} MiB HTTPS download via CONNECT, "
                f"median of {ROUNDS} interleaved rounds\n"
                f"  spliced (other.test)       {s:8.1f} MB/s\n"
                f"  intercepted (allowed.test) {i:8.1f} MB/s  "
                f"({i / s:.2f}x spliced, {i / b:.2f}x Squid bump)\n"
                f"  Squid ssl_bump bump        {b:8.1f} MB/s  "
                f"({b / s:.2f}x spliced)\n"
                f"  inspect: all (other.test)  {a:8.1f} MB/s  "
                f"({a / s:.2f}x spliced, {a / i:.2f}x intercepted)\n")
        print(text, end="")
        os.makedirs(os.path.join(SRC, "build", "bench"), exist_ok=True)
        with open(os.path.join(SRC, "build", "bench", "secrets.txt"), "w") as f:
            f.write(text)
        sbxtest.stop_process(proxy)
        sbxtest.stop_process(proxy_all)
    finally:
        procs.kill_all()
        subprocess.run(["rm", "-rf", d])


if __name__ == "__main__":
    main()
