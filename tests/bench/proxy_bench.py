#!/usr/bin/python3
"""The egress-proxy benchmark: one workload, five ways to the same backend.

Starts, on loopback and as unprivileged processes with configs in a temp dir:
a TLS backend (tls_sink), dnsmasq (the resolver sandbox-proxy uses), and one
proxy at a time -- sandbox-proxy, HAProxy (TCP mode, SNI ACL), Squid (peek and
splice, SNI ACL), tinyproxy (CONNECT filter). For each, and for a direct
baseline, tls_bench measures idle-tunnel memory, new tunnels per second, bulk
throughput and echo latency. Prints a table with ratios and writes
build/bench/proxy.{txt,json}. Every step is bounded in time; a proxy that
fails or stalls makes a row of failures, never a hang.

Environment knobs (defaults in brackets):
  BENCH_ROUNDS [3]       rounds of tunnels/s, bulk and latency; the table
                         shows the median, systems interleaved per round
  BENCH_SECONDS [3]      length of each tunnels/s run
  BENCH_CONC [16]        concurrent clients in the tunnels/s run
  BENCH_BYTES [512 MiB]  bulk download size per round
  BENCH_IDLE_TIMEOUT [60] seconds allowed to open the idle tunnels
  BENCH_RTT [10000]      echo round trips for latency
  BENCH_IDLE [10000]     idle tunnels to open
  BENCH_ONLY             comma list of systems to run (default: all found)
  BENCH_PARTS [tls,hello] which workloads: the TLS one and/or the no-crypto
                         one (hello_bench: connect, preface, a ClientHello
                         answered with a fixed ServerHello by a plain TCP
                         sink, close)
  BENCH_HELLO_CONC [32]  concurrent clients in the no-crypto run
  BENCH_BASE_PROXY       another sandbox-proxy binary (say, the last
                         release) measured beside this one as
                         "sandbox-proxy@base", for before/after ratios
  BENCH_PROXY_ARGS       extra options for this build's proxy
  BENCH_BASE_PROXY_ARGS  extra options for the base's (which may not know
                         this build's options)
"""
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build")))
TOOLS = os.path.join(BUILD, "tools")
OUT = os.path.join(SRC, "build", "bench")

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IDLE_TIMEOUT = int(os.environ.get("BENCH_IDLE_TIMEOUT", "60"))
CONC = int(os.environ.get("BENCH_CONC", "16"))
BYTES = int(os.environ.get("BENCH_BYTES", str(512 << 20)))
RTT = int(os.environ.get("BENCH_RTT", "10000"))
# Each proxied tunnel costs the proxy two descriptors. Without
# CAP_SYS_RESOURCE (containers) the hard RLIMIT_NOFILE caps how many idle
# tunnels any proxy can hold, so aim for 10,000 or as many as fit.
NOFILE_HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
if NOFILE_HARD == resource.RLIM_INFINITY:
    NOFILE_HARD = 1 << 20
IDLE_FIT = max(100, min(10000, (min(NOFILE_HARD, 65536) - 256) // 2))
IDLE = int(os.environ.get("BENCH_IDLE", str(IDLE_FIT)))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
PARTS = [s for s in os.environ.get("BENCH_PARTS", "tls,hello").split(",") if s]
HELLO_CONC = int(os.environ.get("BENCH_HELLO_CONC", "32"))
BASE_PROXY = os.environ.get("BENCH_BASE_PROXY")
# Extra sandbox-proxy options for this build's runs (not the base's), e.g.
# BENCH_PROXY_ARGS="--record-rate 100000" to see the proxy without the
# default record budget.
PROXY_ARGS = os.environ.get("BENCH_PROXY_ARGS", "").split()
# The same for the base (BENCH_BASE_PROXY), given apart because an older
# build may not have this one's options.
BASE_PROXY_ARGS = os.environ.get("BENCH_BASE_PROXY_ARGS", "").split()
NAME = "bench.test"
IS_ROOT = os.geteuid() == 0


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited with status %d" % proc.returncode
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return None
        except OSError:
            time.sleep(0.05)
    return "not listening on port %d after %ds" % (port, timeout)


def raise_limits():
    want = min(NOFILE_HARD, 65536)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, NOFILE_HARD))


def unpriv(argv):
    """Run proxies as nobody when we are root: they need no privilege."""
    if IS_ROOT:
        return ["setpriv", "--reuid=nobody", "--regid=nogroup",
                "--clear-groups", "--"] + argv
    return argv


class Tmp:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sandbox-bench.")
        os.chmod(self.dir, 0o755)
        self.procs = []

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def start(self, name, argv, stdout=None):
        logf = open(self.path(name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=stdout or logf, stderr=logf,
                             stdin=subprocess.DEVNULL, preexec_fn=raise_limits,
                             cwd=self.dir, text=True)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            self.stop(p)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


def gen_certs(t):
    def req(key, cert, cn, extra):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-subj",
                        "/CN=" + cn, "-days", "2", "-keyout", t.path(key),
                        "-out", t.path(cert)] + extra,
                       check=True, capture_output=True, timeout=30)
    req("sink.key", "sink.pem", NAME, ["-addext", "subjectAltName=DNS:" + NAME])
    # Squid insists on a CA for an ssl-bump port even when it only splices.
    req("squid-ca.key", "squid-ca.pem", "bench squid CA", [])
    for f in os.listdir(t.dir):
        os.chmod(t.path(f), 0o644)


# --- the systems under test -------------------------------------------------

def start_ours(t, sink_port, dns_port, tag, exe=None):
    exe = exe or os.path.join(BUILD, "bin", "sandbox-proxy")
    port = free_port()
    pol = t.write(tag + ".policy.yaml", (
        "version: 1\nmode: enforce\nallow:\n"
        "  - host: %s\n    ports: [%d]\n"
        "  - cidr: 127.0.0.0/8\n    ports: [%d]\n") % (NAME, sink_port, sink_port))
    wire_port = free_port()
    argv = unpriv([exe, "--policy", pol, "--audit", t.path(tag + ".audit.jsonl"),
                   "--resolver", "127.0.0.1:%d" % dns_port,
                   "--http-proxy", "tcp:127.0.0.1:%d" % port,
                   "--listen", "tcp:127.0.0.1:%d" % wire_port,
                   # the same connection limit haproxy and tinyproxy get
                   "--max-conns", str(IDLE + 50)]
                  + (PROXY_ARGS if exe is None else BASE_PROXY_ARGS))
    os.chmod(t.dir, 0o777)  # the audit log is created by nobody
    p = t.start(tag, argv)
    return p, port, {"wire_port": wire_port}


def start_base(t, sink_port, dns_port, tag):
    return start_ours(t, sink_port, dns_port, tag, exe=BASE_PROXY)


def start_haproxy(t, sink_port, dns_port, tag):
    port = free_port()
    cfg = t.write(tag + ".cfg", """
global
    maxconn %(maxconn)d
    log stdout format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    maxconn %(maxconn)d
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend tls_in
    bind 127.0.0.1:%(port)d
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_sni -i %(name)s }
    tcp-request content reject
    default_backend sink
backend sink
    server s1 127.0.0.1:%(sink)d
""" % {"port": port, "name": NAME, "sink": sink_port, "maxconn": IDLE + 50})
    p = t.start(tag, unpriv(["haproxy", "-db", "-f", cfg]))
    return p, port, {}


def start_squid(t, sink_port, dns_port, tag):
    port = free_port()
    hosts = t.write("squid.hosts", "127.0.0.1 %s\n" % NAME)
    cfg = t.write("squid.conf", """
http_port 127.0.0.1:%(port)d ssl-bump tls-cert=%(dir)s/squid-ca.pem tls-key=%(dir)s/squid-ca.key generate-host-certificates=off
acl localnet src 127.0.0.0/8
acl bench_port port %(sink)d
acl bench_host dstdomain %(name)s
acl CONNECT method CONNECT
acl step1 at_step SslBump1
acl bench_sni ssl::server_name %(name)s
http_access deny CONNECT !bench_port
http_access deny CONNECT !bench_host
http_access allow localnet
http_access deny all
ssl_bump peek step1
ssl_bump splice bench_sni
ssl_bump terminate all
hosts_file %(hosts)s
# Never ask the system's resolver (it is off-host): loopback only.
dns_nameservers 127.0.0.1
cache deny all
cache_mem 8 MB
max_filedescriptors %(nofile)d
pid_filename %(dir)s/squid.pid
cache_log %(dir)s/squid-cache.log
access_log stdio:%(dir)s/squid-access.log
coredump_dir %(dir)s
pinger_enable off
visible_hostname bench
shutdown_lifetime 1 seconds
client_persistent_connections off
read_timeout 10 minutes
client_lifetime 1 hour
""" % {"port": port, "dir": t.dir, "sink": sink_port, "name": NAME,
           "hosts": hosts, "nofile": min(NOFILE_HARD, 65536)})
    os.chmod(t.dir, 0o777)
    p = t.start("squid", unpriv(["squid", "-N", "-d", "1", "-f", cfg]))
    return p, port, {}


def start_tinyproxy(t, sink_port, dns_port, tag):
    port = free_port()
    filt = t.write("tinyproxy.filter", "^%s$\n" % NAME.replace(".", "\\."))
    cfg = t.write("tinyproxy.conf", """
Port %(port)d
Listen 127.0.0.1
Timeout 600
MaxClients %(maxconn)d
LogFile "%(dir)s/tinyproxy-access.log"
LogLevel Info
PidFile "%(dir)s/tinyproxy.pid"
Allow 127.0.0.1
ConnectPort %(sink)d
Filter "%(filt)s"
FilterType ere
FilterDefaultDeny Yes
""" % {"port": port, "dir": t.dir, "sink": sink_port, "filt": filt, "maxconn": IDLE + 50})
    os.chmod(t.dir, 0o777)
    # tinyproxy resolves with getaddrinfo(); give it a private /etc/hosts in a
    # mount namespace of its own instead of touching the system's.
    # Its resolv.conf points at loopback so that no lookup leaves the host.
    hosts = t.write("tinyproxy.hosts", "127.0.0.1 %s localhost\n" % NAME)
    resolv = t.write("tinyproxy.resolv", "nameserver 127.0.0.1\n")
    inner = " ".join(unpriv(["tinyproxy", "-d", "-c", cfg]))
    argv = ["unshare", "-m", "sh", "-c",
            "mount --bind %s /etc/hosts && mount --bind %s /etc/resolv.conf"
            " && exec %s" % (hosts, resolv, inner)]
    p = t.start("tinyproxy", argv)
    return p, port, {}


# name, how tls_bench reaches the sink through it, starter
SYSTEMS = [
    ("direct", "direct", None),
    ("sandbox-proxy", "connect", start_ours),
    ("sandbox-proxy/wire", "wire", start_ours),
    ("haproxy", "sni", start_haproxy),
    ("squid", "connect", start_squid),
    ("tinyproxy", "connect", start_tinyproxy),
]
if BASE_PROXY:
    SYSTEMS[3:3] = [("sandbox-proxy@base", "connect", start_base),
                    ("sandbox-proxy/wire@base", "wire", start_base)]
# The no-crypto workload: the proxies that route by name without touching
# the payload, against their own instances on the plain echo sink.
HELLO_SYSTEMS = ("direct", "sandbox-proxy", "sandbox-proxy/wire",
                 "sandbox-proxy@base", "sandbox-proxy/wire@base", "haproxy")


def hello_bench(mode, to, target):
    argv = [os.path.join(TOOLS, "hello_bench"), "rate", "--mode", mode,
            "--to", "127.0.0.1:%d" % to, "--conc", str(HELLO_CONC),
            "--seconds", str(SECONDS)] + (["--target", target] if target else [])
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=SECONDS + 30, preexec_fn=raise_limits)
    except subprocess.TimeoutExpired:
        return {"test": "hello", "ok": False, "error": "hello_bench timed out"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"test": "hello", "ok": False,
                "error": "hello_bench failed: " + (r.stderr.strip() or "no output")[:200]}


def tls_bench(test, mode, to, extra, timeout):
    argv = [os.path.join(TOOLS, "tls_bench"), test, "--mode", mode,
            "--to", "127.0.0.1:%d" % to] + extra
    try:
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=timeout, preexec_fn=raise_limits)
    except subprocess.TimeoutExpired:
        return {"test": test, "ok": False, "error": "tls_bench timed out"}
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"test": test, "ok": False,
                "error": "tls_bench failed: " + (r.stderr.strip() or "no output")[:200]}


class System:
    """One column of the table: a running proxy (or none) and its results."""

    def __init__(self, name, mode, starter):
        self.name, self.mode, self.starter = name, mode, starter
        self.tag = name.replace("/", "-")
        self.proc = None
        self.port = None
        self.res = {"system": name, "mode": mode, "rounds": []}

    def start(self, t, sink_port, dns_port):
        self.port = sink_port
        if not self.starter:
            return True
        try:
            self.proc, self.port, info = self.starter(t, sink_port, dns_port, self.tag)
        except (OSError, subprocess.SubprocessError) as e:
            self.res["error"] = "could not start: %s" % e
            return False
        err = wait_port(self.port, self.proc)
        if not err and self.mode == "wire":
            self.port = info["wire_port"]
            err = wait_port(self.port, self.proc)
        if err:
            self.res["error"] = "%s (log: %s)" % (err, tail(t, self.tag))
            t.stop(self.proc)
            self.proc = None
            return False
        return True

    def args(self, t, sink_port):
        target = {"connect": "%s:%d" % (NAME, sink_port),
                  "wire": "127.0.0.1:%d" % sink_port}.get(self.mode)
        return ["--ca", t.path("sink.pem")] + (["--target", target] if target else [])

    def alive(self, t):
        if self.proc and self.proc.poll() is not None:
            self.res["error"] = "died during the run (log: %s)" % tail(t, self.tag)
            self.proc = None
        return not self.starter or self.proc is not None


def run_idle(t, s, sink_port):
    pids = ["--pids", str(s.proc.pid)] if s.proc else []
    log("%s: %d idle tunnels" % (s.name, IDLE))
    s.res["idle"] = tls_bench("idle", s.mode, s.port, s.args(t, sink_port) + pids +
                              ["--count", str(IDLE), "--timeout", str(IDLE_TIMEOUT)],
                              IDLE_TIMEOUT + 30)
    time.sleep(1.5)  # let the proxy tear the idle tunnels down


def run_hello_round(s, hello_port):
    target = {"connect": "%s:%d" % (NAME, hello_port),
              "wire": "127.0.0.1:%d" % hello_port}.get(s.mode)
    s.res.setdefault("hello_rounds", []).append(
        hello_bench(s.mode, s.port, target))


def run_round(t, s, sink_port):
    a = s.args(t, sink_port)
    r = {}
    r["rate"] = tls_bench("rate", s.mode, s.port, a +
                          ["--conc", str(CONC), "--seconds", str(SECONDS),
                           "--timeout", "10"], SECONDS + 30)
    r["bulk"] = tls_bench("bulk", s.mode, s.port, a +
                          ["--bytes", str(BYTES), "--timeout", "30"], 40)
    r["latency"] = tls_bench("latency", s.mode, s.port, a +
                             ["--count", str(RTT), "--timeout", "30"], 40)
    s.res["rounds"].append(r)


def median_of_rounds(s):
    """Per test and key, the median over the rounds that succeeded."""
    for test in ("rate", "bulk", "latency", "hello"):
        if test == "hello":
            runs = s.res.get("hello_rounds", [])
            if not runs:
                continue
        else:
            runs = [r[test] for r in s.res["rounds"] if test in r]
        good = [x for x in runs if x.get("ok")]
        if not good:
            s.res[test] = runs[-1] if runs else {"ok": False, "error": "not run"}
            continue
        agg = dict(good[0])
        for k, v in good[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals = sorted(x[k] for x in good)
                agg[k] = vals[len(vals) // 2]
        agg["rounds_ok"] = len(good)
        agg["rounds"] = len(runs)
        bad = [x for x in runs if not x.get("ok")]
        if bad:
            agg["error"] = bad[0].get("error", "failed")
        s.res[test] = agg


def tail(t, name):
    try:
        with open(t.path(name + ".log")) as f:
            return " | ".join(f.read().strip().splitlines()[-3:])[:300]
    except OSError:
        return "no log"


# --- the table ----------------------------------------------------------------

def metric(res, test, key):
    r = res.get(test) or {}
    v = r.get(key)
    if key == "mib_10k":
        v = r.get("kib_per_tunnel")
        v = None if v is None else v * 10000 / 1024
    if v is None or v < 0:
        return None
    if test == "idle" and not r.get("established"):
        return None
    if test in ("rate", "bulk", "latency", "hello") and not r.get("ok"):
        return None
    return v


ROWS = [
    # label, test, key, higher is better, unit, ratio against
    ("no-crypto tunnels/s", "hello", "per_sec", True, "/s", "direct"),
    ("no-crypto setup p50", "hello", "setup_p50_ms", False, "ms", "direct"),
    ("new TLS tunnels/s", "rate", "per_sec", True, "/s", "direct"),
    ("tunnel setup p50", "rate", "setup_p50_ms", False, "ms", "direct"),
    ("bulk, one tunnel", "bulk", "mib_per_sec", True, "MiB/s", "direct"),
    ("echo RTT p50", "latency", "p50_us", False, "us", "direct"),
    ("echo RTT p99", "latency", "p99_us", False, "us", "direct"),
    ("added latency p50", "latency", "p50_us", False, "us", "added"),
    ("added latency p99", "latency", "p99_us", False, "us", "added"),
    ("memory per idle tunnel", "idle", "kib_per_tunnel", False, "KiB", "ours"),
    ("memory, 10,000 idle tunnels", "idle", "mib_10k", False, "MiB", "ours"),
    ("idle tunnels held", "idle", "established", True, "", None),
]


def fmt_num(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return "%.0f" % v
    if abs(v) >= 10:
        return "%.1f" % v
    return "%.2f" % v


def build_table(results):
    by = {r["system"]: r for r in results}
    names = [r["system"] for r in results]
    base = by.get("direct", {})
    ours = by.get("sandbox-proxy", {})
    proxies = [n for n in names if n != "direct"]
    head = ["metric"] + names + ["best proxy"]
    rows = []
    for label, test, key, higher, unit, against in ROWS:
        cells = [label + (" (%s)" % unit if unit else "")]
        vals = {}
        for n in names:
            v = metric(by[n], test, key)
            if against == "added":
                b = metric(base, test, key)
                v = None if (v is None or b is None or n == "direct") else v - b
            vals[n] = v
            if v is None:
                cells.append("-")
                continue
            ref = None
            if against == "direct" and n != "direct":
                ref = metric(base, test, key)
            elif against == "ours" and not n.startswith("sandbox-proxy"):
                ref = metric(ours, test, key)
            cell = fmt_num(v)
            if ref:
                cell += " (%.2fx%s)" % (v / ref, "" if against == "direct" else " ours")
            cells.append(cell)
        cand = [(vals[n], n) for n in proxies if vals.get(n) is not None]
        if cand:
            best = (max if higher else min)(cand)
            tied = [n for v, n in cand if v == best[0]]
            cells.append(best[1] if len(tied) == 1 else "tie")
        else:
            cells.append("-")
        rows.append(cells)
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    out = [line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
    return "\n".join(out)


def notes(results):
    out = []
    for r in results:
        if r.get("error"):
            out.append("%s: %s" % (r["system"], r["error"]))
        for test in ("idle", "rate", "bulk", "latency", "hello"):
            x = r.get(test)
            if not x:
                continue
            if test == "idle" and x.get("established", 0) < x.get("target", 0):
                out.append("%s: idle: held %d of %d tunnels (%s)" % (
                    r["system"], x.get("established", 0), x.get("target", 0),
                    x.get("error", "failed")))
            elif test == "idle" and x.get("alive", 0) < x.get("probed", 0):
                out.append("%s: idle: only %d of %d probed tunnels still echoed" % (
                    r["system"], x.get("alive", 0), x.get("probed", 0)))
            elif (not x.get("ok") or x.get("errors")
                  or x.get("rounds_ok", 1) < x.get("rounds", 1)):
                out.append("%s: %s: %s (errors: %s, rounds ok: %s/%s)" % (
                    r["system"], test, x.get("error", "failed"), x.get("errors", "-"),
                    x.get("rounds_ok", 0), x.get("rounds", "-")))
    return out


def main():
    for tool in ("tls_bench", "tls_sink", "hello_bench"):
        if not os.access(os.path.join(TOOLS, tool), os.X_OK):
            sys.exit("bench: %s/%s missing; run `make tests-build` first" % (TOOLS, tool))
    raise_limits()
    os.makedirs(OUT, exist_ok=True)
    t = Tmp()
    results = []
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        gen_certs(t)
        sink = t.start("tls_sink", [os.path.join(TOOLS, "tls_sink"), "--cert",
                                     t.path("sink.pem"), "--key", t.path("sink.key")],
                       stdout=subprocess.PIPE)
        line = sink.stdout.readline().split()
        if len(line) != 4 or line[1] != "ready":
            sys.exit("bench: tls_sink did not start: " + tail(t, "tls_sink"))
        sink_port = int(line[3])
        dns_port = free_port()
        dns = t.start("dnsmasq", ["dnsmasq", "--no-daemon", "--port=%d" % dns_port,
                                  "--listen-address=127.0.0.1", "--bind-interfaces",
                                  "--no-resolv", "--no-hosts", "--user=nobody",
                                  "--pid-file=", "--address=/%s/127.0.0.1" % NAME])
        time.sleep(0.2)
        if dns.poll() is not None:
            sys.exit("bench: dnsmasq did not start: " + tail(t, "dnsmasq"))
        ours = os.path.join(BUILD, "bin", "sandbox-proxy")
        systems = []
        for name, mode, starter in SYSTEMS:
            if ONLY and name not in ONLY:
                continue
            if starter is start_ours and not os.access(ours, os.X_OK):
                log("%s: skipped, %s not built" % (name, ours))
                continue
            systems.append(System(name, mode, starter))
        # Everything runs at once on its own ports and the measurements
        # are interleaved, so background load on a shared machine hits
        # every system alike instead of whichever one ran at the time.
        live = [s for s in systems if s.start(t, sink_port, dns_port)]
        # the no-crypto workload: each system again, on the echo sink
        hello = []
        if "hello" in PARTS:
            hsink = t.start("hello_sink", [os.path.join(TOOLS, "hello_bench"), "sink"],
                            stdout=subprocess.PIPE)
            line = hsink.stdout.readline().split()
            if len(line) != 4 or line[1] != "ready":
                sys.exit("bench: hello sink did not start: " + tail(t, "hello_sink"))
            hello_port = int(line[3])
            for s in live:
                if s.name not in HELLO_SYSTEMS:
                    continue
                h = System(s.name, s.mode, s.starter)
                h.tag = s.tag + "-hello"
                h.res = s.res  # results land in the same column
                if h.start(t, hello_port, dns_port):
                    hello.append(h)
        if "tls" in PARTS:
            for s in live:
                run_idle(t, s, sink_port)
        for rnd in range(ROUNDS):
            for s in live if "tls" in PARTS else []:
                if s.alive(t):
                    log("%s: round %d/%d (tunnels/s %gs, bulk %d MiB, %d round trips)" % (
                        s.name, rnd + 1, ROUNDS, SECONDS, BYTES >> 20, RTT))
                    run_round(t, s, sink_port)
            for h in hello:
                if h.alive(t):
                    log("%s: no-crypto round %d/%d (%d clients, %gs)" % (
                        h.name, rnd + 1, ROUNDS, HELLO_CONC, SECONDS))
                    run_hello_round(h, hello_port)
        for s in systems:
            s.alive(t)
            median_of_rounds(s)
            results.append(s.res)
    finally:
        t.cleanup()

    table = build_table(results)
    head = ("egress proxy benchmark, %s, %s, %d CPUs, loopback\n"
            "workload: TLS 1.3 to tls_sink (ECDSA P-256, no resumption) via each system;\n"
            "median of %d interleaved rounds: tunnels/s with %d clients for %gs;\n"
            "bulk %d MiB; %d echo round trips of 64 B. Once per system:\n"
            "%d idle tunnels, memory = Pss of the proxy's processes, after minus before.\n"
            "ratios: (Nx) vs direct; memory (Nx ours) vs sandbox-proxy. The client, the\n"
            "backend and the proxy share the CPUs, and the TLS handshake CPU is spent in\n"
            "client and backend, so tunnels/s ratios are compressed towards 1.\n"
            "no-crypto: %d clients, each connect, preface, a ClientHello answered by a\n"
            "plain TCP sink, close (hello_bench): what the proxy itself costs.\n" % (
                started.strftime("%Y-%m-%d %H:%M UTC"), platform.node(),
                os.cpu_count(), ROUNDS, CONC, SECONDS, BYTES >> 20, RTT, IDLE,
                HELLO_CONC))
    n = notes(results)
    text = head + "\n" + table + "\n" + ("\nnotes:\n  " + "\n  ".join(n) + "\n" if n else "")
    print(text)
    with open(os.path.join(OUT, "proxy.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "proxy.json"), "w") as f:
        json.dump({"date": started.isoformat(), "cpus": os.cpu_count(),
                   "params": {"rounds": ROUNDS, "seconds": SECONDS, "conc": CONC, "bytes": BYTES,
                              "rtt": RTT, "idle": IDLE, "hello_conc": HELLO_CONC,
                              "parts": PARTS},
                   "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
