"""The proxy's side of the audit log: the chain it writes verifies (also
with --strict after a clean exit), size rotation keeps every record and
the chain while a follower reads along, a restart continues the chain, and
a full disk makes the proxy refuse new connections and say so."""

import json
import os
import select
import subprocess
import tempfile
import time

import pytest

import sbxtest

BUILD = os.environ.get("SANDBOX_BUILD", "build")
AUDIT = os.path.join(BUILD, "bin", "sandbox-audit")


def audit(*args, timeout=60):
    return subprocess.run([AUDIT, *args], capture_output=True, timeout=timeout)


def records(paths):
    out = []
    for p in paths:
        out += [json.loads(l) for l in open(p, "rb")]
    return out


def test_rotation_keeps_every_record_and_the_chain(env, start_proxy):
    p = start_proxy(args=["--audit-max-bytes", "8192", "--audit-keep", "100"])
    follower = subprocess.Popen([AUDIT, "follow", "--json", "--from-start",
                                 "--interval", "0.05", "--host", "allowed.test",
                                 p.audit_path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    early = b""
    try:
        n = 60
        for _ in range(n):
            p.dns("allowed.test")
        p.wait_record(event="dns", host="allowed.test")
        # Read along until the follower printed all n (the event), not a
        # fixed wait; more than n would show up in the check below.
        deadline = time.monotonic() + 20
        while early.count(b"\n") < n and time.monotonic() < deadline:
            r, _, _ = select.select([follower.stdout], [], [], 0.2)
            if r:
                d = os.read(follower.stdout.fileno(), 65536)
                if not d:
                    break
                early += d
    finally:
        follower.terminate()
        fout, ferr = follower.communicate(timeout=10)
    fout = early + fout
    # SIGTERM is a clean exit (0): the log ends in its "closed" record.
    assert p.stop() == 0, p.stderr()
    rotated = sorted((f for f in os.listdir(p.dir) if f.startswith("audit.jsonl.")),
                     key=lambda f: -int(f.rsplit(".", 1)[1]))
    assert len(rotated) >= 2, os.listdir(p.dir)
    paths = [os.path.join(p.dir, f) for f in rotated] + [p.audit_path]
    for f in paths:
        assert os.path.getsize(f) <= 8192, f
        assert open(f, "rb").read().endswith(b"\n")
    recs = records(paths)
    dns = [r for r in recs if r.get("event") == "dns" and r.get("host") == "allowed.test"]
    assert len(dns) == n
    assert recs[-1]["event"] == "log" and recs[-1]["reason"] == "closed"
    v = audit("verify", "--strict", "--json", p.audit_path)
    j = json.loads(v.stdout)
    assert v.returncode == 0 and j["intact"] and j["files"] == len(paths), v.stdout
    assert j["records"] == len(recs)
    # the follower saw each of them once, across the rotations
    seen = [json.loads(l) for l in fout.splitlines()]
    assert len([r for r in seen if r.get("event") == "dns"]) == n, ferr


def test_restart_continues_the_chain(env, start_proxy):
    p = start_proxy()
    p.dns("allowed.test")
    p.wait_record(event="dns")
    p.stop()
    q = sbxtest.Proxy(env, p.name, [sbxtest.base_policy(env)])
    try:
        q.dns("denied.test")
        q.wait_record(event="dns", host="denied.test")
    finally:
        q.stop()
    r = audit("verify", "--strict", p.audit_path)
    assert r.returncode == 0, r.stdout + r.stderr
    closes = [x for x in records([p.audit_path]) if x.get("event") == "log"]
    assert len(closes) == 2


@pytest.fixture
def tiny_fs():
    # Tests take it before start_proxy, so that the proxy is stopped
    # before the unmount: a proxy still running retries its log once a
    # second and would create it again in the bare directory.
    d = tempfile.mkdtemp(prefix="audit-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode()}")
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def test_full_disk_fails_closed(env, tiny_fs, start_proxy):
    log = os.path.join(tiny_fs, "audit.jsonl")
    p = start_proxy(args=["--audit", log])  # the last --audit wins
    p.dns("allowed.test")
    # the answer comes once the record is queued; the writer thread
    # appends it a moment later
    sbxtest.wait_until(lambda: b'"host":"allowed.test"' in open(log, "rb").read(),
                       5, what="the query's record in the log")
    # fill the file system to the last byte
    fd = os.open(os.path.join(tiny_fs, "filler"), os.O_WRONLY | os.O_CREAT)
    for chunk in (4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)
    # tmpfs allocates whole pages: the log's last page may still take a
    # few records before a write fails.
    for _ in range(60):
        if "refusing new connections" in p.stderr():
            break
        try:
            p.dns("allowed.test", timeout=2)
        except AssertionError:
            pass
    sbxtest.wait_until(lambda: "refusing new connections" in p.stderr(), 10,
                       what="the proxy to say it refuses connections")
    assert "audit log write failed" in p.stderr()
    assert p.alive()
    # a new connection is refused: no DNS answer comes back
    with pytest.raises(AssertionError):
        p.dns("allowed.test", timeout=2)
    # what was written before stays a verifiable chain
    r = audit("verify", log)
    assert r.returncode == 0, r.stdout + r.stderr
