"""`sandbox-launch runs` and `runs prune` (launcher/cmd_runs.c): the kept
run directories, listed and removed on request. No guest: the directories
are made the way run_dir_create names them (YYYYMMDD-HHMMSS-NAME-PID), the
"launcher" of a running one is a live process of the test's own, and a
named sandbox's registry entry points at its latest run as a run writes it;
the last test has the real launcher (with a fake VM) make them.

The oracle is the file system: what is gone and what is still there after
the command, not only what it printed."""

import json
import os
import signal
import subprocess
import time
import types

import pytest

from sbxtest import run_text, wait_until
from sbxtest.launcher import QEMU_WAITS, fake_vm


def stamp(t):
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t))


@pytest.fixture
def R(env, tmp_path):
    x = types.SimpleNamespace()
    x.bin = os.path.join(env.build, "bin", "sandbox-launch")
    x.state = tmp_path / "state"
    x.runs = x.state / "sandbox" / "runs"
    x.runs.mkdir(parents=True)
    x.env = dict(os.environ, HOME=str(tmp_path), XDG_STATE_HOME=str(x.state))
    # A "launcher" that runs: started before its run directory is made.
    x.live = subprocess.Popen(["sleep", "600"])
    time.sleep(0.05)
    now = time.time()
    x.old = f"{stamp(now - 40 * 86400)}-sandbox-{x.live.pid + 100000}"
    x.recent = f"{stamp(now - 3600)}-sandbox-{x.live.pid + 100001}"
    x.running = f"{stamp(now - 40 * 86400)}-agent-{x.live.pid}"
    # The live pid again, on a run that ended before that process started
    # (its directory last changed 40 days ago): a reused pid, not its
    # launcher.
    x.reused = f"{stamp(now - 41 * 86400)}-reused-{x.live.pid}"
    x.latest = f"{stamp(now - 50 * 86400)}-named-{x.live.pid + 100002}"
    for d in (x.old, x.recent, x.running, x.reused, x.latest):
        (x.runs / d).mkdir()
        (x.runs / d / "audit.jsonl").write_text('{"event":"start"}\n')
    (x.runs / x.old / "host-etc" / "apt").mkdir(parents=True)
    x.outside = tmp_path / "outside.txt"
    x.outside.write_text("not the run's\n")
    os.symlink(x.outside, x.runs / x.old / "host-etc" / "apt" / "link")
    old_t = now - 41 * 86400
    os.utime(x.runs / x.reused, (old_t, old_t))
    # Not runs: never listed, never touched.
    (x.runs / "notes.txt").write_text("mine\n")
    (x.runs / "20200101-010203-bad$name-1").mkdir()
    (x.runs / "20200101-010203-nopid-").mkdir()
    reg = x.state / "sandbox" / "sandboxes" / "named"
    reg.mkdir(parents=True)
    (reg / "meta.json").write_text(
        "{\n" f'  "name": "named",\n  "state": "stopped",\n'
        f'  "run_dir": {json.dumps(str(x.runs / x.latest))},\n'
        '  "pid": 0\n}\n')

    x.launch = lambda *args: run_text([x.bin, *args], env=x.env)
    yield x
    x.live.kill()
    x.live.wait()


def present(R):
    return sorted(p.name for p in R.runs.iterdir())


def test_list_oldest_first_with_state_size_and_audit(R):
    rc, out, err = R.launch("runs", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert [os.path.basename(g["path"]) for g in got] == sorted(
        [R.old, R.recent, R.running, R.reused, R.latest]), got
    by = {os.path.basename(g["path"]): g for g in got}
    assert by[R.running]["running"] is True
    assert by[R.running]["pid"] == R.live.pid
    assert by[R.reused]["running"] is False, "a reused pid is not a launcher"
    assert by[R.old]["running"] is False
    assert by[R.old]["name"] == "sandbox" and by[R.running]["name"] == "agent"
    assert by[R.old]["audit"] == str(R.runs / R.old / "audit.jsonl")
    assert by[R.old]["bytes"] > by[R.recent]["bytes"] > 0
    assert abs(by[R.recent]["started"] - (time.time() - 3600)) < 60

    rc, out, err = R.launch("runs")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["STARTED", "NAME", "STATE", "SIZE", "PATH"]
    row = next(l for l in lines if l.endswith(R.running))
    assert " agent " in row and " running " in row, row
    assert "notes.txt" not in out and "bad$name" not in out

    rc, out, err = R.launch("runs", "--json", "--name", "sandbox")
    assert rc == 0, err
    assert sorted(os.path.basename(g["path"]) for g in json.loads(out)) == \
        sorted([R.old, R.recent])


def test_prune_needs_an_age_and_refuses_bad_input(R):
    before = present(R)
    for args, says in ((("runs", "prune"), "--older-than AGE is required"),
                       (("runs", "prune", "--older-than", "30"),
                        "not an age: 30"),
                       (("runs", "prune", "--older-than", "3x"),
                        "not an age: 3x"),
                       (("runs", "prune", "--older-than", "1d", "--name",
                         "../x"), "not a sandbox name"),
                       (("runs", "--bogus"), "unknown or incomplete")):
        rc, out, err = R.launch(*args)
        assert rc == 2 and says in err, (args, rc, err)
    assert present(R) == before


def test_prune_dry_run_then_prune(R):
    before = present(R)
    rc, out, err = R.launch("runs", "prune", "--older-than", "30d", "-n")
    assert rc == 0, err
    assert f"{R.old}: would be removed" in out, out
    assert f"{R.reused}: would be removed" in out, out
    assert present(R) == before, "a dry run removes nothing"

    rc, out, err = R.launch("runs", "prune", "--older-than", "30d")
    assert rc == 0, err
    assert f"{R.running}: kept: its launcher runs" in out, out
    assert f"{R.latest}: kept: the latest run of a named sandbox" in out, out
    assert "removed 2 runs" in out, out
    left = present(R)
    assert R.old not in left and R.reused not in left, left
    # Younger than the age, running, a named sandbox's latest: kept; and
    # what is not a run directory is not touched.
    for keep in (R.recent, R.running, R.latest, "notes.txt",
                 "20200101-010203-bad$name-1", "20200101-010203-nopid-"):
        assert keep in left, (keep, left)
    # A symbolic link in a run is removed, not followed.
    assert R.outside.read_text() == "not the run's\n"


def test_prune_by_name_and_everything(R):
    rc, out, err = R.launch("runs", "prune", "--older-than", "0s",
                            "--name", "sandbox")
    assert rc == 0, err
    left = present(R)
    assert R.old not in left and R.recent not in left, left
    assert R.reused in left and R.running in left, left

    R.live.kill()
    R.live.wait()
    rc, out, err = R.launch("runs", "prune", "--older-than", "0d")
    assert rc == 0, err
    left = present(R)
    assert R.running not in left, "its launcher is gone: removable"
    assert R.latest in left, left


def test_real_runs_of_the_launcher(env, tmp_path, request):
    """The directories the real launcher makes (with a fake VM): a named
    run is listed as running while its launcher runs and kept by prune,
    stopped after it, and then kept as that sandbox's latest run; an
    unnamed run that ended goes."""
    x = fake_vm(env, tmp_path, request, QEMU_WAITS)
    runs = x.state / "sandbox" / "runs"
    p = subprocess.Popen([x.bin, "--workspace", str(x.ws), "--name", "web",
                          "--boot-timeout", "300", "--", "true"],
                         env=x.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        wait_until(lambda: runs.is_dir() and any(runs.iterdir()), 60,
                   what="the launcher's run directory")
        rc, out, err = run_text([x.bin, "runs", "--json"], env=x.env)
        assert rc == 0, err
        (web,) = json.loads(out)
        assert web["name"] == "web" and web["running"] is True, web
        assert web["pid"] == p.pid, web
        rc, out, err = run_text([x.bin, "runs", "prune", "--older-than",
                                 "0s"], env=x.env)
        assert rc == 0 and "kept: its launcher runs" in out, (out, err)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.communicate(timeout=60)
    assert os.path.isdir(web["path"])

    # An unnamed run whose VM stops at once.
    (tmp_path / "fake-qemu").write_text("#!/bin/sh\nexit 1\n")
    run_text([x.bin, "--workspace", str(x.ws), "--boot-timeout", "300",
              "--", "true"], env=x.env)
    rc, out, err = run_text([x.bin, "runs", "--json"], env=x.env)
    got = {g["name"]: g for g in json.loads(out)}
    assert set(got) == {"web", "sandbox"}, got
    assert not got["web"]["running"] and not got["sandbox"]["running"], got

    rc, out, err = run_text([x.bin, "runs", "prune", "--older-than", "0s"],
                            env=x.env)
    assert rc == 0, err
    assert "kept: the latest run of a named sandbox" in out, out
    assert os.path.isdir(web["path"])
    assert not os.path.exists(got["sandbox"]["path"])
