"""End-to-end secrets (docs/secrets.md): one TCG guest boot with
`--secret TESTKEY@allowed.test`; a recording HTTPS server on 127.0.0.2
(test CA, given as --upstream-ca) serves allowed.test (intercepted) and
other.test (spliced), a plain HTTP server serves other.test too. The
guest runs curl, Python urllib, Node's https and git clone (dumb HTTP)
against allowed.test with the placeholder it holds; the server's record
is the oracle for what left the host.
"""
import base64
import json
import os
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import LAUNCH, Env, leftovers, require  # noqa: E402

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

VALUE = "sk-e2e-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
# A second secret, from the policy file's secrets: (not --secret).
POLVALUE = "pk-pol-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
# A third, whose policy entry has header: X-Hdr-Key, format: "key={value}".
HDRVALUE = "hk-hdr-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


class SecretEnv(Env):
    """The test user's launcher with TESTKEY in its environment."""

    def argv(self, args):
        env = ["env", "HOME=" + self.home, "XDG_STATE_HOME=" + self.state,
               "XDG_RUNTIME_DIR=" + self.runtime, "TESTKEY=" + VALUE,
               "POLKEY=" + POLVALUE, "HDRKEY=" + HDRVALUE,
               "PATH=/usr/local/bin:/usr/bin:/bin"]
        return self.prefix + env + [LAUNCH] + list(args)


PROBE = r"""
say() { echo "CHECK $1=$2"; }
say ph "$TESTKEY"
say environ "$(cat /proc/[0-9]*/environ 2>/dev/null | base64 -w0)"
say environ_vars "$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' | grep '^TESTKEY=' | sort -u | tr '\n' ' ')"
say polph "$POLKEY"
say hdrkey "$(curl -sS --max-time 60 -H 'x-hdr-key: guest-sent' https://allowed.test:PORT/hdrkey 2>&1)"
say polkey "$(curl -sS --max-time 60 -H "Authorization: Bearer $POLKEY" https://allowed.test:PORT/polkey 2>&1)"
say curl "$(curl -sS --max-time 60 -H "Authorization: Bearer $TESTKEY" https://allowed.test:PORT/curl 2>&1)"
say curl_h2 "$(curl -sS --http2 --max-time 60 -o /dev/null -w '%{http_version}' -H "Authorization: Bearer $TESTKEY" https://allowed.test:PORT/h2 2>&1)"
say other_tls "$(curl -sS --max-time 60 --cacert testca.pem -H "Authorization: Bearer $TESTKEY" https://other.test:PORT/other 2>&1)"
say other_plain "$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TESTKEY" http://other.test:PLAIN/plain 2>&1)"
say python "$(python3 -c '
import os, urllib.request
r = urllib.request.Request("https://allowed.test:PORT/python", headers={"Authorization": "Bearer " + os.environ["TESTKEY"]})
print(urllib.request.urlopen(r, timeout=60).status)' 2>&1 | tail -1)"
say node "$(node -e '
const https = require("https");
https.get("https://allowed.test:PORT/node", {headers: {Authorization: "Bearer " + process.env.TESTKEY}}, r => { console.log(r.statusCode); r.resume(); })
  .on("error", e => console.log("error " + e.message));' 2>&1)"
say git "$(git -c http.extraHeader="Authorization: Bearer $TESTKEY" clone -q https://allowed.test:PORT/repo.git /tmp/clone 2>&1; cat /tmp/clone/README 2>&1)"
say constraints "$(openssl x509 -noout -text -in /etc/ssl/certs/sandbox-ca.pem | grep -A6 'Name Constraints' | tr -s ' \n' '  ')"
say has_key "$(grep -c 'PRIVATE KEY' /etc/ssl/certs/sandbox-ca.pem)"
"""


@pytest.fixture(scope="module")
def sec():
    require()
    e = SecretEnv()
    procs = sbxtest.Procs()
    pki = sbxtest.make_pki(os.path.join(e.root, "pki"))
    dns = sbxtest.Dnsmasq(procs, e.root)
    seen, seen_plain = sbxtest.Recorder(), sbxtest.Recorder()
    repo_src = os.path.join(e.root, "src")
    repo = os.path.join(e.root, "repo.git")
    subprocess.run(["git", "init", "-q", repo_src], check=True)
    with open(os.path.join(repo_src, "README"), "w") as f:
        f.write("cloned-through-interception\n")
    g = ["git", "-C", repo_src, "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(g + ["add", "README"], check=True)
    subprocess.run(g + ["commit", "-qm", "x"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", repo_src, repo], check=True)
    subprocess.run(["git", "-C", repo, "update-server-info"], check=True)
    servers = []
    try:
        tls = sbxtest.recording_server("127.0.0.2", 0, seen, pki["cert"], pki["key"],
                                       b"hello-secret\n", repo)
        plain = sbxtest.recording_server("127.0.0.2", 0, seen_plain,
                                         body=b"hello-secret\n", files=repo)
        servers += [tls, plain]
        port, pport = tls.server_address[1], plain.server_address[1]
        with open(os.path.join(e.ws, "testca.pem"), "wb") as f:
            f.write(open(pki["ca"], "rb").read())
        upstream_ca = os.path.join(e.root, "upstream-ca.pem")
        with open(upstream_ca, "wb") as f:
            f.write(open(pki["ca"], "rb").read())
        with open(os.path.join(e.ws, "policy.yaml"), "w") as f:
            f.write("version: 1\nallow:\n"
                    f"  - host: allowed.test\n    ports: [{port}]\n"
                    f"  - host: other.test\n    ports: [{port}, {pport}]\n"
                    f"  - cidr: 127.0.0.2/32\n    ports: [{port}, {pport}]\n"
                    "secrets:\n  - env: POLKEY\n    hosts: [allowed.test]\n"
                    "  - env: HDRKEY\n    hosts: [allowed.test]\n"
                    "    header: X-Hdr-Key\n    format: \"key={value}\"\n")
        with open(os.path.join(e.ws, "probe.sh"), "w") as f:
            f.write(PROBE.replace("PLAIN", str(pport)).replace("PORT", str(port)))
        for n in ("testca.pem", "policy.yaml", "probe.sh"):
            e.own(os.path.join(e.ws, n))
        e.own(upstream_ca)
        r = e.run(["--policy", "policy.yaml", "--secret", "TESTKEY@allowed.test",
                   "--upstream-ca", upstream_ca,
                   "--resolver", "127.0.0.1:%d" % dns.port, "--name", "secrettest",
                   "--", "sh", "probe.sh"], stdin=open(os.devnull), timeout=420)
        out = r.stdout.decode(errors="replace")
        checks = dict(l[6:].split("=", 1) for l in out.splitlines()
                      if l.startswith("CHECK ") and "=" in l)
        runs = e.runs()
        run_files = {}
        if runs:
            for root, _, files in os.walk(runs[-1]):
                for n in files:
                    p = os.path.join(root, n)
                    if os.path.isfile(p) and not os.path.islink(p):
                        run_files[p] = open(p, "rb").read()
        audit = []
        for p, data in run_files.items():
            if os.path.basename(p).startswith("audit.jsonl"):
                audit += [json.loads(l) for l in data.splitlines() if l.strip()]
        yield {"r": r, "out": out, "checks": checks, "seen": seen.snapshot(),
               "seen_plain": seen_plain.snapshot(), "files": run_files,
               "audit": audit, "env": e}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()
        procs.kill_all()
        e.cleanup()


def _by_path(sec, prefix):
    return [x for x in sec["seen"] if x["path"].startswith(prefix)]


def test_run_succeeds(sec):
    assert sec["r"].returncode == 0, (sec["out"], sec["r"].stderr)
    assert leftovers(sec["env"].uid) == []


def test_guest_holds_only_the_placeholder(sec):
    c = sec["checks"]
    ph = c.get("ph", "")
    assert ph and ph != VALUE and len(ph) >= len(VALUE) and ph.startswith("sk-e2e-"), ph
    environ = base64.b64decode(c.get("environ", ""))
    assert environ and VALUE.encode() not in environ
    assert c.get("environ_vars", "").split() == [f"TESTKEY={ph}"], c.get("environ_vars")
    assert VALUE not in sec["out"]


def test_policy_file_secret(sec):
    """secrets: in the policy file: the guest holds a placeholder, the
    secret host's server gets the value, no file of the run has it."""
    c = sec["checks"]
    ph = c.get("polph", "")
    assert ph and ph != POLVALUE and ph.startswith("pk-pol-"), ph
    assert POLVALUE.encode() not in base64.b64decode(c.get("environ", ""))
    assert c.get("polkey") == "hello-secret", c
    got = _by_path(sec, "/polkey")
    assert got and got[0]["auth"] == [f"Bearer {POLVALUE}"], got
    assert POLVALUE not in sec["out"]
    for p, data in sec["files"].items():
        assert POLVALUE.encode() not in data, p


def test_policy_header_set_by_the_proxy(sec):
    """header:/format: in the policy file: curl sends its own X-Hdr-Key
    (no placeholder at all); the server gets exactly one, the proxy's,
    with the real value; every other request to the host gets it too, and
    the value is in no file of the run and not in the guest's output."""
    c = sec["checks"]
    assert c.get("hdrkey") == "hello-secret", c
    got = _by_path(sec, "/hdrkey")
    assert got and got[0]["headers"].get("x-hdr-key", []) == [f"key={HDRVALUE}"], got
    assert all(x["headers"].get("x-hdr-key", []) == [f"key={HDRVALUE}"] for x in _by_path(sec, "/curl")), \
        _by_path(sec, "/curl")
    assert not any(HDRVALUE in repr(x) for x in _by_path(sec, "/other"))
    assert HDRVALUE not in sec["out"]
    for p, data in sec["files"].items():
        assert HDRVALUE.encode() not in data, p


def test_server_sees_the_real_key(sec):
    c = sec["checks"]
    assert c.get("curl") == "hello-secret", c
    got = _by_path(sec, "/curl")
    assert got and got[0]["auth"] == [f"Bearer {VALUE}"], got


def test_http2_falls_back_to_http11(sec):
    assert sec["checks"].get("curl_h2") == "1.1", sec["checks"]
    assert _by_path(sec, "/h2")[0]["auth"] == [f"Bearer {VALUE}"]


def test_python_node_git(sec):
    c = sec["checks"]
    assert c.get("python") == "200", c
    assert c.get("node") == "200", c
    assert "cloned-through-interception" in c.get("git", ""), c
    for p in ("/python", "/node", "/repo.git/"):
        got = _by_path(sec, p)
        assert got and all(x["auth"] == [f"Bearer {VALUE}"] for x in got), (p, got)


def test_other_hosts_never_get_the_key(sec):
    c = sec["checks"]
    assert c.get("other_tls") == "hello-secret", c
    other = _by_path(sec, "/other")
    assert other and other[0]["auth"] == [f"Bearer {c['ph']}"], other
    assert c.get("other_plain") == "403", c
    assert sec["seen_plain"] == [], "the placeholder in clear must not reach the server"
    assert all(VALUE not in " ".join(x["auth"]) for x in sec["seen"] if x["host"].startswith("other.test"))


def test_ca_constrained_and_no_key(sec):
    c = sec["checks"]
    assert "Permitted" in c.get("constraints", "") and "DNS:allowed.test" in c["constraints"], c
    assert "Excluded" in c["constraints"], c
    assert c.get("has_key") == "0", c


def test_key_in_no_file_of_the_run(sec):
    assert sec["files"], "no run directory"
    for p, data in sec["files"].items():
        assert VALUE.encode() not in data, p


def test_audit_says_intercepted(sec):
    a = sec["audit"]
    rec = [x for x in a if x.get("event") == "intercept" and x.get("secret") == "TESTKEY"]
    assert rec and all(x.get("intercepted") is True for x in rec), a[-10:]
    deny = [x for x in a if x.get("decision") == "deny" and "exfiltration" in (x.get("reason") or "")]
    assert deny, a[-10:]
