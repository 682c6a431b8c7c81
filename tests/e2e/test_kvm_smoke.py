"""KVM smoke test: where /dev/kvm runs guests for the test user, one
sandbox boots under KVM (not the TCG fallback), writes to the workspace
(virtiofs) and reaches the proxy, whose audit log records the request.
Skipped, with the reason, where KVM cannot run a guest (no /dev/kvm, not
accessible to the user, or QEMU's KVM fails as on nested hosts without
the MSRs it wants).

The probe boots the guest kernel alone under `-accel kvm`: without an
initramfs it panics at once, and `-no-reboot` with `panic=-1` ends QEMU;
"Kernel panic" on the console means KVM ran it. The network part sends
nothing off the machine: the name is denied by the proxy and the
resolver is a closed loopback port.
"""
import json
import os
import subprocess

import pytest

import test_launch_basic as base


def kvm_problem(e):
    """None if KVM runs a guest for e's user, else why not."""
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    probe = subprocess.run(
        e.prefix + ["sh", "-c", "test -r /dev/kvm && test -w /dev/kvm"])
    if probe.returncode != 0:
        return "/dev/kvm is not read-write for uid %d" % e.uid
    kernel = os.path.join(base.GUEST, "vmlinux")
    try:
        r = subprocess.run(
            e.prefix + ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
                        "-M", "microvm", "-m", "256", "-nodefaults",
                        "-no-user-config", "-display", "none", "-no-reboot",
                        "-serial", "stdio", "-kernel", kernel,
                        "-append", "console=ttyS0 panic=-1"],
            capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "a KVM guest did not reach its kernel panic within 120 s"
    out = (r.stdout + r.stderr).decode(errors="replace")
    if "Kernel panic" not in out:
        return "QEMU cannot run a KVM guest here: " + out.strip()[-300:]
    return None


@pytest.fixture(scope="module")
def env():
    base.require()
    e = base.Env()
    why = kvm_problem(e)
    if why:
        e.cleanup()
        pytest.skip("KVM smoke test skipped: " + why)
    yield e
    e.cleanup()


def test_boots_under_kvm_with_workspace_and_proxy(env):
    audit = os.path.join(env.root, "audit.jsonl")
    r = env.run(["--verbose", "--timings", "--audit", audit,
                 "--resolver", "127.0.0.1:1", "--",
                 "sh", "-c", "echo kvm > kvm.txt; "
                 "curl -s -o /dev/null -w '%{http_code}' http://kvm-smoke.invalid/"])
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err[-2000:]
    assert "starting (KVM)" in err and "KVM does not work here" not in err, err
    with open(os.path.join(env.ws, "kvm.txt")) as f:
        assert f.read() == "kvm\n"
    assert os.stat(os.path.join(env.ws, "kvm.txt")).st_uid == env.uid
    assert r.stdout.decode().strip().endswith("403"), r.stdout
    with open(audit) as f:
        recs = [json.loads(l) for l in f if l.strip()]
    assert any("kvm-smoke.invalid" in json.dumps(x) for x in recs), recs[-5:]
