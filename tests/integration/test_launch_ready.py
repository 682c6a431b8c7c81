"""The launcher's supervisor as a user meets it (issue 9): the real
sandbox-launch, proxy and bridge, with a fake QEMU that exits at once.

  - both daemons say "ready" on an inherited pipe (--ready-fd): the run
    gets as far as QEMU, whose own exit is then reported;
  - a proxy that dies before it is ready is named, with its exit status
    and the tail of its log, and nothing after it starts;
  - an agent descriptor that cannot be looked at is an error naming the
    path, not "no such agent" (the command would run without its
    preset)."""

import pytest

from sbxtest import run
from sbxtest.launcher import QEMU_EXITS, fake_vm


@pytest.fixture
def R(env, tmp_path, request):
    x = fake_vm(env, tmp_path, request, QEMU_EXITS)
    x.qemu_ran = x.marker

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
