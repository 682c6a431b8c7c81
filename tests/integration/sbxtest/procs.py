"""Processes, ports, polling and small file helpers. Every wait is bounded."""

import hashlib
import os
import select
import signal
import socket
import subprocess
import time


class HarnessError(Exception):
    pass


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns a truthy value; raise after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port(host="127.0.0.1", udp_too=False):
    """A port free on host for TCP (and UDP when asked). There is a small
    race between closing the probe socket and the real bind; callers that
    can, retry."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        if udp_too:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((host, port))
            except OSError:
                t.close()
                u.close()
                continue
            u.close()
        t.close()
        return port
    raise HarnessError("no free port found")


def line_of(text, needle):
    """1-based line number of the first line of text containing needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise HarnessError(f"{needle!r} not in policy text")


class Procs:
    """Every process the tests start, so that teardown can kill them all."""

    def __init__(self):
        self.procs = []

    def start(self, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def kill_all(self):
        for p in self.procs:
            stop_process(p, timeout=2)
        self.procs.clear()


class ReadyPipe:
    """The daemons' readiness signal (common/ready_fd.c): a pipe whose
    write end the child gets as --ready-fd N and writes "ready" to once
    serving, then closes. Waiting on it is waiting on the event itself; a
    child that exits or fails first closes the pipe with nothing on it."""

    def __init__(self):
        self.r, self.w = os.pipe()

    def child_started(self):
        """Close the parent's copy of the write end, so EOF means the
        child's copy is gone too (call after the child has inherited it)."""
        if self.w >= 0:
            os.close(self.w)
            self.w = -1

    def wait(self, timeout):
        """True once "ready" arrived; False if the pipe was closed without
        it; raises AssertionError after timeout."""
        if self.r < 0:
            raise HarnessError("ReadyPipe.wait: already waited")
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.r], [], [], left)[0]:
                    raise AssertionError(f"no readiness line within {timeout}s")
                chunk = os.read(self.r, 64)
                if not chunk:
                    return data == b"ready\n"
                data += chunk
                if data == b"ready\n":
                    return True
                if not b"ready\n".startswith(data):
                    raise AssertionError(f"unexpected readiness line {data!r}")
        finally:
            self.close()

    def close(self):
        for fd in (self.r, self.w):
            if fd >= 0:
                os.close(fd)
        self.r = self.w = -1


def stop_process(p, sig=signal.SIGTERM, timeout=3.0):
    """Send sig, wait up to timeout, then SIGKILL. Returns the exit code."""
    if p.poll() is not None:
        return p.returncode
    try:
        p.send_signal(sig)
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(timeout=5)


def run(argv, timeout=15, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("capture_output", True)
    try:
        return subprocess.run(argv, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{argv[0]} did not finish within {timeout}s: "
                             f"{' '.join(map(str, argv))}") from e


def run_text(argv, timeout=60, **kw):
    """run(), then (exit status, stdout, stderr) as text."""
    r = run(argv, timeout=timeout, **kw)
    return (r.returncode, r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace"))


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise HarnessError(f"no VmRSS for pid {pid}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
