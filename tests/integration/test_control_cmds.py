"""`sandbox-launch port` and `sandbox-launch policy` from the host's side
(launcher/policy_socket_client.c, proxy_control_command): the real
sandbox-launch finds a named sandbox in its registry, checks that it runs,
and talks to the real sandbox-proxy's control socket. No guest: the
registry entry is written the way a run writes it (meta.json with the
control socket, a lock held while it "runs").

The oracle is the proxy: what it listens on and what it recorded, not only
the launcher's exit status. A runtime `port add|rm` is for that run only:
the reply says so and the sandbox's remembered settings are not touched."""

import fcntl
import json
import os
import socket
import uuid

import pytest

import sbxtest
from sbxtest import run_text


@pytest.fixture
def R(env, start_proxy, tmp_path):
    class X:
        pass
    x = X()
    x.bin = os.path.join(env.build, "bin", "sandbox-launch")
    x.name = "ctl" + uuid.uuid4().hex[:8]
    x.state = tmp_path / "state"
    x.dir = x.state / "sandbox" / "sandboxes" / x.name
    x.dir.mkdir(parents=True)
    ctl = os.path.join(env.workdir, f"c-{uuid.uuid4().hex[:8]}.sock")
    x.proxy = start_proxy(args=[
        "--guest-connect", os.path.join(env.workdir, "no-bridge.sock"),
        "--control", f"unix:{ctl}"])
    meta = {"name": x.name, "state": "running", "proxy_control": ctl}
    (x.dir / "meta.json").write_text(
        "{\n" + "".join(f"  {json.dumps(k)}: {json.dumps(v)},\n"
                        for k, v in meta.items()) + "  \"pid\": 1\n}\n")
    x.settings = x.dir / "settings"
    x.settings.write_text("# made by the test\n")
    x.lock = open(x.dir / "lock", "w")
    fcntl.flock(x.lock, fcntl.LOCK_EX)
    x.env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(x.state))

    x.launch = lambda *args: run_text([x.bin, *args], env=x.env)
    yield x
    x.lock.close()


def test_port_add_rm_reach_the_proxy_and_say_this_run_only(R):
    hp = sbxtest.free_port()
    spec = f"127.0.0.1:{hp}:8000"
    rc, out, err = R.launch("port", R.name, "add", spec)
    assert rc == 0, (out, err)
    assert f"ok published {spec}" in out, out
    assert "for this run only" in out, out
    # The proxy listens: the oracle is the socket, then its record.
    socket.create_connection(("127.0.0.1", hp), timeout=10).close()
    R.proxy.wait_record(event="policy", reason="port published", rule=spec)
    assert R.settings.read_text() == "# made by the test\n"

    rc, out, err = R.launch("port", R.name, "list")
    assert rc == 0 and f"ok ports=1: {spec}" in out, (out, err)
    assert "this run only" not in out, out

    rc, out, err = R.launch("port", R.name, "rm", spec)
    assert rc == 0 and "for this run only" in out, (out, err)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hp), timeout=5).close()
    assert R.settings.read_text() == "# made by the test\n"

    # A refusal by the proxy is exit 1 with its reason.
    rc, out, err = R.launch("port", R.name, "rm", spec)
    assert rc == 1 and "not published" in err, (out, err)


def test_policy_goes_through_the_same_path(R):
    rc, out, err = R.launch("policy", R.name, "allow", "api.example.com:443")
    assert rc == 0 and out.startswith("ok"), (out, err)
    R.proxy.wait_record(event="policy",
                        reason="runtime allow api.example.com:443")
    rc, out, err = R.launch("policy", R.name, "status")
    assert rc == 0 and "api.example.com" in out, (out, err)
    rc, out, err = R.launch("policy", R.name, "remove", "nothing.example:1")
    assert rc == 1 and err.startswith(f"sandbox-launch policy: {R.name}: "), err


@pytest.mark.parametrize("cmd,words", [
    (["port", "{n}", "list"], "ports are published only while it runs"),
    (["policy", "{n}", "status"], "runtime rules live only while it runs"),
])
def test_a_stopped_or_unknown_sandbox_is_exit_2(R, cmd, words):
    R.lock.close()  # the run ended
    argv = [w.format(n=R.name) for w in cmd]
    rc, out, err = R.launch(*argv)
    assert rc == 2 and "is not running" in err and words in err, err
    argv = [w.format(n="nosuch" + R.name) for w in cmd]
    rc, out, err = R.launch(*argv)
    assert rc == 2 and "no sandbox named" in err, err
