"""Report mode, policy reload on SIGHUP, drain and exit on SIGTERM, --check."""

import os
import signal
import socket

import sbxtest
from sbxtest import curl, run


def _get(env, p, name, path="/"):
    r = curl(env, "-x", p.http_proxy_url(), "-w", "\n%{http_code}",
             f"https://{name}:{env.tls.port}{path}")
    return r.returncode, r.stdout.decode().rpartition("\n")[2], r.stderr.decode()


def test_report_mode_lets_would_deny_through(env, start_proxy):
    p = start_proxy(sbxtest.base_policy(env, mode="report"))
    rc, code, err = _get(env, p, "would.test")
    assert rc == 0 and code == "200", f"report mode blocked would.test: {err}"
    d = p.wait_record(event="connect", host="would.test")
    assert d.get("decision") == "would-deny", d
    assert d.get("rule") == "default", d
    rcode, _ = p.dns("would.test")
    assert rcode == "NOERROR"
    d = p.wait_record(event="dns", host="would.test")
    assert d.get("decision") == "would-deny", d


def test_sighup_reload_and_bad_file_keeps_old_policy(env, start_proxy):
    p = start_proxy(sbxtest.base_policy(env))
    rc, code, err = _get(env, p, "reload.test")
    assert rc != 0 and "403" in err, (rc, code, err)

    new = sbxtest.base_policy(
        env, extra_allow=f"  - host: reload.test\n    ports: [{env.tls.port}]\n")
    with open(p.policy + ".tmp", "w") as f:
        f.write(new)
    os.rename(p.policy + ".tmp", p.policy)
    os.kill(p.pid, signal.SIGHUP)
    sbxtest.wait_until(lambda: _get(env, p, "reload.test")[1] == "200", 5,
                       interval=0.2, what="reload.test allowed after SIGHUP")
    c = p.wait_record(event="connect", host="reload.test", decision="allow")
    assert c.get("rule") == p.rule("host: reload.test"), c

    # A broken file: the proxy says why and keeps the policy it had.
    err_before = len(p.stderr())
    with open(p.policy, "w") as f:
        f.write("version: 1\nallow:\n  - host: [unterminated\n  - bogus_key: 1\n")
    os.kill(p.pid, signal.SIGHUP)

    def complained():
        said = p.stderr()[err_before:]
        recs = [r for r in p.find(event="policy") if p.policy in (r.get("reason") or "")]
        return p.policy in said or recs
    sbxtest.wait_until(complained, 5,
                       what="the proxy to name the broken policy file (stderr or audit)")
    assert p.alive(), "the proxy died on a bad policy file"
    rc, code, err = _get(env, p, "reload.test")
    assert code == "200", f"the old policy was not kept: {err}"
    rc, code, err = _get(env, p, "denied.test")
    assert rc != 0 and "403" in err, "the bad file widened the policy"


def test_sigterm_drains_and_exits_zero(env, start_proxy):
    # A drain timeout far longer than any wait below: the idle DNS stream
    # must be ended by SIGTERM itself (an idle DNS stream has nothing to
    # drain), not by the drain timer. Checked by events and the close
    # record's reason, not by timing the exit.
    p = start_proxy(args=["--drain-timeout", "600"])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(p.sock)
    s.sendall(b"SBXW\x01\x02\x00\x00" + bytes(20))
    q = sbxtest.dns_question("allowed.test", 1)
    s.sendall(len(q).to_bytes(2, "big") + q)
    assert len(s.recv(2)) == 2, "no DNS answer before SIGTERM"
    os.kill(p.pid, signal.SIGTERM)
    assert sbxtest.wait_closed(s, 60) is not None, \
        "the idle DNS stream was not closed on SIGTERM"
    s.close()
    try:
        rc = p.proc.wait(timeout=60)
    except Exception:
        raise AssertionError("sandbox-proxy did not exit after SIGTERM with "
                             "nothing left to drain") from None
    assert rc == 0, f"exit status {rc} after SIGTERM; stderr:\n{p.stderr()[-3000:]}"
    assert not os.path.exists(p.sock), "the unix socket was left behind"
    closes = p.find(event="close", reason=lambda r: r and "shutting down" in r)
    assert closes, f"no close record for the DNS stream: {p.audit()[-5:]}"
    assert all(r["reason"] == "proxy shutting down" for r in closes), \
        f"closed by the drain timer, not at SIGTERM: {closes}"


def _check(env, text, tmpdir):
    path = os.path.join(tmpdir, "check.yaml")
    with open(path, "w") as f:
        f.write(text)
    argv = [env.proxy_bin, "--check", "--policy", path, "--presets", env.presets,
            "--audit", os.path.join(tmpdir, "check-audit.jsonl"), "--sandbox", "check",
            "--resolver", f"127.0.0.1:{env.dns.port}",
            "--listen", f"unix:{os.path.join(tmpdir, 'c.sock')}",
            "--http-proxy", f"tcp:127.0.0.1:{sbxtest.free_port()}"]
    return path, run(argv, timeout=10)


def test_check_mode(env, tmp_path):
    d = str(tmp_path)
    _, r = _check(env, sbxtest.base_policy(env), d)
    assert r.returncode == 0, r.stderr.decode()
    path, r = _check(env, "version: 1\nallow:\n  - host: allowed.test\n"
                          "    portz: [1]\n  - host: other.test\n    ports: [99999]\n", d)
    err = r.stderr.decode()
    assert r.returncode != 0, "--check accepted a bad policy"
    assert f"{path}:4:" in err, f"unknown key on line 4 not reported as file:line:col:\n{err}"
    assert f"{path}:6:" in err, f"bad port on line 6 not reported (all errors):\n{err}"
