"""The test CA and server certificate, made with the openssl CLI."""

import os

from .names import CERT_NAMES, UPSTREAM_IP
from .procs import HarnessError, run


def make_pki(d):
    """A test CA and one server certificate whose SAN lists every test name
    and 127.0.0.2, made with the openssl CLI."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "srv.ext")

    def ossl(*args):
        r = run(["openssl", *args], timeout=30)
        if r.returncode:
            raise HarnessError(f"openssl {' '.join(args)}: {r.stderr.decode()}")

    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=sandbox-proxy integration test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=allowed.test")
    sans = ",".join([f"DNS:{n}" for n in CERT_NAMES] + [f"IP:{UPSTREAM_IP}"])
    with open(ext, "w") as f:
        f.write(f"subjectAltName={sans}\n"
                "basicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
         "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
    return {"ca": ca, "cert": crt, "key": key}
