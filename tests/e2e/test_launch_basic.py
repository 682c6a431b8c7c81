"""End-to-end tests of sandbox-launch: real guests under TCG (~10 s a boot),
run as a non-root host user (sbxtest, created when missing), so that QEMU's
mapped-xattr file sharing is what it is for a real user. "Nothing left"
means nothing of the runs this test started (their sessions, and the
state directories in this Env's own XDG_RUNTIME_DIR): other runs of the
same user may go on meanwhile.

Boots here: (1) pipes: exit status, stdout/stderr apart, stdin EOF, a file
written in the workspace, nothing left afterwards; (2) a PTY: the command
sees a terminal, its size, and Ctrl-C; (3) SIGKILL of the launcher leaves
no process behind and the next run removes the stale sockets; (4) SIGTERM
to the launcher reaches the command and tears down. Plus the set-up errors,
which need no boot. test_launch_net.py has the network checks.
"""
import fcntl
import glob
import os
import pty
import pwd
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time

import pytest

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
LAUNCH = os.path.join(BUILD, "bin", "sandbox-launch")
GUEST = os.environ.get("SANDBOX_GUEST_DIR") or os.path.join(SRC, "build", "guest")
USER = "sbxtest"
TIMEOUT = 240


def require():
    if not os.access(LAUNCH, os.X_OK):
        pytest.fail("%s missing: run `make`" % LAUNCH)
    for f in ("vmlinux", "initramfs.cpio"):
        if not os.path.isfile(os.path.join(GUEST, f)):
            pytest.fail("guest image missing (%s): run `make guest`" % f)


def host_user():
    """(uid, gid, argv prefix): run as ourselves when not root, else as
    sbxtest, created on first use."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid(), []
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", USER], check=True)
        pw = pwd.getpwnam(USER)
    ensure_subids(USER)
    return pw.pw_uid, pw.pw_gid, ["runuser", "-u", USER, "--"]


def ensure_subids(user):
    """Subordinate uid/gid ranges for user (what adduser gives a normal
    account): the launcher's virtiofsd needs one subordinate gid, and
    without it the workspace falls back to 9p."""
    def ranges(path):
        try:
            with open(path) as f:
                return [l.strip().split(":") for l in f if l.count(":") == 2]
        except FileNotFoundError:
            return []
    for path, flag in (("/etc/subuid", "--add-subuids"),
                       ("/etc/subgid", "--add-subgids")):
        rs = ranges(path)
        if any(r[0] == user for r in rs):
            continue
        start = max([100000] + [int(r[1]) + int(r[2]) for r in rs])
        subprocess.run(["usermod", flag, "%d-%d" % (start, start + 65535),
                        user], check=True)


class Env:
    """A workspace and XDG dirs owned by the test user."""

    def __init__(self):
        self.uid, self.gid, self.prefix = host_user()
        self.root = tempfile.mkdtemp(prefix="sbx-launch-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.ws = os.path.join(self.root, "ws")
        self.state = os.path.join(self.root, "state")
        self.home = os.path.join(self.root, "home")
        # Our own XDG_RUNTIME_DIR: the state directories (sockets) of this
        # Env's runs, apart from any other run of the same user.
        self.runtime = os.path.join(self.root, "run")
        for d in (self.ws, self.state, self.home, self.runtime):
            os.mkdir(d, 0o700)
        for d in (self.root, self.ws, self.state, self.home, self.runtime):
            os.chown(d, self.uid, self.gid) if os.geteuid() == 0 else None

    def argv(self, args):
        env = ["env", "HOME=" + self.home, "XDG_STATE_HOME=" + self.state,
               "XDG_RUNTIME_DIR=" + self.runtime,
               "PATH=/usr/local/bin:/usr/bin:/bin"]
        return self.prefix + env + [LAUNCH] + list(args)

    def run(self, args, **kw):
        """subprocess.run, in a session of its own (see leftovers)."""
        timeout = kw.pop("timeout", TIMEOUT)
        inp = kw.pop("input", None)
        if kw.pop("capture_output", True):
            kw["stdout"] = kw["stderr"] = subprocess.PIPE
        if inp is not None:
            kw["stdin"] = subprocess.PIPE
        p = self.popen(args, **kw)
        try:
            out, err = p.communicate(inp, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate()
            raise
        return subprocess.CompletedProcess(p.args, p.returncode, out, err)

    def popen(self, args, **kw):
        kw.setdefault("cwd", self.ws)
        kw["start_new_session"] = True
        return track(subprocess.Popen(self.argv(args), **kw))

    def runs(self):
        return sorted(glob.glob(os.path.join(self.state, "sandbox", "runs", "*")))

    def state_base(self):
        return os.path.join(self.runtime, "sandbox")

    def own(self, path):
        if os.geteuid() == 0:
            os.chown(path, self.uid, self.gid)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


# Session ids of the launchers this test process started (each runs with
# start_new_session, see Env.popen and track). The launcher and its
# children (proxy, bridge, QEMU) only change process group, never session,
# so a session id finds exactly one run's processes, and other runs of
# the same user (other tests, other engineers) never count.
_SESSIONS = set()


def track(p):
    """Remember a Popen started with start_new_session=True."""
    _SESSIONS.add(p.pid)
    return p


def leftovers(uid=None):
    """Processes of the sandbox runs this test process started that are
    still there ("pid comm" lines); uid additionally filters by owner."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,sid=,uid=,comm="],
                         capture_output=True, text=True).stdout
    left = []
    for l in out.splitlines():
        f = l.split(None, 3)
        if len(f) < 4 or int(f[1]) not in _SESSIONS:
            continue
        if uid is not None and int(f[2]) != uid:
            continue
        if any(n in f[3] for n in ("qemu", "sandbox-proxy", "sandbox-vsoc",
                                   "sandbox-launch", "virtiofsd")):
            left.append("%s %s" % (f[0], f[3]))
    return left


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture(scope="module")
def env():
    require()
    e = Env()
    yield e
    e.cleanup()


# ------------------------------------------------------------ no boot

def test_errors_are_one_clear_line(env):
    r = env.run(["--workspace", "/nonexistent/ws", "--", "true"])
    assert r.returncode == 125
    assert b"workspace /nonexistent/ws" in r.stderr and b"--workspace" in r.stderr
    bad = os.path.join(env.ws, "bad.yaml")
    with open(bad, "w") as f:
        f.write("version: 1\nalow:\n  - x.test\n")
    env.own(bad)
    r = env.run(["--policy", bad, "--", "true"])
    assert r.returncode == 125
    assert b"bad.yaml:2" in r.stderr, r.stderr  # file:line from the proxy's check
    assert b"fix them" in r.stderr
    r = subprocess.run(env.prefix + ["env", "SANDBOX_GUEST_DIR=/nonexistent",
                                     "HOME=" + env.home, LAUNCH, "--", "true"],
                       capture_output=True, cwd=env.ws, timeout=30)
    assert r.returncode == 125 and b"run make guest" in r.stderr, r.stderr
    r = subprocess.run(env.prefix + ["env", "PATH=/nonexistent", "HOME=" + env.home,
                                     LAUNCH, "--", "true"],
                       capture_output=True, cwd=env.ws, timeout=30)
    assert r.returncode == 125
    assert b"install qemu-system-x86 (make deps)" in r.stderr, r.stderr
    r = env.run(["--memory", "lots", "--", "true"])
    assert r.returncode == 2 and b"--memory lots" in r.stderr
    r = env.run([])
    assert r.returncode == 2 and b"no command" in r.stderr
    for r in (env.run(["--help"]), env.run(["--version"])):
        assert r.returncode == 0 and r.stdout
    assert b"Examples" in env.run(["--help"]).stdout
    assert leftovers(env.uid) == []


# ------------------------------------------------------------ boot 1

def test_pipes_status_files_and_teardown(env):
    script = ("echo out; echo err >&2; echo data > made.txt; "
              "mkdir -p sub; cat > sub/stdin.txt; cat sub/stdin.txt; "
              "test -t 0 || echo notty; echo \"$FOO:$BAR:$(pwd)\"; exit 7")
    t0 = time.monotonic()
    r = env.run(["--env", "FOO=foo", "--env", "BAR", "--verbose", "--",
                 "sh", "-c", script], input=b"line1\nline2\n",
                env=dict(os.environ, BAR="bar"))
    secs = time.monotonic() - t0
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 7, err
    assert r.stdout.decode() == "out\nline1\nline2\nnotty\nfoo:bar:%s\n" % env.ws, (r.stdout, err)
    # stderr carries the command's own stderr, apart from stdout
    assert "err\n" in err and "out" not in err
    for name in ("made.txt", "sub", "sub/stdin.txt"):
        st = os.lstat(os.path.join(env.ws, name))
        assert st.st_uid == env.uid, name
        assert st.st_mode & 0o6000 == 0
    with open(os.path.join(env.ws, "made.txt")) as f:
        assert f.read() == "data\n"
    # the run directory is kept, with the logs and the audit log
    runs = env.runs()
    assert len(runs) == 1 and runs[0] in err  # --verbose names it
    for f in ("audit.jsonl", "console.log", "proxy.log", "qemu.log", "policy.txt"):
        assert os.path.exists(os.path.join(runs[0], f)), f
    assert os.stat(runs[0]).st_mode & 0o077 == 0
    # nothing left: no processes, no state directory with sockets
    assert leftovers(env.uid) == []
    assert os.listdir(env.state_base()) == []
    print("boot+run+teardown: %.1f s" % secs)


def test_stdin_eof_plain_cat(env):
    r = env.run(["--", "cat"], input=b"hi\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hi\n"
    assert leftovers(env.uid) == []


# ------------------------------------------------------------ boot 2

def test_pty_size_and_ctrl_c(env):
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(env.ws)
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        argv = env.argv(["--", "sh", "-c",
                         "test -t 0 && test -t 1 && echo IS-TTY; stty size; "
                         "trap 'echo GOT-INT; exit 5' INT; echo READY; sleep 60"])
        os.execvp(argv[0], argv)
    out = b""
    sent = False
    deadline = time.monotonic() + TIMEOUT
    status = None
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                d = b""
            if not d:
                break
            out += d
        if b"READY" in out and not sent:
            time.sleep(0.5)
            os.write(fd, b"\x03")  # raw mode: a byte for the guest's PTY
            sent = True
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "IS-TTY" in text, text
    assert "33 101" in text, text
    assert "GOT-INT" in text, text
    assert os.waitstatus_to_exitcode(status) == 5, text
    assert leftovers(env.uid) == []


# ------------------------------------------------------------ boot 3, 4

def test_sigkill_leaves_nothing(env):
    p = env.popen(["--verbose", "--", "sleep", "120"], stdin=subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = b""
    deadline = time.monotonic() + TIMEOUT
    while b"guest up" not in err and time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            d = os.read(p.stderr.fileno(), 4096)
            if not d:
                break
            err += d
    assert b"guest up" in err, err
    assert leftovers(env.uid), "the sandbox should be running"
    # the launcher itself (runuser's child when root)
    launcher = [l.split()[0] for l in leftovers(env.uid) if "sandbox-launch" in l]
    assert launcher
    os.kill(int(launcher[0]), signal.SIGKILL)
    p.wait(timeout=30)
    wait_for(lambda: leftovers(env.uid) == [], 10, "children to die")
    stale = os.listdir(env.state_base())
    assert len(stale) == 1  # a SIGKILL leaves its sockets ...
    # ... which the next run removes (SIGTERM test below)
    env.stale = stale[0]


def test_sigterm_reaches_command_and_tears_down(env):
    p = env.popen(["--verbose", "--", "sh", "-c",
                   "trap 'echo TERM-SEEN; exit 9' TERM; echo TRAP-SET; "
                   "sleep 120 & wait"],
                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    err = b""
    deadline = time.monotonic() + TIMEOUT
    while b"guest up" not in err and time.monotonic() < deadline:
        r, _, _ = select.select([p.stderr], [], [], 1)
        if r:
            d = os.read(p.stderr.fileno(), 4096)
            if not d:
                break
            err += d
    assert b"guest up" in err, err
    assert getattr(env, "stale", None) not in os.listdir(env.state_base())
    # The command says when its trap is set: SIGTERM before that would
    # kill the shell without the trap, and prove nothing.
    out = b""
    while b"TRAP-SET" not in out and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            d = os.read(p.stdout.fileno(), 4096)
            if not d:
                break
            out += d
    assert b"TRAP-SET" in out, (out, err)
    launcher = [l.split()[0] for l in leftovers(env.uid) if "sandbox-launch" in l]
    os.kill(int(launcher[0]), signal.SIGTERM)
    out2, err2 = p.communicate(timeout=60)
    out += out2
    assert b"TERM-SEEN" in out, (out, err + err2)
    assert p.returncode == 9, (out, err + err2)
    assert leftovers(env.uid) == []
    assert os.listdir(env.state_base()) == []


# ------------------------------------------------------------ boot 5

def test_output_flows_while_stdin_is_ignored(env):
    """The relay never blocks on a write: a command that writes 30 MB
    before it reads any of its 50 MB stdin finishes (with blocking writes
    the launcher stuck on sending stdin and the guest on sending stdout
    deadlocked). Byte counts checked on both sides, in bounded time."""
    script = ("head -c 30000000 /dev/zero; n=$(wc -c); echo \"in=$n\" >&2")
    feed = subprocess.Popen(["head", "-c", "50000000", "/dev/zero"],
                            stdout=subprocess.PIPE)
    t0 = time.monotonic()
    r = env.run(["--", "sh", "-c", script], stdin=feed.stdout, timeout=180)
    feed.stdout.close()
    feed.wait()
    secs = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert len(r.stdout) == 30000000 and r.stdout.count(b"\0") == 30000000
    assert b"in=50000000" in r.stderr, r.stderr
    print("30 MB out, 50 MB in: %.1f s" % secs)
