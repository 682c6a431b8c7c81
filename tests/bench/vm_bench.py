#!/usr/bin/python3
"""`make bench-vm`: what the VM path costs, measured in one TCG guest boot.

1. Workspace file sharing, 9p vs virtiofs, on a real tree: a git repository
   of BENCH_VM_FILES files taken from BENCH_VM_TREE (default /usr/include),
   and a tarball of the same files. Inside the guest, as root, each share
   runs: `git status` (first run, which refreshes the index for the new
   inode numbers; cold, after dropping the guest's caches; warm), `find |
   wc -l` cold, `tar -xf` of the tarball into the share, `rm -rf` of the
   result. The same commands run on the host as the baseline (host page
   cache warm: the benchmark never drops the host's caches).
   9p is QEMU's `-fsdev local,security_model=mapped-xattr`, mounted by
   sandbox-init exactly as the launcher does (cache=mmap, msize=262144);
   virtiofs is QEMU 7.2's C virtiofsd (Debian ships it in
   qemu-system-common), which must run as root. The guest also tries, as
   root, to leave a setuid-root file, a device node and a file owned by
   another user on each share; the host checks what arrived.
2. Guest-to-host throughput: a 256 MiB HTTP download from a server on host
   127.0.0.1, (a) over the sandbox path (curl -> nftables redirect ->
   transparent forwarder -> virtio-vsock -> sandbox-vsock -> sandbox-proxy,
   name resolved through the guest DNS forwarder, the proxy and a dnsmasq
   on loopback) and (b) over QEMU user-mode networking (`-netdev user`, a
   virtio-net device whose driver is insmod-ed from the same kernel package
   by the benchmark script; slirp's 10.0.2.2 is the host's 127.0.0.1), in
   the same boot, after the sandbox's nftables rules are flushed. A direct
   host curl is the baseline.

Everything is on loopback. Every step has a timeout; all processes started
here are killed at the end. Results: build/bench/vm.txt and vm.json.
Needs root (virtiofsd, drop_caches in the guest is the guest's own root).
"""
import http.server
import json
import lzma
import os
import platform
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
# SANDBOX_GUEST_DIR: another guest (kernel + initramfs) to compare.
GUEST = os.environ.get("SANDBOX_GUEST_DIR", os.path.join(SRC, "build", "guest"))
OUT = os.path.join(SRC, "build", "bench")
TREE = os.environ.get("BENCH_VM_TREE", "/usr/include")
NFILES = int(os.environ.get("BENCH_VM_FILES", "3000"))
DL_BYTES = int(os.environ.get("BENCH_VM_BYTES", str(256 << 20)))
BOOT_TIMEOUT = int(os.environ.get("BENCH_VM_TIMEOUT", "300"))
VIRTIOFSD = os.environ.get("BENCH_VIRTIOFSD", "/usr/lib/qemu/virtiofsd")
MEM = "1024M"
# The accelerator boot() uses, with the launcher's TCG CPU model
# (launcher/qemu_cmd.c); tests/bench/vsock_dl.py sets the KVM one.
ACCEL = ["-accel", "tcg", "-cpu", "max,erms=off,fsrm=off"]


class BenchError(Exception):
    pass


def log(msg):
    print("bench-vm: " + msg, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Procs:
    """Every process started here, each in its own process group, killed
    (group-wide) at the end whatever happened."""

    def __init__(self):
        self.procs = []

    def start(self, argv, log_path, **kw):
        f = open(log_path, "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
        f.close()
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 3
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(5)


def wait_for(pred, timeout, what, proc=None, log_path=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    tail = ""
    if log_path and os.path.exists(log_path):
        tail = ": " + open(log_path, errors="replace").read()[-800:]
    raise BenchError("%s did not come up within %ds%s" % (what, timeout, tail))


# ------------------------------------------------------------ HTTP server

class BlobHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    chunk = b"\xa5" * (1 << 20)

    def do_GET(self):
        m = re.fullmatch(r"/bytes/(\d+)", self.path)
        if not m:
            self.send_error(404)
            return
        n = int(m.group(1))
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        while n > 0:
            k = min(n, len(self.chunk))
            self.wfile.write(self.chunk[:k] if k < len(self.chunk) else self.chunk)
            n -= k

    def log_message(self, *a):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


# ------------------------------------------------------------ the tree

def make_tree(root):
    """Copy the first NFILES regular files of TREE (sorted walk) into
    root/src, commit them to a git repository at root/repo and tar them
    into root/tree.tar. Returns (files, bytes)."""
    files = []
    for d, dirs, names in os.walk(TREE):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(os.path.relpath(p, TREE))
                if len(files) >= NFILES:
                    break
        if len(files) >= NFILES:
            break
    if len(files) < 100:
        raise BenchError("%s has only %d files; set BENCH_VM_TREE" % (TREE, len(files)))
    tar = os.path.join(root, "tree.tar")
    size = 0
    with tarfile.open(tar, "w") as t:
        for f in files:
            t.add(os.path.join(TREE, f), arcname=os.path.join("tree", f))
            size += os.path.getsize(os.path.join(TREE, f))
    return files, size, tar


def git(repo, *args, timeout=120):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=repo,
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@invalid")
    subprocess.run(["git", "-C", repo] + list(args), env=env, check=True,
                   timeout=timeout, stdout=subprocess.DEVNULL)


def make_workspace(ws, tar):
    """ws/repo: a committed git repository of the tree; ws/unpack: empty."""
    os.makedirs(ws)
    repo = os.path.join(ws, "repo")
    os.makedirs(repo)
    with tarfile.open(tar) as t:
        t.extractall(repo)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tree")
    os.makedirs(os.path.join(ws, "unpack"))


# ------------------------------------------------------------ host baseline

def host_baseline(ws, tar, rounds=3):
    """The host workload, median of `rounds` runs (it takes milliseconds, so
    one run on a shared machine is mostly scheduling noise)."""
    runs = [host_round(ws, tar) for _ in range(rounds)]
    return {k: sorted((r[k] for r in runs), key=lambda x: x["us"])[rounds // 2]
            for k in runs[0]}


def host_round(ws, tar):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME="/tmp")
    repo = os.path.join(ws, "repo")
    res = {}

    def t(label, argv, cwd):
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        res[label] = (int((time.monotonic() - t0) * 1e6), p.returncode)

    t("git_first", ["git", "status", "--porcelain"], repo)
    t("git_cold", ["git", "status", "--porcelain"], repo)
    t("git_warm", ["git", "status", "--porcelain"], repo)
    t("find_cold", ["sh", "-c", "find . | wc -l"], repo)
    t("untar", ["tar", "-xf", tar, "-C", os.path.join(ws, "unpack")], ws)
    t("rm", ["rm", "-rf", os.path.join(ws, "unpack")], ws)
    os.makedirs(os.path.join(ws, "unpack"))
    return {k: {"us": v[0], "rc": v[1]} for k, v in res.items()}


# ------------------------------------------------------------ guest script

GUEST_SCRIPT = r"""
W9=@W9@
WV=@WV@
PORT=@PORT@
BYTES=@BYTES@
export HOME=/tmp GIT_CONFIG_NOSYSTEM=1 PATH=/usr/sbin:/usr/bin:/sbin:/bin
t() {
  label=$1; shift
  s=$(date +%s%N)
  timeout 150 "$@" >/tmp/out 2>/tmp/err; rc=$?
  e=$(date +%s%N)
  echo "RESULT $label $(( (e - s) / 1000 )) $rc $(head -c 200 /tmp/out | tr '\n' ' ')"
  [ $rc = 0 ] || echo "STDERR $label $(head -c 300 /tmp/err | tr '\n' ' ')"
}
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
cp "$W9/tree.tar" /tmp/tree.tar
mkdir -p "$WV"
mount -t virtiofs -o nosuid,nodev wsvfs "$WV" && echo "RESULT vfs_mount 0 0" || echo "RESULT vfs_mount 0 1"
for fs in 9p:$W9 virtiofs:$WV; do
  name=${fs%%:*}; d=${fs#*:}
  cd "$d/repo" || continue
  drop
  t $name.git_first git status --porcelain
  drop
  t $name.git_cold git status --porcelain
  t $name.git_warm git status --porcelain
  drop
  t $name.find_cold sh -c 'find . | wc -l'
  drop
  t $name.untar tar -xf /tmp/tree.tar -C "$d/unpack"
  t $name.rm rm -rf "$d/unpack"
  # Isolation probe: what root in the guest can leave on the host.
  cp /bin/true "$d/suid" && chown 0:0 "$d/suid" && chmod 4755 "$d/suid"
  mknod "$d/dev" c 1 3 2>/dev/null
  echo x > "$d/other" && chown 4242:4242 "$d/other"
  cd /
done
umount "$WV" 2>/dev/null

# (a) the sandbox path: name -> guest DNS forwarder -> proxy -> dnsmasq,
# TCP -> nftables redirect -> transparent forwarder -> vsock -> proxy.
t vsock.dns getent hosts bench.test
t vsock.curl curl --noproxy '*' -sS -o /dev/null -w '%{size_download}' http://bench.test:$PORT/bytes/$BYTES

# (b) QEMU user networking in the same guest: load virtio_net from the
# kernel package, drop the sandbox's capture rules, talk to slirp's host.
while read -r m; do insmod "$W9/.bench-mod/$m" || echo "INSMOD FAILED $m"; done < "$W9/.bench-mod/order"
IF=
for i in /sys/class/net/*; do
  drv=$(basename "$(readlink "$i/device/driver" 2>/dev/null)" 2>/dev/null)
  [ "$drv" = virtio_net ] && IF=$(basename "$i")
done
echo "NETIF $IF"
nft flush ruleset
ip link set "$IF" up && ip addr add 10.0.2.15/24 dev "$IF"
t usernet.curl curl --noproxy '*' -sS -o /dev/null -w '%{size_download}' http://10.0.2.2:$PORT/bytes/$BYTES
echo BENCH-DONE
"""


def module_closure(dest):
    """Copy virtio_net and its dependencies from the guest's kernel package
    (unpacked by guest/build-image.sh) into dest, with their load order."""
    kver = open(os.path.join(GUEST, "kernel-version")).read().strip()
    roots = [os.path.join(GUEST, "cache", d) for d in
             sorted(os.listdir(os.path.join(GUEST, "cache")))
             if d.startswith("root-") and
             os.path.isdir(os.path.join(GUEST, "cache", d, "lib", "modules", kver))]
    if not roots:
        raise BenchError("no unpacked kernel package for %s in %s/cache: run make guest"
                         % (kver, GUEST))
    p = subprocess.run(["modprobe", "-d", roots[-1], "-S", kver,
                        "--show-depends", "virtio_net"], capture_output=True,
                       text=True, timeout=30)
    if p.returncode:
        raise BenchError("modprobe --show-depends virtio_net: " + p.stderr.strip())
    os.makedirs(dest)
    order = []
    for line in p.stdout.splitlines():
        w = line.split()
        if len(w) >= 2 and w[0] == "insmod":
            name = os.path.basename(w[1])
            if name in ("virtio.ko", "virtio_ring.ko"):
                continue  # already loaded by sandbox-init
            # Linux 6.12's modules are .ko.xz; busybox insmod wants a .ko.
            if name.endswith(".ko.xz"):
                name = name[:-3]
                with lzma.open(w[1]) as src, open(os.path.join(dest, name), "wb") as d:
                    shutil.copyfileobj(src, d)
            elif name.endswith(".ko"):
                shutil.copy(w[1], os.path.join(dest, name))
            else:
                raise BenchError("%s: not a .ko or .ko.xz module" % w[1])
            order.append(name)
    with open(os.path.join(dest, "order"), "w") as f:
        f.write("\n".join(order) + "\n")
    return order


def virtiofsd_unprivileged(tmp, src):
    """Can virtiofsd serve the share without root? Try as nobody, both
    sandbox modes, and return what it said."""
    out = {}
    for mode in ("namespace", "chroot"):
        sock = os.path.join(tmp, "vfs-nobody-%s.sock" % mode)
        try:
            p = subprocess.run(["runuser", "-u", "nobody", "--", VIRTIOFSD,
                                "--socket-path=" + sock, "-o", "source=" + src,
                                "-o", "sandbox=" + mode],
                               capture_output=True, text=True, timeout=5)
            msg = (p.stderr + p.stdout).strip().splitlines()
            out[mode] = "exit %d: %s" % (p.returncode, msg[-1] if msg else "")
        except subprocess.TimeoutExpired:
            out[mode] = "started (no QEMU connected within 5 s)"
    return out


def host_isolation(ws):
    """What the guest's root left on the host share."""
    r = {}
    for n in ("suid", "dev", "other"):
        p = os.path.join(ws, n)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            r[n] = "absent"
            continue
        import stat as S
        kind = ("char-dev" if S.S_ISCHR(st.st_mode) else
                "symlink" if S.S_ISLNK(st.st_mode) else
                "file" if S.S_ISREG(st.st_mode) else "other")
        r[n] = "%s mode %o uid %d" % (kind, S.S_IMODE(st.st_mode), st.st_uid)
    return r


def violates(iso):
    import stat as S
    bad = []
    for n, p in (("suid", "suid"), ("dev", "dev"), ("other", "other")):
        v = iso.get(n, "absent")
        if v == "absent":
            continue
        m = re.match(r"(\S+) mode (\d+) uid (\d+)", v)
        kind, mode, uid = m.group(1), int(m.group(2), 8), int(m.group(3))
        if kind == "char-dev":
            bad.append("device node")
        if mode & (S.S_ISUID | S.S_ISGID):
            bad.append("setuid/setgid file")
        if uid != os.geteuid():
            bad.append("file owned by uid %d" % uid)
    return bad


def boot(tmp, procs, ws9, wsv, port, dns_port):
    state = os.path.join(tmp, "state")
    os.makedirs(state, mode=0o700)
    policy = os.path.join(tmp, "policy.yaml")
    with open(policy, "w") as f:
        f.write("version: 1\nallow:\n  - host: bench.test\n    ports: [%d]\n"
                "  - cidr: 127.0.0.1/32\n    ports: [%d]\n" % (port, port))
    plog = os.path.join(tmp, "proxy.log")
    proxy = procs.start([os.path.join(BUILD, "bin", "sandbox-proxy"),
                         "--listen", "unix:%s/vsock_1080" % state,
                         "--http-proxy", "unix:%s/vsock_3128" % state,
                         "--audit", os.path.join(tmp, "audit.jsonl"),
                         "--sandbox", "bench", "--resolver",
                         "127.0.0.1:%d" % dns_port, "--policy", policy], plog)
    wait_for(lambda: "ready" in open(plog, errors="replace").read(), 15,
             "sandbox-proxy", proxy, plog)
    vlog = os.path.join(tmp, "vsock.log")
    vu = os.path.join(state, "vhost-user.sock")
    bridge = procs.start([os.path.join(BUILD, "bin", "sandbox-vsock"),
                          "--socket", vu, "--dir", state,
                          "--listen", os.path.join(state, "control.sock")], vlog)
    wait_for(lambda: os.path.exists(vu), 10, "sandbox-vsock", bridge, vlog)
    flog = os.path.join(tmp, "virtiofsd.log")
    vfs_sock = os.path.join(tmp, "virtiofs.sock")
    vfsd = procs.start([VIRTIOFSD, "--socket-path=" + vfs_sock,
                        "-o", "source=" + wsv, "-o", "cache=auto",
                        "-o", "sandbox=namespace"], flog)
    wait_for(lambda: os.path.exists(vfs_sock), 10, "virtiofsd", vfsd, flog)

    script = os.path.join(ws9, ".bench.sh")
    with open(script, "w") as f:
        f.write(GUEST_SCRIPT.replace("@W9@", ws9).replace("@WV@", wsv)
                .replace("@PORT@", str(port)).replace("@BYTES@", str(DL_BYTES)))
    argv = [
        "qemu-system-x86_64", "-M",
        "microvm,acpi=on,rtc=on,pit=on,pic=on,memory-backend=mem",
        *ACCEL, "-m", MEM, "-smp", "1",
        "-object", "memory-backend-memfd,id=mem,size=%s,share=on" % MEM,
        "-global", "virtio-mmio.force-legacy=false",
        "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        "-serial", "stdio",
        "-kernel", os.path.join(GUEST, "vmlinux"),
        "-initrd", os.path.join(GUEST, "initramfs.cpio"),
        # The TSC options are for TCG only, as the launcher gives them:
        # under KVM they would misstate the guest's clock.
        "-append", "console=ttyS0 quiet panic=-1 cryptomgr.notests initcall_blacklist=jent_mod_init %ssandbox.workspace=%s "
        "sandbox.debug=script:%s" % (
            "tsc_early_khz=2000000 lpj=4000000 " if "tcg" in ACCEL else "",
            ws9, script),
        "-fsdev", "local,id=usr,path=/usr,security_model=none,readonly=on",
        "-device", "virtio-9p-device,fsdev=usr,mount_tag=hostusr",
        "-fsdev", "local,id=ws,path=%s,security_model=mapped-xattr" % ws9,
        "-device", "virtio-9p-device,fsdev=ws,mount_tag=workspace",
        "-chardev", "socket,id=vs,path=%s" % vu,
        "-device", "vhost-user-vsock-device,chardev=vs",
        "-chardev", "socket,id=vfs,path=%s" % vfs_sock,
        "-device", "vhost-user-fs-device,chardev=vfs,tag=wsvfs",
        # Outbound only to slirp's 10.0.2.2 (= host 127.0.0.1); no DNS
        # server, no IPv6, nothing forwarded in.
        "-netdev", "user,id=n0,ipv6=off,dns=10.0.2.3",
        "-device", "virtio-net-device,netdev=n0",
    ]
    clog = os.path.join(tmp, "console.log")
    t0 = time.monotonic()
    q = procs.start(argv, clog, cwd="/tmp")
    try:
        q.wait(BOOT_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchError("guest did not finish within %ds; console: %s" % (
            BOOT_TIMEOUT, open(clog, errors="replace").read()[-1500:]))
    secs = time.monotonic() - t0
    out = open(clog, errors="replace").read()
    if "BENCH-DONE" not in out:
        raise BenchError("guest script did not finish; console: " + out[-2000:])
    return out, secs


def parse(out):
    res = {}
    for m in re.finditer(r"^RESULT (\S+) (\d+) (\d+) ?(.*?)\r?$", out, re.M):
        res[m.group(1)] = {"us": int(m.group(2)), "rc": int(m.group(3)),
                           "out": m.group(4).strip()}
    return res


def fmt_ms(us):
    v = us / 1000.0
    return "%.0f" % v if v >= 100 else "%.1f" % v if v >= 10 else "%.2f" % v


def main():
    if os.geteuid() != 0:
        raise BenchError("needs root (virtiofsd in QEMU 7.2 only runs as root)")
    for f in ("vmlinux", "initramfs.cpio", "kernel-version"):
        if not os.path.isfile(os.path.join(GUEST, f)):
            raise BenchError("guest image missing (%s): run make guest" % f)
    for b in ("sandbox-proxy", "sandbox-vsock"):
        if not os.access(os.path.join(BUILD, "bin", b), os.X_OK):
            raise BenchError("%s/bin/%s missing: run make" % (BUILD, b))
    if not os.access(VIRTIOFSD, os.X_OK):
        raise BenchError("%s missing (qemu-system-common)" % VIRTIOFSD)
    os.makedirs(OUT, exist_ok=True)
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="sbx-vmbench-", dir="/tmp")
    os.chmod(tmp, 0o755)
    procs = Procs()
    srv = None
    try:
        log("tree: first %d files of %s" % (NFILES, TREE))
        files, size, tar = make_tree(tmp)
        ws9 = os.path.join(tmp, "ws9p")
        wsv = os.path.join(tmp, "wsvfs")
        wsh = os.path.join(tmp, "wshost")
        for ws in (ws9, wsv, wsh):
            make_workspace(ws, tar)
        shutil.copy(tar, os.path.join(ws9, "tree.tar"))
        module_closure(os.path.join(ws9, ".bench-mod"))
        log("host baseline")
        host = host_baseline(wsh, tar)

        port = free_port()
        srv = Server(("127.0.0.1", port), BlobHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        dls = []
        for _ in range(3):  # median of 3, like the host workload
            t0 = time.monotonic()
            p = subprocess.run(["curl", "--noproxy", "*", "-sS", "-o", "/dev/null",
                                "-w", "%{size_download}",
                                "http://127.0.0.1:%d/bytes/%d" % (port, DL_BYTES)],
                               capture_output=True, text=True, timeout=60)
            dls.append({"us": int((time.monotonic() - t0) * 1e6),
                        "rc": p.returncode, "out": p.stdout.strip()})
        host_dl = sorted(dls, key=lambda r: r["us"])[1]

        dns_port = free_port()
        dlog = os.path.join(tmp, "dnsmasq.log")
        procs.start(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                     "--no-resolv", "--no-hosts", "--no-poll",
                     "--listen-address=127.0.0.1", "--bind-interfaces",
                     "--port=%d" % dns_port, "--pid-file=", "--user=root",
                     "--group=root", "--local=/test/",
                     "--host-record=bench.test,127.0.0.1"], dlog)

        log("virtiofsd without root")
        unpriv = virtiofsd_unprivileged(tmp, wsv)
        log("booting the guest (TCG): 9p, virtiofs, vsock, user-net")
        out, secs = boot(tmp, procs, ws9, wsv, port, dns_port)
        res = parse(out)
        iso = {"9p": host_isolation(ws9), "virtiofs": host_isolation(wsv)}
        report(res, host, host_dl, iso, unpriv, len(files), size, secs,
               time.monotonic() - started, out)
    finally:
        if srv:
            srv.shutdown()
            srv.server_close()
        procs.kill_all()
        if os.environ.get("BENCH_KEEP"):
            log("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(res, host, host_dl, iso, unpriv, nfiles, size, boot_secs, total, out):
    failures = []
    rows = [("git status, first run (index refresh)", "git_first"),
            ("git status, cold (guest caches dropped)", "git_cold"),
            ("git status, warm", "git_warm"),
            ("find . | wc -l, cold", "find_cold"),
            ("tar -xf (unpack the tree)", "untar"),
            ("rm -rf (the unpacked tree)", "rm")]
    lines = []
    L = lines.append
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    L("VM path benchmark, %s, %s, %d CPUs, QEMU TCG, guest %s, 1 vCPU, %s"
      % (now, platform.node(), os.cpu_count(),
         open(os.path.join(GUEST, "kernel-version")).read().strip(), MEM))
    L("tree: %d files, %.1f MiB from %s, committed to git; host baseline with"
      " a warm page cache, median of 3 runs; guest: one run"
      % (nfiles, size / 1048576.0, TREE))
    L("")
    hdr = ("workspace workload (ms)", "host", "9p mapped-xattr", "virtiofs", "9p / virtiofs")
    table = []
    for title, key in rows:
        h = host.get(key)
        a = res.get("9p." + key)
        b = res.get("virtiofs." + key)
        for name, r in (("host", h), ("9p", a), ("virtiofs", b)):
            if not r or r["rc"] != 0:
                failures.append("%s %s: %s" % (name, key, r))
        def cell(r):
            if not r:
                return "-"
            s = fmt_ms(r["us"])
            if h and h["us"] and r is not h:
                s += " (%.1fx)" % (r["us"] / h["us"])
            return s + ("" if r["rc"] == 0 else " rc=%d" % r["rc"])
        ratio = "%.2fx" % (a["us"] / b["us"]) if a and b and b["us"] else "-"
        table.append((title, cell(h), cell(a), cell(b), ratio))
    widths = [max(len(str(r[i])) for r in table + [hdr]) for i in range(len(hdr))]
    def row(r):
        return "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    L(row(hdr))
    L("  ".join("-" * w for w in widths))
    for r in table:
        L(row(r))
    L("(Nx) = vs host; 9p / virtiofs > 1 means 9p is slower")
    L("")

    def mibs(r):
        if not r or r["rc"] != 0 or not r["us"]:
            return None
        try:
            n = int(r["out"].split()[0])
        except (ValueError, IndexError):
            return None
        if n != DL_BYTES:
            return None
        return n / 1048576.0 / (r["us"] / 1e6)
    d = mibs(host_dl)
    v = mibs(res.get("vsock.curl"))
    u = mibs(res.get("usernet.curl"))
    for name, x, r in (("host direct", d, host_dl), ("vsock", v, res.get("vsock.curl")),
                       ("user-net", u, res.get("usernet.curl"))):
        if x is None:
            failures.append("download %s: %s" % (name, r))
    L("guest -> host download, %d MiB over HTTP from 127.0.0.1 (curl -o /dev/null)"
      % (DL_BYTES >> 20))
    nh = ("path", "MiB/s", "seconds", "vs user-net")
    nt = []
    for name, x, r in (
            ("host curl, direct (baseline)", d, host_dl),
            ("guest: forwarder -> vsock -> sandbox-vsock -> sandbox-proxy", v,
             res.get("vsock.curl")),
            ("guest: QEMU -netdev user (slirp) + virtio-net", u,
             res.get("usernet.curl"))):
        nt.append((name, "%.1f" % x if x else "FAILED",
                   "%.2f" % (r["us"] / 1e6) if r else "-",
                   "%.2fx" % (x / u) if x and u else "-"))
    widths = [max(len(str(r[i])) for r in nt + [nh]) for i in range(len(nh))]
    L(row(nh))
    L("  ".join("-" * w for w in widths))
    for r in nt:
        L(row(r))
    L("")
    L("isolation (root in the guest tried setuid-root, mknod, chown 4242; "
      "what the host got):")
    for fs in ("9p", "virtiofs"):
        bad = violates(iso[fs])
        L("  %-9s %s -> %s" % (fs, "; ".join("%s: %s" % kv for kv in sorted(iso[fs].items())),
                               "VIOLATES: " + ", ".join(bad) if bad else "meets the rules"))
    L("  virtiofsd as an unprivileged user: " +
      "; ".join("sandbox=%s: %s" % kv for kv in sorted(unpriv.items())))
    L("")
    L("guest boot + script %.1f s; whole benchmark %.1f s" % (boot_secs, total))
    if failures:
        L("FAILED: " + "; ".join(str(f) for f in failures))
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(OUT, "vm.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "vm.json"), "w") as f:
        json.dump({"guest": res, "host": host, "host_download": host_dl,
                   "isolation": iso, "virtiofsd_unprivileged": unpriv,
                   "files": nfiles, "bytes": size, "boot_seconds": boot_secs,
                   "console_tail": out[-4000:]}, f, indent=1)
    if failures:
        raise BenchError("some measurements failed (see above and build/bench/vm.json)")


if __name__ == "__main__":
    try:
        main()
    except (BenchError, subprocess.SubprocessError, OSError) as e:
        print("bench-vm: error: %s" % e, file=sys.stderr)
        sys.exit(1)
