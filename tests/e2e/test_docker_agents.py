"""Docker in the agents image (`sandbox-launch --docker --image agents`,
docs/docker.md): the image's own Debian docker.io, containerd, runc and
iptables, not the host's /usr. One unnamed boot (so Docker's data is on the
per-run disk) with the image from $SANDBOX_BUILD/images (`make image`, which
the e2e target runs; it needs root and the Debian mirror and npm registry):

- dockerd is the image's (/usr/sbin/dockerd of the image; the host's /usr
  is not shared), and `docker info` says overlay2;
- `docker build` of a FROM scratch image holding a static busybox (copied
  from the host into the workspace: no registry);
- `docker run` of it on the default bridge fetches allowed.test through the
  proxy (the server on 127.0.0.2 sees it), is refused denied.test and a
  bare IP (the server sees nothing), and its DNS to 8.8.8.8 is answered by
  the proxy; the audit log has the allowed and denied records, naming the
  container;
- the same from a RUN step of a BuildKit build (DOCKER_BUILDKIT=1).

Loopback only. Slow under TCG (minutes); `-s` prints a TIMINGS line.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import Env, leftovers, require  # noqa: E402
from test_docker import CONTAINER_PROBE, Server  # noqa: E402

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

TIMEOUT = 1800
IMAGES = os.environ.get("SANDBOX_IMAGES_DIR", os.path.join(BUILD, "images"))

PROBE = r"""
say() { echo "CHECK $1=$2"; }
now() { date +%s; }
say image "$(cat /usr/share/sandbox-image/name 2>/dev/null)"
say dockerd_pkg "$(dpkg-query -W -f '${Version}' docker.io 2>&1)"
say driver "$(docker info --format '{{.Driver}}')"
ctx=$(mktemp -d)
cp busybox "$ctx/busybox"
cp probe-in-container.sh "$ctx/probe.sh"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY probe.sh /probe.sh\n' >"$ctx/Dockerfile"
t=$(now); docker build -q -t sbx-agents-bb "$ctx" >/tmp/build.log 2>&1; say build "$?"; say build_s $(($(now) - t))
say build_tail "$(tail -n 3 /tmp/build.log | tr '\n' ' ' | head -c 300)"
t=$(now)
docker run --rm --name sbx-agents-probe -e MODE=bridge sbx-agents-bb /bin/busybox sh -c \
  'for a in $(/bin/busybox --list); do /bin/busybox ln -s busybox /bin/$a 2>/dev/null; done; sh /probe.sh'
say run_s $(($(now) - t))
# A RUN step under BuildKit (Debian's docker 20.10 has it built in).
bctx=$(mktemp -d)
printf '%s\n' 'FROM sbx-agents-bb' \
  'RUN ["/bin/busybox", "sh", "-c", "for a in $(/bin/busybox --list); do /bin/busybox ln -s busybox /bin/$a 2>/dev/null; done; MODE=bkit sh /probe.sh"]' \
  >"$bctx/Dockerfile"
t=$(now)
DOCKER_BUILDKIT=1 docker build --no-cache --progress=plain -t sbx-agents-run "$bctx" >/tmp/bk.log 2>&1
say bkit_build "$?"; say bkit_s $(($(now) - t))
sed -n 's/^.*\(CHECK bkit_\)/\1/p' /tmp/bk.log
say bkit_tail "$(tail -n 3 /tmp/bk.log | tr '\n' ' ' | head -c 300)"
"""


def run_with_images(e, args, **kw):
    argv = e.argv(args)
    i = argv.index("env") + 1
    argv.insert(i, "SANDBOX_IMAGES_DIR=" + IMAGES)
    kw.setdefault("capture_output", True)
    kw.setdefault("cwd", e.ws)
    return subprocess.run(argv, start_new_session=True, **kw)


@pytest.fixture(scope="module")
def ag():
    require()
    if not os.path.exists(os.path.join(IMAGES, "agents.img")):
        pytest.fail("%s/agents.img is missing: run `make image` (root, "
                    "network: the Debian mirror and the npm registry)" % IMAGES)
    e = Env()
    procs = sbxtest.Procs()
    dns = sbxtest.Dnsmasq(procs, e.root)
    srv = Server()
    try:
        sbxtest.ws_file(e, "policy.yaml",
                        "version: 1\nallow:\n"
                        "  - host: allowed.test\n    ports: [%d]\n"
                        "  - cidr: 127.0.0.2/32\n    ports: [%d]\n"
                        "deny:\n  - denied.test\n" % (srv.port, srv.port))
        sbxtest.ws_file(e, "probe.sh", PROBE)
        sbxtest.ws_file(e, "probe-in-container.sh",
                        CONTAINER_PROBE.replace("PORT", str(srv.port)))
        shutil.copy("/usr/bin/busybox", os.path.join(e.ws, "busybox"))
        e.own(os.path.join(e.ws, "busybox"))
        r = run_with_images(e, ["--docker", "--image", "agents",
                                "--policy", "policy.yaml",
                                "--resolver", "127.0.0.1:%d" % dns.port,
                                "--boot-timeout", "900", "--",
                                "sh", "probe.sh"],
                            stdin=open(os.devnull), timeout=TIMEOUT)
        run = sbxtest.finished(e, r)
        yield {"r": r, "out": run["out"], "checks": run["checks"],
               "audit": run["audit"], "console": run["console"],
               "paths": list(srv.paths), "env": e}
    finally:
        srv.close()
        procs.kill_all()
        e.cleanup()


def test_run_succeeds(ag):
    assert ag["r"].returncode == 0, (ag["out"], ag["r"].stderr)
    assert leftovers(ag["env"].uid) == []


def test_the_images_own_docker_with_overlay2(ag):
    c = ag["checks"]
    assert c.get("image") == "agents", c
    # The image's Debian package, not the host's /usr (not shared).
    assert re.match(r"\d+\.\d+", c.get("dockerd_pkg", "")), c
    assert c.get("driver") == "overlay2", (c, ag["r"].stderr)


def test_build_from_scratch(ag):
    assert ag["checks"].get("build") == "0", ag["checks"]


def test_container_reaches_allowed_only_through_proxy(ag):
    c = ag["checks"]
    assert c.get("bridge_done") == "1", (ag["out"], ag["r"].stderr)
    assert c.get("bridge_allowed") == "hello-allowed-bridge", c
    assert "/allowed-bridge" in ag["paths"]
    assert c.get("bridge_denied_addr") == "", c
    assert "hello" not in c.get("bridge_denied", "hello"), c
    assert "hello" not in c.get("bridge_direct_ip", "hello"), c
    assert not any(p.startswith("/denied") for p in ag["paths"]), ag["paths"]
    assert c.get("bridge_dns8", "").startswith("198.18."), c


def test_audit_has_both_and_names_the_container(ag):
    a = ag["audit"]
    allow = [x for x in a if x.get("event") == "connect"
             and x.get("host") == "allowed.test" and x.get("decision") == "allow"]
    assert allow, a
    assert any(x.get("container") == "sbx-agents-probe" for x in allow), allow
    assert any(x.get("event") == "dns" and x.get("host") == "denied.test"
               and x.get("decision") == "deny" for x in a), a


def test_buildkit_run_step_is_captured(ag):
    """BuildKit runs RUN steps itself (not as dockerd containers): they are
    still captured, allowed through the proxy and refused the rest."""
    c = ag["checks"]
    assert c.get("bkit_build") == "0", c
    assert c.get("bkit_done") == "1", c
    assert c.get("bkit_allowed") == "hello-allowed-bkit", c
    assert "/allowed-bkit" in ag["paths"], ag["paths"]
    assert c.get("bkit_denied_addr") == "", c
    assert "hello" not in c.get("bkit_denied", "hello"), c
    assert "hello" not in c.get("bkit_direct_ip", "hello"), c
    assert c.get("bkit_dns8", "").startswith("198.18."), c
    assert not any(p.startswith("/denied") for p in ag["paths"]), ag["paths"]


def test_timings_reported(ag):
    """Not an assertion on time: the figures docs/docker.md quotes."""
    c = ag["checks"]
    m = re.findall(r"docker: (\S+) answers on \S+ after (\d+) ms", ag["console"])
    print("TIMINGS agents daemons=%s build_s=%s run_s=%s bkit_s=%s" % (
        m, c.get("build_s"), c.get("run_s"), c.get("bkit_s")))
    assert m, ag["console"][-2000:]
