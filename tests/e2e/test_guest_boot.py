"""End-to-end tests of the guest image (build/guest from `make guest`):
sandbox-init as PID 1 under QEMU TCG with the launcher's command line.

Boot 1 (no vsock): QEMU runs as an unprivileged host user (nobody when the
tests run as root), and `sandbox.debug=script:` runs a probe script as root
in the guest. Checked from the console and from the host afterwards: the
mounts, /usr writes staying in the guest, the host /usr share refusing
writes, workspace files landing on the host as plain files owned by the
invoking user (no setuid, no device nodes, no symlinks), the synthesised
/etc and the nftables capture rules.

Boot 2 (with sandbox-vsock): the control channel end to end (SPEC, stdin,
separate stdout/stderr, exit status) and the three forwarders against fake
proxy sockets on the host side: the transparent forwarder's wire header
carries the original destination, DNS over UDP and TCP comes back with the
client's ID, and the explicit proxy forwarder relays raw bytes.
"""
import os
import pwd
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
GUEST = os.path.join(SRC, "build", "guest")
BRIDGE = os.path.join(BUILD, "bin", "sandbox-vsock")
BOOT_TIMEOUT = 180


def qemu_argv(workspace, extra_append, vsock_sock=None):
    argv = [
        "qemu-system-x86_64", "-M",
        "microvm,acpi=on,rtc=on,pit=on,pic=on,memory-backend=mem",
        "-accel", "tcg", "-cpu", "max", "-m", "512M",
        "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
        "-global", "virtio-mmio.force-legacy=false",
        "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
        "-kernel", os.path.join(GUEST, "vmlinux"),
        "-initrd", os.path.join(GUEST, "initramfs.cpio"),
        "-append", "console=ttyS0 quiet tsc_early_khz=2000000 lpj=4000000 "
        "sandbox.workspace=%s %s" % (workspace, extra_append),
        "-fsdev", "local,id=usr,path=/usr,security_model=none,readonly=on",
        "-device", "virtio-9p-device,fsdev=usr,mount_tag=hostusr",
        "-fsdev", "local,id=ws,path=%s,security_model=mapped-xattr" % workspace,
        "-device", "virtio-9p-device,fsdev=ws,mount_tag=workspace",
    ]
    if vsock_sock:
        argv += ["-chardev", "socket,id=vs,path=%s" % vsock_sock,
                 "-device", "vhost-user-vsock-device,chardev=vs"]
    return argv


def unprivileged():
    """(uid, gid, argv prefix) of the host user QEMU runs as."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid(), []
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid, ["runuser", "-u", "nobody", "--"]


def require_image():
    for f in ("vmlinux", "initramfs.cpio", "kernel-version"):
        if not os.path.isfile(os.path.join(GUEST, f)):
            pytest.fail("guest image missing (%s): run `make guest`" % f)


def make_workspace(uid, gid):
    ws = tempfile.mkdtemp(prefix="sbx-guest-ws-", dir="/tmp")
    os.chmod(ws, 0o755)
    os.chown(ws, uid, gid) if os.geteuid() == 0 else None
    return ws


# ---------------------------------------------------------------- boot 1

PROBE = r"""
ws=$(dirname "$0")
say() { echo "CHECK $1=$2"; }
say id "$(id -u)"
fstype() { grep " $1 " /proc/mounts | tail -n1 | cut -d' ' -f3; }
say usr_mount "$(fstype /usr)"
say ws_mount "$(fstype "$ws")"
say root_mount "$(fstype /)"
# /usr is an overlay: root may write, but only into guest memory.
echo guest > /usr/sbx-probe-usr && say usr_write ok || say usr_write fail
# The host share itself: a second mount of the tag, then remount rw.
mkdir -p /mnt/hu
if mount -t 9p -o trans=virtio,version=9p2000.L hostusr /mnt/hu 2>/dev/null; then
  echo x > /mnt/hu/sbx-probe-direct 2>/dev/null && say direct_write ok || say direct_write fail
  mount -o remount,rw /mnt/hu 2>/dev/null
  echo x > /mnt/hu/sbx-probe-direct 2>/dev/null && say direct_rw_write ok || say direct_rw_write fail
else
  say direct_mount refused
fi
# Workspace: a plain file, a setuid root file, a device node, a symlink.
echo hello > "$ws/plain" && say ws_write ok
cp /bin/true "$ws/suid" && chown 0:0 "$ws/suid" && chmod 4755 "$ws/suid"
say ws_suid_guest "$(stat -c %a:%u "$ws/suid")"
mknod "$ws/null" c 1 3 && say mknod ok
ln -s /etc/passwd "$ws/link" && say symlink ok
mkdir "$ws/sub" && chown 0:0 "$ws/sub"
say passwd "$(grep '^agent:' /etc/passwd)"
say resolv "$(cat /etc/resolv.conf)"
say ca "$(test -s /etc/ssl/certs/ca-certificates.crt && echo present)"
say home "$(stat -c %u /home/agent)"
say hostname "$(hostname)"
say eth0 "$(ip -4 -o addr show dev eth0 | sed 's/.*inet \([^ ]*\).*/\1/')"
say route "$(ip route show default)"
nft list ruleset > /tmp/rules && say nft ok
say nft_redirect "$(grep -c 'redirect to :10800' /tmp/rules)"
say nft_dns "$(grep -c 'dnat to 127.0.0.53:53' /tmp/rules)"
say nft_drop "$(grep -c 'policy drop' /tmp/rules)"
say nft_v6 "$(grep -c 'meta nfproto ipv6 drop' /tmp/rules)"
say fwd "$(ps -eo comm 2>/dev/null | grep -c '^fwd-')"
say fwd_user "$(ps -o user= -C fwd-tcp 2>/dev/null | head -n1)"
# UDP other than 53 must not leave: sendto fails or is dropped; an
# ICMP socket cannot reach anything either.
say udp "$(python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"x", ("192.0.2.1", 9)); print("sent")
except OSError as e:
    print("error", e.errno)
' 2>&1)"
say ldcache "$(test -s /etc/ld.so.cache && echo present)"
# /usr/bin/awk -> /etc/alternatives/awk -> the host's choice under /usr.
say awk "$(echo 'a b' | awk '{print $2}' 2>&1)"
say alt_outside "$(find /etc/alternatives -type l ! -lname '/usr/*' | wc -l)"
"""


@pytest.fixture(scope="module")
def boot1():
    require_image()
    uid, gid, prefix = unprivileged()
    ws = make_workspace(uid, gid)
    probe = os.path.join(ws, "probe.sh")
    with open(probe, "w") as f:
        f.write(PROBE)
    os.chmod(probe, 0o644)
    if os.geteuid() == 0:
        os.chown(probe, uid, gid)
    marker = "/usr/sbx-probe-usr"
    assert not os.path.exists(marker)
    t0 = time.monotonic()
    p = subprocess.run(prefix + qemu_argv(ws, "sandbox.debug=script:%s" % probe),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=BOOT_TIMEOUT, cwd="/tmp")
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    checks = dict(re.findall(r"^CHECK (\w+)=(.*?)\r?$", out, re.M))
    yield {"ws": ws, "uid": uid, "gid": gid, "out": out, "checks": checks,
           "rc": p.returncode, "secs": time.monotonic() - t0}
    shutil.rmtree(ws, ignore_errors=True)


def test_boot_reaches_script_and_powers_off(boot1):
    out = boot1["out"]
    assert "sandbox-init: ready" in out, out[-3000:]
    assert "debug script exited with 0" in out, out[-3000:]
    assert "reboot: Power down" in out, out[-3000:]
    assert boot1["rc"] == 0
    assert "FATAL" not in out


def test_mounts_as_designed(boot1):
    c = boot1["checks"]
    assert c.get("id") == "0"
    assert c.get("root_mount") == "tmpfs"
    assert c.get("usr_mount") == "overlay"
    assert c.get("ws_mount") == "9p"


def test_usr_writes_stay_in_guest(boot1):
    c = boot1["checks"]
    assert c.get("usr_write") == "ok"
    assert not os.path.exists("/usr/sbx-probe-usr")
    # The host share refuses writes even after a remount (QEMU readonly=on),
    # or cannot be mounted a second time at all.
    assert c.get("direct_mount") == "refused" or (
        c.get("direct_write") == "fail" and c.get("direct_rw_write") == "fail"), c
    assert not os.path.exists("/usr/sbx-probe-direct")


def test_workspace_files_are_plain_and_owned_by_invoker(boot1):
    ws, uid = boot1["ws"], boot1["uid"]
    c = boot1["checks"]
    assert c.get("ws_write") == "ok"
    with open(os.path.join(ws, "plain")) as f:
        assert f.read() == "hello\n"
    # In the guest the file is setuid root ...
    assert c.get("ws_suid_guest") == "4755:0"
    assert c.get("mknod") == "ok" and c.get("symlink") == "ok"
    # ... on the host every one is a plain file or directory of the
    # invoking user, without setuid/setgid bits.
    for name in ("plain", "suid", "null", "link", "sub"):
        st = os.lstat(os.path.join(ws, name))
        assert st.st_uid == uid, (name, st.st_uid)
        assert st.st_mode & 0o6000 == 0, (name, oct(st.st_mode))
        if name == "sub":
            assert (st.st_mode & 0o170000) == 0o040000
        else:
            assert (st.st_mode & 0o170000) == 0o100000, (name, oct(st.st_mode))


def test_synthesised_etc(boot1):
    c = boot1["checks"]
    assert c.get("passwd", "").startswith("agent:x:1000:1000:")
    assert c.get("resolv") == "nameserver 127.0.0.53"
    assert c.get("ca") == "present"
    assert c.get("home") == "1000"
    assert c.get("hostname") == "sandbox"
    assert c.get("ldcache") == "present"
    # The host's alternatives into /usr are mirrored, nothing else.
    assert c.get("awk") == "b", c.get("awk")
    assert c.get("alt_outside") == "0"


def test_capture_rules(boot1):
    c = boot1["checks"]
    assert c.get("eth0") == "192.0.2.2/24"
    assert c.get("route", "").startswith("default via 192.0.2.1 dev eth0")
    assert c.get("nft") == "ok"
    assert int(c.get("nft_redirect", 0)) == 2  # output and prerouting
    # TCP and UDP, output and prerouting: one rule each (sandbox-init
    # loads them over netlink, guest/nft_batch.c, without sets)
    assert int(c.get("nft_dns", 0)) == 4
    assert int(c.get("nft_drop", 0)) >= 2
    assert int(c.get("nft_v6", 0)) >= 1
    # sendto succeeds or fails, but never reaches anything: there is no NIC.
    assert c.get("udp", "").startswith(("sent", "error")), c.get("udp")
    assert int(c.get("fwd", 0)) >= 3, c.get("fwd")
    assert c.get("fwd_user") == "nobody"


# ---------------------------------------------------------------- boot 2

def frame(t, payload=b""):
    return struct.pack(">BI", t, len(payload)) + payload


def spec(argv, env=(), cwd="", uid=1000, gid=1000, tty=False):
    s = struct.pack(">IIBHHII", uid, gid, 1 if tty else 0, 24, 80,
                    len(argv), len(env))
    for x in list(argv) + list(env) + [cwd]:
        s += x.encode() + b"\0"
    return frame(1, s)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise EOFError("control channel closed after %d bytes" % len(buf))
        buf += d
    return buf


class FakeProxy:
    """Unix sockets where sandbox-vsock delivers guest ports 1080 and 3128.
    Records each stream's wire header; answers TCP kind with a greeting
    naming the destination, DNS kind by echoing queries with QR set, and the
    HTTP proxy port with a canned response."""

    def __init__(self, d):
        self.headers = []
        self.http = []
        self.socks = []
        for port, fn in ((1080, self.transparent), (3128, self.explicit)):
            path = os.path.join(d, "vsock_%d" % port)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(path)
            os.chmod(path, 0o777)
            s.listen(16)
            self.socks.append(s)
            threading.Thread(target=self.accept, args=(s, fn), daemon=True).start()

    def accept(self, s, fn):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def transparent(self, c):
        with c:
            h = read_exact(c, 28)
            magic, ver, kind, fam, flags, port = struct.unpack(">4sBBBBH", h[:10])
            if flags & 1:  # the source extension (parse/wire.h)
                h += read_exact(c, 20)
            self.headers.append(h)
            if kind == 1:
                addr = socket.inet_ntoa(h[12:16])
                c.sendall(b"hello %s:%d\n" % (addr.encode(), port))
                data = b""
                while True:
                    d = c.recv(4096)
                    if not d:
                        break
                    data += d
                c.sendall(b"got %d\n" % len(data))  # after the guest's half-close
            elif kind == 2:
                while True:
                    try:
                        ln = struct.unpack(">H", read_exact(c, 2))[0]
                        q = read_exact(c, ln)
                    except EOFError:
                        return
                    a = q[:2] + bytes([q[2] | 0x80]) + q[3:]
                    c.sendall(struct.pack(">H", len(a)) + a)

    def explicit(self, c):
        with c:
            req = c.recv(4096)
            self.http.append(req)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def close(self):
        for s in self.socks:
            s.close()


GUEST_PROG = r"""
import socket, struct, sys
def q(i):
    return struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"
c = socket.create_connection(("192.0.2.77", 8080), timeout=20)
f = c.makefile("rb")
print("tcp", f.readline().decode().strip())
c.sendall(b"x" * 100000); c.shutdown(socket.SHUT_WR)
print("tcp", f.readline().decode().strip())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(20)
u.sendto(q(0x1234), ("127.0.0.53", 53))
a = u.recv(4096)
print("udp", hex(struct.unpack(">H", a[:2])[0]), a[2] >> 7)
# any UDP 53 is captured, whatever the address
u.sendto(q(0x4321), ("192.0.2.53", 53))
a = u.recv(4096)
print("udp2", hex(struct.unpack(">H", a[:2])[0]), a[2] >> 7)
t = socket.create_connection(("127.0.0.53", 53), timeout=20)
m = q(0x7777); t.sendall(struct.pack(">H", len(m)) + m)
ln = struct.unpack(">H", t.recv(2))[0]; a = t.recv(ln)
print("dnstcp", hex(struct.unpack(">H", a[:2])[0]))
p = socket.create_connection(("127.0.0.1", 3128), timeout=20)
p.sendall(b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
print("proxy", p.recv(4096).split(b"\r\n")[0].decode())
import os
print("env", os.environ.get("HTTPS_PROXY"), os.environ.get("USER"), os.environ.get("FOO"), os.getcwd(), os.getuid())
sys.stderr.write("to-stderr\n")
print("stdin", sys.stdin.read().strip())
sys.exit(7)
"""


@pytest.fixture(scope="module")
def boot2():
    require_image()
    if not os.access(BRIDGE, os.X_OK):
        pytest.fail("%s missing: run `make`" % BRIDGE)
    uid, gid, prefix = unprivileged()
    ws = make_workspace(uid, gid)
    state = tempfile.mkdtemp(prefix="sbx-guest-state-", dir="/tmp")
    os.chmod(state, 0o777)
    fake = FakeProxy(state)
    vu = os.path.join(state, "vhost-vsock.sock")
    ctl = os.path.join(state, "control.sock")
    bridge = subprocess.Popen(prefix + [BRIDGE, "--socket", vu, "--dir", state,
                                        "--listen", ctl],
                              stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        if os.path.exists(vu) and os.path.exists(ctl):
            break
        time.sleep(0.05)
    log = open(os.path.join(state, "console.log"), "wb")
    qemu = subprocess.Popen(prefix + qemu_argv(ws, "", vsock_sock=vu),
                            stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, cwd="/tmp")
    console = os.path.join(state, "console.log")
    result = {"ws": ws, "fake": fake, "console": console}
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            with open(console, "rb") as f:
                text = f.read().decode(errors="replace")
            if "serving the control channel" in text or "FATAL" in text \
                    or qemu.poll() is not None:
                break
            time.sleep(0.2)
        result["ready_text"] = text
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(ctl)
        s.sendall(b"CONNECT 1024\n")
        line = b""
        while not line.endswith(b"\n"):
            d = s.recv(1)
            if not d:
                break
            line += d
        result["connect_reply"] = line
        s.sendall(spec(["python3", "-c", GUEST_PROG], ["FOO=bar"]))
        s.sendall(frame(2, b"from-host\n") + frame(2, b""))
        frames = []
        while True:
            t, ln = struct.unpack(">BI", read_exact(s, 5))
            frames.append((t, read_exact(s, ln)))
            if t == 0x83:
                break
        s.close()
        result["frames"] = frames
        qemu.wait(timeout=60)
        result["qemu_rc"] = qemu.returncode
        with open(console, "rb") as f:
            result["console_text"] = f.read().decode(errors="replace")
        yield result
    finally:
        for p in (qemu, bridge):
            if p.poll() is None:
                p.kill()
                p.wait()
        fake.close()
        log.close()
        shutil.rmtree(ws, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def test_control_channel_runs_command(boot2):
    assert "ready: serving the control channel on vsock port 1024" in boot2["ready_text"]
    assert boot2["connect_reply"].startswith(b"OK "), boot2["connect_reply"]
    frames = boot2["frames"]
    out = b"".join(p for t, p in frames if t == 0x81).decode()
    err = b"".join(p for t, p in frames if t == 0x82).decode()
    assert err == "to-stderr\n", (out, err)
    assert frames[-1] == (0x83, b"\x00" + struct.pack(">I", 7)), frames[-1]
    assert (0x81, b"") in frames and (0x82, b"") in frames  # both EOFs
    assert "stdin from-host" in out
    ws = boot2["ws"]
    assert "env http://127.0.0.1:3128 agent bar %s 1000" % ws in out, out
    # powered off by itself after EXIT
    assert boot2["qemu_rc"] == 0
    assert "reboot: Power down" in boot2["console_text"]


def test_transparent_forwarder_sends_original_destination(boot2):
    out = b"".join(p for t, p in boot2["frames"] if t == 0x81).decode()
    assert "tcp hello 192.0.2.77:8080" in out, out
    assert "tcp got 100000" in out, out  # half-close passed on, then reply
    h = [x for x in boot2["fake"].headers if x[5] == 1][0]
    assert h[:4] == b"SBXW" and h[4] == 1 and h[6] == 4
    assert struct.unpack(">H", h[8:10])[0] == 8080
    assert h[12:16] == socket.inet_aton("192.0.2.77")
    # The source extension: the guest's own socket, a local IPv4 address.
    assert h[7] == 1 and len(h) == 48, h
    assert h[28] == 4 and h[29] == 0 and struct.unpack(">H", h[30:32])[0] != 0, h


def test_dns_forwarder_udp_and_tcp(boot2):
    out = b"".join(p for t, p in boot2["frames"] if t == 0x81).decode()
    assert "udp 0x1234 1" in out, out
    assert "udp2 0x4321 1" in out, out
    assert "dnstcp 0x7777" in out, out
    dns = [x for x in boot2["fake"].headers if x[5] == 2]
    assert dns and all(x[6] == 0 and x[8:] == bytes(20) for x in dns)


def test_explicit_proxy_forwarder(boot2):
    out = b"".join(p for t, p in boot2["frames"] if t == 0x81).decode()
    assert "proxy HTTP/1.1 200 OK" in out, out
    assert boot2["fake"].http[0].startswith(b"GET http://example.com/ HTTP/1.1")
