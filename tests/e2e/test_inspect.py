"""End-to-end inspection (docs/secrets.md, "Inspected hosts"): one TCG
guest boot, no secret at all, a policy file with `inspect: true` on
allowed.test. A recording HTTPS server on 127.0.0.2 (test CA, given as
--upstream-ca) serves allowed.test (inspected) and other.test (spliced).
The guest's curl trusts only its own bundle: allowed.test works because
the launcher installed the sandbox CA without any secret; the server's
record is the oracle for what left the host, the audit log for what was
recorded (method and path, never the query).
"""
import json
import os
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import LAUNCH, Env, leftovers, require  # noqa: E402,F401

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

TOK = "tok" + uuid.uuid4().hex

PROBE = r"""
say() { echo "CHECK $1=$2"; }
say inspected "$(curl -sS --max-time 60 https://allowed.test:PORT/insp?t=TOK 2>&1)"
say other_sandbox_ca "$(curl -sS --max-time 60 -o /dev/null --cacert /etc/ssl/certs/sandbox-ca.pem https://other.test:PORT/other-ca 2>&1; echo " rc=$?")"
say other "$(curl -sS --max-time 60 --cacert testca.pem https://other.test:PORT/other 2>&1)"
say constraints "$(openssl x509 -noout -text -in /etc/ssl/certs/sandbox-ca.pem | grep -A6 'Name Constraints' | tr -s ' \n' '  ')"
"""


@pytest.fixture(scope="module")
def insp():
    require()
    e = Env()
    procs = sbxtest.Procs()
    pki = sbxtest.make_pki(os.path.join(e.root, "pki"))
    dns = sbxtest.Dnsmasq(procs, e.root)
    seen = sbxtest.Recorder()
    servers = []
    try:
        tls = sbxtest.recording_server("127.0.0.2", 0, seen, pki["cert"], pki["key"],
                                       b"hello-inspect\n")
        servers.append(tls)
        port = tls.server_address[1]
        with open(os.path.join(e.ws, "testca.pem"), "wb") as f:
            f.write(open(pki["ca"], "rb").read())
        upstream_ca = os.path.join(e.root, "upstream-ca.pem")
        with open(upstream_ca, "wb") as f:
            f.write(open(pki["ca"], "rb").read())
        with open(os.path.join(e.ws, "policy.yaml"), "w") as f:
            f.write("version: 1\nallow:\n"
                    f"  - host: allowed.test\n    ports: [{port}]\n"
                    "    inspect: true\n"
                    f"  - host: other.test\n    ports: [{port}]\n"
                    f"  - cidr: 127.0.0.2/32\n    ports: [{port}]\n")
        with open(os.path.join(e.ws, "probe.sh"), "w") as f:
            f.write(PROBE.replace("PORT", str(port)).replace("TOK", TOK))
        for n in ("testca.pem", "policy.yaml", "probe.sh"):
            e.own(os.path.join(e.ws, n))
        e.own(upstream_ca)
        r = e.run(["--policy", "policy.yaml", "--upstream-ca", upstream_ca,
                   "--resolver", "127.0.0.1:%d" % dns.port, "--name", "inspecttest",
                   "--", "sh", "probe.sh"], stdin=open(os.devnull), timeout=420)
        out = r.stdout.decode(errors="replace")
        checks = dict(l[6:].split("=", 1) for l in out.splitlines()
                      if l.startswith("CHECK ") and "=" in l)
        audit = []
        runs = e.runs()
        if runs:
            for root, _, files in os.walk(runs[-1]):
                for n in files:
                    if n.startswith("audit.jsonl"):
                        with open(os.path.join(root, n)) as fh:
                            audit += [json.loads(l) for l in fh if l.strip()]
        yield {"r": r, "out": out, "checks": checks, "seen": seen.snapshot(),
               "audit": audit, "env": e}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        procs.kill_all()
        e.cleanup()


def test_run_succeeds(insp):
    assert insp["r"].returncode == 0, (insp["out"], insp["r"].stderr)
    assert leftovers(insp["env"].uid) == []


def test_inspected_host_through_the_guests_own_trust(insp):
    c = insp["checks"]
    assert c.get("inspected") == "hello-inspect", c
    got = [x for x in insp["seen"] if x["path"].startswith("/insp")]
    assert got and got[0]["path"] == f"/insp?t={TOK}", got


def test_each_request_recorded_without_its_query(insp):
    a = insp["audit"]
    req = [x for x in a if x.get("event") == "request"]
    assert [(x.get("method"), x.get("host"), x.get("path")) for x in req] == \
        [("GET", "allowed.test", "/insp")], a[-10:]
    assert all(TOK not in json.dumps(x) for x in a)


def test_other_host_spliced(insp):
    c = insp["checks"]
    assert c.get("other") == "hello-inspect", c
    assert "rc=0" not in c.get("other_sandbox_ca", ""), c
    assert not [x for x in insp["audit"] if x.get("event") in ("intercept", "request")
                and x.get("host") == "other.test"]


def test_ca_constrained_to_the_inspected_host(insp):
    c = insp["checks"].get("constraints", "")
    assert "Permitted" in c and "DNS:allowed.test" in c and "other.test" not in c, c
