#!/usr/bin/python3
"""Quick variant of `make bench-vm` for iterating on the vsock path: one TCG
boot that only runs the guest -> host download, over vsock + sandbox-proxy
and over QEMU user networking, BENCH_DL_ROUNDS times each (default 2).
Same QEMU command line and guest setup as tests/bench/vm_bench.py (whose
helpers it reuses). Prints MiB/s per path and the bridge's CPU time
(utime/stime from /proc) so per-byte costs can be compared.

  SANDBOX_BUILD=build SANDBOX_SRC=. BENCH_VM_BYTES=$((128<<20)) \
      /usr/bin/python3 tests/bench/vsock_dl.py

Needs root for the same reason (virtiofsd).

BENCH_ACCEL=tcg (default), kvm or both. `make bench-vm` runs it with
`both`: the TCG boot always, and the same boot under KVM (`-accel kvm -cpu
host`) where a probe shows KVM runs a guest here; otherwise one line says
why the KVM figures are missing. Output also in build/bench/vsock.txt.
BENCH_TCG_CPU overrides the TCG CPU model (default the launcher's).
"""
import os
import re
import subprocess
import shutil
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vm_bench as vb  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_DL_ROUNDS", "2"))
ACCEL = os.environ.get("BENCH_ACCEL", "tcg")
# The launcher's CPU models (launcher/qemu_cmd.c): no ERMS/FSRM under TCG.
# BENCH_TCG_CPU=max gives the model before (rep movsb byte by byte).
ACCELS = {"tcg": ["-accel", "tcg", "-cpu",
                  os.environ.get("BENCH_TCG_CPU", "max,erms=off,fsrm=off")],
          "kvm": ["-accel", "kvm", "-cpu", "host"]}

SCRIPT = r"""
W9=@W9@
PORT=@PORT@
BYTES=@BYTES@
export HOME=/tmp PATH=/usr/sbin:/usr/bin:/sbin:/bin
snap() { awk '/^cpu /{printf "%d %d ", $2+$3+$4+$7+$8, $5+$6} /^ctxt/{printf "%d ", $2} /^intr/{printf "%d ", $2}' /proc/stat; }
t() {
  label=$1; shift
  a=$(snap)
  s=$(date +%s%N)
  timeout 150 "$@" >/tmp/out 2>/tmp/err; rc=$?
  e=$(date +%s%N)
  echo "GSTAT $label $a $(snap)"
  echo "RESULT $label $(( (e - s) / 1000 )) $rc $(head -c 200 /tmp/out | tr '\n' ' ')"
  [ $rc = 0 ] || echo "STDERR $label $(head -c 300 /tmp/err | tr '\n' ' ')"
}
# What a copy costs this CPU, by idiom (tests/bench/tcg_copy.c).
[ -x "$W9/.tcg_copy" ] && "$W9/.tcg_copy"
t vsock.dns getent hosts bench.test
while read -r m; do insmod "$W9/.bench-mod/$m" || echo "INSMOD FAILED $m"; done < "$W9/.bench-mod/order"
IF=
for i in /sys/class/net/*; do
  drv=$(basename "$(readlink "$i/device/driver" 2>/dev/null)" 2>/dev/null)
  [ "$drv" = virtio_net ] && IF=$(basename "$i")
done
# The capture rules stay: they redirect only what leaves through eth0 (the
# dummy), and the card is another interface, so the rounds can alternate
# and the machine's load falls on both paths alike.
ip link set "$IF" up && ip addr add 10.0.2.15/24 dev "$IF"
for r in $(seq 1 @ROUNDS@); do
  t vsock.curl$r curl --noproxy '*' -sS -o /dev/null -w '%{size_download}' http://bench.test:$PORT/bytes/$BYTES
  t usernet.curl$r curl --noproxy '*' -sS -o /dev/null -w '%{size_download}' http://10.0.2.2:$PORT/bytes/$BYTES
done
# Per connection: 20 small downloads each way; the page faults include
# curl's own, the same on both paths.
small() {
  a=$(awk '/^pgfault /{print $2}' /proc/vmstat); s=$(date +%s%N); f=0
  for i in $(seq 1 20); do
    timeout 60 curl --noproxy '*' -sS -o /dev/null "$2" || f=$((f + 1))
  done
  e=$(date +%s%N); b=$(awk '/^pgfault /{print $2}' /proc/vmstat)
  echo "SMALL $1 20 $(( (e - s) / 1000 )) $((b - a)) $f"
}
small vsock http://bench.test:$PORT/bytes/1024
small usernet http://10.0.2.2:$PORT/bytes/1024
echo STAT $(cat /proc/interrupts | grep -i virtio | tr -s ' ' | tr '\n' ';')
echo BENCH-DONE
"""


def cpu_secs(pid, reap):
    """CPU seconds of pid: from /proc while it runs, or from wait4's rusage
    once it exited (the bridge exits when QEMU does)."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        if f[0] != "Z" or not reap:
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return -1.0
    _, _, ru = os.wait4(pid, 0)
    return ru.ru_utime + ru.ru_stime


def kvm_problem():
    """None if QEMU can run a KVM guest here, else why not. The guest
    kernel alone, without an initramfs, panics at once; a panic on the
    console means KVM ran it (as tests/e2e/test_kvm_smoke.py probes)."""
    if not os.path.exists("/dev/kvm"):
        return "no /dev/kvm"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "/dev/kvm is not read-write for uid %d" % os.getuid()
    try:
        r = subprocess.run(
            ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host",
             "-M", "microvm", "-m", "256", "-nodefaults", "-no-user-config",
             "-display", "none", "-no-reboot", "-serial", "stdio",
             "-kernel", os.path.join(vb.GUEST, "vmlinux"),
             "-append", "console=ttyS0 panic=-1"],
            capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "a KVM guest did not reach its kernel panic within 120 s"
    out = (r.stdout + r.stderr).decode(errors="replace")
    if "Kernel panic" not in out:
        return "QEMU cannot run a KVM guest here: " + " ".join(
            out.strip().split())[-200:]
    return None


def run(accel):
    """One boot under accel; returns the report lines."""
    lines = []
    P = lines.append
    vb.ACCEL = ACCELS[accel]
    vb.GUEST_SCRIPT = SCRIPT.replace("@ROUNDS@", str(ROUNDS))
    tmp = tempfile.mkdtemp(prefix="sbx-vsockdl-", dir="/tmp")
    os.chmod(tmp, 0o755)
    procs = vb.Procs()
    srv = None
    try:
        ws9 = os.path.join(tmp, "ws9p")
        wsv = os.path.join(tmp, "wsvfs")
        os.makedirs(ws9)
        os.makedirs(wsv)
        vb.module_closure(os.path.join(ws9, ".bench-mod"))
        subprocess.run(["gcc", "-O2", "-static", "-o",
                        os.path.join(ws9, ".tcg_copy"),
                        os.path.join(vb.SRC, "tests", "bench", "tcg_copy.c")],
                       capture_output=True)
        port = vb.free_port()
        srv = vb.Server(("127.0.0.1", port), vb.BlobHandler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        dns_port = vb.free_port()
        procs.start(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                     "--no-resolv", "--no-hosts", "--no-poll",
                     "--listen-address=127.0.0.1", "--bind-interfaces",
                     "--port=%d" % dns_port, "--pid-file=", "--user=root",
                     "--group=root", "--local=/test/",
                     "--host-record=bench.test,127.0.0.1"],
                    os.path.join(tmp, "dnsmasq.log"))
        out, secs = vb.boot(tmp, procs, ws9, wsv, port, dns_port)
        bridge = procs.procs[2]  # dnsmasq, proxy, bridge, virtiofsd, qemu
        proxy = procs.procs[1]
        vb.time.sleep(0.5)  # the bridge exits once QEMU has gone
        bcpu = cpu_secs(bridge.pid, True)
        res = vb.parse(out)
        mib = vb.DL_BYTES / (1 << 20)
        for k in sorted(res):
            r = res[k]
            line = "%-16s rc=%d %8.2fs" % (k, r["rc"], r["us"] / 1e6)
            if ".curl" in k and r["rc"] == 0:
                line += " %7.1f MiB/s" % (mib / (r["us"] / 1e6))
            P(line)
        # Each path's rounds together: bytes over seconds, and the ratio.
        rate = {}
        for path in ("vsock", "usernet"):
            us = [r["us"] for k, r in res.items()
                  if k.startswith(path + ".curl") and r["rc"] == 0]
            if len(us) == ROUNDS:
                rate[path] = mib * ROUNDS / (sum(us) / 1e6)
        if len(rate) == 2:
            P("%s: vsock %.1f MiB/s, user-net %.1f MiB/s, ratio %.2fx" % (
                accel.upper(), rate["vsock"], rate["usernet"],
                rate["vsock"] / rate["usernet"]))
        else:
            P("%s: a download failed, no ratio" % accel.upper())
        # The guest's own view: busy share of its vCPU (at ~100% the guest
        # is the limit, below it the host side), context switches and
        # interrupts per MiB.
        for m in re.finditer(r"^GSTAT (\S+)((?:\s+\d+){8})\s*$", out, re.M):
            if ".curl" not in m.group(1):
                continue
            v = [int(x) for x in m.group(2).split()]
            busy, idle = v[4] - v[0], v[5] - v[1]
            P("%-16s guest busy %3.0f%%, %6.0f ctxt/MiB, %5.0f intr/MiB"
                  % (m.group(1), 100.0 * busy / max(1, busy + idle),
                     (v[6] - v[2]) / mib, (v[7] - v[3]) / mib))
        for m in re.finditer(r"^SMALL (\S+) (\d+) (\d+) (\d+) (\d+)",
                             out, re.M):
            n = int(m.group(2))
            P("small %-8s %d x 1 KiB: %6.0f ms and %5.0f page faults each%s"
              % (m.group(1), n, int(m.group(3)) / 1000.0 / n,
                 int(m.group(4)) / n,
                 ", %s FAILED" % m.group(5) if m.group(5) != "0" else ""))
        for m in re.finditer(r"^(COPY|STAT|STDERR) .*$", out, re.M):
            P(m.group(0))
        for line in open(os.path.join(tmp, "vsock.log"), errors="replace"):
            if "packets to guest" in line or "front-end gone" in line:
                P(line.rstrip())
        P("bridge cpu %.2fs, proxy cpu %.2fs, boot+run %.0fs" % (
            bcpu, cpu_secs(proxy.pid, False), secs))
    finally:
        if srv:
            srv.shutdown()
            srv.server_close()
        procs.kill_all()
        if os.environ.get("BENCH_KEEP"):
            P("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return lines


def main():
    accels = ["tcg", "kvm"] if ACCEL == "both" else [ACCEL]
    if any(a not in ACCELS for a in accels):
        raise vb.BenchError("BENCH_ACCEL must be tcg, kvm or both")
    start = vb.Procs.start

    def start_verbose(self, argv, log_path, **kw):
        # The bridge's counters (packets, interrupts, kicks) are logged
        # with --verbose when QEMU leaves.
        if argv[0].endswith("sandbox-vsock"):
            argv = argv + ["--verbose"]
        return start(self, argv, log_path, **kw)
    vb.Procs.start = start_verbose
    out = []
    for a in accels:
        if a == "kvm":
            why = kvm_problem()
            if why:
                out.append("KVM: skipped, %s" % why)
                print(out[-1], flush=True)
                continue
        lines = ["%s (%s): %d MiB x %d rounds each way, alternating" % (
            a.upper(), " ".join(ACCELS[a]), vb.DL_BYTES >> 20, ROUNDS)] + run(a)
        print("\n".join(lines), flush=True)
        out += lines
    if ACCEL == "both":
        os.makedirs(vb.OUT, exist_ok=True)
        with open(os.path.join(vb.OUT, "vsock.txt"), "w") as f:
            f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    try:
        main()
    except vb.BenchError as e:
        print("vsock_dl: " + str(e), file=sys.stderr)
        sys.exit(1)
