"""Host services by port end to end (TCG, one boot), as a non-root user:
with `--host-port HS` the guest reads a page from a host server on
127.0.0.1:HS as host.sandbox.internal:HS, by the transparent path (the
sandbox's DNS, then a plain connection) and through the explicit proxy
(HTTP_PROXY); a second live host server on another port is refused and
never sees a connection, and neither does the first one by address
literal. Both decisions are in the audit log."""
import json
import os

import test_launch_basic as base

import sys
sys.path.insert(0, os.path.join(base.SRC, "tests", "integration"))
import sbxtest  # noqa: E402

PROBE = r"""
say() { echo "CHECK $1=$2"; }
say direct "$(curl -sS --noproxy '*' --max-time 60 http://host.sandbox.internal:HS/direct 2>&1 | head -c 200)"
say proxied "$(curl -sS --max-time 60 http://host.sandbox.internal:HS/proxied 2>&1 | head -c 200)"
curl -fsS --noproxy '*' --max-time 60 http://host.sandbox.internal:OTHER/other >/dev/null 2>&1; say other "$?"
curl -sS --max-time 60 -o /dev/null -w '%{http_code}' http://host.sandbox.internal:OTHER/other2 >/dev/null 2>&1
curl -sS --noproxy '*' --max-time 20 http://127.0.0.1:HS/literal >/dev/null 2>&1; say literal "$?"
"""


def test_host_port_reached_other_refused():
    base.require()
    e = base.Env()
    ok_srv = sbxtest.OriginServer("127.0.0.1")
    other = sbxtest.OriginServer("127.0.0.1")
    try:
        audit = os.path.join(e.root, "audit.jsonl")
        with open(os.path.join(e.ws, "probe.sh"), "w") as f:
            f.write(PROBE.replace("OTHER", str(other.port))
                    .replace("HS", str(ok_srv.port)))
        e.own(os.path.join(e.ws, "probe.sh"))
        r = e.run(["--audit", audit, "--host-port", str(ok_srv.port),
                   "--", "sh", "probe.sh"])
        out = r.stdout.decode(errors="replace")
        assert r.returncode == 0, (out, r.stderr)
        checks = dict(l[6:].split("=", 1) for l in out.splitlines()
                      if l.startswith("CHECK "))
        assert checks["direct"].startswith("origin http path=/direct"), checks
        assert checks["proxied"].startswith("origin http path=/proxied"), checks
        assert checks["other"] != "0" and checks["literal"] != "0", checks
        # The servers' own view.
        assert [q["path"] for q in ok_srv.requests.snapshot()] == \
            ["/direct", "/proxied"]
        assert other.accepted.snapshot() == []
        recs = [json.loads(l) for l in open(audit)]
        conn = [x for x in recs if x.get("event") == "connect"
                and x.get("host") == "host.sandbox.internal"]
        allowed = [x for x in conn if x["port"] == ok_srv.port]
        denied = [x for x in conn if x["port"] == other.port]
        assert allowed and all(x["decision"] == "allow" and
                               x["rule"] == "--host-port" for x in allowed)
        assert denied and all(x["decision"] == "deny" for x in denied)
        closes = [x for x in recs if x.get("event") == "close" and
                  x.get("host") == "host.sandbox.internal" and
                  x.get("port") == ok_srv.port]
        assert closes and closes[0]["addr"] == "127.0.0.1", closes
        assert base.leftovers() == []
    finally:
        for s in (ok_srv, other):
            s.shutdown()
            s.server_close()
        e.cleanup()
