"""End-to-end test of sandbox-vsock with a real Linux guest under QEMU (TCG).

The guest is the project's kernel + initramfs (build/guest from `make guest`,
or SANDBOX_GUEST_DIR holding vmlinux and initramfs.cpio). This test
appends a second cpio archive (the kernel unpacks concatenated archives in
order) with its own /init script, busybox and the static helper built from
tests/e2e/vsock/vsock_guest.c; the kernel modules come from the image.

Checked: guest->host connect with bytes both ways and half-close, large
transfers both ways with checksums (credit flow control), a port with no
socket is refused, a port with a socket that is not in the bridge's --port
list is refused and its listener never sees a connection (the bridge's
connector only reaches the listed ports), host->guest CONNECT reaches a
guest listener, and the bridge (under its seccomp allow list) exits 0 when
QEMU leaves. Also prints the guest->host throughput.
"""
import gzip
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
BRIDGE = os.path.join(BUILD, "bin", "sandbox-vsock")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
from sbxtest import ReadyPipe  # noqa: E402

SINK_BYTES = 24 * 1024 * 1024
SOURCE_BYTES = 8 * 1024 * 1024


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def fnv_bytes(data):
    return fnv(2166136261, data)


def pattern(off, n):
    return bytes(((((off + i) * 2654435761) & 0xFFFFFFFF) >> 13) & 0xFF for i in range(n))


def guest_dir():
    for d in (os.environ.get("SANDBOX_GUEST_DIR"), os.path.join(SRC, "build", "guest")):
        if d and os.path.isfile(os.path.join(d, "vmlinux")) and \
                os.path.isfile(os.path.join(d, "initramfs.cpio")):
            return d
    return None


INIT = r"""#!/vsk/busybox sh
B=/vsk/busybox
$B mkdir -p /proc /sys /dev
$B mount -t proc proc /proc
$B mount -t sysfs sys /sys
$B mount -t devtmpfs dev /dev 2>/dev/null
for m in virtio_ring virtio virtio_mmio vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
  f=$($B find /lib/modules /usr/lib/modules -name "$m.ko*" 2>/dev/null | $B head -n 1)
  if [ -n "$f" ]; then $B insmod "$f" || echo "VSK insmod $m failed"; fi
done
G=/vsk/vsock_guest
echo "VSK START"
$G echo 5000 hello-bridge
$G send 5001 %(sink)d
$G recv 5002
$G refused 5009
$G refused 5003
$G listen 1024
echo "VSK DONE"
$B poweroff -f
"""


def build_overlay(tmp):
    root = os.path.join(tmp, "overlay")
    os.makedirs(os.path.join(root, "vsk"))
    helper = os.path.join(root, "vsk", "vsock_guest")
    subprocess.run(["gcc", "-static", "-O2", "-o", helper,
                    os.path.join(SRC, "tests", "e2e", "vsock", "vsock_guest.c")], check=True)
    bb = shutil.which("busybox") or "/bin/busybox"
    out = subprocess.run(["file", "-L", bb], capture_output=True, text=True).stdout
    if "statically linked" not in out and "static-pie" not in out:
        pytest.skip("needs busybox-static")
    shutil.copy(bb, os.path.join(root, "vsk", "busybox"))
    with open(os.path.join(root, "init"), "w") as f:
        f.write(INIT % {"sink": SINK_BYTES})
    os.chmod(os.path.join(root, "init"), 0o755)
    names = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True,
                           check=True).stdout
    cpio = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=names.encode(),
                          capture_output=True, check=True).stdout
    return gzip.compress(cpio, 1)


class Servers:
    """Unix listeners at DIR/vsock_P playing the host side of each check."""

    def __init__(self, d):
        self.results = {}
        self.threads = []
        for port, fn in ((5000, self.echo), (5001, self.sink), (5002, self.source)):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(d, "vsock_%d" % port))
            s.listen(4)
            t = threading.Thread(target=self.serve, args=(s, fn), daemon=True)
            t.start()
            self.threads.append(t)
        # A socket at DIR/vsock_5003, but 5003 is not a --port: whatever the
        # guest does, nothing may reach it.
        self.unlisted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unlisted.bind(os.path.join(d, "vsock_5003"))
        self.unlisted.listen(4)
        self.unlisted.setblocking(False)

    def unlisted_reached(self):
        try:
            c, _ = self.unlisted.accept()
            c.close()
            return True
        except BlockingIOError:
            return False

    def serve(self, s, fn):
        c, _ = s.accept()
        s.close()
        try:
            fn(c)
        finally:
            c.close()

    @staticmethod
    def read_to_eof(c, cb=None):
        n = 0
        while True:
            b = c.recv(65536)
            if not b:
                return n
            n += len(b)
            if cb:
                cb(b)

    def echo(self, c):
        data = b""
        while True:
            b = c.recv(4096)
            if not b:
                break  # the guest's half-close reached us as EOF
            data += b
        self.results["echo"] = data
        c.sendall(b"host got " + data)
        c.shutdown(socket.SHUT_WR)

    def sink(self, c):
        state = {"h": 2166136261, "t0": None}

        def cb(b):
            if state["t0"] is None:
                state["t0"] = time.monotonic()
            state["h"] = fnv(state["h"], b)
        n = self.read_to_eof(c, cb)
        t = time.monotonic() - (state["t0"] or time.monotonic())
        self.results["sink"] = (n, state["h"], t)
        c.sendall(b"GOT %d %08x" % (n, state["h"]))

    def source(self, c):
        data = pattern(0, SOURCE_BYTES)
        self.results["source_sum"] = fnv_bytes(data)
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        self.read_to_eof(c)


@pytest.fixture
def env(tmp_path):
    gd = guest_dir()
    if not gd:
        pytest.skip("no guest image: run `make guest` (or set SANDBOX_GUEST_DIR)")
    if not os.path.exists(BRIDGE):
        pytest.skip("sandbox-vsock not built")
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.skip("qemu-system-x86_64 missing")
    d = str(tmp_path)
    initrd = os.path.join(d, "initrd")
    with open(initrd, "wb") as f:
        with open(os.path.join(gd, "initramfs.cpio"), "rb") as b:
            f.write(b.read())
        f.write(build_overlay(d))
    return {"dir": d, "guest": gd, "qemu": qemu, "initrd": initrd}


def test_vsock_bridge(env):
    d = env["dir"]
    srv = Servers(d)
    vhost = os.path.join(d, "vhost.sock")
    ctl = os.path.join(d, "ctl.sock")
    bridge_log = open(os.path.join(d, "bridge.log"), "w+")
    ports = []
    for p in (5000, 5001, 5002, 5009):
        ports += ["--port", str(p)]
    # Readiness on --ready-fd: both sockets listen and the connector runs.
    ready = ReadyPipe()
    try:
        bridge = subprocess.Popen([BRIDGE, "--socket", vhost, "--dir", d, "--listen", ctl,
                                   "--guest-cid", "3", "--verbose",
                                   "--ready-fd", str(ready.w)] + ports,
                                  stderr=bridge_log, pass_fds=(ready.w,))
    finally:
        ready.child_started()
    try:
        if not ready.wait(30):
            bridge_log.seek(0)
            raise AssertionError("sandbox-vsock ended before ready:\n" + bridge_log.read())
        run_guest(env, srv, bridge, bridge_log, vhost, ctl)
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()


def run_guest(env, srv, bridge, bridge_log, vhost, ctl):
    assert os.path.exists(vhost) and os.path.exists(ctl), "bridge ready without its sockets"
    assert (os.stat(vhost).st_mode & 0o777) == 0o600
    assert (os.stat(ctl).st_mode & 0o777) == 0o600

    cmd = [env["qemu"], "-M", "microvm,acpi=on,rtc=on,pit=on,pic=on,memory-backend=mem",
           "-accel", "tcg", "-cpu", "max", "-m", "512M", "-smp", "1",
           "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
           "-global", "virtio-mmio.force-legacy=false",
           "-chardev", "socket,id=vs,path=" + vhost,
           "-device", "vhost-user-vsock-device,chardev=vs",
           "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
           "-kernel", os.path.join(env["guest"], "vmlinux"), "-initrd", env["initrd"],
           "-append", "console=ttyS0 tsc_early_khz=2000000 lpj=4000000 rdinit=/init panic=-1",
           "-no-reboot"]
    vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    lines = queue.Queue()
    console = []
    console_log = open(os.path.join(os.path.dirname(vhost), "console.log"), "w")

    def reader():
        for raw in vm.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            console.append(line)
            console_log.write(line + "\n")
            console_log.flush()
            if "VSK" in line:
                lines.put(line[line.index("VSK") + 4:])
        lines.put(None)
    threading.Thread(target=reader, daemon=True).start()

    got = {}
    replies = []
    refused = []
    try:
        deadline = time.monotonic() + 240
        while True:
            left = deadline - time.monotonic()
            assert left > 0, "guest timed out; console:\n" + "\n".join(console[-40:])
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                break
            key = line.split(" ", 1)[0]
            if key == "REPLY":
                replies.append(line)
            if key == "REFUSED":
                refused.append(line)
            got[key] = line
            if key == "LISTENING":
                got["host2guest"] = host_to_guest(ctl)
            if key == "DONE":
                break
        vm.wait(timeout=60)
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()
        try:
            rc = bridge.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bridge.kill()
            rc = bridge.wait()
        bridge_log.seek(0)
        log = bridge_log.read()
    ctx = "console:\n" + "\n".join(console[-30:]) + "\nbridge:\n" + log[-2000:]

    assert "DONE" in got, ctx
    # guest -> host, both ways, half-close each way
    assert srv.results.get("echo") == b"hello-bridge", ctx
    # ...and the host's reply, ended by its EOF, reached the guest
    assert replies and replies[0].split()[1] == "21", ctx
    assert replies[0].endswith("host got hello-bridge"), ctx
    assert replies[1].endswith("GOT %d %s" % (SINK_BYTES, got["SENT"].split()[2])), ctx
    # large transfer guest -> host
    n, h, secs = srv.results["sink"]
    sent = got["SENT"].split()
    assert int(sent[1]) == SINK_BYTES and n == SINK_BYTES, ctx
    assert "%08x" % h == sent[2], "checksum mismatch guest->host"
    mbps = n / secs / 1e6 if secs > 0 else float("inf")
    print("guest->host throughput over the bridge: %.1f MB/s (%d bytes in %.2f s, TCG)" % (mbps, n, secs))
    # large transfer host -> guest
    recv = got["RECV"].split()
    assert int(recv[1]) == SOURCE_BYTES, ctx
    assert recv[2] == "%08x" % srv.results["source_sum"], "checksum mismatch host->guest"
    # nothing listening: refused; listening but not a --port: refused, and
    # the listener (the upstream's own view) saw nothing
    assert len(refused) == 2 and all(r.startswith("REFUSED") for r in refused), ctx
    assert not srv.unlisted_reached(), "guest reached a port not in --port"
    assert "guest port 5003 is not a proxy port" in log, ctx
    # host -> guest
    assert got["host2guest"][0].startswith(b"OK "), ctx
    assert got["host2guest"][1] == b"HELLO FROM THE HOST", ctx
    assert got["SERVED"] == "SERVED 19", ctx
    assert rc == 0, "bridge exit status %d when QEMU left" % rc


def host_to_guest(ctl):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(ctl)
    s.sendall(b"CONNECT 1024\n")
    ok = b""
    while not ok.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        ok += b
    s.sendall(b"hello from the host")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    s.close()
    return ok, data
