"""dnsmasq as the upstream resolver, and raw DNS queries over UDP."""

import os
import re
import socket
import struct
import time
import uuid

from .names import DNS_RECORDS
from .procs import HarnessError, free_port, stop_process, wait_until


class Dnsmasq:
    def __init__(self, procs, d):
        self.log = os.path.join(d, "dnsmasq.log")
        last_err = ""
        for _ in range(5):
            self.port = free_port(udp_too=True)
            argv = ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                    "--no-resolv", "--no-hosts", "--no-poll",
                    "--listen-address=127.0.0.1", "--bind-interfaces",
                    f"--port={self.port}", "--pid-file=", "--cache-size=0",
                    "--log-queries", f"--log-facility={self.log}",
                    "--local=/test/"]
            if os.geteuid() == 0:
                argv += ["--user=root", "--group=root"]
            argv += [f"--host-record={n},{a}" for n, a in DNS_RECORDS.items()]
            errf = os.path.join(d, "dnsmasq.stderr")
            with open(errf, "wb") as err:
                self.proc = procs.start(argv, stdout=err, stderr=err)
            if self._wait_ready():
                return
            stop_process(self.proc)
            last_err = open(errf).read()
        raise HarnessError(f"dnsmasq did not start: {last_err}")

    def _wait_ready(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if udp_dns_query(self.port, "allowed.test", timeout=0.3) is not None:
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def queried(self):
        """Names dnsmasq was asked about (any type), in order."""
        try:
            text = open(self.log, errors="replace").read()
        except FileNotFoundError:
            return []
        return re.findall(r"query\[\w+\] (\S+) from", text)

    def sync(self, timeout=10):
        """Wait until dnsmasq has logged every query that reached it before
        this call. The event: a query of our own, sent to the same UDP
        socket (read in arrival order) and answered, is in the log, and
        dnsmasq logs each query when it reads it. A test that checks what
        did NOT reach the resolver calls this instead of sleeping."""
        name = f"sync-{uuid.uuid4().hex[:12]}.test"
        wait_until(lambda: udp_dns_query(self.port, name, timeout=1) is not None,
                   timeout, what=f"dnsmasq to answer {name}")
        wait_until(lambda: name in self.queried(), timeout,
                   what=f"dnsmasq to log {name}")


def dns_question(name, qtype):
    q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def udp_dns_query(port, name, qtype=1, timeout=1.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(dns_question(name, qtype), ("127.0.0.1", port))
        return s.recv(4096)
    except socket.timeout:
        return None
    finally:
        s.close()
