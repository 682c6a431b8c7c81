"""Named sandboxes end to end (TCG, 3 boots), run as a non-root user:

- sandbox "a" (plain command) and sandbox "b" (a stand-in agent from
  SANDBOX_AGENTS_DIR whose preset allows one loopback service) run at once;
- the agent preset is merged and enforced: the allowed port answers, another
  port gets the proxy's refusal;
- exec into "a" sees the file its main command wrote in $HOME;
- list --json shows both running with their audit counts;
- "b" cannot reach "a": its DNS query lands only in its own audit log, and
  vsock ports other than its own proxy's are refused;
- stop "a", run it again: $HOME survived (the writable layer);
- rm "a" discards the sandbox directory, the workspace stays.
"""
import http.server
import json
import os
import socket
import subprocess
import threading
import time

import pytest

import test_launch_basic as base

AGENT = """#!/bin/sh
echo "agent args: $*"
curl -s --noproxy '' -x http://127.0.0.1:3128 -o /dev/null -w 'ok=%{http_code}\\n' http://127.0.0.1:OKPORT/
curl -s --noproxy '' -x http://127.0.0.1:3128 -o /dev/null -w 'other=%{http_code}\\n' http://127.0.0.1:OTHERPORT/
echo agent-ready
exec sleep 300
"""


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *a):
        pass


def serve():
    s = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def wait_line(p, text, timeout=240):
    deadline = time.monotonic() + timeout
    got = b""
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        got += line
        if text.encode() in line:
            return got.decode(errors="replace")
    raise AssertionError("no %r in output: %r" % (text, got))


@pytest.fixture(scope="module")
def world():
    base.require()
    e = base.Env()
    ok_srv, other_srv = serve(), serve()
    agents = os.path.join(e.root, "agents")
    os.mkdir(agents)
    with open(os.path.join(agents, "standin.yaml"), "w") as f:
        f.write("command: [%s/agent.sh, --from-descriptor]\n"
                "env: [STANDIN_TOKEN]\npreset: ./standin-preset.yaml\n"
                "install:\n  how: it is a test\n" % e.ws)
    with open(os.path.join(agents, "standin-preset.yaml"), "w") as f:
        f.write("version: 1\nallow:\n  - cidr: 127.0.0.1/32\n"
                "    ports: [%d]\n" % ok_srv.server_port)
    with open(os.path.join(e.ws, "agent.sh"), "w") as f:
        f.write(AGENT.replace("OKPORT", str(ok_srv.server_port))
                .replace("OTHERPORT", str(other_srv.server_port)))
    os.chmod(os.path.join(e.ws, "agent.sh"), 0o755)
    for p in (agents, os.path.join(agents, "standin.yaml"),
              os.path.join(agents, "standin-preset.yaml"),
              os.path.join(e.ws, "agent.sh")):
        e.own(p)
    os.environ["SANDBOX_AGENTS_DIR"] = agents
    e.agents = agents
    yield e
    for name in ("a", "b"):
        e.run(["stop", name], timeout=60)
    ok_srv.shutdown()
    other_srv.shutdown()
    e.cleanup()


def argv(e, args):
    a = e.argv(args)
    i = a.index("env") + 1
    return a[:i] + ["SANDBOX_AGENTS_DIR=" + e.agents] + a[i:]


def test_lifecycle(world):
    e = world
    a = base.track(subprocess.Popen(
        argv(e, ["run", "--name", "a", "--", "sh", "-c",
                 "echo kept > $HOME/keep; echo a-ready; exec sleep 300"]),
        cwd=e.ws, stdin=subprocess.DEVNULL, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    b = base.track(subprocess.Popen(
        argv(e, ["--name", "b", "standin", "x1"]),
        cwd=e.ws, stdin=subprocess.DEVNULL, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        wait_line(a, "a-ready")
        bout = wait_line(b, "agent-ready")
        # the agent's descriptor, its arguments and its preset
        assert "agent args: --from-descriptor x1" in bout, bout
        assert "ok=200" in bout, bout
        assert "other=403" in bout, bout

        r = subprocess.run(argv(e, ["exec", "a", "--", "sh", "-c",
                                    "cat $HOME/keep; hostname"]),
                           cwd=e.ws, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [b"kept", b"a"], r.stdout

        r = subprocess.run(argv(e, ["exec", "a", "--", "sh", "-c", "exit 7"]),
                           cwd=e.ws, capture_output=True, timeout=60)
        assert r.returncode == 7

        # b cannot reach a: its lookups go to its own proxy only, and no
        # other vsock port on the host side answers.
        probe = ("import socket\n"
                 "for port in (1024, 1081, 2000, 3129):\n"
                 "    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
                 "    s.settimeout(3)\n"
                 "    try:\n"
                 "        s.connect((2, port)); print('open', port)\n"
                 "    except OSError as x:\n"
                 "        print('refused', port)\n")
        r = subprocess.run(argv(e, ["exec", "b", "--", "sh", "-c",
                                    "getent hosts marker-b.test; "
                                    "python3 -c \"$0\"", probe]),
                           cwd=e.ws, capture_output=True, timeout=60)
        out = r.stdout.decode()
        assert "open" not in out, out
        assert out.count("refused") == 4, (out, r.stderr)

        r = e.run(["list", "--json"])
        assert r.returncode == 0, r.stderr
        lst = {x["name"]: x for x in json.loads(r.stdout)}
        assert lst["a"]["state"] == "running" and lst["b"]["state"] == "running"
        assert lst["b"]["agent"] == "standin"
        assert lst["b"]["allowed"] >= 1 and lst["b"]["denied"] >= 1, lst["b"]
        assert any(p.endswith("standin-preset.yaml") for p in lst["b"]["policies"])
        assert lst["a"]["workspace"] == os.path.realpath(e.ws)
        with open(lst["a"]["audit"]) as f:
            assert "marker-b.test" not in f.read()
        with open(lst["b"]["audit"]) as f:
            assert "marker-b.test" in f.read()
        r = e.run(["list"])
        assert b"running" in r.stdout and b"standin" in r.stdout

        r = e.run(["rm", "a"])
        assert r.returncode != 0 and b"running" in r.stderr
        r = e.run(["stop", "a"], timeout=60)
        assert r.returncode == 0, r.stderr
        a.wait(timeout=30)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
    r = e.run(["stop", "b"], timeout=60)
    b.wait(timeout=30)

    lst = {x["name"]: x for x in json.loads(e.run(["list", "--json"]).stdout)}
    assert lst["a"]["state"] == "stopped" and lst["b"]["state"] == "stopped"

    # Second run of "a": the home directory came back from its layer.
    r = e.run(["run", "--name", "a", "--", "sh", "-c", "cat $HOME/keep"],
              stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"kept\n"

    d = os.path.join(e.state, "sandbox", "sandboxes", "a")
    assert os.path.exists(os.path.join(d, "upper.img"))
    r = e.run(["rm", "a"])
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(d)
    assert os.path.exists(os.path.join(e.ws, "agent.sh"))
    r = e.run(["prune", "--dry-run"])
    assert b"b: would be removed" in r.stdout
    assert base.leftovers(e.uid) == []


def test_agent_not_installed_says_how(world):
    e = world
    with open(os.path.join(e.agents, "missing.yaml"), "w") as f:
        f.write("command: [no-such-agent-cli]\npreset: ./standin-preset.yaml\n"
                "install:\n  npm: '@example/agent'\n"
                "  how: npm install -g @example/agent\n  image: agents\n")
    r = subprocess.run(argv(e, ["missing"]), cwd=e.ws, capture_output=True,
                       timeout=60)
    assert r.returncode == 127
    assert b"npm install -g @example/agent" in r.stderr, r.stderr
    assert b"--image agents" in r.stderr


def test_bad_descriptor_names_line_and_column(world):
    e = world
    with open(os.path.join(e.agents, "broken.yaml"), "w") as f:
        f.write("command: [x]\npreset: p\ncomand: y\n")
    r = subprocess.run(argv(e, ["broken"]), cwd=e.ws, capture_output=True,
                       timeout=60)
    assert r.returncode == 125
    assert b"broken.yaml:3:1:" in r.stderr, r.stderr


def test_help_for_each_subcommand(world):
    for sub in ("exec", "list", "stop", "rm", "prune", "reset", "policy",
                "port"):
        r = world.run([sub, "--help"])
        assert r.returncode == 0 and b"usage: sandbox-launch " + sub.encode() in r.stdout
