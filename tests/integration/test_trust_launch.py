"""Repository policy trust as a user meets it: the real sandbox-launch, up
to the point where the guest would boot. A fake QEMU (a shell script that
only waits) stands in for the VM, so no guest is started; everything
before it (policy check, the repository policy's widening check, the
prompt, the proxy, the bridge) is the real thing.

  - no terminal and no --trust: a widening repository policy is refused,
    and a probe-denying file (issue 15) is not "narrowing only";
  - on a terminal (a pty): asked, with the widening shown, escaped;
  - an approval is of the effect: a deny added to the user's policy that
    the repository's allow overrides asks again;
  - Ctrl-C (SIGINT) at the prompt and while waiting for the guest ends
    the launch, and SIGTERM too;
  - joining a running named sandbox with options it cannot honour is
    refused, naming them;
  - a 1 MiB hostile policy is refused or decided quickly (no timing
    assertion under sanitizers: a generous timeout the old quadratic
    check could never meet)."""

import os
import pty
import select
import signal
import subprocess
import time

import pytest

from sbxtest import run
from sbxtest.launcher import QEMU_WAITS, fake_vm

WIDE = ("version: 1\nallow:\n  - host: new.example.com\n    ports: [443]\n"
        "  - jira.corp.example\n")

# Issue 15 item 1: allows a whole domain and host loopback, and denies
# exactly what a sampling check would have probed.
PROBE_DENYING = (
    "version: 1\nallow:\n"
    "  - host: \"**.attacker.example\"\n    ports: any\n"
    "  - cidr: 127.0.0.0/8\n    ports: any\n"
    "deny:\n"
    "  - zz-sandbox-probe.attacker.example\n"
    "  - zz-sandbox-probe.zz-sandbox-probe.attacker.example\n"
    "  - cidr: 127.0.0.0\n  - cidr: 127.255.255.255\n")


@pytest.fixture
def L(env, tmp_path, request):
    # A VM that never boots: waits until it is killed.
    x = fake_vm(env, tmp_path, request, QEMU_WAITS)
    (x.ws / ".sandbox").mkdir(parents=True)
    (x.config / "sandbox").mkdir(parents=True)
    x.user_policy = x.config / "sandbox" / "policy.yaml"
    x.user_policy.write_text("version: 1\nallow:\n  - host: api.example.com\n"
                             "    ports: [443]\n")
    x.trusted = x.config / "sandbox" / "trusted"

    def write(text):
        (x.ws / ".sandbox" / "policy.yaml").write_text(text)
    x.write = write

    def argv(*opts, cmd=("true",), boot="300"):
        return [x.bin, "--workspace", str(x.ws), "--boot-timeout", boot,
                *opts, "--", *cmd]
    x.argv = argv
    return x


def launch(L, *opts, timeout=60, boot="300"):
    r = run(L.argv(*opts, boot=boot), timeout=timeout, env=L.env)
    return r.returncode, r.stderr.decode(errors="replace")


class Pty:
    """sandbox-launch on a pty: read what it prints, answer, signal."""

    def __init__(self, argv, env):
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen(argv, stdin=slave, stdout=slave,
                                  stderr=slave, env=env,
                                  start_new_session=True)
        os.close(slave)
        self.out = b""

    def read_until(self, what, timeout=60):
        deadline = time.monotonic() + timeout
        while what not in self.out and time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    d = os.read(self.master, 4096)
                except OSError:
                    d = b""
                if not d:
                    break
                self.out += d
            elif self.p.poll() is not None:
                break
        return what in self.out

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            self.read_until(b"\0never", timeout=0.2)
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
            raise AssertionError("sandbox-launch did not end:\n" +
                                 self.out.decode(errors="replace"))
        self.read_until(b"\0never", timeout=0.2)
        return self.p.returncode

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        os.close(self.master)

    def text(self):
        return self.out.decode(errors="replace")


def test_no_terminal_no_trust_is_refused(L):
    L.write(WIDE)
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy" in err and "--trust" in err, err
    assert not L.trusted.exists()


def test_probe_denying_file_is_widening(L):
    L.write(PROBE_DENYING)
    rc, err = launch(L)
    assert rc == 125 and "widens the network policy" in err, err
    r = run([os.path.join(os.path.dirname(L.bin), "sandbox-policy"), "diff",
             str(L.user_policy), "--", str(L.ws / ".sandbox" / "policy.yaml")],
            env=L.env)
    out = r.stdout.decode()
    assert r.returncode == 4, out
    assert "+ allow **.attacker.example" in out, out
    assert "+ allow cidr 127.0.0.0/8" in out, out


def test_deny_only_report_mode_is_widening(L):
    L.write("version: 1\nmode: report\ndeny:\n  - host: \"**\"\n"
            "  - cidr: 0.0.0.0/0\n")
    rc, err = launch(L)
    assert rc == 125 and "widens the network policy" in err, err


def test_prompt_on_a_terminal_then_ctrl_c(L):
    L.write(WIDE)
    t = Pty(L.argv(), L.env)
    try:
        assert t.read_until(b"[y/N]"), t.text()
        out = t.text()
        assert "+ allow new.example.com ports 443" in out, out
        assert "+ allow jira.corp.example ports 80,443" in out, out
        os.killpg(t.p.pid, signal.SIGINT)
        rc = t.wait(timeout=20)  # the event: its exit (no timing assertion)
        assert rc == 128 + signal.SIGINT, (rc, t.text())
    finally:
        t.close()
    assert not L.trusted.exists(), "Ctrl-C must not approve"


def test_hostile_bytes_reach_no_terminal(L):
    """Issue 15 item 2: a key holding OSC 52 (clipboard), erase-line, a C1
    CSI and a right-to-left override, quoted by the error message."""
    L.write('version: 1\n"\\e]52;c;ZWNobyBwd25lZA==\\a\\e[2K'
            'sandbox-launch: approved\\x9b31m\\u202e": 1\n')
    t = Pty(L.argv(), L.env)
    try:
        rc = t.wait(timeout=60)
    finally:
        t.close()
    out = t.out
    assert rc == 125, t.text()
    assert b"unknown key" in out, t.text()
    for bad in (b"\x1b]", b"\x1b[2K", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae"):
        assert bad not in out, (bad, t.text())
    assert b"\\x1b]52" in out and b"\\u{202e}" in out, t.text()
    # The same file through sandbox-policy check and diff.
    pol = os.path.join(os.path.dirname(L.bin), "sandbox-policy")
    for argv in ([pol, "check", str(L.ws / ".sandbox" / "policy.yaml")],
                 [pol, "diff", str(L.user_policy), "--",
                  str(L.ws / ".sandbox" / "policy.yaml")]):
        r = run(argv, env=L.env)
        both = r.stdout + r.stderr
        assert r.returncode == 1 and b"unknown key" in both, both
        for bad in (b"\x1b", b"\x07", b"\xc2\x9b", b"\xe2\x80\xae"):
            assert bad not in both, (argv[1], bad, both)


def test_homograph_shown_with_punycode_and_warning(L):
    L.write("version: 1\nallow:\n  - \"\u0430\u0440\u0440\u04cf\u0435.com\"\n")
    t = Pty(L.argv(), L.env)
    try:
        assert t.read_until(b"[y/N]"), t.text()
        out = t.text()
        os.write(t.master, b"n\n")
        t.wait()
    finally:
        t.close()
    assert "+ allow xn--80ak6aa92e.com (shown as \u0430\u0440\u0440\u04cf\u0435.com; " \
           "WARNING: mixes scripts" in out, out


def test_approval_is_of_the_effect(L):
    """Issue 15 item 3: approve an allow of jira.corp.example; the user
    then denies **.corp.example; the same file now overrides that deny and
    must be asked about again, with the override shown."""
    L.write("version: 1\nallow:\n  - jira.corp.example\n")
    rc, err = launch(L, "--trust", boot="1")
    # The approval is recorded before the (fake) VM: the launch then
    # times out or is stopped; only the approval matters here.
    assert L.trusted.is_dir() and len(os.listdir(L.trusted)) == 1, err
    rec = (L.trusted / os.listdir(L.trusted)[0]).read_text()
    assert "widening: allow jira.corp.example ports 80,443 from repo" in rec, rec

    L.user_policy.write_text(L.user_policy.read_text() +
                             "deny:\n  - \"**.corp.example\"\n")
    rc, err = launch(L)
    assert rc == 125 and "more than you approved before" in err, err
    t = Pty(L.argv(), L.env)
    try:
        assert t.read_until(b"[y/N]"), t.text()
        out = t.text()
        os.write(t.master, b"\n")
        assert t.wait() == 125
    finally:
        t.close()
    assert "was approved before" in out, out
    assert "overriding deny '**.corp.example'" in out, out


def test_ctrl_c_and_sigterm_while_the_guest_boots(L):
    for sig in (signal.SIGINT, signal.SIGTERM):
        p = subprocess.Popen(L.argv("--verbose"), env=L.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True)
        try:
            # Wait until the launcher waits for the guest (the fake QEMU
            # is running).
            deadline = time.monotonic() + 60
            qemu_up = False
            while time.monotonic() < deadline and not qemu_up:
                time.sleep(0.2)
                kids = subprocess.run(["pgrep", "-P", str(p.pid)],
                                      capture_output=True).stdout.split()
                for k in kids:
                    try:
                        cmd = open(f"/proc/{int(k)}/cmdline", "rb").read()
                    except OSError:
                        continue
                    qemu_up |= b"sleep" in cmd
                assert p.poll() is None, p.stderr.read().decode()
            assert qemu_up, "the fake QEMU never started"
            os.killpg(p.pid, sig) if sig == signal.SIGINT else p.send_signal(sig)
            rc = p.wait(timeout=30)
            assert rc == 128 + sig, (sig, rc, p.stderr.read().decode())
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_join_with_other_options_is_refused(L):
    L.write("version: 1\ndeny:\n  - api.example.com\n")
    first = subprocess.Popen(L.argv("--name", "jointest", cmd=("sleep", "1")),
                             env=L.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        meta = os.path.join(L.env["XDG_STATE_HOME"], "sandbox", "sandboxes",
                            "jointest", "meta.json")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(meta) and b'"run_dir"' in open(meta, "rb").read() \
                    and b"/runs/" in open(meta, "rb").read():
                break
            time.sleep(0.2)
        other = L.ws.parent / "other"
        other.mkdir()
        r = run([L.bin, "run", "--name", "jointest", "--workspace", str(other),
                 "--deny", "example.org", "--memory", "512", "--", "true"],
                env=L.env, timeout=30)
        err = r.stderr.decode()
        assert r.returncode == 125, err
        assert "sandbox jointest is running" in err, err
        assert f"--workspace {other}" in err and "--deny example.org" in err, err
        assert "--memory 512" in err and "sandbox-launch stop jointest" in err, err
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=30)


def test_one_mebibyte_hostile_policy_is_decided(L, tmp_path):
    """31 rules listing 256 ports each on one wildcard, and 4000 more
    names under it: the old check looped over every port of every probe
    for every rule (hours). Decided or refused, well within the timeout
    even under sanitizers."""
    lines = ["version: 1", "allow:"]
    for k in range(31):
        ports = ",".join(str(p) for p in range(1 + k * 256, 257 + k * 256))
        lines.append(f'  - host: "**.attacker.example"\n    ports: [{ports}]')
    text = "\n".join(lines) + "\n"
    for j in range(4000):
        lab = "x" * 50 + str(j)
        text += f'  - host: "{lab}.{lab[:60]}.attacker.example"\n    ports: any\n'
    text += "# " + "p" * max(0, (1 << 20) - len(text) - 10) + "\n"
    assert len(text) <= 1 << 20
    L.write(text)
    t0 = time.monotonic()
    rc, err = launch(L, timeout=120)
    took = time.monotonic() - t0
    assert rc == 125 and ("widens the network policy" in err or
                          "at most" in err), err
    print(f"1 MiB hostile policy: launch refused after {took:.2f} s")
