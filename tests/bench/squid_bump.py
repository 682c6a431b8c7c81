"""Squid 5 with `ssl_bump bump` on loopback, the reference the secrets
bench measures interception against (issue 12): the same job as
sandbox-proxy's intercepted tunnel -- terminate the client's TLS with a
certificate minted by a CA of its own, read the HTTP, open a new TLS
connection to the upstream and verify it against the test CA.

Debian's squid-openssl (mk/deps.sh test). Squid runs as nobody when we are
root (it needs no privilege); it resolves from a hosts file of its own and
is told loopback as its name server, so no lookup leaves the host."""
import os
import shutil
import socket
import subprocess
import time

CERTGEN = "/usr/lib/squid/security_file_certgen"


def available():
    """None when Squid with ssl-bump can run here, else why not."""
    if not shutil.which("squid"):
        return "squid not installed (apt-get install squid-openssl)"
    if not os.access(CERTGEN, os.X_OK):
        return f"{CERTGEN} missing (Squid without OpenSSL: install squid-openssl)"
    return None


def _unpriv(argv):
    if os.geteuid() == 0:
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + argv
    return argv


def _make_ca(d):
    key, cert = os.path.join(d, "squid-ca.key"), os.path.join(d, "squid-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=bench squid bump CA",
                    "-days", "2", "-keyout", key, "-out", cert,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True, timeout=30)
    return key, cert


def start(procs, d, hosts, upstream_ca, port, upstream_port, timeout=30):
    """Start Squid bumping every CONNECT on 127.0.0.1:port. hosts: name ->
    IP for its hosts file; upstream_ca: the CA it verifies upstreams with;
    it goes nowhere but those names on upstream_port (no open proxy on a
    shared machine, and loopback only).
    Returns (process, path of the CA clients must trust). d must be a
    fresh directory of the caller's, which nobody (Squid's user when we are
    root) can reach."""
    os.chmod(d, 0o755)
    key, ca = _make_ca(d)
    hosts_file = os.path.join(d, "hosts")
    with open(hosts_file, "w") as f:
        f.writelines(f"{ip} {name}\n" for name, ip in hosts.items())
    up_ca = os.path.join(d, "upstream-ca.pem")
    shutil.copyfile(upstream_ca, up_ca)
    run = os.path.join(d, "run")
    os.mkdir(run)
    ssl_db = os.path.join(run, "ssl_db")
    for f in (key, ca, hosts_file, up_ca):
        os.chmod(f, 0o644)
    os.chmod(run, 0o777)
    # The certificate helper's database is created up front, as its user.
    r = subprocess.run(_unpriv([CERTGEN, "-c", "-s", ssl_db, "-M", "16MB"]),
                       capture_output=True, timeout=30, cwd=run)
    if r.returncode:
        raise SystemExit(f"{CERTGEN} -c: {r.stderr.decode(errors='replace')}")
    cfg = os.path.join(d, "squid.conf")
    with open(cfg, "w") as f:
        f.write(f"""
http_port 127.0.0.1:{port} ssl-bump tls-cert={ca} tls-key={key} generate-host-certificates=on dynamic_cert_mem_cache_size=16MB
sslcrtd_program {CERTGEN} -s {ssl_db} -M 16MB
sslcrtd_children 2 startup=1 idle=1
tls_outgoing_options cafile={up_ca}
acl localnet src 127.0.0.0/8
acl bench_host dstdomain -n {" ".join(hosts)}
acl bench_port port {upstream_port}
http_access deny !bench_host
http_access deny !bench_port
http_access allow localnet
http_access deny all
ssl_bump bump all
hosts_file {hosts_file}
dns_nameservers 127.0.0.1
cache deny all
cache_mem 8 MB
pid_filename {run}/squid.pid
cache_log {run}/cache.log
access_log none
coredump_dir {run}
pinger_enable off
visible_hostname bench
shutdown_lifetime 1 seconds
read_timeout 10 minutes
""")
    os.chmod(cfg, 0o644)
    log = open(os.path.join(d, "squid.stderr"), "wb")
    p = procs.start(_unpriv(["squid", "-N", "-d", "1", "-f", cfg]),
                    stdout=log, stderr=log, cwd=run)
    # Squid has no readiness signal: the listening port is the event.
    deadline = time.monotonic() + timeout
    while True:
        if p.poll() is not None:
            raise SystemExit(f"squid exited with {p.returncode}:\n"
                             + open(log.name, errors="replace").read()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, ca
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("squid did not listen within %ds" % timeout)
            time.sleep(0.1)
