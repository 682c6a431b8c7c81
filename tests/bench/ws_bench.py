#!/usr/bin/python3
"""Part of `make bench-vm`: the workspace share through the real launcher,
as an ordinary user (sbxtest when run as root), one guest per transport.

In each guest, as the sandbox user, tests/bench/ws_files.sh untars 5,000
small files (50 folders of 100), finds them, cats 1,100 and removes them,
first in the guest's own tmpfs (the baseline, same boot), then in the
workspace. The virtiofs guest also times the read-only host /usr (9p):
`python3 -c pass` and a gcc of hello world, cold then warm.
Prints a table of milliseconds and workspace/tmpfs ratios; writes
build/bench/ws.txt and ws.json.

Knobs: BENCH_WS_ROUNDS (default 1): tmpfs and workspace passes alternate
that many times in each boot; the table then shows the medians, and each
ratio's median and spread (lowest-highest) over the rounds, a ratio being
taken within one round. BENCH_WS_FS (default "virtiofs,9p"): which
transports boot. BENCH_WS_USR=0 skips the host /usr probe.
SANDBOX_GUEST_DIR boots another guest dir (default build/guest).
"""
import io
import json
import os
import pwd
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile

SRC = os.environ.get("SANDBOX_SRC", os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))))
BUILD = os.environ.get("SANDBOX_BUILD", os.path.join(SRC, "build"))
LAUNCH = os.path.join(BUILD, "bin", "sandbox-launch")
# SANDBOX_GUEST_DIR: another guest (kernel + initramfs) to compare.
GUEST = os.environ.get("SANDBOX_GUEST_DIR", os.path.join(SRC, "build", "guest"))
OUT = os.path.join(SRC, "build", "bench")
USER = "sbxtest"
TIMEOUT = int(os.environ.get("BENCH_WS_TIMEOUT", "1800"))
ROUNDS = max(1, int(os.environ.get("BENCH_WS_ROUNDS", "1")))
FSES = [x for x in os.environ.get("BENCH_WS_FS", "virtiofs,9p").split(",") if x]
USR = os.environ.get("BENCH_WS_USR", "1") != "0"

USR_PROBE = r"""
ms() { echo $(( $(date +%s%N) / 1000000 )); }
printf 'int main(void){return 0;}\n' > /tmp/h.c
for pass in cold warm; do
  t=$(ms); python3 -c pass; echo "USR $pass python3 $(( $(ms) - t ))"
  t=$(ms); gcc -o /tmp/h /tmp/h.c; echo "USR $pass gcc $(( $(ms) - t ))"
done
"""


def make_tarball(path):
    with tarfile.open(path, "w") as t:
        for d in range(50):
            ti = tarfile.TarInfo("tree/d%02d" % d)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
            for f in range(100):
                data = (b"file %d %d\n" % (d, f)) * 20
                ti = tarfile.TarInfo("tree/d%02d/f%03d" % (d, f))
                ti.size, ti.mode = len(data), 0o644
                t.addfile(ti, io.BytesIO(data))


def main():
    root = tempfile.mkdtemp(prefix="sbx-wsbench-", dir="/tmp")
    os.chmod(root, 0o755)
    prefix, owner = [], None
    if os.geteuid() == 0:
        pw = pwd.getpwnam(USER)
        prefix, owner = ["runuser", "-u", USER, "--"], (pw.pw_uid, pw.pw_gid)
    results = {}
    try:
        for fs in FSES:
            if fs not in ("virtiofs", "9p"):
                raise SystemExit("ws_bench: BENCH_WS_FS: virtiofs and/or 9p")
            d = os.path.join(root, fs)
            ws, home, state, rt = (os.path.join(d, x) for x in
                                   ("ws", "home", "state", "run"))
            for x in (d, ws, home, state, rt):
                os.mkdir(x, 0o700)
            make_tarball(os.path.join(ws, "files.tar"))
            shutil.copy(os.path.join(SRC, "tests", "bench", "ws_files.sh"), ws)
            with open(os.path.join(ws, "usr.sh"), "w") as f:
                f.write(USR_PROBE)
            if owner:
                for dirpath, dirs, files in os.walk(d):
                    for n in [dirpath] + [os.path.join(dirpath, f) for f in files]:
                        os.chown(n, *owner)
            env = ["env", "HOME=" + home, "XDG_STATE_HOME=" + state,
                   "XDG_RUNTIME_DIR=" + rt, "PATH=/usr/local/bin:/usr/bin:/bin",
                   "SANDBOX_GUEST_DIR=" + GUEST,
                   "SANDBOX_WORKSPACE_FS=" + ("9p" if fs == "9p" else "auto")]
            cmd = "sh ws_files.sh files.tar %d" % ROUNDS + (
                "; sh usr.sh" if fs == "virtiofs" and USR else "")
            r = subprocess.run(prefix + env + [LAUNCH, "--boot-timeout", "900", "--timings",
                                         "--", "sh", "-c", cmd],
                               cwd=ws, capture_output=True, timeout=TIMEOUT)
            out = r.stdout.decode(errors="replace")
            if r.returncode != 0:
                sys.stderr.write(out + r.stderr.decode(errors="replace"))
                raise SystemExit("ws_bench: the %s run failed" % fs)
            if fs == "virtiofs" and b"workspace over 9p" in r.stderr:
                raise SystemExit("ws_bench: virtiofs fell back to 9p: " +
                                 r.stderr.decode(errors="replace"))
            err = r.stderr.decode(errors="replace")
            if "sandbox-launch: timings" in err:
                results.setdefault("timings", {})[fs] = \
                    err[err.index("sandbox-launch: timings"):]
            for place, op, ms in re.findall(r"^WS (\w+) (\w+) (\d+)", out, re.M):
                results.setdefault(fs, {}).setdefault(place, {}).setdefault(
                    op, []).append(int(ms))
            for p, what, ms in re.findall(r"^USR (\w+) (\w+) (\d+)", out, re.M):
                results.setdefault("usr", {})["%s %s" % (what, p)] = int(ms)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ws.json"), "w") as f:
        json.dump(results, f, indent=1)
    lines = ["workspace, 5,000 files (ms, median of %d round(s); ratio = "
             "workspace / guest tmpfs within a round: median [lowest-highest])"
             % ROUNDS,
             "%-8s" % "op" + "".join("%10s %10s %17s" % (fs, "tmpfs", "ratio")
                                     for fs in FSES)]
    for op in ("untar", "find", "cat", "rm"):
        row = "%-8s" % op
        for fs in FSES:
            w, t = results[fs]["workspace"][op], results[fs]["tmpfs"][op]
            rs = sorted(a / max(1, b) for a, b in zip(w, t))
            row += "%10d %10d %6.1fx" % (statistics.median(w),
                                         statistics.median(t),
                                         statistics.median(rs))
            row += (" [%.1f-%.1f]" % (rs[0], rs[-1])) if len(rs) > 1 else " " * 10
        lines.append(row)
    lines.append("host /usr over 9p (ms): " + ", ".join(
        "%s %d" % kv for kv in sorted(results.get("usr", {}).items())))
    for fs, t in sorted(results.get("timings", {}).items()):
        lines.append("boot timeline, %s run (sandbox-launch --timings):" % fs)
        lines.append(t.rstrip())
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(OUT, "ws.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
