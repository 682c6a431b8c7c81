"""Repository policy trust (launcher/trust.c through tests/tools/trust_check):
narrowing files pass silently, widening ones need an approval pinned by the
SHA-256 of the exact bytes (interactive on a pty, or --trust), a changed
file needs approval again, symlinks are refused, and the copy handed to the
proxy is the bytes that were approved, not a later workspace version."""

import hashlib
import os
import pty
import select
import subprocess
import time

import pytest

from sbxtest import run

BASE = "version: 1\nallow:\n  - host: api.example.com\n    ports: [443]\n" \
       "deny:\n  - \"**.corp.example\"\n"
NARROW = "version: 1\ndeny:\n  - api.example.com\n"
WIDE = "version: 1\nallow:\n  - host: new.example.com\n    ports: [443]\n" \
       "  - jira.corp.example\n"


@pytest.fixture
def t(env, tmp_path):
    class T:
        pass
    x = T()
    x.tool = os.path.join(env.build, "tools", "trust_check")
    x.ws = tmp_path / "ws"
    (x.ws / ".sandbox").mkdir(parents=True)
    x.run_dir = tmp_path / "run"
    x.run_dir.mkdir()
    x.trust_dir = tmp_path / "trusted"
    x.base = tmp_path / "user.yaml"
    x.base.write_text(BASE)
    x.presets = env.presets
    x.argv = [x.tool, "--workspace", str(x.ws), "--run-dir", str(x.run_dir),
              "--trust-dir", str(x.trust_dir), "--presets", x.presets,
              str(x.base)]

    def write(text):
        (x.ws / ".sandbox" / "policy.yaml").write_text(text)
    x.write = write

    def check(*extra, **kw):
        r = run(x.argv + list(extra), **kw)
        out = r.stdout.decode()
        fields = dict(f.split("=", 1) for f in out.split()) if r.returncode == 0 else {}
        return r.returncode, fields, r.stderr.decode()
    x.check = check
    return x


def test_no_repo_policy_passes(t):
    rc, f, err = t.check()
    assert rc == 0, err
    assert f["present"] == "0" and f["copy"] == "-"


def test_narrowing_passes_silently_and_is_copied(t):
    t.write(NARROW)
    rc, f, err = t.check()
    assert rc == 0, err
    assert f["present"] == "1" and f["widens"] == "0" and f["approved_now"] == "0"
    assert open(f["copy"]).read() == NARROW
    assert oct(os.stat(f["copy"]).st_mode & 0o777) == "0o600"
    assert not t.trust_dir.exists(), "narrowing must not record anything"


def test_widening_refused_non_interactive_then_trust(t):
    t.write(WIDE)
    rc, f, err = t.check()
    assert rc == 3, (rc, err)
    line = err.strip()
    assert "\n" not in line, "the refusal must be one line"
    assert ".sandbox/policy.yaml widens the network policy (2 changes)" in line
    assert "--trust" in line and "sandbox-policy diff" in line
    assert not (t.run_dir / "repo-policy.yaml").exists(), "refused file was copied"

    rc, f, err = t.check("--trust")
    assert rc == 0, err
    digest = hashlib.sha256(WIDE.encode()).hexdigest()
    assert f["widens"] == "1" and f["approved_now"] == "1" and f["sha256"] == digest
    rec = (t.trust_dir / digest).read_text()
    assert f"workspace {t.ws}" in rec and "approved 20" in rec

    # Remembered: no --trust needed for the same bytes.
    rc, f, err = t.check()
    assert rc == 0 and f["approved_now"] == "0", err

    # One byte more is a new file that needs approval again.
    t.write(WIDE + "# changed\n")
    rc, f, err = t.check()
    assert rc == 3, "a changed widening file was accepted without approval"


def test_symlinks_refused(t, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(WIDE)
    os.symlink(outside, t.ws / ".sandbox" / "policy.yaml")
    rc, f, err = t.check("--trust")
    assert rc == 1 and "symbolic link" in err, (rc, err)

    os.unlink(t.ws / ".sandbox" / "policy.yaml")
    os.rmdir(t.ws / ".sandbox")
    other = tmp_path / "otherdir"
    other.mkdir()
    (other / "policy.yaml").write_text(NARROW)
    os.symlink(other, t.ws / ".sandbox")
    rc, f, err = t.check("--trust")
    assert rc == 1 and ".sandbox is a symbolic link" in err, (rc, err)


def test_not_a_regular_file_and_bad_policy(t):
    os.mkfifo(t.ws / ".sandbox" / "policy.yaml")
    rc, f, err = t.check("--trust")   # must not block on the FIFO
    assert rc == 1 and "not a regular file" in err, (rc, err)
    os.unlink(t.ws / ".sandbox" / "policy.yaml")
    t.write("version: 1\nalow: []\n")
    rc, f, err = t.check("--trust")
    assert rc == 1 and ".sandbox/policy.yaml:2:1: unknown key 'alow'" in err, err


def test_copy_is_the_approved_bytes(t):
    """The copy in the run dir is made from the bytes read once: rewriting
    the workspace file afterwards changes nothing the proxy is given."""
    t.write(WIDE)
    rc, f, err = t.check("--trust")
    assert rc == 0, err
    t.write("version: 1\nallow:\n  - evil.example\n")
    assert open(f["copy"]).read() == WIDE
    assert hashlib.sha256(open(f["copy"], "rb").read()).hexdigest() == f["sha256"]


def _pty_session(t, answer):
    """Run trust_check --interactive on a pty, answer the prompt, return
    (exit code, everything it printed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(t.argv + ["--interactive"], stdin=slave, stdout=slave,
                         stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + 15
    answered = False
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    d = os.read(master, 4096)
                except OSError:
                    d = b""
                if not d:
                    break
                out += d
            if not answered and b"[y/N]" in out:
                os.write(master, answer)
                answered = True
            if p.poll() is not None and not r:
                break
        rc = p.wait(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
        os.close(master)
    return rc, out.decode(errors="replace"), answered


def test_interactive_prompt_on_a_pty(t):
    t.write(WIDE)
    rc, out, asked = _pty_session(t, b"\n")   # default is No
    assert asked, f"no prompt shown:\n{out}"
    assert "+ allow new.example.com ports 443" in out, out
    assert "overriding deny '**.corp.example'" in out, out
    assert rc == 3, f"Enter (default No) was taken as yes:\n{out}"
    assert not t.trust_dir.exists()

    rc, out, asked = _pty_session(t, b"y\n")
    assert asked and rc == 0, out
    assert "approved_now=1" in out, out
    digest = hashlib.sha256(WIDE.encode()).hexdigest()
    assert (t.trust_dir / digest).is_file()

    # Approved once: no prompt the second time.
    rc, out, asked = _pty_session(t, b"n\n")
    assert rc == 0 and not asked, out


def test_check_stops_on_a_pending_signal(t):
    """Ctrl-C during the widening check itself: with a SIGINT pending on
    the launcher's signalfd, a large file's check stops (exit 130) instead
    of running to the end; the same file without it is decided."""
    lines = ["version: 1", "allow:"]
    for j in range(3000):
        lines.append(f"  - host: \"**.x{j}.attacker.example\"\n    ports: [{1 + j}]")
    t.write("\n".join(lines) + "\n")
    rc, f, err = t.check("--interrupted")
    assert rc == 130 and "interrupted" in err, (rc, err)
    assert not (t.run_dir / "repo-policy.yaml").exists()
    rc, f, err = t.check()
    assert rc == 3 and "widens the network policy" in err, (rc, err)


def test_undecided_is_asked_each_time(t):
    """A file too intricate to decide within the check's limit is treated
    as widening, and its approval does not carry over: the next launch is
    refused again without --trust."""
    lines = ["version: 1", "allow:"]
    for k in range(31):
        ports = ",".join(str(p) for p in range(1 + k * 256, 257 + k * 256))
        lines.append(f'  - host: "**.attacker.example"\n    ports: [{ports}]')
    for j in range(3000):
        lines.append(f'  - host: "x{j}.attacker.example"\n    ports: any')
    t.write("\n".join(lines) + "\n")
    rc, f, err = t.check("--trust")
    assert rc == 0 and f["widens"] == "1", err
    digest = f["sha256"]
    assert "widening: undecided" in (t.trust_dir / digest).read_text()
    rc, f, err = t.check()
    assert rc == 3 and "widens the network policy" in err, (rc, err)
