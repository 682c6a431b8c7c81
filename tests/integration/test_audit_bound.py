"""The audit log keeps up with a hostile guest without growing without
bound or losing a decision (issue 8 items 3 and 4):

- a name is on record before it leaves the host: pipelined queries on a
  stream the guest closes at once, with dnsmasq's query log as the oracle
  (every name that reached the upstream resolver has a record);
- a flood of 100,000 denied queries from one stream adds at most 5 MB and
  is on record with its count; malformed messages likewise; distinct
  names are all recorded, at a bounded rate;
- when the log cannot be written (a tiny full tmpfs) no DNS answer, no
  upstream query, no new connection and no new request on an open
  keep-alive connection goes out, with the upstreams' own view as the
  oracle; once space is back the proxy resumes by itself, on the same DNS
  stream, and the gap is on record."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

import sbxtest

BUILD = os.environ.get("SANDBOX_BUILD", "build")
AUDIT = os.path.join(BUILD, "bin", "sandbox-audit")
DNS_HEADER = b"SBXW\x01\x02\x00\x00" + bytes(20)


def wild_policy(env):
    ports = f"[{env.tls.port}, {env.http.port}]"
    return sbxtest.base_policy(
        env, extra_allow=f"  - host: \"*.wild.test\"\n    ports: {ports}\n")


def query(name, qid, qtype=1):
    q = bytearray(sbxtest.dns_question(name, qtype))
    q[0:2] = (qid & 0xFFFF).to_bytes(2, "big")
    return len(q).to_bytes(2, "big") + bytes(q)


class DnsStream:
    """A raw guest DNS stream; a thread collects answers as (id, rcode)."""

    def __init__(self, proxy):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(proxy.sock)
        self.s.sendall(DNS_HEADER)
        self.answers = []
        self.lock = threading.Lock()
        self.closed = False
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        buf = b""
        while True:
            try:
                d = self.s.recv(1 << 16)
            except OSError:
                d = b""
            if not d:
                self.closed = True
                return
            buf += d
            out = []
            while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
                n = int.from_bytes(buf[:2], "big")
                m, buf = buf[2:2 + n], buf[2 + n:]
                out.append((int.from_bytes(m[:2], "big"), m[3] & 0x0F))
            with self.lock:
                self.answers += out

    def count(self):
        with self.lock:
            return len(self.answers)

    def ids(self):
        with self.lock:
            return {i for i, _ in self.answers}

    def send(self, data):
        self.s.sendall(data)

    def close(self):
        try:
            # shutdown first: close() alone does not end the reader
            # thread's recv(), and the proxy would see no EOF
            self.s.shutdown(socket.SHUT_RDWR)
            self.s.close()
        except OSError:
            pass


def log_size(p):
    return sum(os.path.getsize(os.path.join(p.dir, f)) for f in os.listdir(p.dir)
               if f.startswith("audit.jsonl"))


def weight(r):
    return r.get("count", 1)


# --- item 3: on record before it leaves the host -----------------------------

def test_pipelined_then_closed_every_upstream_name_is_on_record(env, start_proxy):
    p = start_proxy(wild_policy(env))
    tag = uuid.uuid4().hex[:8]
    names = [f"x{i}-{tag}.wild.test" for i in range(40)]
    for i, n in enumerate(names):
        # an allowed name, a denied one behind it, then the guest is gone:
        # the pending answers cannot be written any more
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(p.sock)
            s.sendall(DNS_HEADER + query(n, 2 * i) + query("denied.test", 2 * i + 1))
            s.shutdown(socket.SHUT_RDWR)
    # The events: the proxy has closed all 40 streams (their close
    # records), so no stream can start a lookup any more; then dnsmasq has
    # logged every query that reached it before now.
    sbxtest.wait_until(lambda: len(p.find(event="close", proto="dns")) >= len(names),
                       20, what="every stream's close record")
    env.dns.sync()
    upstream = {n for n in env.dns.queried() if n.endswith(f"-{tag}.wild.test")}
    assert upstream, "no name reached the resolver: the test proves nothing"
    recorded = {r["host"] for r in p.find(event="dns", decision="allow")
                if r.get("host", "").endswith(f"-{tag}.wild.test")}
    missing = upstream - recorded
    assert not missing, f"names reached the upstream resolver unrecorded: {sorted(missing)}"


def test_connection_lookup_is_on_record_before_it_leaves(env, start_proxy):
    p = start_proxy(wild_policy(env))
    name = f"c-{uuid.uuid4().hex[:8]}.wild.test"
    # explicit proxy CONNECT: the proxy resolves the name itself, then the
    # client is gone before anything comes back
    with socket.create_connection(("127.0.0.1", p.http_port), timeout=5) as s:
        s.sendall(f"CONNECT {name}:{env.tls.port} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
        s.shutdown(socket.SHUT_RDWR)
    sbxtest.wait_until(lambda: name in env.dns.queried(), 5,
                       what="the proxy's lookup to reach dnsmasq")
    r = p.wait_record(event="resolve", host=name)
    assert r["decision"] == "allow" and r.get("conn"), r


def test_every_upstream_connection_is_on_record_before_its_first_packet(env, start_proxy):
    # A resolver whose answers live 300 s: the shared one's live 0 s (the
    # proxy keeps them 1 s), which a loaded machine can outlast between
    # the two tunnels below.
    from test_dns_cache import _dnsmasq
    port, _, _ = _dnsmasq(env, ttl=300)
    p = start_proxy(args=["--resolver", f"127.0.0.1:{port}"])
    url = f"https://allowed.test:{env.tls.port}/"
    for _ in range(2):  # the second uses the proxy's cached answer
        r = sbxtest.curl(env, "-x", p.http_proxy_url(), url)
        assert r.returncode == 0, r.stderr
    # an address literal, allowed by the cidr: rule
    r = sbxtest.curl(env, "-k", "-x", p.http_proxy_url(),
                     f"https://{sbxtest.UPSTREAM_IP}:{env.tls.port}/")
    assert r.returncode == 0, r.stderr
    sbxtest.wait_until(lambda: len(p.find(event="close", decision="allow")) >= 3, 5,
                       what="three closed connections")
    recs = p.audit()
    connects = [(i, r) for i, r in enumerate(recs)
                if r.get("event") == "connect" and r.get("addr")]
    assert len(connects) == 3, connects
    for i, c in connects:
        before = [r for r in recs[:i] if r.get("event") == "resolve" and
                  r.get("conn") == c["conn"]]
        assert before, f"connection {c['conn']} reached {c['addr']} with no record before"
    reasons = [r.get("reason") for r in recs if r.get("event") == "resolve"]
    assert None in reasons and "cached answer" in reasons and \
        "address, no lookup" in reasons, reasons


# --- item 4: bounded, and still every decision -------------------------------

def test_flood_of_denied_queries_is_bounded_and_counted(env, start_proxy):
    p = start_proxy()
    before = log_size(p)
    n = 100_000
    st = DnsStream(p)
    batch = b"".join(query("denied.test", i) for i in range(1000))
    t0 = time.monotonic()
    for _ in range(n // 1000):
        st.send(batch)
    sbxtest.wait_until(lambda: st.count() >= n, 120, interval=0.2,
                       what=f"{n} answers (got {st.count()})")
    took = time.monotonic() - t0
    assert all(rc == 3 for _, rc in st.answers), "a denied name was not NXDOMAIN"
    st.close()
    sbxtest.wait_until(lambda: p.find(event="close", proto="dns"), 10,
                       what="the stream's close record")
    recs = p.find(event="dns", host="denied.test")
    total = sum(weight(r) for r in recs)
    assert total == n, f"{total} of {n} denied queries on record"
    assert any(r.get("count", 0) > 1 for r in recs), recs[:3]
    # one first record, then one aggregate per second of flood. Not a
    # timing assertion in the sense of a speed bound: the proxy's own
    # clock paces the aggregates, and a slower (sanitizer) run only makes
    # `took` larger and the bound looser.
    assert len(recs) <= took + 3, f"{len(recs)} records for {took:.1f} s"

    added = log_size(p) - before
    assert added <= 5 * 1024 * 1024, f"the flood added {added} bytes"
    print(f"{n} denied queries in {took:.1f} s added {added} bytes in "
          f"{len(recs)} records")
    # sandbox-audit counts what the aggregates stand for
    r = subprocess.run([AUDIT, "summary", "--json", "--host", "denied.test",
                        p.audit_path], capture_output=True, timeout=60)
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert rows and rows[0]["deny"] == n, r.stdout
    r = subprocess.run([AUDIT, "verify", p.audit_path], capture_output=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_flood_of_malformed_messages_is_counted(env, start_proxy):
    p = start_proxy()
    st = DnsStream(p)
    n = 20_000
    bad = b"\x00\x05hello"  # five bytes: shorter than a DNS header
    st.send(bad * n + query("allowed.test", 7))
    sbxtest.wait_until(lambda: 7 in st.ids(), 60, what="the answer after the flood")
    st.close()
    sbxtest.wait_until(lambda: p.find(event="close", proto="dns"), 10,
                       what="the stream's close record")
    recs = [r for r in p.find(event="dns") if not r.get("host")]
    assert sum(weight(r) for r in recs) == n, recs
    assert len(recs) <= 20, f"{len(recs)} records for one repeated message"


def test_distinct_names_all_recorded_at_a_bounded_rate(env, start_proxy):
    p = start_proxy()
    st = DnsStream(p)
    n = 600
    names = [f"n{i}.nowhere.test" for i in range(n)]
    t0 = time.monotonic()
    st.send(b"".join(query(x, i) for i, x in enumerate(names)))
    sbxtest.wait_until(lambda: st.count() >= n, 30, what="every answer")
    took = time.monotonic() - t0
    st.close()
    # Each record was queued before its answer left; the writer thread
    # appends the last batch a moment later.
    sbxtest.wait_until(
        lambda: set(names) <= {r["host"] for r in p.find(event="dns")
                               if r.get("host")}, 10,
        what="every distinct denied name on record")
    # 200 written records per stream and second: 600 take two intervals.
    # A lower bound set by the proxy's rate limit: slowness cannot break
    # it, only a missing limit can.
    assert took >= 1.5, f"{n} distinct records written in {took:.2f} s"


def test_queries_waiting_for_the_budget_are_answered_after_eof(env, start_proxy):
    # a client that sends more than a second's budget and half-closes at
    # once still gets every answer, and every name is on record
    p = start_proxy()
    st = DnsStream(p)
    n = 500
    st.send(b"".join(query(f"e{i}.nowhere.test", i) for i in range(n)))
    st.s.shutdown(socket.SHUT_WR)
    sbxtest.wait_until(lambda: st.closed, 20, what="the proxy to close the stream")
    assert st.count() == n, f"{st.count()} of {n} answers before the close"
    # The stream's close record comes after all of its dns records (the
    # writer appends in queue order); the close the client saw does not
    # mean the writer has caught up.
    p.wait_record(event="close", proto="dns")
    hosts = {r["host"] for r in p.find(event="dns") if r.get("host")}
    assert {f"e{i}.nowhere.test" for i in range(n)} <= hosts


def test_many_streams_share_one_record_budget(env, start_proxy):
    # 20 streams x 200 distinct names: each stream within its own budget,
    # 4,000 records together, twice what --record-rate 2000 lets the proxy
    # write in a second
    p = start_proxy(args=["--record-rate", "2000"])
    streams = [DnsStream(p) for _ in range(20)]
    t0 = time.monotonic()
    for k, st in enumerate(streams):
        st.send(b"".join(query(f"s{k}-{i}.nowhere.test", i) for i in range(200)))
    sbxtest.wait_until(lambda: all(st.count() >= 200 for st in streams), 30,
                       what="every answer")
    took = time.monotonic() - t0
    for st in streams:
        st.close()
    # Every stream's close record comes after all of its dns records: the
    # answers were sent once the records were queued, not written.
    p.wait_count(len(streams), timeout=10, event="close", proto="dns")
    hosts = {r["host"] for r in p.find(event="dns") if r.get("host")}
    want = {f"s{k}-{i}.nowhere.test" for k in range(20) for i in range(200)}
    assert want <= hosts, f"{len(want - hosts)} names went unrecorded"
    # A lower bound set by the shared budget (see above): slowness cannot
    # break it, only a missing limit can.
    assert took >= 0.9, f"4,000 records written in {took:.2f} s"


# --- audit failure stops every decision path, and recovers -------------------

@pytest.fixture
def tiny_fs():
    # Tests take it before start_proxy, so that the proxy is stopped
    # before the unmount: a proxy still running retries its log once a
    # second and would create it again in the bare directory.
    d = tempfile.mkdtemp(prefix="audit-gap-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                       capture_output=True)
    if r.returncode != 0:
        os.rmdir(d)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.decode()}")
    yield d
    subprocess.run(["umount", "-l", d])
    os.rmdir(d)


def fill(path):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    for chunk in (4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * chunk)
        except OSError:
            pass
    os.close(fd)


def keepalive_get(s, port, path):
    s.sendall(f"GET http://allowed.test:{port}{path} HTTP/1.1\r\n"
              f"Host: allowed.test:{port}\r\n\r\n".encode())
    return sbxtest.read_http_response(s, timeout=5)


def test_unwritable_log_stops_everything_then_resumes(env, tiny_fs, start_proxy):
    log = os.path.join(tiny_fs, "audit.jsonl")
    ctl_sock = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
    # The default workers: the DNS stream, the keep-alive connections and
    # the refused ones may each be on another event loop. So no oracle
    # below leans on the order of one loop (see the gap query's).
    p = start_proxy(wild_policy(env), args=["--audit", log,
                                            "--control", f"unix:{ctl_sock}"])

    def ctl(line):
        r = sbxtest.run([os.path.join(env.build, "tools", "control_send"),
                         ctl_sock, line])
        return r.stdout.decode().strip()

    tag = uuid.uuid4().hex[:8]
    hport = env.http.port
    st = DnsStream(p)
    st.send(query("allowed.test", 1))
    sbxtest.wait_until(lambda: 1 in st.ids(), 5, what="the first answer")
    # keep-alive through the explicit proxy and through the transparent
    # listener (a guest connection to the synthetic address)
    ka = socket.create_connection(("127.0.0.1", p.http_port), timeout=5)
    status, _, _ = keepalive_get(ka, hport, f"/ka1-{tag}")
    assert status == 200
    synth = p.synth("allowed.test")
    fw = p.forwarder(f"{synth}:{hport}")
    tka = fw.connect()
    tka.sendall(f"GET /tka1-{tag} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode())
    assert sbxtest.read_http_response(tka, timeout=5)[0] == 200

    filler = os.path.join(tiny_fs, "filler")
    fill(filler)
    # distinct denied names, each a record, until a write fails (tmpfs
    # pages give a few records of slack)
    qid = 100
    for _ in range(400):
        if "audit log write failed" in p.stderr():
            break
        st.send(query(f"f{qid}-{tag}.nowhere.test", qid))
        qid += 1
        time.sleep(0.01)
    sbxtest.wait_until(lambda: "audit log write failed" in p.stderr(), 10,
                       what="the proxy to notice the full log")
    assert p.alive()

    # the DNS stream that stays open: no answer, nothing upstream. Only
    # the gap query's own answer counts: answers to the queries before it
    # that were decided before the failure may still be on their way
    # (docs/audit-log.md: the batch that fails and what is queued behind
    # it had already taken effect).
    gap_name = f"gap-{tag}.wild.test"
    st.send(query(gap_name, 9))
    # a new connection: refused, on either listener
    with pytest.raises(AssertionError):
        p.dns("allowed.test", timeout=2)
    with socket.create_connection(("127.0.0.1", p.http_port), timeout=5) as s:
        assert keepalive_get(s, hport, f"/new-{tag}")[0] is None
    # a new request on the open keep-alive connection: not forwarded
    status, _, _ = keepalive_get(ka, hport, f"/ka2-{tag}")
    assert status is None, "a request on an open connection was answered"
    ka.close()
    tka.sendall(f"GET /tka2-{tag} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode())
    assert sbxtest.read_http_response(tka, timeout=5)[0] is None, \
        "a request on an open transparent connection was answered"
    tka.close()
    fw.close()
    # a control change is a decision too; cutting egress only narrows
    assert ctl(f"allow reload.test:{hport}").startswith("error audit log unwritable")
    assert ctl("status").startswith("ok egress=open rules=0")
    p.proc.send_signal(signal.SIGHUP)  # a reload is a policy change too
    sbxtest.wait_until(lambda: "reload refused" in p.stderr(), 5,
                       what="the reload to be refused")
    # What is checked is an absence: no answer and no upstream query for
    # gap_name while the log was full. Here, after the refusals above and
    # dnsmasq.sync(), it is only seen not to have happened yet: the DNS
    # stream may be on a loop that none of those events went through.
    # What bounds the whole outage comes after the log is back: gap_name's
    # record comes after the gap record, so it was decided once the log
    # was back (while it is full the queue takes no record but the gap's,
    # so a decision taken then would have no record or come first), and
    # a decision whose record is not taken is not acted on.
    assert p.alive()
    env.dns.sync()
    assert 9 not in st.ids(), "a DNS answer went out while the log was full"
    assert gap_name not in env.dns.queried(), "a name went upstream unrecorded"
    paths = [r["path"] for r in env.http.requests.snapshot()]
    assert f"/ka1-{tag}" in paths and f"/ka2-{tag}" not in paths, paths
    assert f"/tka1-{tag}" in paths and f"/tka2-{tag}" not in paths, paths
    assert f"/new-{tag}" not in paths, paths
    assert not st.closed, "the DNS stream was closed"

    # space again: the proxy resumes by itself and records the gap
    assert 9 not in st.ids(), "a DNS answer went out while the log was full"
    os.unlink(filler)
    sbxtest.wait_until(lambda: "writable again" in p.stderr(), 10,
                       what="the proxy to resume")
    sbxtest.wait_until(lambda: 9 in st.ids(), 10,
                       what="the answer on the stream kept open")
    sbxtest.wait_until(lambda: gap_name in env.dns.queried(), 5,
                       what=f"{gap_name} in dnsmasq's log")

    def log_records():
        return [json.loads(l) for l in open(log, "rb") if l.endswith(b"}\n")]
    # gap_name's record was queued before its answer went out, and is
    # written a moment later
    sbxtest.wait_until(lambda: any(r.get("host") == gap_name for r in log_records()),
                       5, what=f"{gap_name}'s record")
    recs = log_records()
    gap = [i for i, r in enumerate(recs) if r.get("event") == "log" and
           "could not be written" in r.get("reason", "")]
    assert len(gap) == 1 and recs[gap[0]]["duration_ms"] > 0, gap
    assert recs[gap[0]].get("first") and recs[gap[0]].get("last"), recs[gap[0]]
    named = [i for i, r in enumerate(recs) if r.get("host") == gap_name]
    assert named, "the name sent after the gap has no record"
    assert min(named) > gap[0], "the name sent after the gap was decided during it"
    # a new connection and a control change work again
    assert p.dns("allowed.test")[0] == "NOERROR"
    assert ctl(f"allow reload.test:{hport}").startswith("ok"), ctl("status")
    st.close()
    r = subprocess.run([AUDIT, "verify", log], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_control_change_whose_record_fails_is_undone(env, tiny_fs, start_proxy):
    # The log fills up under a control change itself: the write of its
    # record is the first to fail, so the widening must not stay.
    log = os.path.join(tiny_fs, "audit.jsonl")
    ctl_sock = os.path.join(env.workdir, f"ctl-{uuid.uuid4().hex[:8]}.sock")
    p = start_proxy(args=["--audit", log, "--control", f"unix:{ctl_sock}"])

    def ctl(line):
        r = sbxtest.run([os.path.join(env.build, "tools", "control_send"),
                         ctl_sock, line])
        return r.stdout.decode().strip()

    filler = os.path.join(tiny_fs, "filler")
    fill(filler)
    applied, refused = [], None
    for i in range(400):
        spec = f"r{i}.test:{env.http.port}"
        reply = ctl(f"allow {spec}")
        if reply.startswith("error"):
            refused = spec
            break
        applied.append(spec)
    assert refused, "the log never filled up"
    assert "audit log write failed" in p.stderr()
    os.unlink(filler)
    sbxtest.wait_until(lambda: "writable again" in p.stderr(), 10,
                       what="the proxy to resume")
    status = ctl("status")
    assert refused not in status, f"an unrecorded allow stayed in force: {status}"
    assert all(a in status for a in applied), status
    recs = [json.loads(l) for l in open(log, "rb") if l.endswith(b"}\n")]
    said = [r["reason"] for r in recs if r.get("event") == "policy"]
    assert all(any(a in x for x in said) for a in applied), said
    assert not any(refused in x for x in said), said
