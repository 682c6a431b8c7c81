"""`sandbox-audit summary` shows where connections came from and the
published ports: the `src` field (the guest's claim of a connection's
source, e.g. a container's address) per destination, and `inbound`
records (host port, guest port, peer, connections, bytes).

The log is a real proxy's: transparent connections with and without the
wire header's source extension, and connections to a published port
carried through a stand-in for the bridge and the guest
(test_inbound.GuestStandIn) to a real HTTP server. The oracle is a Python
computation over the same log."""

import json
import os
import subprocess
import uuid

import sbxtest
from test_inbound import GuestStandIn, _get as http_get
from test_wire_src import _get, _raw

BUILD = os.environ.get("SANDBOX_BUILD", "build")
AUDIT = os.path.join(BUILD, "bin", "sandbox-audit")


def summary(*args):
    r = subprocess.run([AUDIT, "summary", *args], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def test_summary_shows_sources_and_published_ports(env, start_proxy):
    origin = sbxtest.OriginServer("127.0.0.1")
    try:
        g = GuestStandIn(os.path.join(env.workdir,
                                      f"g-{uuid.uuid4().hex[:8]}.sock"))
        hp = sbxtest.free_port()
        p = start_proxy(args=["--guest-connect", g.path, "--publish",
                              f"127.0.0.1:{hp}:{origin.port}"])
        synth = p.synth("allowed.test")
        srcs = ["172.17.0.2:40000", "172.17.0.2:40001", "[fd00::3]:5000"]
        for s in srcs + [None]:
            r = _raw(p, f"{synth}:{env.http.port}", s,
                     _get(env, f"/s-{uuid.uuid4().hex}"))
            assert r.returncode == 0, r.stderr.decode()
        for i in range(3):
            assert http_get(f"http://127.0.0.1:{hp}/in{i}")[0] == 200
        sbxtest.wait_until(
            lambda: len(p.find(event="inbound", host_port=hp)) == 3 and
            len(p.find(event="close", host="allowed.test")) == 4,
            10, what="the inbound and close records")
    finally:
        origin.shutdown()
        origin.server_close()
    recs = p.audit()

    rows = [json.loads(l) for l in summary("--json", p.audit_path).splitlines()]
    hosts = {r["host"]: r for r in rows if "host" in r}
    inbound = [r for r in rows if r.get("event") == "inbound"]

    # src per destination: addresses without their ports, in first-seen
    # order, as in the log; a destination without src has no field.
    want = []
    for x in recs:
        if x.get("host") == "allowed.test" and x.get("src"):
            a = x["src"].rsplit(":", 1)[0]
            if a not in want:
                want.append(a)
    assert want == ["172.17.0.2", "[fd00::3]"], want
    assert hosts["allowed.test"]["src"] == want, hosts["allowed.test"]
    assert all("src" not in r for h, r in hosts.items() if h != "allowed.test")

    # inbound: one row per host port, guest port and peer address
    ins = [x for x in recs if x.get("event") == "inbound"]
    assert len(inbound) == 1, inbound
    row = inbound[0]
    assert row["host_port"] == hp and row["port"] == origin.port
    assert row["peer"] == "127.0.0.1"
    assert row["connections"] == 3
    assert row["bytes_up"] == sum(x["bytes_up"] for x in ins) > 0
    assert row["bytes_down"] == sum(x["bytes_down"] for x in ins) > 0
    assert row["first"] == min(x["time"] for x in ins)

    text = summary(p.audit_path)
    assert "src=172.17.0.2,[fd00::3]" in text, text
    assert "INBOUND (published ports)" in text, text
    line = [l for l in text.splitlines() if f" {hp} " in l]
    assert line and f" {origin.port} " in line[0] and "127.0.0.1" in line[0], text
    # A hostile source label cannot drive the terminal (escaped as JSON).
    assert "\x1b" not in text

