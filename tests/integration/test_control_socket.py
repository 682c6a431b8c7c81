"""sandbox-proxy --control: live policy changes from the host through
launcher/policy_socket_client.c (tests/tools/control_send): allow and deny take
effect for new connections, cut closes open tunnels and refuses new ones,
resume restores, SIGHUP keeps runtime rules, bad input changes nothing,
and every change is audited."""

import os
import signal
import socket
import stat
import uuid

import sbxtest
from sbxtest import curl, run


def _get(env, p, name):
    r = curl(env, "-x", p.http_proxy_url(), "-w", "\n%{http_code}",
             f"https://{name}:{env.tls.port}/")
    return r.returncode, r.stdout.decode().rpartition("\n")[2], r.stderr.decode()


class Ctl:
    def __init__(self, env, start_proxy, policy=None):
        self.env = env
        self.sock = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
        self.p = start_proxy(policy or sbxtest.base_policy(env),
                             args=["--control", f"unix:{self.sock}"])
        self.tool = os.path.join(env.build, "tools", "control_send")

    def __call__(self, line):
        r = run([self.tool, self.sock, line])
        return r.returncode, r.stdout.decode().strip()


def test_socket_is_private_and_status(env, start_proxy):
    c = Ctl(env, start_proxy)
    st = os.stat(c.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert c("status") == (0, "ok egress=open rules=0")


def test_allow_live_then_remove(env, start_proxy):
    c = Ctl(env, start_proxy)
    p = c.p
    rc, code, err = _get(env, p, "reload.test")
    assert rc != 0 and "403" in err, (rc, code, err)
    assert p.dns("reload.test")[0] == "NXDOMAIN"

    spec = f"reload.test:{env.tls.port}"
    assert c(f"allow {spec}") == (0, f"ok allow {spec}")
    rc, code, err = _get(env, p, "reload.test")
    assert code == "200", f"live allow did not take effect: {err}"
    rec = p.wait_record(event="connect", host="reload.test", decision="allow")
    assert rec.get("rule", "").startswith("runtime"), rec
    assert p.dns("reload.test")[0] == "NOERROR"
    p.wait_record(event="policy", reason=f"runtime allow {spec}")
    assert c("status") == (0, f"ok egress=open rules=1: allow {spec}")

    assert c(f"remove {spec}") == (0, f"ok removed 1 rule {spec}")
    rc, code, err = _get(env, p, "reload.test")
    assert rc != 0 and "403" in err, "removed rule still allows"
    p.wait_record(event="policy", reason=lambda r: r and r.startswith(f"runtime remove {spec}"))
    rc, out = c(f"remove {spec}")
    assert rc == 3 and out.startswith("error no runtime rule"), out


def test_deny_live(env, start_proxy):
    c = Ctl(env, start_proxy)
    p = c.p
    assert _get(env, p, "allowed.test")[1] == "200"
    spec = f"allowed.test:{env.tls.port}"
    assert c(f"deny {spec}")[0] == 0
    rc, code, err = _get(env, p, "allowed.test")
    assert rc != 0 and "403" in err, "live deny did not take effect"
    rec = p.wait_record(event="connect", host="allowed.test", decision="deny")
    assert rec.get("rule", "").startswith("runtime"), rec
    assert p.dns("allowed.test")[0] == "NXDOMAIN"
    p.wait_record(event="policy", decision="deny", reason=f"runtime deny {spec}")


def test_bad_input_changes_nothing(env, start_proxy):
    c = Ctl(env, start_proxy)
    p = c.p
    for line, want in [("allow **", "error allow **: runtime"),
                       ("allow 127.1", "error allow 127.1: runtime"),
                       ("allow", "error allow needs one SPEC"),
                       ("deny a b", "error deny needs one SPEC"),
                       ("frobnicate", "error unknown command"),
                       ("cut now", "error 'cut' takes no argument")]:
        rc, out = c(line)
        assert rc == 3 and out.startswith(want), (line, out)
    assert c("status") == (0, "ok egress=open rules=0")
    rc, code, err = _get(env, p, "denied.test")
    assert rc != 0 and "403" in err
    assert _get(env, p, "allowed.test")[1] == "200"
    assert not p.find(event="policy", reason=lambda r: r and r.startswith("runtime"))
    # An over-long line is refused and the connection closed, proxy alive.
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(c.sock)
        s.sendall(b"allow " + b"a" * 5000)
        data = s.recv(4096)
        assert data.startswith(b"error line too long"), data
    assert p.alive()


def test_cut_closes_tunnels_refuses_new_and_resume(env, start_proxy):
    c = Ctl(env, start_proxy)
    p = c.p
    t = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
    t.sendall(f"CONNECT allowed.test:{env.banner.port} HTTP/1.1\r\n"
              f"Host: allowed.test:{env.banner.port}\r\n\r\n".encode())
    # banner port needs a host rule; use the TLS origin if not allowed.
    status, _, _ = sbxtest.read_http_response(t)
    if status != 200:
        t.close()
        # records are queued before the refusal and written just after:
        # wait for it, so that the count below starts from it
        p.wait_record(event="connect", decision="deny", port=env.banner.port)
        t = socket.create_connection(("127.0.0.1", p.http_port), timeout=10)
        t.sendall(f"CONNECT allowed.test:{env.tls.port} HTTP/1.1\r\n"
                  f"Host: allowed.test:{env.tls.port}\r\n\r\n".encode())
        status, _, _ = sbxtest.read_http_response(t)
    assert status == 200, "could not open a tunnel"

    n_default = len(p.find(decision="deny", rule="default"))
    rc, out = c("cut")
    assert rc == 0 and out.startswith("ok cut:") and "closed" in out, out
    gone = sbxtest.wait_closed(t, 5)
    t.close()
    assert gone is not None, "cut left an open tunnel open"
    rc, code, err = _get(env, p, "allowed.test")
    assert code != "200", "a new connection went through while cut"
    # Every refusal during a cut names the "cut" rules (any-port deny
    # rules, see docs/policy.md), whatever the port, name or address.
    assert env.tls.port not in (80, 443)
    p.wait_record(event="connect", host="allowed.test", decision="deny",
                  port=env.tls.port, rule="cut")
    r = curl(env, "-x", p.http_proxy_url(), "-w", "\n%{http_code}",
             f"http://127.0.0.1:{env.banner.port}/")
    assert r.stdout.decode().rpartition("\n")[2] != "200"
    p.wait_record(event="connect", decision="deny", port=env.banner.port,
                  rule="cut")
    assert len(p.find(decision="deny", rule="default")) == n_default, \
        "a refusal while cut was attributed to the default"
    assert p.dns("allowed.test")[0] == "NXDOMAIN"
    p.wait_record(event="policy", decision="deny",
                  reason=lambda r: r and r.startswith("cut: all egress denied"))
    assert c("status") == (0, "ok egress=cut rules=0")
    assert c("cut") == (0, "ok already cut")

    # A rule added while cut waits for resume.
    spec = f"reload.test:{env.tls.port}"
    rc, out = c(f"allow {spec}")
    assert rc == 0 and "applies on resume" in out, out
    assert _get(env, p, "reload.test")[1] != "200"

    assert c("resume") == (0, "ok resumed")
    assert _get(env, p, "allowed.test")[1] == "200"
    assert _get(env, p, "reload.test")[1] == "200"
    p.wait_record(event="policy", decision="allow",
                  reason=lambda r: r and r.startswith("resumed"))
    assert c("resume") == (0, "ok not cut")


def test_sighup_keeps_runtime_rules_and_cut(env, start_proxy):
    c = Ctl(env, start_proxy)
    p = c.p
    spec = f"reload.test:{env.tls.port}"
    assert c(f"allow {spec}")[0] == 0
    n = len(p.find(event="policy", reason="reloaded"))
    os.kill(p.pid, signal.SIGHUP)
    sbxtest.wait_until(lambda: len(p.find(event="policy", reason="reloaded")) > n,
                       5, what="reload audit record")
    assert _get(env, p, "reload.test")[1] == "200", "SIGHUP dropped the runtime rule"
    assert c("status") == (0, f"ok egress=open rules=1: allow {spec}")

    assert c("cut")[0] == 0
    os.kill(p.pid, signal.SIGHUP)
    p.wait_record(event="policy", reason="reloaded; egress stays cut")
    assert _get(env, p, "allowed.test")[1] != "200", "SIGHUP undid the cut"
    assert c("resume")[0] == 0
    assert _get(env, p, "reload.test")[1] == "200"


def test_client_reports_unreachable_socket(env, tmp_path):
    tool = os.path.join(env.build, "tools", "control_send")
    r = run([tool, str(tmp_path / "nope.sock"), "status"])
    assert r.returncode == 1 and b"is the sandbox running?" in r.stdout
