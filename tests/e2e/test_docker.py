"""Docker inside the guest (sandbox-launch --docker, docs/docker.md), as the
ordinary sandbox user, with the host's /usr (which must hold Debian's
docker.io: `make test-deps`). Loopback only: dnsmasq is the proxy's
resolver, an HTTP server on 127.0.0.2 counts what reaches it.

Boot 1 (named sandbox `dockertest`, so Docker's data is on its disk):
- `docker info` says overlay2, and the daemon is the guest's own;
- `docker build` of a FROM scratch image holding the host's static
  busybox (no registry);
- a --privileged container on the default bridge, and one with
  --network host, each: fetch allowed.test (through the proxy: the server
  sees it), denied.test (no address; a connection naming it, and one to a
  bare IP, are refused: the server sees nothing), resolve allowed.test at
  8.8.8.8 (answered by the proxy's DNS with a synthetic address, never sent
  anywhere). (UDP from a container is not tried: busybox's nc has no -u;
  test_isolation.py covers UDP for guest root, which a privileged container
  is);
- the audit log has the allowed and the denied connection and the DNS
  query, and the bridge container's connection carries its address as
  "src" (the wire header's source extension) and its name and short id
  as "container" and "container_id" (the container extension, filled by
  the guest's watcher of dockerd's networks); the --network host
  container's carry no name (it has no address of its own);
- `docker pull` from a denied registry name (denied.test: no address) and
  from an allowed name on a port the policy does not allow (allowed.test
  on 443: the proxy's TLS alert) both fail, and the user sees why; no
  real registry is ever contacted;
- `docker build` with a RUN step (the legacy builder: the step is a
  container on the default bridge): the step fetches allowed.test (the
  server sees it) and is refused denied.test and a bare IP (the server sees
  nothing); its records carry its address and a container name;
- the sandbox has a secret for other.test (--secret REGKEY@other.test), so
  the proxy intercepts TLS to it with the per-sandbox CA: `docker pull
  other.test:PORT/sbx/probe` from a tiny registry on 127.0.0.2 verifies the
  proxy's certificate (dockerd reads the guest's system bundle, which holds
  the CA) and reaches the registry, whose own record is the oracle; the
  pull then fails on the registry's "manifest unknown", never on x509.
Boot 2 (same name): the image built in boot 1 is still there.

Slow under TCG (several minutes per boot); the probe prints how long the
daemon start, the build and each run took.
"""
import http.server
import os
import re
import shutil
import ssl
import sys
import threading
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_launch_basic import LAUNCH, Env, leftovers, require  # noqa: E402

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import sbxtest  # noqa: E402

TIMEOUT = 1800

# Runs inside each container: busybox only. A static glibc busybox cannot
# use NSS (its wget crashes looking up names and services), so names are
# resolved with busybox's own nslookup (through the container's
# resolv.conf: 8.8.8.8 on the bridge, the guest's 127.0.0.53 with
# --network host) and HTTP is sent with nc to the address, naming the host.
CONTAINER_PROBE = r"""
say() { echo "CHECK ${MODE}_$1=$2"; }
addr() { nslookup "$@" 2>/dev/null | sed -n 's/^Address: *\(198\.18\.[0-9.]*\).*/\1/p' | head -n1; }
get() { printf 'GET /%s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$2" | nc -w 30 "$1" PORT 2>&1 | tail -n1 | tr -d '\r' | head -c 200; }
say myip "$(ip addr show eth0 2>/dev/null | sed -n 's/.*inet \([0-9.]*\)\/.*/\1/p' | head -n1)"
ip=$(addr allowed.test)
say allowed "$(get "$ip" allowed.test:PORT allowed-$MODE)"
say denied_addr "$(addr denied.test)"
say denied "x$(get 198.18.250.250 denied.test:PORT denied-$MODE)"
say direct_ip "x$(get 192.0.2.1 192.0.2.1:PORT denied-ip-$MODE)"
say dns8 "$(addr allowed.test 8.8.8.8)"
say done 1
"""

PROBE = r"""
say() { echo "CHECK $1=$2"; }
now() { date +%s; }
say driver "$(docker info --format '{{.Driver}}')"
say daemon_name "$(docker info --format '{{.Name}}')"
say host_sock_mounted "$(grep -c docker.sock /proc/mounts)"
pull() { out=$(timeout 300 docker pull "$1" 2>&1); rc=$?; echo "$rc $out" | tr '\n' ' ' | head -c 400; }
say pull_denied "$(pull denied.test/x)"
say pull_port "$(pull allowed.test/x)"
ctx=$(mktemp -d)
cp /usr/bin/busybox "$ctx/busybox"
cp probe-in-container.sh "$ctx/probe.sh"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY probe.sh /probe.sh\n' >"$ctx/Dockerfile"
t=$(now); docker build -q -t sbx-bb "$ctx" >/dev/null 2>&1; say build "$?"; say build_s $(($(now) - t))
t=$(now)
docker run --rm --privileged --name sbx-probe-bridge -e MODE=bridge sbx-bb /bin/busybox sh -c \
  'for a in $(/bin/busybox --list); do /bin/busybox ln -s busybox /bin/$a 2>/dev/null; done; sh /probe.sh'
say run_bridge_s $(($(now) - t))
t=$(now)
docker run --rm --network host --name sbx-probe-host -e MODE=host sbx-bb /bin/busybox sh -c \
  'for a in $(/bin/busybox --list); do /bin/busybox ln -s busybox /bin/$a 2>/dev/null; done; sh /probe.sh'
say run_host_s $(($(now) - t))
# A RUN step is a container too (legacy builder; BuildKit is not tried).
bctx=$(mktemp -d)
printf '%s\n' 'FROM sbx-bb' \
  'RUN ["/bin/busybox", "sh", "-c", "for a in $(/bin/busybox --list); do /bin/busybox ln -s busybox /bin/$a 2>/dev/null; done; MODE=build sh /probe.sh"]' \
  >"$bctx/Dockerfile"
t=$(now)
DOCKER_BUILDKIT=0 docker build --no-cache -t sbx-run "$bctx" >/tmp/build-run.log 2>&1
say build_run "$?"; say build_run_s $(($(now) - t))
sed -n 's/^.*\(CHECK build_\)/\1/p' /tmp/build-run.log
say build_run_tail "$(tail -n 3 /tmp/build-run.log | tr '\n' ' ' | head -c 300)"
# The daemon trusts the per-sandbox CA (an intercepted registry).
say pull_ca "$(pull other.test:RPORT/sbx/probe)"
"""


REGVALUE = "reg-" + uuid.uuid4().hex


class DockerEnv(Env):
    """The launcher with REGKEY (other.test's secret) in its environment."""

    def argv(self, args):
        env = ["env", "HOME=" + self.home, "XDG_STATE_HOME=" + self.state,
               "XDG_RUNTIME_DIR=" + self.runtime, "REGKEY=" + REGVALUE,
               "PATH=/usr/local/bin:/usr/bin:/bin"]
        return self.prefix + env + [LAUNCH] + list(args)


class Registry:
    """HTTPS on 127.0.0.2 (test CA): answers /v2/ like a registry, and
    "manifest unknown" for everything else; records each request."""

    def __init__(self, cert, key):
        self.seen = []
        seen = self.seen

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self, body_too):
                seen.append({"path": self.path, "host": self.headers.get("Host")})
                if self.path == "/v2/":
                    code, body = 200, b"{}"
                else:
                    code, body = 404, (b'{"errors":[{"code":"MANIFEST_UNKNOWN",'
                                       b'"message":"manifest unknown"}]}')
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body_too:
                    self.wfile.write(body)

            def do_GET(self):
                self._answer(True)

            def do_HEAD(self):
                self._answer(False)

            def log_message(self, *a):
                pass

        self.port = sbxtest.free_port("127.0.0.2")
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.2", self.port), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.srv.socket = ctx.wrap_socket(self.srv.socket, server_side=True)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


class Server:
    """HTTP on 127.0.0.2: records each request's path."""

    def __init__(self):
        self.paths = []
        paths = self.paths

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                body = b"hello-" + self.path.strip("/").encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.port = sbxtest.free_port("127.0.0.2")
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.2", self.port), H)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def dockerd_missing():
    return not os.access("/usr/sbin/dockerd", os.X_OK) or \
        not os.access("/usr/bin/containerd", os.X_OK)


@pytest.fixture(scope="module")
def dk():
    require()
    if dockerd_missing():
        pytest.fail("Debian's docker.io and containerd are not installed "
                    "on this host: run make test-deps")
    e = DockerEnv()
    procs = sbxtest.Procs()
    dns = sbxtest.Dnsmasq(procs, e.root)
    srv = Server()
    pki = sbxtest.make_pki(os.path.join(e.root, "pki"))
    reg = Registry(pki["cert"], pki["key"])
    try:
        upstream_ca = sbxtest.copy_ca(e, pki, os.path.join(e.root, "upstream-ca.pem"))
        sbxtest.ws_file(e, "policy.yaml",
                        "version: 1\nallow:\n"
                        "  - host: allowed.test\n    ports: [%d]\n"
                        "  - host: other.test\n    ports: [%d]\n"
                        "  - cidr: 127.0.0.2/32\n    ports: [%d, %d]\n"
                        "deny:\n  - denied.test\n"
                        % (srv.port, reg.port, srv.port, reg.port))
        sbxtest.ws_file(e, "probe.sh", PROBE.replace("RPORT", str(reg.port)))
        sbxtest.ws_file(e, "probe-in-container.sh",
                        CONTAINER_PROBE.replace("PORT", str(srv.port)))
        common = ["--docker", "--policy", "policy.yaml",
                  "--resolver", "127.0.0.1:%d" % dns.port,
                  "--name", "dockertest", "--boot-timeout", "900",
                  "--secret", "REGKEY@other.test", "--upstream-ca", upstream_ca]
        r1 = e.run(common + ["--", "sh", "probe.sh"], stdin=open(os.devnull),
                   timeout=TIMEOUT)
        run1 = sbxtest.finished(e, r1)
        r2 = e.run(common + ["--", "docker", "image", "ls", "--format",
                             "{{.Repository}}"],
                   stdin=open(os.devnull), timeout=TIMEOUT)
        yield {"r1": r1, "out1": run1["out"], "checks": run1["checks"],
               "audit": run1["audit"], "console": run1["console"], "r2": r2,
               "paths": list(srv.paths), "reg": list(reg.seen), "env": e}
    finally:
        srv.close()
        reg.close()
        procs.kill_all()
        e.run(["rm", "dockertest"], stdin=open(os.devnull))
        e.cleanup()


def test_runs_succeed(dk):
    assert dk["r1"].returncode == 0, (dk["out1"], dk["r1"].stderr)
    assert leftovers(dk["env"].uid) == []


def test_overlay2_and_the_guests_own_daemon(dk):
    c = dk["checks"]
    assert c.get("driver") == "overlay2", (c, dk["r1"].stderr)
    # The daemon answering is the guest's (its hostname is the sandbox
    # name), and no host socket is mounted into the guest.
    assert c.get("daemon_name") == "dockertest", c
    assert c.get("host_sock_mounted") == "0", c


def test_build_from_scratch_without_registry(dk):
    assert dk["checks"].get("build") == "0", dk["checks"]


@pytest.mark.parametrize("mode", ["bridge", "host"])
def test_container_allowed_reaches_server_through_proxy(dk, mode):
    c = dk["checks"]
    assert c.get(mode + "_done") == "1", (dk["out1"], dk["r1"].stderr)
    assert c.get(mode + "_allowed") == "hello-allowed-" + mode, c
    assert "/allowed-" + mode in dk["paths"]


@pytest.mark.parametrize("mode", ["bridge", "host"])
def test_container_denied_never_reaches_server(dk, mode):
    c = dk["checks"]
    assert c.get(mode + "_denied_addr") == "", c
    # "x" + what came back: never the server's page
    assert c.get(mode + "_denied", "").startswith("x"), c
    assert "hello" not in c.get(mode + "_denied"), c
    assert c.get(mode + "_direct_ip", "").startswith("x"), c
    assert "hello" not in c.get(mode + "_direct_ip"), c
    assert not any(p.startswith("/denied") for p in dk["paths"]), dk["paths"]


@pytest.mark.parametrize("mode", ["bridge", "host"])
def test_container_dns_to_public_resolver_answered_by_proxy(dk, mode):
    # 8.8.8.8 is never reached (the guest has no network card); the answer
    # is the proxy's synthetic address for the allowed name.
    assert dk["checks"].get(mode + "_dns8", "").startswith("198.18."), dk["checks"]


def test_audit_has_container_traffic(dk):
    a = dk["audit"]

    def has(**kw):
        return any(all(x.get(k) == v for k, v in kw.items()) for x in a)

    assert has(event="connect", host="allowed.test", decision="allow"), a
    # denied.test is refused at the name already
    assert has(event="dns", host="denied.test", decision="deny"), a
    assert has(event="dns", host="allowed.test", decision="allow"), a


def test_audit_names_the_containers_address(dk):
    """The bridge container's connection is recorded with its own address
    as "src"; every transparent connection carries a source."""
    ip = dk["checks"].get("bridge_myip", "")
    assert re.fullmatch(r"172\.\d+\.\d+\.\d+", ip), dk["checks"]
    conns = [x for x in dk["audit"] if x.get("event") == "connect"
             and x.get("host") == "allowed.test" and x.get("decision") == "allow"]
    assert any((x.get("src") or "").startswith(ip + ":") for x in conns), conns
    assert conns and all(x.get("src") for x in conns), conns


def test_audit_names_the_container(dk):
    """The bridge container's connections carry its name and short id
    (the guest's watcher, guest/docker_watch.c); the --network host
    container's carry none (no address of its own to map)."""
    a = dk["audit"]
    ip = dk["checks"].get("bridge_myip", "")
    mine = [x for x in a if x.get("event") in ("connect", "close")
            and (x.get("src") or "").startswith(ip + ":")]
    assert mine, a
    named = [x for x in mine if x.get("container") == "sbx-probe-bridge"]
    assert any(x.get("event") == "connect" and x.get("host") == "allowed.test"
               and x.get("decision") == "allow" for x in named), mine
    assert all(re.fullmatch(r"[0-9a-f]{12}", x.get("container_id", ""))
               for x in named), named
    # The refused bare-IP connection is named too.
    assert any(x.get("decision") == "deny" for x in named), mine
    assert not any(x.get("container") == "sbx-probe-host" for x in a), a


def test_pull_from_denied_registry_fails_visibly(dk):
    c = dk["checks"]
    rc, _, msg = c.get("pull_denied", "").partition(" ")
    assert rc not in ("", "0"), c
    # The proxy's DNS refused the name: Docker says the lookup failed.
    assert "denied.test" in msg and "no such host" in msg, msg
    rc, _, msg = c.get("pull_port", "").partition(" ")
    assert rc not in ("", "0"), c
    # The name is allowed, not on 443: the proxy's TLS alert reaches the user.
    assert "access denied" in msg, msg
    assert any(x.get("event") == "connect" and x.get("host") == "allowed.test"
               and x.get("port") == 443 and x.get("decision") == "deny"
               for x in dk["audit"]), dk["audit"]


def test_named_sandbox_keeps_images(dk):
    r2 = dk["r2"]
    assert r2.returncode == 0, (r2.stdout, r2.stderr)
    assert "sbx-bb" in r2.stdout.decode(errors="replace").split()


def test_build_run_step_is_captured(dk):
    """A RUN step of `docker build` (a container of the legacy builder):
    allowed.test reaches the server through the proxy, denied.test and a
    bare IP do not; the records name its address and a container."""
    c = dk["checks"]
    assert c.get("build_run") == "0", c
    assert c.get("build_done") == "1", c
    assert c.get("build_allowed") == "hello-allowed-build", c
    assert "/allowed-build" in dk["paths"], dk["paths"]
    assert c.get("build_denied_addr") == "", c
    assert "hello" not in c.get("build_denied", "hello"), c
    assert "hello" not in c.get("build_direct_ip", "hello"), c
    assert not any(p.startswith("/denied") for p in dk["paths"]), dk["paths"]
    assert c.get("build_dns8", "").startswith("198.18."), c
    ip = c.get("build_myip", "")
    assert re.fullmatch(r"172\.\d+\.\d+\.\d+", ip), c
    step = [x for x in dk["audit"] if x.get("event") == "connect"
            and (x.get("src") or "").startswith(ip + ":")]
    assert any(x.get("host") == "allowed.test" and x.get("decision") == "allow"
               for x in step), step
    assert any(x.get("decision") == "deny" for x in step), step
    assert all(x.get("container") for x in step), step


def test_dockerd_trusts_the_sandbox_ca(dk):
    """An intercepted registry (other.test has a secret): dockerd verifies
    the proxy's certificate, made by the per-sandbox CA, and the registry
    sees the pull; the failure is the registry's own answer."""
    c = dk["checks"]
    rc, _, msg = c.get("pull_ca", "").partition(" ")
    assert rc not in ("", "0"), c
    assert "x509" not in msg and "certificate" not in msg, msg
    assert "manifest unknown" in msg or "not found" in msg, msg
    paths = [x["path"] for x in dk["reg"]]
    assert "/v2/" in paths, dk["reg"]
    assert any(p.startswith("/v2/sbx/probe/manifests/") for p in paths), dk["reg"]
    assert any(x.get("event") == "connect" and x.get("host") == "other.test"
               and x.get("decision") == "allow" for x in dk["audit"]), dk["audit"]


def test_timings_reported(dk):
    """Not an assertion on time: the figures docs/docker.md quotes."""
    c = dk["checks"]
    m = re.findall(r"docker: (\S+) answers on \S+ after (\d+) ms", dk["console"])
    print("TIMINGS daemons=%s build_s=%s run_bridge_s=%s run_host_s=%s "
          "build_run_s=%s" % (m, c.get("build_s"), c.get("run_bridge_s"),
                              c.get("run_host_s"), c.get("build_run_s")))
    assert m, dk["console"][-2000:]
