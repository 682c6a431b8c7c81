"""The isolation rules of issue 3, tried as root inside the guest
(`sandbox-launch --root`) with QEMU and the launcher running as a non-root
host user (sbxtest when the tests run as root), then checked on the host.

One boot: a probe script does every attempt and prints `CHECK name=value`
lines; the tests below read them and look at the host afterwards. Root in
the guest can never:

1. write to anything shared from the host except the workspace: /usr (also
   after `mount -o remount,rw /usr` and on a fresh mount of the hostusr
   tag), the host's /var/lib/dpkg and the run's copy of /etc/apt (tags
   hostdpkg, hostetc, likewise), and no other 9p tag exists;
2. leave on the host a setuid/setgid file, a device node, or a file owned
   by anyone but the launching user (chown 0, chmod 4755/2755, mknod
   c 1 3 / b 7 0, mkfifo, chown 12345); on virtiofs (the default, with
   --root guest root is the launching user there) these are refused, on
   the 9p fallback they land in mapped-xattr metadata;
3. reach a host path outside the workspace through a symlink or `..`
   (links to /etc/shadow, /root, ../../..; read and write through them);
4. talk to any host socket but the proxy's: AF_VSOCK to CID 2 on ports
   other than 1080/3128, and to CIDs 1, 3, 4, all refused;
5. reach the network except through the proxy: UDP, ICMP ping, a raw
   socket, IPv6, a direct TCP connect to a host loopback service by IP;
   then `nft flush ruleset` and again: still nothing, because there is no
   network device, only the vsock path.

Covered elsewhere, not repeated here: the guest's nftables rules and a
second mount of hostusr by the debug-script boot (test_guest_boot.py, QEMU
started directly); names and the proxy's decisions for allowed, denied and
loopback-resolving names (test_launch_net.py). Addresses used: TEST-NET
(192.0.2.0/24, 2001:db8::/32); nothing leaves the guest in any case.
"""
import hashlib
import os
import re
import socket
import subprocess
import threading
import uuid

import pytest

import test_launch_basic as base

PROBE = r"""
ws=$(pwd)
tok=$1
say() { echo "CHECK $1=$2"; }
say id "$(id -u)"
say awk "$(echo 'a b' | awk '{print $2}' 2>&1)"

# 1. Shared read-only: /usr, remounted rw, and a fresh mount of its tag.
touch /usr/sbx-iso-$tok-a 2>/dev/null; say usr_overlay_write $?
mount -o remount,rw /usr 2>/dev/null; say usr_remount $?
touch /usr/sbx-iso-$tok-b 2>/dev/null
mkdir -p /mnt/hu
for tag in hostusr hostetc hostdpkg; do
  if mount -t 9p -o trans=virtio,version=9p2000.L,rw $tag /mnt/hu 2>/dev/null; then
    touch /mnt/hu/sbx-iso-$tok-c 2>/dev/null && say ${tag}_write ok || say ${tag}_write refused
    mount -o remount,rw /mnt/hu 2>/dev/null
    touch /mnt/hu/sbx-iso-$tok-d 2>/dev/null && say ${tag}_rw_write ok || say ${tag}_rw_write refused
    umount /mnt/hu
  else
    say ${tag}_write refused; say ${tag}_rw_write refused
  fi
done
# The host's package state is a lower layer: writes land in the guest.
touch /var/lib/dpkg/sbx-iso-$tok-e 2>/dev/null; say dpkg_overlay_write $?
touch /etc/apt/sbx-iso-$tok-e 2>/dev/null; say apt_overlay_write $?
say tags "$(cat /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag 2>/dev/null | tr '\0' ' ' | tr -s ' ' | sed 's/ $//')"
say nine_p_mounts "$(awk '$3 == "9p" { print $2 }' /proc/mounts | tr '\n' ' ' | sed 's/ $//')"
say wsfs "$(awk -v ws="$ws" '$2 == ws { print $3 }' /proc/mounts)"

# 2. Owners, modes and special files in the workspace.
cp /bin/true suid && chown 0:0 suid && chmod 4755 suid
cp /bin/true sgid && chown 0:0 sgid && chmod 2755 sgid
echo x > other && chown 12345:12345 other
mkdir rootdir && chown 0:0 rootdir && chmod 6777 rootdir
mknod null c 1 3; say mknod_c $?
mknod loop0 b 7 0; say mknod_b $?
mkfifo fifo; say mkfifo $?
say suid_guest "$(stat -c %a:%u suid)"
say null_guest "$(stat -c %F null)"

# 3. Symlinks and .. out of the workspace.
ln -s /etc/shadow l_shadow; ln -s /root l_root; ln -s ../../.. l_up
ln -s / l_slash
say read_shadow "$(head -c 64 l_shadow | sha256sum | cut -c1-16)"
say read_up "$(cat l_up/etc/hostname 2>&1)"
echo pwned >> l_shadow 2>/dev/null; say write_shadow $?
echo pwned > l_root/sbx-iso-$tok 2>/dev/null; say write_root $?
echo pwned > l_up/tmp/sbx-iso-$tok 2>/dev/null; say write_up $?
echo pwned > l_slash/tmp/sbx-iso-slash-$tok 2>/dev/null; say write_slash $?
echo pwned > ../sbx-iso-dotdot-$tok 2>/dev/null; say write_dotdot $?
echo pwned > "$ws/../../sbx-iso-dotdot2-$tok" 2>/dev/null; say write_dotdot2 $?
say ls_parent "$(ls .. | tr '\n' ' ')"

# 4 and 5 in Python: sockets.
python3 - "$tok" "$HOSTPORT" <<'EOF'
import errno, socket, subprocess, sys
port = int(sys.argv[2])

def say(k, v):
    print("CHECK %s=%s" % (k, v), flush=True)

def attempt(fn):
    try:
        return fn()
    except OSError as e:
        return "refused:%s" % errno.errorcode.get(e.errno, e.errno)
    except Exception as e:  # socket.timeout
        return "refused:%s" % type(e).__name__

def vsock(cid, vport):
    def f():
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(4)
        s.connect((cid, vport))
        s.close()
        return "connected"
    return attempt(f)

# The proxy's port connects (so the refusals below mean something).
say("vsock_2_3128", vsock(2, 3128))
for vp in (1, 22, 1023, 1024, 1079, 1081, 2049, 3127, 3129, 8080, 65535):
    say("vsock_2_%d" % vp, vsock(2, vp))
for cid in (1, 3, 4):
    say("vsock_%d_1080" % cid, vsock(cid, 1080))
    say("vsock_%d_3128" % cid, vsock(cid, 3128))

def net(tag):
    def udp():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(b"x", ("192.0.2.1", 9))
        s.recvfrom(16)
        return "answered"
    say(tag + "_udp", attempt(udp))
    def raw():
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.settimeout(2)
        s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", ("192.0.2.1", 0))
        while True:
            data, addr = s.recvfrom(256)
            if addr[0] != "127.0.0.1":
                return "answered"
    say(tag + "_raw", attempt(raw))
    # What ping(8) does (the host may have no ping binary): an ICMP echo
    # on a datagram ICMP socket, and wait for the reply.
    def ping():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        s.settimeout(2)
        s.sendto(b"\x08\x00\x00\x00\x00\x00\x00\x01", ("192.0.2.1", 0))
        s.recvfrom(256)
        return "answered"
    say(tag + "_ping", attempt(ping))
    def v6():
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect(("2001:db8::1", port))
        return "connected"
    say(tag + "_ipv6", attempt(v6))
    def v6udp():
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.sendto(b"x", ("2001:db8::1", 9))
        s.recvfrom(16)
        return "answered"
    say(tag + "_ipv6_udp", attempt(v6udp))
    # The host's loopback service, by IP: the guest's 127.0.0.1 is its
    # own; any other address is captured (then denied: an IP literal).
    for ip in ("127.0.0.1", "192.0.2.1", "10.0.2.2"):
        def tcp(ip=ip):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(4)
            s.connect((ip, port))
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            d = s.recv(4096)
            return "got:" + d[:40].decode(errors="replace").replace("\n", " ") if d else "closed"
        say("%s_tcp_%s" % (tag, ip.replace(".", "_")), attempt(tcp))

net("captured")
r = subprocess.run(["nft", "flush", "ruleset"], capture_output=True)
say("nft_flush", r.returncode)
r = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True)
say("nft_rules_left", len(r.stdout.strip()))
net("flushed")
EOF

# No network device but the loopback and the capture's dummy.
for d in /sys/class/net/*; do
  say "netdev_$(basename $d)" "$(cat $d/type):$(test -e $d/device && echo hw || echo virtual)"
done
say virtio_net "$(grep -l '^0x0001$' /sys/bus/virtio/devices/*/device 2>/dev/null | wc -l)"
sync
"""


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="module")
def iso():
    base.require()
    e = base.Env()
    tok = uuid.uuid4().hex[:10]
    probe = os.path.join(e.ws, "probe.sh")
    with open(probe, "w") as f:
        f.write(PROBE)
    e.own(probe)
    # A host service on loopback that nothing may reach.
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    hits = []

    def accept():
        while True:
            try:
                c, a = srv.accept()
            except OSError:
                return
            hits.append(a)
            c.close()
    threading.Thread(target=accept, daemon=True).start()

    watched = ["/etc/shadow", "/etc/passwd", "/etc/hostname"]
    before = {p: sha(p) for p in watched if os.path.exists(p)}
    parent = sorted(os.listdir(e.root))
    p = e.popen(["--root", "--env", "HOSTPORT=%d" % port, "--",
                 "sh", "probe.sh", tok],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=base.TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, err = p.communicate()
    srv.close()
    text = out.decode(errors="replace")
    checks = dict(re.findall(r"^CHECK (\w+)=(.*?)\r?$", text, re.M))
    yield {"env": e, "tok": tok, "rc": p.returncode, "out": text,
           "err": err.decode(errors="replace"), "checks": checks,
           "before": before, "parent": parent, "hits": hits,
           }
    e.cleanup()


def test_ran_as_root_in_the_guest_and_non_root_on_the_host(iso):
    c = iso["checks"]
    assert iso["rc"] == 0, (iso["rc"], iso["err"][-2000:])
    assert c.get("id") == "0", iso["out"][-2000:]
    assert c.get("awk") == "b"
    # Ends cleanly: none of the run's processes are left.
    assert base.leftovers(iso["env"].uid) == []
    assert os.listdir(iso["env"].state_base()) == []


def test_usr_stays_read_only_on_the_host(iso):
    c, tok = iso["checks"], iso["tok"]
    # Inside, root may write /usr: an overlay upper layer in guest memory.
    assert c.get("usr_overlay_write") == "0"
    assert c.get("hostusr_write") == "refused"
    assert c.get("hostusr_rw_write") == "refused"
    for s in "abcd":
        assert not os.path.exists("/usr/sbx-iso-%s-%s" % (tok, s))


def test_host_package_state_stays_read_only_on_the_host(iso):
    """/var/lib/dpkg and the run's copy of /etc/apt are shared read-only
    (dpkg in the guest must know what the shared /usr holds): writes go to
    the guest's overlay, never to the host."""
    c, tok = iso["checks"], iso["tok"]
    assert c.get("dpkg_overlay_write") == "0"
    assert c.get("apt_overlay_write") == "0"
    for tag in ("hostetc", "hostdpkg"):
        assert c.get(tag + "_write") == "refused", tag
        assert c.get(tag + "_rw_write") == "refused", tag
    for s in "cde":
        assert not os.path.exists("/var/lib/dpkg/sbx-iso-%s-%s" % (tok, s))
        assert not os.path.exists("/etc/apt/sbx-iso-%s-%s" % (tok, s))


def virtiofs(iso):
    """Is the workspace on virtiofs (else 9p, the fallback)?"""
    return iso["checks"].get("wsfs") == "virtiofs"


def test_no_other_host_path_is_shared(iso):
    c, ws = iso["checks"], iso["env"].ws
    tags = ["hostdpkg", "hostetc", "hostusr"]
    assert c.get("wsfs") in ("virtiofs", "9p"), c
    if not virtiofs(iso):
        tags.append("workspace")
    assert sorted(c.get("tags", "").split()) == tags
    # Only the workspace stays mounted (the lower layers are detached).
    assert c.get("nine_p_mounts") == ("" if virtiofs(iso) else ws)


def test_no_setuid_device_or_foreign_owner_on_the_host(iso):
    c, e = iso["checks"], iso["env"]
    if virtiofs(iso):
        # Refused outright: the filter in front of virtiofsd (mode bits,
        # mknod) and the id mapping (chown 12345).
        assert c.get("suid_guest") == "755:0"
        assert c.get("mknod_c") != "0" and c.get("mknod_b") != "0"
        assert c.get("mkfifo") != "0"
    else:
        # The guest believes it made them ...
        assert c.get("suid_guest") == "4755:0"
        assert c.get("mknod_c") == "0" and c.get("mknod_b") == "0"
        assert c.get("null_guest") == "character special file"
    # ... the host has plain files, directories (and, on virtiofs, the
    # guest's symlinks, which only the host may follow) of the launching
    # user.
    kinds = (0o100000, 0o040000) + ((0o120000,) if virtiofs(iso) else ())
    n = 0
    for root, dirs, files in os.walk(e.ws):
        for name in dirs + files:
            st = os.lstat(os.path.join(root, name))
            n += 1
            assert st.st_uid == e.uid and st.st_gid == e.gid, (name, st)
            assert st.st_mode & 0o7000 == 0, (name, oct(st.st_mode))
            kind = st.st_mode & 0o170000
            assert kind in kinds, (name, oct(st.st_mode))
    assert n >= (9 if virtiofs(iso) else 12)


def test_symlinks_and_dotdot_stay_in_the_guest(iso):
    c, e, tok = iso["checks"], iso["env"], iso["tok"]
    # Through the links the guest sees its own files, never the host's.
    assert c.get("read_up") == "sandbox"
    with open("/etc/shadow", "rb") as f:
        host_head = hashlib.sha256(f.read(64)).hexdigest()[:16]
    assert c.get("read_shadow") != host_head
    for p, h in iso["before"].items():
        assert sha(p) == h, p + " changed"
    for p in ("/root/sbx-iso-" + tok, "/tmp/sbx-iso-" + tok,
              "/tmp/sbx-iso-slash-" + tok):
        assert not os.path.exists(p), p
    assert sorted(os.listdir(e.root)) == iso["parent"]
    assert not any(tok in n for n in os.listdir("/tmp"))
    # On 9p the links are plain files on the host (checked above too); on
    # virtiofs they are symlinks, as a repository's own would be, and the
    # checks above show the guest could not follow them out.
    for name in ("l_shadow", "l_root", "l_up", "l_slash"):
        assert os.path.islink(os.path.join(e.ws, name)) == virtiofs(iso)


def test_only_the_proxy_vsock_ports_answer(iso):
    c = iso["checks"]
    assert c.get("vsock_2_3128") == "connected", c
    ports = [k for k in c if re.match(r"vsock_\d+_\d+$", k)]
    assert len(ports) == 1 + 11 + 6
    for k in ports:
        if k != "vsock_2_3128":
            assert c[k].startswith("refused"), (k, c[k])


def test_no_network_but_the_proxy(iso):
    c = iso["checks"]
    assert c.get("nft_flush") == "0" and c.get("nft_rules_left") == "0"
    keys = [k for k in c if k.startswith(("captured_", "flushed_"))]
    assert len(keys) == 2 * 8
    for k in keys:
        v = c[k]
        # A captured TCP connect reaches the proxy, which denies an IP
        # literal with a 403; nothing else gets an answer.
        if k.startswith("captured_tcp_") and not k.endswith("127_0_0_1"):
            assert v.startswith("refused") or v == "closed" or \
                v.startswith("got:HTTP/1.1 403"), (k, v)
        else:
            assert v.startswith("refused"), (k, v)
    assert iso["hits"] == [], "the host's loopback service was reached"
    # No NIC: only lo and the capture's dummy, and no virtio-net device.
    devs = {k[len("netdev_"):]: v for k, v in c.items() if k.startswith("netdev_")}
    assert set(devs) <= {"lo", "eth0"}, devs
    assert all(v.endswith(":virtual") for v in devs.values()), devs
    assert c.get("virtio_net") == "0"
