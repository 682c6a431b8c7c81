"""The workspace over virtiofs, launched by an ordinary host user (sbxtest
when the tests run as root; test_launch_basic.host_user gives it the
subordinate ids virtiofsd needs).

One boot, the command as the guest's sandbox user: what it creates is the
invoking host user's on the host, edits are live both ways while the
sandbox runs, and setuid bits and FIFOs are refused. Guest root's side
(chown, mknod, links out of the workspace) is test_isolation.py's.
"""
import os
import re
import stat
import subprocess
import threading
import uuid

import pytest

import test_launch_basic as base

SCRIPT = r"""
say() { echo "CHECK $1=$2"; }
say id "$(id -u):$(id -g)"
say fstype "$(awk -v ws="$(pwd)" '$2 == ws { print $3 }' /proc/mounts)"
echo guest > made.txt
mkdir -p dir/sub && echo x > dir/sub/f
ln -s made.txt link
chmod 4755 made.txt 2>/dev/null; say chmod_suid $?
chmod 2775 dir 2>/dev/null; say chmod_sgid $?
mkfifo fifo 2>/dev/null; say mkfifo $?
chown 12345 made.txt 2>/dev/null; say chown_other $?
# virtiofsd answers syncfs with ENOSYS (launcher/virtiofs_seccomp.c): the
# guest's sync still succeeds, and fsync of a file still works.
sync; say sync $?
sync -f made.txt; say syncfs $?
python3 -c 'import os; fd = os.open("made.txt", os.O_RDWR); os.fsync(fd)'; say fsync $?
# Live: tell the host we are here, then wait for its answer (bounded).
echo ready > from-guest
i=0
while [ ! -s from-host ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
say from_host "$(cat from-host 2>/dev/null)"
"""


@pytest.fixture(scope="module")
def run():
    base.require()
    e = base.Env()
    with open(os.path.join(e.ws, "t.sh"), "w") as f:
        f.write(SCRIPT)
    e.own(os.path.join(e.ws, "t.sh"))
    tok = uuid.uuid4().hex[:12]
    seen = {}

    def answer():
        # The guest's file appears on the host while the command runs.
        try:
            base.wait_for(lambda: os.path.exists(os.path.join(e.ws, "from-guest")),
                          base.TIMEOUT, "the guest's file on the host")
        except AssertionError:
            return
        seen["live"] = True
        p = os.path.join(e.ws, "from-host")
        with open(p + ".tmp", "w") as f:
            f.write(tok)
        e.own(p + ".tmp")
        os.rename(p + ".tmp", p)
    t = threading.Thread(target=answer, daemon=True)
    t.start()
    r = e.run(["--timings", "--", "sh", "t.sh"])
    t.join(5)
    text = r.stdout.decode(errors="replace")
    checks = dict(re.findall(r"^CHECK (\w+)=(.*?)\r?$", text, re.M))
    yield {"env": e, "r": r, "checks": checks, "tok": tok, "seen": seen}
    e.cleanup()


def test_workspace_is_virtiofs_without_a_notice(run):
    r, c = run["r"], run["checks"]
    assert r.returncode == 0, r.stderr[-2000:]
    assert c.get("fstype") == "virtiofs", (c, r.stderr[-2000:])
    assert b"workspace over 9p" not in r.stderr, r.stderr


def test_sandbox_users_files_are_the_invoking_users(run):
    e, c = run["env"], run["checks"]
    assert c.get("id") == "%d:%d" % (e.uid, e.gid)
    n = 0
    for root, dirs, files in os.walk(e.ws):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            n += 1
            assert (st.st_uid, st.st_gid) == (e.uid, e.gid), (name, st)
            assert st.st_mode & 0o7000 == 0, (name, oct(st.st_mode))
            assert stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or \
                stat.S_ISLNK(st.st_mode), (name, oct(st.st_mode))
    # t.sh made.txt dir dir/sub dir/sub/f link from-guest from-host
    assert n >= 8
    with open(os.path.join(e.ws, "made.txt")) as f:
        assert f.read() == "guest\n"
    assert os.readlink(os.path.join(e.ws, "link")) == "made.txt"


def test_setuid_fifo_and_foreign_owner_are_refused(run):
    c = run["checks"]
    for k in ("chmod_suid", "chmod_sgid", "mkfifo", "chown_other"):
        assert c.get(k) not in (None, "0"), (k, c)
    assert not os.path.exists(os.path.join(run["env"].ws, "fifo"))


def test_sync_and_fsync_succeed(run):
    c = run["checks"]
    for k in ("sync", "syncfs", "fsync"):
        assert c.get(k) == "0", (k, c)


def test_edits_are_live_both_ways(run):
    assert run["seen"].get("live"), "the guest's file never reached the host"
    assert run["checks"].get("from_host") == run["tok"]


def test_timings_show_host_and_guest_steps(run):
    """--timings: the host's steps in order, then the guest's, each with
    its milliseconds (the values are not asserted: no timing assertions)."""
    err = run["r"].stderr.decode(errors="replace")
    host = err[err.index("timings, host"):err.index("timings, guest")]
    guest = err[err.index("timings, guest"):]
    steps = [l.split("  ")[1].strip() for l in host.splitlines()[1:]
             if l.startswith("  ")]
    for want in ("start", "proxy ready", "bridge ready", "virtiofsd started",
                 "QEMU exec", "guest up (control channel)", "command ended"):
        assert want in steps, (want, host)
    assert steps.index("QEMU exec") < steps.index("guest up (control channel)")
    for want in ("kernel to /init", "modules loaded", "network capture",
                 "forwarders", "host connected", "command exec"):
        assert re.search(r"^  %s +\d+  \+\d+$" % re.escape(want), guest, re.M), \
            (want, guest)
