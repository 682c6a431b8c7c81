"""The vsock bridge's confinement, tried as a guest that took it over.

tests/tools/bridge_attacker sets itself up exactly as sandbox-vsock does
(the same connector and the same seccomp filter function, from
launcher/), then makes one attempt to get out. The state directory is laid
out like the launcher's: the proxy's port socket, a second socket that is
not a listed port, proxy-control.sock and control.sock (listeners that
record whoever connects), and a file. Each attack must fail (EPERM or
death by SIGSYS), and the oracle is the other side: no listener saw a
connection, the file is unchanged, the process is alive and untraced.
The first test is the positive control: the one allowed port works.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile

import pytest

SRC = os.environ.get("SANDBOX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")
ATTACKER = os.path.join(BUILD, "tools", "bridge_attacker")
PORT = 1080


class Listener:
    def __init__(self, path):
        self.path = path
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        self.s.listen(8)
        self.s.setblocking(False)

    def received(self):
        """Bytes from every connection made so far (None if none came)."""
        got = None
        while True:
            try:
                c, _ = self.s.accept()
            except BlockingIOError:
                return got
            c.settimeout(2)
            data = b""
            try:
                while True:
                    b = c.recv(4096)
                    if not b:
                        break
                    data += b
            except socket.timeout:
                pass
            c.close()
            got = (got or b"") + data


@pytest.fixture
def jail():
    if not os.access(ATTACKER, os.X_OK):
        pytest.fail(ATTACKER + " missing: `make SAN=1 tests-build`", pytrace=False)
    d = tempfile.mkdtemp(prefix="sbxbr-")  # short: sun_path is 108 bytes
    j = type("Jail", (), {})()
    j.dir = d
    j.port = Listener(os.path.join(d, "vsock_%d" % PORT))
    j.unlisted = Listener(os.path.join(d, "vsock_9999"))
    j.proxy_ctl = Listener(os.path.join(d, "proxy-control.sock"))
    j.ctl = Listener(os.path.join(d, "control.sock"))
    j.secret = os.path.join(d, "audit.jsonl")
    with open(j.secret, "w") as f:
        f.write("secret\n")
    j.marker = os.path.join(d, "exec-ran")
    j.script = os.path.join(d, "payload.sh")
    with open(j.script, "w") as f:
        f.write("#!/bin/sh\ntouch %s\n" % j.marker)
    os.chmod(j.script, 0o755)
    j.victim = subprocess.Popen(["sleep", "60"])
    yield j
    j.victim.kill()
    j.victim.wait()
    shutil.rmtree(d, ignore_errors=True)


def attack(j, name, arg=""):
    argv = [ATTACKER, j.dir, str(PORT), name] + ([arg] if arg else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=20)


def assert_blocked(p):
    assert "CONFINED" in p.stdout, "set-up failed, nothing was tested: %r %r" % (
        p.stdout, p.stderr)
    assert "SUCCEEDED" not in p.stdout, p.stdout
    if p.returncode == -signal.SIGSYS:
        return "killed"
    assert p.returncode == 0 and "BLOCKED" in p.stdout, (p.returncode, p.stdout, p.stderr)
    return "refused"


def assert_nobody_reached(j):
    for lis in (j.port, j.unlisted, j.proxy_ctl, j.ctl):
        assert lis.received() is None, "a connection reached " + lis.path


def test_allowed_port_works(jail):
    p = attack(jail, "allowed")
    assert p.returncode == 0 and "CONNECTED" in p.stdout, (p.stdout, p.stderr)
    assert jail.port.received() == b"hello from the bridge\n"
    for lis in (jail.unlisted, jail.proxy_ctl, jail.ctl):
        assert lis.received() is None


def test_connector_refuses_unlisted_port(jail):
    p = attack(jail, "connector-port", "9999")
    assert assert_blocked(p) == "refused"
    assert "Permission denied" in p.stdout  # -EACCES from the connector
    assert "not a proxy port" in p.stderr
    assert_nobody_reached(jail)


@pytest.mark.parametrize("target", ["proxy-control.sock", "control.sock",
                                    "vsock_%d" % PORT, "vsock_9999"])
def test_no_connect_by_path(jail, target):
    """Not even the allowed port by name: only the connector connects."""
    assert_blocked(attack(jail, "connect", os.path.join(jail.dir, target)))
    assert_nobody_reached(jail)


@pytest.mark.parametrize("how", ["open", "x32-openat"])
def test_no_file_reads(jail, how):
    for path in ("/etc/passwd", jail.secret):
        p = attack(jail, how, path)
        assert_blocked(p)
        assert "root:" not in p.stdout and "secret" not in p.stdout


def test_no_directory_listing(jail):
    assert_blocked(attack(jail, "openat", jail.dir))
    assert_blocked(attack(jail, "openat", "/"))


def test_no_file_writes(jail):
    new = os.path.join(jail.dir, "planted.sock")
    assert_blocked(attack(jail, "creat", new))
    assert not os.path.exists(new)
    assert_blocked(attack(jail, "unlink", jail.secret))
    with open(jail.secret) as f:
        assert f.read() == "secret\n"
    assert_blocked(attack(jail, "unlink", os.path.join(jail.dir, "proxy-control.sock")))
    assert os.path.exists(os.path.join(jail.dir, "proxy-control.sock"))


@pytest.mark.parametrize("how", ["socket-inet", "socket-inet6", "socket-unix",
                                 "socketpair", "io_uring"])
def test_no_new_sockets(jail, how):
    assert_blocked(attack(jail, how))
    assert_nobody_reached(jail)


def test_no_exec(jail):
    assert_blocked(attack(jail, "exec", jail.script))
    assert not os.path.exists(jail.marker)


@pytest.mark.parametrize("how", ["fork", "i386-fork"])
def test_no_fork(jail, how):
    assert_blocked(attack(jail, how))


def test_no_signals_or_ptrace_on_others(jail):
    pid = str(jail.victim.pid)
    assert_blocked(attack(jail, "kill", pid))
    assert_blocked(attack(jail, "ptrace", pid))
    # F_SETOWN + O_ASYNC would have the kernel send SIGIO (or any F_SETSIG
    # signal) to the victim
    assert_blocked(attack(jail, "fcntl-setown", pid))
    assert jail.victim.poll() is None, "the bridge killed another process"
    with open("/proc/%s/status" % pid) as f:
        assert "TracerPid:\t0\n" in f.read()


@pytest.mark.parametrize("how", ["mmap-exec", "mprotect-exec"])
def test_no_executable_memory(jail, how):
    assert_blocked(attack(jail, how))
