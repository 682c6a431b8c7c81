#!/usr/bin/python3
"""Write the examples of docs/audit-log.md from a real run.

Starts dnsmasq, a TLS and an HTTP origin and three sandbox-proxy processes
(one in mode: report, one inspecting a host), all on loopback (127.0.0.1 and 127.0.0.2); makes
allowed, denied and refused connections and DNS queries through them; and
replaces what stands between the markers

    <!-- audit-examples:begin -->
    <!-- audit-examples:end -->

in the document with the records the proxies wrote, one per example. Only
what differs from run to run is normalised, so that a run on an unchanged
tree leaves the document byte-identical: times (one fixed base, one
millisecond apart in the examples' order; an aggregate's `first`, `last`
and `time` three in a row), ports (the origins' random ports become 443,
80 and 22), the policy file's temporary path, the sandbox name and the
upstream address. The fields that vary with timing and with the per-run
certificates (VOLATILE: `duration_ms`, byte counts, a flood's `count`)
keep the document's current value when the rest of the record is
unchanged, and take the new run's otherwise. Every other field, reason
strings included, is what the proxy wrote.

usage: audit_examples.py DOC
  SANDBOX_BUILD: the build directory (bin/sandbox-proxy, tools/wire_client)
`make test` does not run this (it needs the build and a few seconds);
tests/check_audit_doc.py checks every reason in the docs instead.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import sys
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SANDBOX_SRC") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

BUILD = os.path.abspath(os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build"))
BEGIN = "<!-- audit-examples:begin -->"
END = "<!-- audit-examples:end -->"
TIME_BASE = "2026-11-26T22:10:"
HASH_FIELDS = ("prev", "hash")
TIME_FIELDS = ("first", "last", "time")
VOLATILE = ("duration_ms", "bytes_up", "bytes_down", "count")


class Env:
    pass


def policy_text(env, mode="enforce"):
    t, h, b = env.tls.port, env.http.port, env.banner.port
    return (f"version: 1\nmode: {mode}\nallow:\n"
            f"  - host: allowed.test\n    ports: [{t}, {h}]\n"
            f"  - host: other.test\n    ports: [{t}]\n"
            # allowed by name, but no cidr: rule lets it reach 127.0.0.2 on
            # this port: refused by the address class
            f"  - host: www.allowed.test\n    ports: [{b}]\n"
            f"  - cidr: 127.0.0.2/32\n    ports: [{t}, {h}]\n"
            f"deny:\n  - host: denied.test\n    ports: [{t}, {h}]\n")


def connect_tunnel(p, target):
    """CONNECT through the explicit proxy: the status line."""
    with socket.create_connection(("127.0.0.1", p.http_port), timeout=10) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        status, _, _ = sbxtest.read_http_response(s)
        return status


def inspect_policy_text(env):
    t, h = env.tls.port, env.http.port
    return (f"version: 1\nmode: enforce\nallow:\n"
            f"  - host: allowed.test\n    ports: [{t}, {h}]\n    inspect: true\n"
            f"  - cidr: 127.0.0.2/32\n    ports: [{t}, {h}]\n")


def upstream_first(fw, origin):
    """A connection through the forwarder, once the proxy has connected
    it to the origin. The proxy resolves and connects while it waits for
    the client's first bytes; a client that spoke at once could have them
    read first, and the records say what was known at that moment (a
    `resolve` with the SNI, a refusal without `rule` and `addr`): a
    different example from run to run."""
    n = len(origin.accepted.snapshot())
    s = fw.connect()
    sbxtest.wait_until(lambda: len(origin.accepted.snapshot()) > n, 10,
                       what="the proxy's connection to the origin")
    return s


def tls_get(fw, sni, ca, path="/", origin=None):
    ctx = ssl.create_default_context(cafile=ca)
    with (upstream_first(fw, origin) if origin else fw.connect()) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {sni}\r\n"
                      "Connection: close\r\n\r\n".encode())
            return sbxtest.read_http_response(s)[0]


def dns_flood(p, name, n):
    """n identical queries on one DNS stream: one record, then aggregates."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(p.sock)
    s.sendall(b"SBXW\x01\x02\x00\x00" + bytes(20))
    q = sbxtest.dns_question(name, 1)
    s.sendall((len(q).to_bytes(2, "big") + q) * n)
    s.settimeout(10)
    got = b""
    while got.count(b"\x42\x42") < n and len(got) < 2 * n * (len(q) + 2):
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()


def run(env):
    """Make the traffic; return {example key: record}."""
    ex = {}
    p = sbxtest.Proxy(env, "myrepo-1", [policy_text(env)])
    r = sbxtest.Proxy(env, "myrepo-1-report", [policy_text(env, "report")])
    ca = os.path.join(env.workdir, "sandbox-ca.pem")
    i = sbxtest.Proxy(env, "myrepo-1-inspect", [inspect_policy_text(env)],
                      args=["--ca-out", ca, "--upstream-ca", env.pki["ca"]])
    try:
        ex["policy-loaded"] = p.wait_record(event="policy")

        # DNS: allowed, denied, denied many times (aggregated)
        p.dns("allowed.test")
        ex["dns-allow"] = p.wait_record(event="dns", host="allowed.test")
        p.dns("denied.test")
        ex["dns-deny"] = p.wait_record(event="dns", host="denied.test")
        dns_flood(p, "nowhere.test", 2000)
        ex["dns-aggregate"] = p.wait_record(event="dns", host="nowhere.test",
                                            count=lambda c: c, timeout=10)

        # TLS to an allowed name through the guest's path (synthetic
        # address), then the same name with another SNI
        synth = p.synth("allowed.test")
        with p.forwarder(f"{synth}:{env.tls.port}") as fw:
            assert tls_get(fw, "allowed.test", env.pki["ca"], origin=env.tls) == 200
            c = p.wait_record(event="connect", proto="tls", decision="allow")
            ex["resolve"] = p.wait_record(event="resolve", conn=c["conn"])
            ex["connect-tls-allow"] = c
            ex["close-allow"] = p.wait_record(event="close", conn=c["conn"])
            with fw.connect() as s:
                s.sendall(sbxtest.client_hello("other.test"))
                sbxtest.wait_closed(s, 10)
            d = p.wait_record(event="connect", decision="deny", sni="other.test")
            ex["connect-sni-deny"] = d
            ex["close-deny"] = p.wait_record(event="close", conn=d["conn"])
            # a hostile SNI: the same ClientHello with control bytes, a
            # quote and invalid UTF-8 in the name (same length)
            hello = sbxtest.client_hello("xxxxxxxx.test")
            hello = hello.replace(b"xxxxxxxx.test", b'x\x1b[2J\xff"}.test')
            with upstream_first(fw, env.tls) as s:
                s.sendall(hello)
                sbxtest.wait_closed(s, 10)
            ex["connect-hostile-sni"] = p.wait_record(
                event="connect", decision="deny",
                reason=lambda v: v is not None and "server_name" in v)

        # the explicit proxy: CONNECT to a denied name; to an allowed name
        # that resolves to an address no cidr: rule allows on that port
        assert connect_tunnel(p, f"denied.test:{env.tls.port}") == 403
        ex["connect-deny-rule"] = p.wait_record(event="connect", host="denied.test")
        assert connect_tunnel(p, f"www.allowed.test:{env.banner.port}") == 403
        ex["connect-refused-address"] = p.wait_record(event="connect",
                                                      host="www.allowed.test")

        # report mode: plain HTTP to a name no rule allows
        cur = sbxtest.curl(env, "-x", r.http_proxy_url(), f"http://would.test:{env.http.port}/")
        assert cur.returncode == 0, cur.stderr
        ex["connect-would-deny"] = r.wait_record(event="connect", host="would.test")

        # an inspected host: the proxy terminates TLS with the sandbox CA
        # and records each request head, without its query string
        synth = i.synth("allowed.test")
        with i.forwarder(f"{synth}:{env.tls.port}") as fw:
            assert tls_get(fw, "allowed.test", ca,
                           "/repo.git/info/refs?service=git-upload-pack") == 200
        ex["request"] = i.wait_record(event="request")
        # the same host in plain HTTP: read in clear, recorded alike
        with i.forwarder(f"{synth}:{env.http.port}") as fw, fw.connect() as s:
            s.sendall(b"GET /index.html?lang=en HTTP/1.1\r\nHost: allowed.test\r\n"
                      b"Connection: close\r\n\r\n")
            assert sbxtest.read_http_response(s)[0] == 200
        ex["request-http"] = i.wait_record(event="request", proto="http")

        # a reload that fails keeps the old policy
        with open(p.policy, "w") as f:
            f.write("version: 1\nalow:\n  - host: x.test\n")
        os.kill(p.pid, signal.SIGHUP)
        ex["policy-reload-failed"] = p.wait_record(event="policy", decision="deny")
    finally:
        p.stop()
        r.stop()
        i.stop()
    ex["log-closed"] = [x for x in p.audit() if x.get("event") == "log"][-1]
    return ex, {p.policy: "policy.yaml", r.policy: "policy.yaml",
                i.policy: "policy.yaml"}


EXAMPLES = [
    ("policy-loaded", "The policy loaded at start:"),
    ("dns-allow", "DNS, allowed (written before the name is sent upstream; then "
                  "answered with a synthetic address, or NXDOMAIN when the upstream "
                  "says the name does not exist):"),
    ("dns-deny", "DNS, denied by a `deny:` rule (answered NXDOMAIN, never sent upstream):"),
    ("dns-aggregate", "DNS, denied, repeated: the identical queries after the first "
                      "record of a flood, within one second, as one aggregate "
                      "(`count`, `first`, `last`):"),
    ("resolve", "The proxy about to resolve a connection's name itself, before the "
                "lookup (a `cached answer` or `address, no lookup` reason when it "
                "needs none):"),
    ("connect-tls-allow", "Connect, TLS, allowed (through the guest's path: the "
                          "synthetic address the guest got from DNS):"),
    ("close-allow", "Close of that connection:"),
    ("connect-sni-deny", "Connect, TLS, denied because the SNI names another host "
                         "than the one the guest looked up:"),
    ("close-deny", "Close of that denied connection:"),
    ("connect-hostile-sni", "A ClientHello whose server_name holds control bytes, a quote "
                            "and invalid UTF-8 (`x\\x1b[2J\\xff\"}.test`): refused as "
                            "malformed, and the name is not written to the log at all:"),
    ("connect-deny-rule", "Connect, explicit proxy CONNECT, denied by a deny rule:"),
    ("connect-refused-address", "Connect, allowed name that resolves to an address "
                                "(here loopback) that no `cidr:` rule allows on that "
                                "port:"),
    ("connect-would-deny", "Connect, plain HTTP, let through in `mode: report` "
                           "although no rule allows it:"),
    ("request", "A request head on a connection to an inspected host (`inspect: "
                "true`), written before it is forwarded: the method and the path, "
                "never the query string or a header value:"),
    ("request-http", "The same for plain HTTP to that host (`intercepted` is "
                     "absent: nothing was decrypted):"),
    ("policy-reload-failed", "A reload that failed (the old policy stays in force):"),
    ("log-closed", "The last record of a clean exit:"),
]


def normalise(rec, env, paths, clock):
    """The record as the document shows it; clock(field) gives a time."""
    out = {}
    for k, v in rec.items():
        if k in HASH_FIELDS:
            continue
        if k in TIME_FIELDS:
            v = clock(k)
        elif k == "port":
            v = {env.tls.port: 443, env.http.port: 80, env.banner.port: 22}.get(v, v)
        elif k == "rule" and isinstance(v, str):
            for path, name in paths.items():
                v = v.replace(path, name)
        elif k == "sandbox":
            v = "myrepo-1"
        elif k == "addr":
            v = "203.0.113.7"
        elif isinstance(v, str):
            for path, name in paths.items():
                v = v.replace(path, name)
            v = re.sub(r":(%d|%d|%d)\b" % (env.tls.port, env.http.port, env.banner.port),
                       lambda m: ":" + str({env.tls.port: 443, env.http.port: 80,
                                            env.banner.port: 22}[int(m.group(1))]), v)
        out[k] = v
    return out


def captions():
    return {key: textwrap.fill(caption, 76) for key, caption in EXAMPLES}


def shown(block):
    """{example key: record} as the document's block shows them now (an
    example whose caption changed is not found, and is written anew)."""
    old, lines = {}, block.split("\n")
    for key, cap in captions().items():
        cap = cap.split("\n")
        for n in range(len(lines) - len(cap) - 2):
            if lines[n:n + len(cap)] == cap and lines[n + len(cap) + 1] == "```json":
                try:
                    old[key] = json.loads(lines[n + len(cap) + 2])
                except ValueError:
                    pass
                break
    return old


def steady(rec, before):
    """rec with the VOLATILE values of before when nothing else differs."""
    if before is None or rec.keys() != before.keys():
        return rec
    if any(rec[k] != before[k] for k in rec if k not in VOLATILE):
        return rec
    return {k: before[k] if k in VOLATILE else v for k, v in rec.items()}


def render(ex, env, paths, old):
    slot = [0]

    def clocked(rec):
        """The times of one record: consecutive milliseconds, in the order
        first, last, time (the order an aggregate's are written in)."""
        mine = {f: slot[0] + n for n, f in
                enumerate(f for f in TIME_FIELDS if f in rec)}
        slot[0] += len(mine)
        return lambda f: (f"{TIME_BASE}{37 + mine[f] // 1000:02d}."
                          f"{mine[f] % 1000:03d}Z")
    caps = captions()
    parts = [BEGIN,
             "<!-- generated by `make audit-examples` (tests/tools/audit_examples.py)"
             " from a run on loopback; edit the script, not this text -->", ""]
    for key, _ in EXAMPLES:
        rec = normalise(ex[key], env, paths, clocked(ex[key]))
        rec = steady(rec, old.get(key))
        parts += [caps[key], "", "```json",
                  json.dumps(rec, ensure_ascii=True, separators=(",", ":")), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def main(argv):
    args = argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    doc = args[0]
    text = open(doc).read()
    if BEGIN not in text or END not in text:
        print(f"{doc}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    if shutil.which("dnsmasq") is None:
        os.environ["PATH"] += os.pathsep + "/usr/sbin"
    env = Env()
    env.src, env.build = SRC, BUILD
    env.proxy_bin = os.path.join(BUILD, "bin", "sandbox-proxy")
    env.wire_client = os.path.join(BUILD, "tools", "wire_client")
    for f in (env.proxy_bin, env.wire_client):
        if not os.access(f, os.X_OK):
            print(f"{f} is missing: run `make tests-build` first", file=sys.stderr)
            return 2
    env.workdir = tempfile.mkdtemp(prefix="sbxdoc-")
    env.procs = sbxtest.Procs()
    servers = []
    try:
        env.presets = os.path.join(env.workdir, "presets")
        os.makedirs(env.presets)
        env.pki = sbxtest.make_pki(os.path.join(env.workdir, "pki"))
        env.dns = sbxtest.Dnsmasq(env.procs, env.workdir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(env.pki["cert"], env.pki["key"])
        env.tls = sbxtest.OriginServer(sbxtest.UPSTREAM_IP, ctx)
        env.http = sbxtest.OriginServer(sbxtest.UPSTREAM_IP)
        env.banner = sbxtest.BannerServer(sbxtest.UPSTREAM_IP)
        servers = [env.tls, env.http]
        ex, paths = run(env)
        start, end = text.index(BEGIN), text.index(END) + len(END)
        block = render(ex, env, paths, shown(text[start:end]))
    finally:
        env.procs.kill_all()
        for s in servers:
            s.shutdown()
            s.server_close()
        if getattr(env, "banner", None):
            env.banner.close()
        shutil.rmtree(env.workdir, ignore_errors=True)
    new = text[:start] + block + text[end:]
    with open(doc + ".tmp", "w") as f:
        f.write(new)
    os.rename(doc + ".tmp", doc)
    print(f"{doc}: {len(EXAMPLES)} examples written"
          + ("" if new != text else " (unchanged)"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
