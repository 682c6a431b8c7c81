"""One sandbox-proxy process, its policy files, its audit log, and the
wire_client tools that talk to it."""

import json
import os
import re
import select
import socket
import subprocess
import time

from .procs import HarnessError, ReadyPipe, free_port, line_of, run, stop_process, wait_until


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                     "runtime error:", "ERROR: UndefinedBehaviorSanitizer",
                     "WARNING: ThreadSanitizer")


def base_policy(env, extra_allow="", extra_deny="", mode="enforce", cidr=True):
    """The usual policy: the test names on the upstream servers' ports,
    loopback reachable through a cidr: rule. Lines are found again with
    Proxy.rule(needle)."""
    ports = f"[{env.tls.port}, {env.http.port}, {env.s_server.port}]"
    text = (f"version: 1\nmode: {mode}\nallow:\n"
            f"  - host: allowed.test\n    ports: {ports}\n"
            f"  - host: www.allowed.test\n    ports: {ports}\n"
            f"  - host: other.test\n    ports: {ports}\n")
    if cidr:
        # The banner servers speak first: opaque TCP (protocols: [tcp]).
        text += (f"  - cidr: 127.0.0.2/32\n    ports: [{env.tls.port}, "
                 f"{env.http.port}, {env.s_server.port}]\n"
                 f"  - cidr: 127.0.0.2/32\n    ports: [{env.banner.port}, "
                 f"{env.banner2.port}]\n    protocols: [tcp]\n")
    text += extra_allow
    text += f"deny:\n  - host: denied.test\n    ports: {ports}\n" + extra_deny
    return text


def secrets_proxy(env, start_proxy, policy, secrets, args=(), upstream_ca=True,
                  ca_out=None):
    """A proxy holding secrets (lines "VAR PLACEHOLDER VALUE HOST...")
    read from a pipe it inherits (--secrets-fd), its sandbox CA written to
    ca_out (a fresh path by default; p.ca), trusting the test CA for the
    upstreams unless upstream_ca is False."""
    r, w = os.pipe()
    os.write(w, secrets.encode())
    os.close(w)
    if ca_out is None:
        d = os.path.join(env.workdir, "ca-" + os.urandom(4).hex())
        os.makedirs(d)
        ca_out = os.path.join(d, "sandbox-ca.pem")
    argv = ["--secrets-fd", str(r), "--ca-out", ca_out]
    if upstream_ca:
        argv += ["--upstream-ca", env.pki["ca"]]
    try:
        p = start_proxy(policy, args=argv + list(args), pass_fds=(r,))
    finally:
        os.close(r)
    p.ca = ca_out
    return p


class Proxy:
    """One running sandbox-proxy with its own policy files, audit log and
    sockets."""

    def __init__(self, env, name, policies, args=(), check_ready=True, listen=None,
                 pass_fds=()):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.policy_paths = []
        for i, text in enumerate(policies):
            p = os.path.join(self.dir, f"policy{i}.yaml")
            with open(p, "w") as f:
                f.write(text)
            self.policy_paths.append(p)
        self.policy = self.policy_paths[0] if self.policy_paths else None
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        # A log a killed writer left may hold a torn fragment, ended with a
        # newline by the next writer (docs/audit-log.md, "A crash
        # mid-write"): not a record. Only a test that killed a proxy on
        # this log sets it.
        self.torn_ok = False
        self.sock = os.path.join(self.dir, "t.sock")
        self.http_port = free_port()
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.argv = [env.proxy_bin]
        for p in self.policy_paths:
            self.argv += ["--policy", p]
        self.argv += ["--presets", env.presets, "--audit", self.audit_path,
                      "--sandbox", name,
                      "--resolver", f"127.0.0.1:{env.dns.port}",
                      "--listen", listen or f"unix:{self.sock}",
                      "--http-proxy", f"tcp:127.0.0.1:{self.http_port}",
                      *args]
        # Readiness comes on its own pipe (--ready-fd); stderr stays a log
        # the tests read for messages and sanitizer reports.
        self.ready = ReadyPipe()
        self.argv += ["--ready-fd", str(self.ready.w)]
        # SBX_PROXY_WORKERS=N runs the suite with --workers N (the
        # default is the proxy's: one per CPU); a test's own wins.
        workers = os.environ.get("SBX_PROXY_WORKERS")
        if workers and "--workers" not in args:
            self.argv += ["--workers", workers]
        penv = dict(os.environ)
        # ASan keeps freed memory in a quarantine (256 MB by default) that
        # would hide whether the proxy's own buffering is bounded.
        asan = penv.get("ASAN_OPTIONS", "")
        penv["ASAN_OPTIONS"] = ":".join(filter(None, [
            asan, "quarantine_size_mb=8", "abort_on_error=0"]))
        with open(self.stderr_path, "wb") as err:
            try:
                self.proc = env.procs.start(self.argv, stdout=err, stderr=err, env=penv,
                                            pass_fds=(self.ready.w, *pass_fds))
            finally:
                self.ready.child_started()
        self.pid = self.proc.pid
        if check_ready:
            self.wait_ready()

    # stderr ---------------------------------------------------------------
    def stderr(self):
        try:
            return open(self.stderr_path, errors="replace").read()
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=10):
        try:
            ok = self.ready.wait(timeout)
        except AssertionError as e:
            raise AssertionError(f"sandbox-proxy: {e}; argv: {' '.join(self.argv)}"
                                 f"\nstderr:\n{self.stderr()}") from None
        if not ok:
            try:
                rc = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                rc = "nothing (still running)"
            raise AssertionError(
                f"sandbox-proxy closed --ready-fd without 'ready' and exited with "
                f"{rc}; argv: {' '.join(self.argv)}\nstderr:\n{self.stderr()}")
        text = self.stderr()
        for want in (f"listening on tcp:127.0.0.1:{self.http_port} (http-proxy)",):
            assert want in text, f"proxy stderr lacks {want!r}:\n{text}"
        assert "(transparent)" in text, f"proxy stderr lacks the transparent listener line:\n{text}"

    def alive(self):
        return self.proc.poll() is None

    def sanitizer_report(self):
        text = self.stderr()
        if any(m in text for m in SANITIZER_MARKERS):
            return text
        return None

    def stop(self, timeout=5):
        self.ready.close()
        return stop_process(self.proc, timeout=timeout)

    # audit ----------------------------------------------------------------
    def audit(self):
        """Every audit record so far, parsed. A line that is not a JSON
        object fails the test: the log must be valid JSON Lines."""
        try:
            data = open(self.audit_path, "rb").read()
        except FileNotFoundError:
            return []
        out = []
        lines = data.split(b"\n")
        # A record is written with one write(2); a trailing partial line
        # would be a bug, but give the writer a moment before calling it.
        if lines and lines[-1] != b"":
            time.sleep(0.05)
            data = open(self.audit_path, "rb").read()
            lines = data.split(b"\n")
            assert lines[-1] == b"", f"audit log ends in a partial line: {lines[-1][:200]!r}"
        for raw in lines[:-1]:
            try:
                rec = json.loads(raw)
            except ValueError:
                if self.torn_ok and not raw.endswith(b"}"):
                    continue
                raise AssertionError(f"audit line is not JSON: {raw[:300]!r}") from None
            assert isinstance(rec, dict), f"audit line is not an object: {raw[:300]!r}"
            out.append(rec)
        return out

    def find(self, **match):
        """Records where every given field equals the given value; a
        callable value is a predicate on the field."""
        res = []
        for r in self.audit():
            for k, v in match.items():
                have = r.get(k)
                if callable(v):
                    if not v(have):
                        break
                elif have != v:
                    break
            else:
                res.append(r)
        return res

    def wait_record(self, timeout=5, **match):
        try:
            return wait_until(lambda: self.find(**match), timeout,
                              what=f"audit record {match}")[0]
        except AssertionError:
            recs = "\n".join(json.dumps(r) for r in self.audit()[-15:])
            raise AssertionError(
                f"no audit record matching {match} within {timeout}s; last records:\n"
                f"{recs}") from None

    def wait_count(self, n, timeout=5, **match):
        """Exactly n records matching, once the writer has caught up.
        Records are queued where they are made and written by one thread
        (docs/audit-log.md), so a client can see its answer before the
        record is in the file: a count taken right after a client returns
        must wait for the writer, never read the file once."""
        try:
            recs = wait_until(lambda: (lambda r: r if len(r) >= n else None)(
                self.find(**match)), timeout, what=f"{n} audit records {match}")
        except AssertionError:
            raise AssertionError(
                f"{len(self.find(**match))} audit records matching {match} "
                f"within {timeout}s, expected {n}") from None
        assert len(recs) == n, f"{len(recs)} audit records matching {match}, expected {n}"
        return recs

    def rule(self, needle, idx=0):
        """"file:line" of the rule line containing needle in policy idx."""
        path = self.policy_paths[idx]
        return f"{path}:{line_of(open(path).read(), needle)}"

    # clients --------------------------------------------------------------
    def http_proxy_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    def wire(self, *args, timeout=15, **kw):
        return run([self.env.wire_client, args[0], "--proxy", f"unix:{self.sock}",
                    *args[1:]], timeout=timeout, **kw)

    def dns(self, name, qtype="A", timeout=5):
        """(rcode, [(type, value)...]) from one query over a DNS stream."""
        r = self.wire("dns", "--timeout", str(timeout), name, qtype,
                      timeout=timeout + 5)
        out = r.stdout.decode()
        if r.returncode != 0:
            raise AssertionError(f"wire_client dns {name} {qtype} failed "
                                 f"({r.returncode}): {r.stderr.decode()}{out}")
        lines = out.splitlines()
        assert lines and lines[0].startswith("rcode "), out
        answers = [tuple(l.split(" ", 1)) for l in lines[1:]]
        return lines[0].split()[1], answers

    def synth(self, name):
        rcode, ans = self.dns(name, "A")
        assert rcode == "NOERROR", f"A {name}: rcode {rcode}"
        a = [v for t, v in ans if t == "A"]
        assert len(a) == 1, f"A {name}: want one A record, got {ans}"
        return a[0]

    def forwarder(self, dest):
        return Forwarder(self, dest)


class Forwarder:
    """wire_client forward: a local port whose every connection becomes a
    wire stream claiming --dest."""

    def __init__(self, proxy, dest):
        self.proc = proxy.env.procs.start(
            [proxy.env.wire_client, "forward", "--proxy", f"unix:{proxy.sock}",
             "--listen", "127.0.0.1:0", "--dest", dest],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        r, _, _ = select.select([self.proc.stdout], [], [], 5)
        line = self.proc.stdout.readline().decode() if r else ""
        m = re.match(r"listening 127\.0\.0\.1:(\d+)", line)
        if not m:
            stop_process(self.proc)
            raise HarnessError(f"wire_client forward did not start: {line!r} "
                               f"{self.proc.stderr.read().decode()}")
        self.port = int(m.group(1))

    def connect(self, timeout=10):
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def close(self):
        stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
