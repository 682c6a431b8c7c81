"""A sandbox cannot erase its own audit history by flooding the log
(docs/audit-log.md, "Rotation"). Rotation deletes the oldest file; a guest
that makes many distinct records (each new denied name is one) would push
the start of its own run out of a rotated set. The rule: rotation never
deletes a file that holds a record of the run still going. When that is
the only way on, the proxy fails closed as on a write failure, the log
says why in its last record, stderr names the cap and the options that
raise it, and old files of earlier runs are deleted first.

A tiny cap (--audit-max-bytes 8192) keeps the flood short. The oracles:
the run's own first record is still in the kept files; after the cap no
DNS answer goes out and no name reaches the resolver (dnsmasq's log);
`sandbox-audit verify` accepts the kept set."""

import glob
import json
import os
import subprocess
import uuid

import pytest

import sbxtest
from test_audit_bound import DnsStream, query

BUILD = os.environ.get("SANDBOX_BUILD", "build")
AUDIT = os.path.join(BUILD, "bin", "sandbox-audit")
CAP = "audit log cap reached"


def records(log):
    """Every whole record of the rotated set, oldest file first."""
    files = sorted(glob.glob(log + ".*"), key=lambda f: -int(f.rsplit(".", 1)[1]))
    out = []
    for f in files + [log]:
        out += [json.loads(l) for l in open(f, "rb") if l.endswith(b"}\n")]
    return out


def flood(p, st, tag, limit=3000):
    """Distinct denied names, one record each, until the proxy says the
    cap is reached (or limit names were sent and answered)."""
    qid = 1
    while qid < limit and CAP not in p.stderr():
        st.send(b"".join(query(f"f{qid + i}-{tag}.nowhere.test", qid + i)
                         for i in range(50)))
        qid += 50
        sbxtest.wait_until(lambda: st.count() >= qid - 1 or CAP in p.stderr(),
                           10, what="the flood's answers")
    return qid


def test_a_flood_cannot_push_the_runs_first_record_out(env, start_proxy):
    p = start_proxy(args=["--audit-max-bytes", "8192", "--audit-keep", "2"])
    first = p.wait_record(event="policy", reason="loaded")
    tag = uuid.uuid4().hex[:8]
    st = DnsStream(p)
    flood(p, st, tag)
    sbxtest.wait_until(lambda: CAP in p.stderr(), 10,
                       what="the proxy to stop at the cap")
    err = p.stderr()
    assert "--audit-max-bytes" in err and "--audit-keep" in err, err
    assert p.alive()

    # Fail closed: a new name is neither answered nor sent upstream. Only
    # the answer to the name sent after the cap counts: answers to flood
    # queries decided before it (the batch that reached the cap and those
    # queued behind it, docs/audit-log.md) may still be on their way, or
    # not yet read by the stream's reader thread.
    gap_name = f"after-{tag}.allowed.test"
    st.send(query(gap_name, 60000))
    with pytest.raises(AssertionError):
        p.dns("allowed.test", timeout=2)  # a new stream: no answer
    env.dns.sync()
    assert 60000 not in st.ids(), "a DNS answer went out after the cap"
    assert gap_name not in env.dns.queried()

    recs = records(p.audit_path)
    assert recs[0]["hash"] == first["hash"], \
        "the run's first record was rotated away"
    cap = [r for r in recs if r.get("event") == "log" and
           CAP in r.get("reason", "")]
    assert len(cap) == 1 and "--audit-max-bytes" in cap[0]["reason"], cap
    # Bounded: three files of 8192 bytes, one batch past the cap at most.
    total = sum(os.path.getsize(f) for f in glob.glob(p.audit_path + "*"))
    assert total <= 3 * 8192 + 256 * 4096, total
    assert len(glob.glob(p.audit_path + ".*")) == 2
    st.close()
    p.stop()
    files = sorted(glob.glob(p.audit_path + ".*"), reverse=True) + [p.audit_path]
    r = subprocess.run([AUDIT, "verify", "--strict", *files],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_earlier_runs_files_go_first(env, start_proxy):
    # An earlier run fills the set with its files (it ends before its cap).
    args = ["--audit-max-bytes", "8192", "--audit-keep", "3"]
    p1 = start_proxy(args=args)
    tag = uuid.uuid4().hex[:8]
    st = DnsStream(p1)
    # Three rotations fill the set; a fourth would reach its own start.
    qid = 1
    while not os.path.exists(p1.audit_path + ".3"):
        st.send(query(f"o{qid}-{tag}.nowhere.test", qid))
        sbxtest.wait_until(lambda: st.count() >= qid, 10, what="an answer")
        qid += 1
    st.close()
    p1.stop()
    assert CAP not in p1.stderr()
    before = records(p1.audit_path)
    old = {r["hash"] for r in before}
    assert len(glob.glob(p1.audit_path + ".*")) == 3

    # The next run on the same log: it may delete those, never its own.
    loaded = len(p1.find(event="policy", reason="loaded"))
    p2 = sbxtest.Proxy(env, p1.name, [open(p1.policy).read()], args)
    try:
        sbxtest.wait_until(lambda: len(p2.find(event="policy",
                                               reason="loaded")) == loaded + 1,
                           5, what="the second run's first record")
        first = p2.find(event="policy", reason="loaded")[-1]
        st = DnsStream(p2)
        flood(p2, st, tag + "b")
        sbxtest.wait_until(lambda: CAP in p2.stderr(), 10,
                           what="the second run to stop at the cap")
        st.close()
        recs = records(p2.audit_path)
        hashes = [r["hash"] for r in recs]
        assert first["hash"] in hashes, \
            "the second run's first record was rotated away"
        i = hashes.index(first["hash"])
        # Before it, only what shared its first file with it survives.
        assert set(hashes[:i]) <= old and before[0]["hash"] not in hashes, \
            "the earlier run's oldest files were not deleted first"
        assert len(glob.glob(p2.audit_path + ".*")) == 3
    finally:
        p2.stop()
        assert p2.sanitizer_report() is None, p2.stderr()[-4000:]
    files = sorted(glob.glob(p2.audit_path + ".*"), reverse=True) + [p2.audit_path]
    r = subprocess.run([AUDIT, "verify", *files], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
