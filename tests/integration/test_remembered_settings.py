"""A named sandbox remembers how it was made (issue 14): --memory, --cpus
and --policy files recorded on its first run are used again by later runs
that do not give them, and a run that gives another value is refused,
naming the option and the way out (reset or rm); reset forgets them.

The real sandbox-launch, proxy and bridge; a fake QEMU (a script that
writes its command line to a file and exits) stands in for the VM, so no
guest boots: the launcher then stops with "the VM stopped before the
guest was up", after everything this test looks at. What QEMU was given
(-m, -smp) and what the proxy was given (the run's policy.txt) are the
oracle, not the launcher's messages."""

import json
import os

import pytest

from sbxtest import run
from sbxtest.launcher import QEMU_ARGV_EXITS, fake_vm


@pytest.fixture
def S(env, tmp_path, request):
    # One argument a line; then the "VM" stops at once.
    x = fake_vm(env, tmp_path, request, QEMU_ARGV_EXITS, marker="qemu-argv")
    x.qemu_argv = x.marker
    x.pol_a = tmp_path / "a.yaml"
    x.pol_a.write_text("version: 1\nallow:\n  - host: a.example.com\n"
                       "    ports: [443]\n")
    x.pol_b = tmp_path / "b.yaml"
    x.pol_b.write_text("version: 1\nallow:\n  - host: b.example.com\n"
                       "    ports: [443]\n")

    def launch(*args):
        if x.qemu_argv.exists():
            x.qemu_argv.unlink()
        r = run([x.bin, *args], env=x.env, timeout=120, cwd=str(x.ws))
        return r.returncode, r.stderr.decode(errors="replace")
    x.launch = launch

    def qemu_opt(opt):
        a = x.qemu_argv.read_text().split("\n")
        return a[a.index(opt) + 1]
    x.qemu_opt = qemu_opt

    def meta(name):
        p = x.state / "sandbox" / "sandboxes" / name / "meta.json"
        return json.loads(p.read_text())
    x.meta = meta

    def proxy_policies(name):
        """The policy files the proxy of the latest run was given."""
        rec = os.path.join(meta(name)["run_dir"], "policy.txt")
        return [line.split(" ", 1)[1] for line in open(rec).read().split("\n")
                if line.startswith("--policy ")]
    x.proxy_policies = proxy_policies

    def proxy_given(name):
        """The bytes of those files: a remembered file is given as a
        copy of the bytes that were checked (launcher/remembered.c)."""
        return [open(p).read() for p in proxy_policies(name)]
    x.proxy_given = proxy_given
    return x


def booted_as_far_as_qemu(rc, err):
    return rc == 125 and "the VM stopped before the guest was up" in err


def test_a_second_run_reuses_memory_cpus_and_policy(S):
    rc, err = S.launch("--name", "keep", "--workspace", str(S.ws),
                       "--memory", "512", "--cpus", "2",
                       "--policy", str(S.pol_a), "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    assert S.qemu_opt("-m") == "512M" and S.qemu_opt("-smp") == "2"
    assert str(S.pol_a) in S.proxy_policies("keep")

    # --name again, no options: what it was made with.
    rc, err = S.launch("--name", "keep", "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    assert S.qemu_opt("-m") == "512M", "memory not reused"
    assert S.qemu_opt("-smp") == "2", "cpus not reused"
    assert S.proxy_given("keep") == [S.pol_a.read_text()], \
        "the policy file was not given to the proxy again"

    # run NAME (the recorded command): the same.
    rc, err = S.launch("run", "keep")
    assert booted_as_far_as_qemu(rc, err), err
    assert S.qemu_opt("-m") == "512M" and S.qemu_opt("-smp") == "2"
    assert S.proxy_given("keep") == [S.pol_a.read_text()]

    # The same values given again are no conflict.
    rc, err = S.launch("--name", "keep", "--memory", "512",
                       "--policy", str(S.pol_a), "--", "true")
    assert booted_as_far_as_qemu(rc, err), err

    r = run([S.bin, "list"], env=S.env, timeout=30)
    out = r.stdout.decode()
    assert "made with --memory 512" in out and "made with --cpus 2" in out, out
    assert f"made with --policy {S.pol_a}" in out, out
    r = run([S.bin, "list", "--json"], env=S.env, timeout=30)
    [entry] = json.loads(r.stdout)
    assert entry["settings"] == {"memory": ["512"], "cpus": ["2"],
                                 "policy": [str(S.pol_a)],
                                 "publish": [], "host_port": [],
                                 "docker": [], "registry_mirror": []}


def test_a_conflicting_option_is_refused_naming_reset(S):
    rc, err = S.launch("--name", "conf", "--workspace", str(S.ws),
                       "--memory", "512", "--policy", str(S.pol_a),
                       "--", "true")
    assert booted_as_far_as_qemu(rc, err), err

    rc, err = S.launch("--name", "conf", "--memory", "1024",
                       "--policy", str(S.pol_b), "--cpus", "3", "--", "true")
    assert rc == 125, err
    assert not S.qemu_argv.exists(), "a refused run started QEMU"
    assert "--memory 1024 (it was made with --memory 512)" in err, err
    assert f"--policy {S.pol_b} (it was made with --policy {S.pol_a})" \
        in err, err
    assert "--cpus 3 (it was made with the default --cpus)" in err, err
    assert "sandbox-launch reset conf" in err, err
    assert "sandbox-launch rm conf" in err, err

    # reset forgets how it was made: the next run says anew.
    r = run([S.bin, "reset", "conf"], env=S.env, timeout=60)
    assert r.returncode == 0, r.stderr
    rc, err = S.launch("--name", "conf", "--memory", "1024", "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    assert S.qemu_opt("-m") == "1024M"
    assert S.proxy_policies("conf") == [], \
        "a forgotten policy file still reached the proxy"


def test_a_record_edited_out_of_range_is_refused(S):
    rc, err = S.launch("--name", "edit", "--workspace", str(S.ws),
                       "--memory", "512", "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    settings = S.state / "sandbox" / "sandboxes" / "edit" / "settings"
    settings.write_text("memory 99999999\n")
    rc, err = S.launch("--name", "edit", "--", "true")
    assert rc == 125 and not S.qemu_argv.exists(), err
    assert str(settings) in err and "memory" in err, err
    settings.write_text("memory 512\nswap 1\n")
    rc, err = S.launch("--name", "edit", "--", "true")
    assert rc == 125 and "line 2: unknown setting 'swap'" in err, err


def test_a_remembered_policy_file_rewritten_since_is_not_reused(S):
    """The attack: the remembered file sits where the guest (or anyone)
    can rewrite it, e.g. in the workspace. A later run that does not name
    it must not take the new bytes: it stops, and the proxy never gets
    them; naming the file again is the user taking it as it is now."""
    pol = S.ws / "narrow.yaml"
    pol.write_text("version: 1\ndeny:\n  - a.example.com\n")
    rc, err = S.launch("--name", "pin", "--workspace", str(S.ws),
                       "--policy", str(pol), "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    runs = S.state / "sandbox" / "runs"
    before = sorted(os.listdir(runs))
    pol.write_text("version: 1\nallow:\n  - host: evil.example.com\n"
                   "    ports: any\n")
    rc, err = S.launch("--name", "pin", "--", "true")
    assert rc == 125 and not S.qemu_argv.exists(), err
    assert f"its --policy {pol} has changed since it was recorded" in err, err
    assert f"give --policy {pol} to use it as it is now" in err, err
    assert "sandbox-launch reset pin" in err, err
    assert sorted(os.listdir(runs)) == before, "a run (and its proxy) started"
    rc, err = S.launch("--name", "pin", "--policy", str(pol), "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    rc, err = S.launch("--name", "pin", "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    # The proxy got the bytes that were checked (a copy), not the path.
    [given] = S.proxy_policies("pin")
    assert open(given).read() == pol.read_text()
    assert S.meta("pin")["policies"] == [str(pol)]


def test_a_remembered_policy_rewritten_after_the_check_is_not_enforced(S, tmp_path):
    """The window between the launcher's hash check and the proxy's read:
    the proxy must enforce the bytes that were hashed. The fake QEMU
    stands in for the guest and rewrites the workspace file while the run
    is up (after the check, with the proxy running and able to reload);
    what the proxy was given must still be the checked bytes, in a file
    the guest cannot reach."""
    pol = S.ws / "narrow.yaml"
    narrow = "version: 1\ndeny:\n  - a.example.com\n"
    pol.write_text(narrow)
    rc, err = S.launch("--name", "tw", "--workspace", str(S.ws),
                       "--policy", str(pol), "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    evil = ("version: 1\nallow:\n  - host: evil.example.com\n"
            "    ports: any\n")
    qemu = tmp_path / "rewriting-qemu"
    qemu.write_text("#!/bin/sh\nprintf '%%s\\n' \"$@\" > '%s'\n"
                    "printf '%%s' '%s' > '%s'\nexit 1\n"
                    % (S.qemu_argv, evil, pol))
    qemu.chmod(0o755)
    S.env["SANDBOX_QEMU"] = str(qemu)
    rc, err = S.launch("--name", "tw", "--", "true")
    assert booted_as_far_as_qemu(rc, err), err
    assert pol.read_text() == evil, "the stand-in guest did not rewrite it"
    [given] = S.proxy_policies("tw")
    assert given != str(pol) and not given.startswith(str(S.ws)), given
    assert open(given).read() == narrow, "the proxy reads the rewritten file"
    st = os.stat(given)
    assert st.st_mode & 0o077 == 0, oct(st.st_mode)
    # The next run sees the rewrite and stops, as before.
    S.env["SANDBOX_QEMU"] = str(tmp_path / "fake-qemu")
    rc, err = S.launch("--name", "tw", "--", "true")
    assert rc == 125 and "has changed since it was recorded" in err, err
