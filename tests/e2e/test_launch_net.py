"""End-to-end network checks through sandbox-launch: one guest boot (TCG)
runs a probe script as the sandbox user; the host side has dnsmasq as the
resolver and servers on loopback only (127.0.0.0/8).

- allowed.test (--allow on the command line, plus a `cidr: 127.0.0.2/32`
  rule for port 443 in a policy file): DNS gives a synthetic 198.18/15
  address, curl over HTTPS with the test CA gets the page.
- denied.test (a deny rule): DNS finds nothing, curl fails, the server
  never sees a connection.
- loop.test: its name is allowed on a port, but it resolves to loopback and
  no cidr rule covers that port: refused, the host service sees nothing.
- a direct-IP connection (an address the proxy never handed out) and UDP
  both fail.
- allowed.test on a port whose server takes only P-384: curl's X25519 key
  share gets a HelloRetryRequest, and its second ClientHello passes the
  proxy's retry check (docs/design.md, decision path step 3).
The audit log in the run directory has the matching records; with
--audit-max-bytes 8192 it is rotated while the guest runs (40 more denied
lookups), and the rotated set is one intact chain.
"""
import os
import socket
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import Env, leftovers, require  # noqa: E402

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402  (dnsmasq, the test CA: shared test helpers)


PROBE = r"""
say() { echo "CHECK $1=$2"; }
set -- $(getent hosts allowed.test); say dns_allowed "$1"
getent hosts denied.test >/dev/null; say dns_denied "$?"
say curl_allowed "$(curl -sS --max-time 30 --cacert ca.pem https://allowed.test/ 2>&1)"
curl -sS --max-time 30 --cacert ca.pem https://denied.test/ >/dev/null 2>&1; say curl_denied "$?"
say curl_hrr "$(curl -sS --max-time 30 --cacert ca.pem https://allowed.test:HRRPORT/ 2>&1)"
say loop_page "$(curl -sS --max-time 30 http://loop.test:LOOPPORT/ 2>&1 | head -c 300 | tr '\n' ' ')"
curl -fsS --max-time 30 http://loop.test:LOOPPORT/ >/dev/null 2>&1; say curl_loop "$?"
curl -sS --max-time 30 -k https://198.18.250.250/ >/dev/null 2>&1; say curl_ip "$?"
for i in $(seq 40); do getent hosts "n$i.rotate.test" >/dev/null; done
say udp "$(python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
for a in ("198.18.0.1", "192.0.2.1"):
    try:
        s.sendto(b"x", (a, UDPPORT))
    except OSError as e:
        pass
try:
    s.recv(100); print("reply")
except OSError:
    print("none")
')"
"""


@pytest.fixture(scope="module")
def net():
    require()
    e = Env()
    procs = sbxtest.Procs()
    pki = sbxtest.make_pki(os.path.join(e.root, "pki"))
    dns = sbxtest.Dnsmasq(procs, e.root)
    allowed_hits, denied_hits, loop_hits = (sbxtest.Recorder(), sbxtest.Recorder(),
                                            sbxtest.Recorder())
    servers = []
    try:
        servers.append(sbxtest.recording_server("127.0.0.2", 443, allowed_hits,
                                                pki["cert"], pki["key"], b"hello-allowed"))
        loop_port = sbxtest.free_port("127.0.0.2")
        # P-384 only: the guest's curl offers an X25519 key share, so
        # this server answers with a HelloRetryRequest (RFC 8446 4.1.4).
        hrr_port = sbxtest.free_port("127.0.0.2")
        servers.append(sbxtest.recording_server("127.0.0.2", hrr_port, sbxtest.Recorder(),
                                                pki["cert"], pki["key"], b"hello-retry",
                                                groups="secp384r1"))
        servers.append(sbxtest.recording_server("127.0.0.2", loop_port, loop_hits,
                                                body=b"loop"))
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(0.5)
        udp_port = udp.getsockname()[1]
        sbxtest.copy_ca(e, pki, os.path.join(e.ws, "ca.pem"))
        sbxtest.ws_file(e, "policy.yaml",
                        "version: 1\nallow:\n"
                        "  - host: loop.test\n    ports: [%d]\n"
                        "  - host: allowed.test\n    ports: [%d]\n"
                        "  - cidr: 127.0.0.2/32\n    ports: [%d]\n"
                        "  - cidr: 127.0.0.2/32\n    ports: [443]\n"
                        "deny:\n  - denied.test\n" % (loop_port, hrr_port, hrr_port))
        sbxtest.ws_file(e, "probe.sh", PROBE.replace("LOOPPORT", str(loop_port))
                        .replace("HRRPORT", str(hrr_port))
                        .replace("UDPPORT", str(udp_port)))
        r = e.run(["--policy", "policy.yaml", "--allow", "allowed.test",
                   "--resolver", "127.0.0.1:%d" % dns.port, "--name", "nettest",
                   "--audit-max-bytes", "8192", "--audit-keep", "100",
                   "--", "sh", "probe.sh"], stdin=open(os.devnull))
        run = sbxtest.finished(e, r)
        try:
            udp.recv(100)
            udp_got = True
        except OSError:
            udp_got = False
        # audit: the rotated set, oldest first (audit.jsonl.N ... .1, audit.jsonl)
        yield {"r": r, "out": run["out"], "checks": run["checks"],
               "audit": run["audit"], "audit_files": run["audit_files"],
               "hits": tuple(len(h.snapshot()) for h in
                             (allowed_hits, denied_hits, loop_hits)),
               "udp_got": udp_got, "env": e}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        procs.kill_all()
        e.cleanup()


def test_run_succeeds(net):
    assert net["r"].returncode == 0, (net["out"], net["r"].stderr)
    assert leftovers(net["env"].uid) == []


def test_dns_as_designed(net):
    c = net["checks"]
    assert c.get("dns_allowed", "").startswith("198.18."), c
    assert c.get("dns_denied") == "2", c  # getent: not found


def test_allowed_https_reaches_host_site(net):
    assert net["checks"].get("curl_allowed") == "hello-allowed", net["checks"]
    assert net["hits"][0] == 1


def test_https_through_a_hello_retry(net):
    """A server that asks for another key share: the guest's curl sends a
    second ClientHello, which the proxy checks and lets through."""
    assert net["checks"].get("curl_hrr") == "hello-retry", net["out"]


def test_denied_and_unruled_loopback_refused(net):
    c = net["checks"]
    assert c.get("curl_denied") not in (None, "0"), c
    assert c.get("curl_loop") not in (None, "0"), c
    assert net["hits"][2] == 0, "the loopback service must not be reached"
    # plain HTTP gets the proxy's 403 page, never the service's body
    assert "loop" != c.get("loop_page"), c


def test_direct_ip_and_udp_fail(net):
    c = net["checks"]
    assert c.get("curl_ip") not in (None, "0"), c
    assert c.get("udp") == "none", c
    assert not net["udp_got"]


def test_audit_log_rotates_and_stays_one_chain(net):
    files = net["audit_files"]
    assert len(files) >= 2, f"--audit-max-bytes 8192 did not rotate: {files}"
    assert all(os.path.getsize(f) <= 8192 for f in files), \
        [(f, os.path.getsize(f)) for f in files]
    tool = os.path.join(os.environ.get("SANDBOX_BUILD", "build"), "bin",
                        "sandbox-audit")
    v = subprocess.run([tool, "verify", "--strict", files[-1]],
                       capture_output=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
    hosts = {x.get("host") for x in net["audit"] if x.get("event") == "dns"}
    assert {f"n{i}.rotate.test" for i in range(1, 41)} <= hosts


def test_audit_records_match(net):
    a = net["audit"]
    assert a, "no audit records"
    assert all(x.get("sandbox") == "nettest" for x in a)

    def has(**kw):
        return any(all(x.get(k) == v for k, v in kw.items()) for x in a)

    assert has(event="dns", host="allowed.test", decision="allow"), a
    assert has(event="dns", host="denied.test", decision="deny"), a
    assert has(event="connect", host="allowed.test", port=443, decision="allow"), a
    assert has(event="connect", host="loop.test", decision="deny"), a
    loop = [x for x in a if x.get("event") == "connect" and x.get("host") == "loop.test"]
    assert "loopback" in loop[0].get("reason", ""), loop
