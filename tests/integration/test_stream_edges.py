"""Edges of the byte streams: a ClientHello split across TLS records and
TCP segments, ECH, pipelined and fragmented DNS messages, the idle timeout,
and the TCP form of the transparent listener."""

import socket
import time
import uuid

import sbxtest
from sbxtest import ManualTLS, add_extension, split_records, wait_closed

DNS_HEADER = b"SBXW\x01\x02\x00\x00" + bytes(20)


def _nodelay(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def test_client_hello_split_across_records_and_segments(env, proxy):
    synth = proxy.synth("allowed.test")
    path = f"/frag-{uuid.uuid4().hex}"
    tls = ManualTLS(env.pki["ca"], "allowed.test")
    r1, r2 = split_records(tls.hello, 40)  # the SNI is in the second record
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw, fw.connect() as s:
        _nodelay(s)
        for piece in (r1[:3], r1[3:], r2[:20], r2[20:60], r2[60:]):
            s.sendall(piece)
            time.sleep(0.05)
        tls.finish(s)
        resp = tls.request(s, f"GET {path} HTTP/1.1\r\nHost: allowed.test\r\n"
                              "Connection: close\r\n\r\n".encode())
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    assert f"path={path}".encode() in resp
    c = proxy.wait_record(event="connect", host="allowed.test", decision="allow",
                          port=env.tls.port)
    assert c.get("sni") == "allowed.test", c


def test_ech_extension_denied(env, proxy):
    synth = proxy.synth("allowed.test")
    tls = ManualTLS(env.pki["ca"], "allowed.test")
    # encrypted_client_hello (0xfe0d), outer type 0 with a dummy config id
    # and payload: its mere presence must be refused.
    hello = add_extension(tls.hello, 0xFE0D, b"\x00\x00\x01\x00\x01\x07\x00\x00\x00\x04abcd")
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw, fw.connect() as s:
        s.sendall(hello)
        t = wait_closed(s, 5)
    assert t is not None, "a ClientHello with ECH was not refused"
    d = proxy.wait_record(decision="deny", host="allowed.test", port=env.tls.port)
    proxy.wait_record(event="close", port=env.tls.port)  # upstream closed
    env.tls.quiet(mark)
    assert len(env.tls.snis.snapshot()) == before, "the ECH ClientHello reached the server"
    assert "ech" in (d.get("reason") or "").lower(), d


def _query(name, qid):
    q = bytearray(sbxtest.dns_question(name, 1))
    q[0:2] = qid.to_bytes(2, "big")
    return len(q).to_bytes(2, "big") + bytes(q)


def _read_answers(s, n, timeout=5):
    s.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        d = s.recv(65536)
        assert d, f"DNS stream closed after {len(out)} of {n} answers"
        buf += d
        while len(buf) >= 2 and len(buf) >= 2 + int.from_bytes(buf[:2], "big"):
            m = buf[2:2 + int.from_bytes(buf[:2], "big")]
            buf = buf[2 + len(m):]
            out.append((int.from_bytes(m[:2], "big"), m[3] & 0x0F))
    return out


def test_dns_stream_pipelined_and_fragmented(env, proxy):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(proxy.sock)
        # Header and three queries in one write; then one query cut in the
        # middle of its length prefix and again in the middle of the name.
        s.sendall(DNS_HEADER + _query("allowed.test", 1) + _query("denied.test", 2) +
                  _query("other.test", 3))
        got = _read_answers(s, 3)
        q = _query("www.allowed.test", 4)
        for piece in (q[:1], q[1:9], q[9:]):
            s.sendall(piece)
            time.sleep(0.05)
        got += _read_answers(s, 1)
    assert sorted(got) == [(1, 0), (2, 3), (3, 0), (4, 0)], got
    proxy.wait_record(event="dns", host="www.allowed.test", decision="allow")


def test_idle_timeout_closes_quiet_tunnel(env, start_proxy):
    p = start_proxy(args=["--idle-timeout", "1"])
    synth = p.synth("allowed.test")
    tls = ManualTLS(env.pki["ca"], "allowed.test")
    with p.forwarder(f"{synth}:{env.tls.port}") as fw, fw.connect() as s:
        s.sendall(tls.hello)
        tls.finish(s)
        t = wait_closed(s, 6)  # nothing more is sent either way
    assert t is not None, "a silent tunnel outlived --idle-timeout 1 by 5 s"
    c = p.wait_record(event="connect", host="allowed.test", decision="allow")
    close = p.wait_record(event="close", conn=c.get("conn"))
    assert "idle" in (close.get("reason") or "").lower(), close


def test_transparent_listener_over_tcp(env, start_proxy):
    port = sbxtest.free_port()
    p = start_proxy(listen=f"tcp:127.0.0.1:{port}")
    assert f"listening on tcp:127.0.0.1:{port} (transparent)" in p.stderr(), p.stderr()
    r = sbxtest.run([env.wire_client, "dns", "--proxy", f"tcp:127.0.0.1:{port}",
                     "allowed.test"])
    assert r.returncode == 0, r.stderr.decode()
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "rcode NOERROR" and lines[1].startswith("A 198.1"), lines


def test_duplicate_sni_extension_denied(env, proxy):
    synth = proxy.synth("allowed.test")
    tls = ManualTLS(env.pki["ca"], "allowed.test")
    name = b"other.test"
    entry = b"\x00" + len(name).to_bytes(2, "big") + name
    sni = (len(entry)).to_bytes(2, "big") + entry
    hello = add_extension(tls.hello, 0x0000, sni)  # a second server_name
    before, mark = len(env.tls.snis.snapshot()), env.tls.mark()
    with proxy.forwarder(f"{synth}:{env.tls.port}") as fw, fw.connect() as s:
        s.sendall(hello)
        t = wait_closed(s, 5)
    assert t is not None, "a ClientHello with two server_name extensions was not refused"
    proxy.wait_record(decision="deny", host="allowed.test", port=env.tls.port)
    proxy.wait_record(event="close", port=env.tls.port)  # upstream closed
    env.tls.quiet(mark)
    assert len(env.tls.snis.snapshot()) == before
