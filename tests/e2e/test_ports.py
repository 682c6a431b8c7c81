"""Published ports end to end (TCG, one boot), as a non-root user:

- a named sandbox with `-p 127.0.0.1:HP:8000` and `-p HP2:8001`; in the
  guest one Python process serves 127.0.0.1:8000 and [::1]:8001 (the
  guest forwarder's v6 fallback) and records every request it gets;
- the host reads http://127.0.0.1:HP/ and http://localhost:HP/, and
  http://[::1]:HP2/ and http://127.0.0.1:HP2/ (no HOST_IP: both
  loopbacks); the guest server's own record is the oracle;
- `port NAME list|add|rm` on the running sandbox: a port added live
  answers, removed it refuses, a host port in use is refused with the
  reason, a published port with nothing behind it closes;
- the guest cannot use the inbound vsock port itself (vsock loopback to
  its own port 1081): nothing reaches its server that way;
- every connection is an "inbound" audit record (peer, host port, guest
  port, bytes, close reason);
- `-p` on a host port in use stops the launch before the guest boots.
"""
import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

import test_launch_basic as base

import sys
sys.path.insert(0, os.path.join(base.SRC, "tests", "integration"))
import sbxtest  # noqa: E402

GUEST = r"""
import http.server, json, socket, sys, threading

seen = []

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append([self.server.tag, self.path])
        body = ("%s %s\n" % (self.server.tag, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

class V6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6

s4 = http.server.ThreadingHTTPServer(("127.0.0.1", 8000), H); s4.tag = "guest-v4"
s6 = V6(("::1", 8001), H); s6.tag = "guest-v6"
for s in (s4, s6):
    threading.Thread(target=s.serve_forever, daemon=True).start()

# The guest itself tries the inbound port over vsock loopback, with a
# header naming port 8000: it must not get through.
try:
    v = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    v.settimeout(5)
    v.connect((1, 1081))
    v.sendall(b"SBXI\x01\x00\x1f\x40GET /from-guest-vsock HTTP/1.0\r\n\r\n")
    print("vsock-self:", v.recv(100), flush=True)
except OSError as e:
    print("vsock-self: refused", e, flush=True)

print("servers-ready", flush=True)
sys.stdin.read()
print("SEEN " + json.dumps(seen), flush=True)
"""


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def v6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def env():
    base.require()
    e = base.Env()
    yield e
    e.cleanup()


def test_launch_refuses_a_host_port_in_use(env):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    hp = busy.getsockname()[1]
    try:
        r = env.run(["-p", "127.0.0.1:%d:8000" % hp, "--", "true"], timeout=60)
    finally:
        busy.close()
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 125, err
    assert "cannot listen on 127.0.0.1:%d" % hp in err and "in use" in err, err
    assert "sandbox-proxy did not start" in err, err
    r = env.run(["-p", "localhost:8080:80", "--", "true"], timeout=60)
    assert r.returncode == 2 and b"--publish localhost:8080:80" in r.stderr, r.stderr


def test_published_ports(env):
    with open(os.path.join(env.ws, "srv.py"), "w") as f:
        f.write(GUEST)
    env.own(os.path.join(env.ws, "srv.py"))
    audit = os.path.join(env.root, "audit.jsonl")
    hp, hp2, hp3, hp4 = (sbxtest.free_port() for _ in range(4))
    p = env.popen(["--name", "web", "--audit", audit,
                   "-p", "127.0.0.1:%d:8000" % hp, "--publish", "%d:8001" % hp2,
                   "--", "python3", "srv.py"],
                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    try:
        out = ""
        deadline = time.monotonic() + base.TIMEOUT
        while "servers-ready" not in out:
            line = p.stdout.readline().decode(errors="replace")
            assert line, "guest ended early: %r %r" % (out, p.stderr.read())
            out += line
            assert time.monotonic() < deadline
        assert "vsock-self: b'SBXI" not in out  # nothing came back

        assert get("http://127.0.0.1:%d/a" % hp) == "guest-v4 /a\n"
        assert get("http://localhost:%d/b" % hp) == "guest-v4 /b\n"
        assert get("http://127.0.0.1:%d/c" % hp2) == "guest-v6 /c\n"
        six = v6_loopback()
        if six:
            assert get("http://[::1]:%d/d" % hp2) == "guest-v6 /d\n"
            # Published on 127.0.0.1 only: ::1 has nothing on that port.
            with pytest.raises(OSError):
                socket.create_connection(("::1", hp), timeout=10).close()

        r = env.run(["port", "web", "list"], timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.decode().strip() == \
            "ok ports=2: 127.0.0.1:%d:8000; %d:8001" % (hp, hp2)
        r = env.run(["port", "web", "add", "127.0.0.1:%d:8000" % hp3], timeout=60)
        assert r.returncode == 0, r.stderr
        assert get("http://127.0.0.1:%d/e" % hp3) == "guest-v4 /e\n"
        r = env.run(["port", "web", "rm", "127.0.0.1:%d:8000" % hp3], timeout=60)
        assert r.returncode == 0, r.stderr
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", hp3), timeout=10).close()
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            r = env.run(["port", "web", "add",
                         "127.0.0.1:%d:8000" % busy.getsockname()[1]], timeout=60)
        finally:
            busy.close()
        assert r.returncode == 1 and b"in use" in r.stderr, r.stderr
        # Published, but nothing listens on guest port 8009: closed.
        assert env.run(["port", "web", "add", "127.0.0.1:%d:8009" % hp4],
                       timeout=60).returncode == 0
        with socket.create_connection(("127.0.0.1", hp4), timeout=60) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                assert c.recv(100) == b""
            except ConnectionResetError:
                pass

        out, err = p.communicate(b"", timeout=base.TIMEOUT)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    seen = json.loads(out.decode().split("SEEN ", 1)[1])
    want = [["guest-v4", "/a"], ["guest-v4", "/b"], ["guest-v6", "/c"]]
    want += [["guest-v6", "/d"]] if six else []
    want += [["guest-v4", "/e"]]
    assert seen == want, seen  # the guest's own view; no /from-guest-vsock

    recs = [json.loads(l) for l in open(audit)]
    inbound = [r for r in recs if r.get("event") == "inbound"]
    by_port = {}
    for r in inbound:
        by_port.setdefault(r["host_port"], []).append(r)
    assert len(by_port[hp]) == 2 and all(r["port"] == 8000 for r in by_port[hp])
    for r in by_port[hp] + by_port[hp2] + by_port[hp3]:
        assert r["peer"].split(":")[0] in ("127.0.0.1", "[")  # v4 or [v6]
        assert r["bytes_down"] > 0 and r["bytes_up"] > 0, r
        assert r["decision"] == "allow" and r["reason"].startswith("closed by")
    assert {r["addr"] for r in by_port[hp2]} == ({"127.0.0.1", "::1"} if six
                                                else {"127.0.0.1"})
    (dead,) = by_port[hp4]
    assert dead["port"] == 8009 and dead["bytes_up"] == 0
    assert "nothing listening on guest port 8009" in dead["reason"], dead
    policy = [r.get("reason") for r in recs if r.get("event") == "policy"]
    assert "port published" in policy and "port unpublished" in policy
    assert env.run(["rm", "web"], timeout=60).returncode == 0
    assert base.leftovers() == []
