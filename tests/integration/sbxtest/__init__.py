"""Helpers for the sandbox-proxy integration and e2e tests: loopback servers,
the proxy process, clients and the audit log.

Everything here talks to loopback only (127.0.0.0/8). Every wait is bounded.

Modules, each with one job:
  names    the test names, UPSTREAM_IP, what dnsmasq answers
  procs    processes, ports, polling (wait_until), run, small file helpers
  pki      the test CA and server certificate (openssl CLI)
  dns      dnsmasq as the upstream resolver, raw DNS queries
  servers  recording upstream servers (HTTP/TLS origin, banner, s_server)
  proxy    one sandbox-proxy, its policy, its audit log, wire_client
  http     HTTP over raw sockets, curl, waiting for a peer to close
  tls      hand-made TLS first flights
  launcher sandbox-launch with a fake VM, the secrets/inspect launch helpers
  runs     an e2e run's workspace files, CHECK lines, audit log, console

Every name is re-exported here, so `import sbxtest` and
`from sbxtest import X` work as they did when this was one file; new code
may import from the modules too.
"""

from .names import CERT_NAMES, DNS_RECORDS, UPSTREAM_IP
from .procs import (HarnessError, Procs, ReadyPipe, free_port, line_of, run, run_text, sha256_file,
                    stop_process, vmrss_kb, wait_until)
from .pki import make_pki
from .dns import Dnsmasq, dns_question, udp_dns_query
from .servers import (BIG_SIZE, BannerServer, OpensslServer, OriginServer,
                      QuietServer, Recorder, _Handler, big_payload, recording_server)  # noqa: F401 (re-export)
from .proxy import SANITIZER_MARKERS, Forwarder, Proxy, base_policy, secrets_proxy
from .http import (curl, http_exchange, read_http_response, read_to_end,
                   split_responses, wait_closed)
from .tls import (ManualTLS, _hello_parts, add_extension,  # noqa: F401 (re-export)
                  client_hello, split_records)
from .runs import checks, copy_ca, finished, run_audit, run_console, ws_file

__all__ = [
    "CERT_NAMES", "DNS_RECORDS", "UPSTREAM_IP",
    "HarnessError", "Procs", "ReadyPipe", "free_port", "line_of", "run", "sha256_file",
    "stop_process", "vmrss_kb", "wait_until",
    "make_pki",
    "Dnsmasq", "dns_question", "udp_dns_query",
    "BIG_SIZE", "BannerServer", "OpensslServer", "OriginServer", "Recorder",
    "big_payload", "recording_server",
    "SANITIZER_MARKERS", "Forwarder", "Proxy", "base_policy", "secrets_proxy",
    "curl", "http_exchange", "read_http_response", "read_to_end",
    "split_responses", "wait_closed",
    "ManualTLS", "add_extension", "client_hello", "split_records",
    "checks", "copy_ca", "finished", "run_audit", "run_console", "ws_file",
]
