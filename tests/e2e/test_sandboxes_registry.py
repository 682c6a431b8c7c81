"""Named-sandbox registry operations that need no boot, run as the
non-root test user: rm and prune take the sandbox's lock (a sandbox whose
lock is held, i.e. running or just starting, is never removed; rm --force
stops its launcher first), and reset recreates the writable layer but
keeps the registry entry.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

import test_launch_basic as base

HOLDER = """import fcntl, os, signal, sys, time
def term(*_):
    print("SIGTERM", flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
f = open(sys.argv[1], "a")
fcntl.flock(f, fcntl.LOCK_EX)
print("locked", os.getpid(), flush=True)
time.sleep(300)
"""


def meta_text(meta):
    """meta.json as the launcher writes it: one key a line."""
    return "{\n" + ",\n".join("  %s: %s" % (json.dumps(k), json.dumps(v))
                               for k, v in meta.items()) + "\n}\n"


@pytest.fixture
def env():
    e = base.Env()
    yield e
    e.cleanup()


def make_sandbox(e, name, upper=False):
    """A registry entry as a stopped run leaves it."""
    d = os.path.join(e.state, "sandbox", "sandboxes", name)
    e.run(["list"])  # nothing yet; makes sure HOME/XDG are fine
    for p in (os.path.join(e.state, "sandbox"),
              os.path.join(e.state, "sandbox", "sandboxes"), d):
        os.makedirs(p, 0o700, exist_ok=True)
        e.own(p)
    meta = {"name": name, "workspace": os.path.realpath(e.ws), "agent": "",
            "command": "sh", "policies": [],
            "created": 1, "started": 1, "pid": 0, "state": "stopped",
            "state_dir": "", "run_dir": "", "proxy_control": "", "audit": ""}
    with open(os.path.join(d, "meta.json"), "w") as f:
        f.write(meta_text(meta))
    e.own(os.path.join(d, "meta.json"))
    return d


def hold_lock(e, d):
    """The lock held by a process of the test user, as a launcher holds
    it; its pid goes into meta.json as the launcher's."""
    p = subprocess.Popen(e.prefix + [sys.executable, "-c", HOLDER,
                                     os.path.join(d, "lock")],
                         stdout=subprocess.PIPE, start_new_session=True)
    word, pid = p.stdout.readline().split()
    assert word == b"locked"
    m = os.path.join(d, "meta.json")
    with open(m) as f:
        meta = json.load(f)
    meta["pid"], meta["state"] = int(pid), "running"
    with open(m, "w") as f:
        f.write(meta_text(meta))
    p.holder_pid = int(pid)
    return p


def test_rm_and_prune_respect_the_lock(env):
    e = env
    d = make_sandbox(e, "busy")
    make_sandbox(e, "idle")
    holder = hold_lock(e, d)
    try:
        r = e.run(["rm", "busy"])
        assert r.returncode == 1, r
        assert b"busy is running (or starting)" in r.stderr, r.stderr
        assert b"rm --force" in r.stderr
        assert os.path.exists(os.path.join(d, "meta.json"))

        r = e.run(["prune", "--dry-run"])
        assert r.stdout == b"idle: would be removed\n", r.stdout
        r = e.run(["prune"])
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"idle: removed\n", r.stdout
        assert os.path.exists(d)
        assert holder.poll() is None

        # --force stops the "launcher" first (SIGTERM, which it reports;
        # a later SIGKILL would leave nothing), then removes.
        r = e.run(["rm", "--force", "busy"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"busy: removed\n"
        holder.wait(timeout=5)  # runuser, once its child got SIGTERM
        assert holder.stdout.read() == b"SIGTERM\n"
        assert not os.path.exists(d)
    finally:
        if holder.poll() is None:
            os.kill(holder.holder_pid, signal.SIGKILL)


def test_rm_unknown_name(env):
    r = env.run(["rm", "nope"])
    assert r.returncode == 1
    assert b"no sandbox named nope" in r.stderr


def test_reset_recreates_the_layer_keeps_the_entry(env):
    e = env
    d = make_sandbox(e, "rs")
    img, rec = os.path.join(d, "upper.img"), os.path.join(d, "upper.root")
    with open(img, "wb") as f:
        f.write(b"old layer" * 100000)
    with open(rec, "w") as f:
        f.write("image /somewhere/else.img, size 1, modified 1\n")
    for p in (img, rec):
        e.own(p)
    with open(os.path.join(d, "meta.json")) as f:
        meta_before = f.read()

    holder = hold_lock(e, d)
    try:
        r = e.run(["reset", "rs"])
        assert r.returncode == 1
        assert b"rs is running (or starting): stop it first\n" in r.stderr
        assert os.path.getsize(img) == 900000
    finally:
        os.kill(holder.holder_pid, signal.SIGKILL)
        holder.wait()
    with open(os.path.join(d, "meta.json"), "w") as f:
        f.write(meta_before)

    t = time.monotonic()
    r = e.run(["reset", "rs"])
    took = time.monotonic() - t
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"rs: writable layer reset (")
    st = os.stat(img)
    print("reset took %.2f s; %d of %d bytes allocated" % (
        took, st.st_blocks * 512, st.st_size))
    # A new sparse layer, not one written out: what keeps reset quick
    # (its time is printed; a bound on it would be a timed assertion).
    assert st.st_blocks * 512 * 8 < st.st_size, (st.st_blocks, st.st_size)
    with open(img, "rb") as f:
        sb = f.read(2048)
    assert sb[1080:1082] == b"\x53\xef"           # ext4 superblock magic
    assert sb[1024 + 120:1024 + 133] == b"sandbox-upper"  # its label
    assert os.stat(img).st_uid == e.uid
    assert not os.path.exists(rec)                 # any root may follow
    with open(os.path.join(d, "meta.json")) as f:
        assert f.read() == meta_before
    r = e.run(["list", "--json"])
    assert [x["name"] for x in json.loads(r.stdout)] == ["rs"]

    r = e.run(["reset", "nope"])
    assert r.returncode == 1 and b"no sandbox named nope" in r.stderr


def test_layer_over_another_root_is_refused(env):
    """Checked before anything starts: no boot."""
    e = env
    base.require()
    d = make_sandbox(e, "rt")
    img, rec = os.path.join(d, "upper.img"), os.path.join(d, "upper.root")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    with open(rec, "w") as f:
        f.write("image /somewhere/else.img, size 1, modified 1\n")
    for p in (img, rec):
        e.own(p)
    r = e.run(["run", "--name", "rt", "--", "true"], stdin=subprocess.DEVNULL)
    assert r.returncode == 125, r.stderr
    assert (b"its writable layer was made over image /somewhere/else.img, "
            b"size 1, modified 1, but this run's root is host /usr")in r.stderr, r.stderr
    assert b"sandbox-launch reset rt" in r.stderr
    assert os.path.getsize(img) == 1 << 20
    assert not e.runs() or all(not os.path.exists(os.path.join(x, "qemu.log"))
                               for x in e.runs())
    m = json.load(open(os.path.join(d, "meta.json")))
    assert m["state"] == "stopped" and m["pid"] == 0

    # reset forgets the old root along with the layer.
    r = e.run(["reset", "rt"])
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(rec)


def test_run_without_command_runs_the_recorded_one(env):
    """Two boots: the first run records its words in meta.json; "run NAME"
    from another directory runs them again in the recorded workspace."""
    e = env
    base.require()
    r = e.run(["run", "--name", "rr", "--", "sh", "-c", 'echo "again $PWD"'],
              stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    ws = os.path.realpath(e.ws)
    assert r.stdout == ("again %s\n" % ws).encode()
    m = json.load(open(os.path.join(e.state, "sandbox", "sandboxes", "rr",
                                    "meta.json")))
    assert m["args"] == ["sh", "-c", 'echo "again $PWD"']

    r = e.run(["run", "rr"], stdin=subprocess.DEVNULL, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ("again %s\n" % ws).encode()

    r = e.run(["--name", "nothing-here"], stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert b"no sandbox nothing-here with a recorded command" in r.stderr


def test_rerun_replays_an_agent(env):
    """An agent is run again by its name (its descriptor applies anew):
    here one that is not installed, so no boot."""
    e = env
    agents = os.path.join(e.root, "agents")
    os.mkdir(agents)
    with open(os.path.join(agents, "gone.yaml"), "w") as f:
        f.write("command: [no-such-agent-cli]\npreset: ./p.yaml\n"
                "install:\n  how: npm install -g gone\n")
    d = make_sandbox(e, "ag")
    m = json.load(open(os.path.join(d, "meta.json")))
    m["agent"], m["args"] = "gone", ["gone", "--flag"]
    with open(os.path.join(d, "meta.json"), "w") as f:
        f.write(meta_text(m))
    a = e.argv(["run", "ag"])
    i = a.index("env") + 1
    a = a[:i] + ["SANDBOX_AGENTS_DIR=" + agents] + a[i:]
    r = subprocess.run(a, cwd="/", capture_output=True, timeout=60)
    assert r.returncode == 127, r.stderr
    assert b"gone is not installed" in r.stderr, r.stderr


def test_agent_in_the_image_manifest_counts_as_installed(env):
    """No boot: a nonexistent workspace stops the run right after the
    agent check."""
    e = env
    agents, images = os.path.join(e.root, "agents"), os.path.join(e.root, "img")
    os.mkdir(agents)
    os.mkdir(images)
    with open(os.path.join(agents, "imgagent.yaml"), "w") as f:
        f.write("command: [no-such-agent-cli]\npreset: ./p.yaml\n"
                "install:\n  npm: '@example/agent'\n  how: npm i -g x\n")
    with open(os.path.join(agents, "p.yaml"), "w") as f:
        f.write("version: 1\n")
    for name, pkgs in (("has", {"@example/agent": "1.0", "npm": "10"}),
                       ("lacks", {"npm": "10"})):
        img = os.path.join(images, name + ".img")
        with open(img, "w") as f:
            f.truncate(4 << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
        with open(os.path.join(images, name + ".json"), "w") as f:
            json.dump({"name": name, "npm_packages": pkgs,
                       "debian_packages": {"@example/agent": "no"}}, f,
                      indent=1)

    def run(image):
        a = e.argv(["--image", image, "--workspace", "/nonexistent",
                    "imgagent"])
        i = a.index("env") + 1
        a = a[:i] + ["SANDBOX_AGENTS_DIR=" + agents,
                     "SANDBOX_IMAGES_DIR=" + images] + a[i:]
        return subprocess.run(a, cwd="/", capture_output=True, timeout=60)

    r = run("has")
    assert r.returncode == 125, r.stderr
    assert b"workspace /nonexistent" in r.stderr, r.stderr
    r = run("lacks")
    assert r.returncode == 127, r.stderr
    assert b"imgagent is not installed: neither this machine's /usr has " \
        b"no-such-agent-cli nor does image lacks's manifest list " \
        b"@example/agent" in r.stderr, r.stderr
