"""Bulk bytes both ways through one plain TCP tunnel, with half-close in
between: every byte arrives, in order, and the close record counts exactly
what moved. Exercises the relay's large reads (more than libevent's 4 KiB
per callback) and its write-through, for both directions."""

import hashlib
import socket
import threading

import sbxtest

UP = 24 * 1024 * 1024 + 7     # client -> server, odd size on purpose
DOWN = 40 * 1024 * 1024 + 13  # server -> client


def pattern(n, seed):
    block = hashlib.sha256(seed).digest() * 2048  # 64 KiB
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


def test_bulk_both_ways_with_half_close(env, start_proxy):
    up_data, down_data = pattern(UP, b"up"), pattern(DOWN, b"down")
    srv = socket.socket()
    srv.bind((sbxtest.UPSTREAM_IP, 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got_up = {}

    def serve():
        c, _ = srv.accept()
        with c:
            h, n = hashlib.sha256(), 0
            while True:  # until the client's half-close
                b = c.recv(1 << 16)
                if not b:
                    break
                h.update(b)
                n += len(b)
            got_up["n"], got_up["sha"] = n, h.hexdigest()
            c.sendall(down_data)
            c.shutdown(socket.SHUT_WR)
    th = threading.Thread(target=serve, daemon=True)
    th.start()

    p = start_proxy(sbxtest.base_policy(env, extra_allow=(
        f"  - host: allowed.test\n    ports: [{port}]\n"
        f"    protocols: [tcp]\n"  # opaque bytes, not TLS or HTTP
        f"  - cidr: 127.0.0.2/32\n    ports: [{port}]\n")))
    s = socket.create_connection(("127.0.0.1", p.http_port), timeout=30)
    with s:
        s.sendall(f"CONNECT allowed.test:{port} HTTP/1.1\r\n"
                  f"Host: allowed.test:{port}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        s.sendall(up_data)
        s.shutdown(socket.SHUT_WR)
        h, n = hashlib.sha256(), 0
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
    th.join(30)
    srv.close()
    assert got_up.get("n") == UP, got_up
    assert got_up["sha"] == hashlib.sha256(up_data).hexdigest()
    assert n == DOWN
    assert h.hexdigest() == hashlib.sha256(down_data).hexdigest()
    close = p.wait_record(event="close", host="allowed.test", port=port)
    assert close.get("bytes_up") == UP, close
    assert close.get("bytes_down") == DOWN, close
