"""The launcher's supervisor as a user meets it (issue 9): the real
sandbox-launch, proxy and bridge, with a fake QEMU that exits at once.

  - both daemons say "ready" on an inherited pipe (--ready-fd): the run
    gets as far as QEMU, whose own exit is then reported;
  - a proxy that dies before it is ready is named, with its exit status
    and the tail of its log, and nothing after it starts;
  - an agent descriptor that cannot be looked at is an error naming the
    path, not "no such agent" (the command would run without its
    preset)."""

import os
import shutil
import tempfile

import pytest

from sbxtest import run


@pytest.fixture
def R(env, tmp_path, request):
    class X:
        pass
    x = X()
    x.bin = os.path.join(env.build, "bin", "sandbox-launch")
    x.ws = tmp_path / "ws"
    x.ws.mkdir()
    guest = tmp_path / "guest"
    guest.mkdir()
    (guest / "vmlinuz").write_bytes(b"not a kernel")
    (guest / "initramfs.cpio.gz").write_bytes(b"not an initramfs")
    x.qemu_ran = tmp_path / "qemu-ran"
    qemu = tmp_path / "fake-qemu"
    qemu.write_text("#!/bin/sh\n: > '%s'\nexit 1\n" % x.qemu_ran)
    qemu.chmod(0o755)
    runtime = tempfile.mkdtemp(prefix="sbq-", dir="/tmp")
    request.addfinalizer(lambda: shutil.rmtree(runtime, ignore_errors=True))
    x.env = dict(os.environ, HOME=str(tmp_path),
                 XDG_CONFIG_HOME=str(tmp_path / "config"),
                 XDG_STATE_HOME=str(tmp_path / "state"),
                 XDG_CACHE_HOME=str(tmp_path / "cache"),
                 XDG_RUNTIME_DIR=runtime,
                 SANDBOX_GUEST_DIR=str(guest), SANDBOX_QEMU=str(qemu),
                 SANDBOX_PRESETS=os.path.join(env.src, "policies"))
    x.env.pop("SANDBOX_AGENTS_DIR", None)

    def launch(*args, env=None):
        r = run([x.bin, "--workspace", str(x.ws), *args], env=env or x.env,
                timeout=120)
        return r.returncode, r.stderr.decode(errors="replace")
    x.launch = launch
    return x


def test_both_daemons_ready_then_qemu(R):
    rc, err = R.launch("--", "true")
    assert rc == 125, err
    assert "the VM stopped before the guest was up" in err, err
    assert R.qemu_ran.exists(), "QEMU never started: a daemon never said ready"
    assert "did not start" not in err, err


def test_a_proxy_that_dies_first_is_named_with_its_log(R, tmp_path):
    bad = tmp_path / "no-such-dir" / "audit.jsonl"
    rc, err = R.launch("--audit", str(bad), "--", "true")
    assert rc == 125, err
    assert "sandbox-proxy did not start: it ended before it was ready " \
        "(exit status 1; log: " in err, err
    assert "--- last lines of " in err and "proxy.log ---" in err, err
    # The proxy's own message, from the tail of its log.
    assert f"sandbox-proxy: --audit {bad}: No such file or directory" in err, err
    assert not R.qemu_ran.exists(), "QEMU started after the proxy died"


def test_an_agent_descriptor_that_cannot_be_looked_at(R):
    env = dict(R.env, SANDBOX_AGENTS_DIR="/etc/hostname")
    rc, err = R.launch("claude", env=env)
    assert rc == 125, err
    assert "/etc/hostname/claude.yaml: Not a directory" in err, err
    assert not R.qemu_ran.exists(), err
