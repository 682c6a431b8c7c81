"""sandbox-vsock as a process, with this test as its vhost-user front-end
(no QEMU needed): after QEMU's connection is accepted the bridge runs under
its seccomp allow list, so these check that the sanitizer build lives
there, that the pure parser's refusals end the session with a line saying
what was wrong, and that however it ends, its connector is gone with it.
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from sbxtest import ReadyPipe

SRC = os.environ.get("SANDBOX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")
BRIDGE = os.path.join(BUILD, "bin", "sandbox-vsock")

GET_FEATURES, SET_FEATURES, GET_CONFIG, SET_VRING_NUM = 1, 2, 24, 8


class Bridge:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sbxbp-")
        self.vu = os.path.join(self.dir, "vhost-user.sock")
        self.log_path = os.path.join(self.dir, "vsock.log")
        self.log = open(self.log_path, "w+")
        # The socket file exists from bind(), before listen(): wait for
        # --ready-fd, which the bridge writes once both sockets listen and
        # the connector runs (what the launcher waits for too).
        ready = ReadyPipe()
        try:
            self.p = subprocess.Popen(
                [BRIDGE, "--socket", self.vu, "--dir", self.dir, "--port", "1080",
                 "--listen", os.path.join(self.dir, "control.sock"), "--verbose",
                 "--ready-fd", str(ready.w)],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                pass_fds=(ready.w,))
        finally:
            ready.child_started()
        assert ready.wait(10), f"sandbox-vsock ended before ready:\n{self.text()}"
        # Its connector is its one child.
        with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
            kids = f.read().split()
        assert len(kids) == 1, (kids, self.text())
        self.connector = int(kids[0])
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(self.vu)
        self.s.settimeout(5)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def send(self, req, payload=b"", flags=1):
        self.s.sendall(struct.pack("<III", req, flags, len(payload)) + payload)

    def reply(self):
        hdr = b""
        while len(hdr) < 12:
            b = self.s.recv(12 - len(hdr))
            assert b, "bridge closed instead of replying"
            hdr += b
        req, flags, size = struct.unpack("<III", hdr)
        body = b""
        while len(body) < size:
            body += self.s.recv(size - len(body))
        return req, flags, body

    def wait(self):
        try:
            return self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.s.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def bridge():
    if not os.access(BRIDGE, os.X_OK):
        pytest.fail(BRIDGE + " missing: `make SAN=1 tests-build`", pytrace=False)
    b = Bridge()
    yield b
    b.close()


def gone(pid):
    """True once pid no longer exists at all (reaped, not a zombie)."""
    return not os.path.exists("/proc/%d" % pid)


def assert_clean(b):
    t = b.text()
    assert "Sanitizer" not in t and "runtime error" not in t, t


def test_serves_under_the_filter_then_exits_0(bridge):
    bridge.send(GET_FEATURES)
    req, flags, body = bridge.reply()
    assert (req, flags) == (GET_FEATURES, 0x5)
    assert struct.unpack("<Q", body)[0] & (1 << 32), "VERSION_1 offered"
    bridge.send(GET_CONFIG, struct.pack("<III", 0, 8, 0) + bytes(8))
    req, flags, body = bridge.reply()
    assert body[12:] == struct.pack("<Q", 3), "guest CID 3 in the config space"
    bridge.s.close()  # the front-end leaves
    assert bridge.wait() == 0, bridge.text()
    assert gone(bridge.connector), "connector outlived the bridge"
    assert_clean(bridge)


def test_sigterm_reaps_the_connector(bridge):
    bridge.send(GET_FEATURES)
    bridge.reply()  # now past set-up, under the filter
    bridge.p.send_signal(signal.SIGTERM)
    assert bridge.wait() == 128 + signal.SIGTERM, bridge.text()
    assert gone(bridge.connector), "connector outlived the bridge"


@pytest.mark.parametrize("msg,why", [
    (struct.pack("<III", SET_FEATURES, 1, 4) + b"abcd", "payload size wrong"),
    (struct.pack("<III", SET_VRING_NUM, 1, 8) + struct.pack("<II", 5, 128),
     "vring index is not 0 or 1"),
    (struct.pack("<III", GET_FEATURES, 0x5, 0), "header flags"),
    (struct.pack("<III", 99, 1, 0), "unsupported"),
])
def test_malformed_message_ends_the_session(bridge, msg, why):
    bridge.s.sendall(msg)
    rc = bridge.wait()
    t = bridge.text()
    assert rc == 1, (rc, t)
    assert why in t, t
    assert gone(bridge.connector)
    assert_clean(bridge)


def test_oversized_message_is_not_read(bridge):
    bridge.s.sendall(struct.pack("<III", SET_FEATURES, 1, 1 << 20))
    assert bridge.wait() == 1
    assert "payload size above 4096" in bridge.text()
    assert_clean(bridge)


SET_PROTOCOL_FEATURES, SET_MEM_TABLE = 16, 5
REPLY_ACK = 1 << 3


def mem_table(b, memfd_len, region_len):
    fd = os.memfd_create("guest-ram")
    try:
        os.ftruncate(fd, memfd_len)
        payload = struct.pack("<II", 1, 0) + struct.pack(
            "<QQQQ", 0, region_len, 0x7f0000000000, 0)
        socket.send_fds(b.s, [struct.pack("<III", SET_MEM_TABLE, 0x9,
                                          len(payload)) + payload], [fd])
    finally:
        os.close(fd)
    return b.reply()


def test_memory_region_must_fit_its_fd(bridge):
    """A region longer than its file would SIGBUS the bridge on first
    touch; it is refused when the table arrives, with REPLY_ACK 1."""
    bridge.send(SET_PROTOCOL_FEATURES, struct.pack("<Q", REPLY_ACK))
    req, flags, body = mem_table(bridge, 8192, 8192)
    assert (req, struct.unpack("<Q", body)[0]) == (SET_MEM_TABLE, 0), "fits: ack 0"
    req, flags, body = mem_table(bridge, 4096, 8192)
    assert (req, struct.unpack("<Q", body)[0]) == (SET_MEM_TABLE, 1), "short: ack 1"
    assert bridge.wait() == 1
    assert "beyond its fd's end" in bridge.text(), bridge.text()
    assert gone(bridge.connector)
    assert_clean(bridge)


def test_sigkill_takes_the_connector_too(bridge):
    """Killed outright, the bridge cannot reap: PR_SET_PDEATHSIG kills the
    connector and init reaps it."""
    bridge.send(GET_FEATURES)
    bridge.reply()
    bridge.p.kill()
    bridge.wait()
    deadline = time.monotonic() + 5
    while not gone(bridge.connector):
        try:
            with open("/proc/%d/stat" % bridge.connector) as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    break  # dead, waiting for init to reap it
        except FileNotFoundError:
            break
        assert time.monotonic() < deadline, "connector survived SIGKILL of the bridge"
        time.sleep(0.02)
