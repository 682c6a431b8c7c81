"""Fixtures for the sandbox-proxy integration tests.

Session-wide: a temp dir, a test CA and server certificate (openssl CLI),
dnsmasq as the upstream resolver, and upstream servers on 127.0.0.2 (a TLS
origin, a plain HTTP origin, openssl s_server, two banner servers). Each test
starts its own sandbox-proxy with its own policy through the `start_proxy`
factory; everything is killed at teardown.

Environment: SANDBOX_BUILD (binaries in bin/, helpers in tools/) and
SANDBOX_SRC (the repository), as `make integration` sets them.
"""

import os
import shutil
import ssl
import tempfile

import pytest

import sbxtest

SRC = os.environ.get("SANDBOX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")

# tool -> Debian package that provides it
REQUIRED_TOOLS = {"dnsmasq": "dnsmasq-base", "openssl": "openssl", "curl": "curl"}


class Env:
    pass


def _require_tools():
    missing = [f"{t} (apt-get install {pkg})" for t, pkg in REQUIRED_TOOLS.items()
               if shutil.which(t) is None and not os.path.exists(f"/usr/sbin/{t}")]
    if missing:
        pytest.fail("integration tests need: " + ", ".join(missing) +
                    "; `make test-deps` installs them", pytrace=False)


def _require_file(path, how):
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is missing: {how}", pytrace=False)


@pytest.fixture(scope="session")
def env():
    _require_tools()
    if shutil.which("dnsmasq") is None:
        os.environ["PATH"] += os.pathsep + "/usr/sbin"
    e = Env()
    e.src, e.build = SRC, BUILD
    e.proxy_bin = os.path.join(BUILD, "bin", "sandbox-proxy")
    e.wire_client = os.path.join(BUILD, "tools", "wire_client")
    _require_file(e.proxy_bin, "build it with `make` (or `make SAN=1 tests-build`)")
    _require_file(e.wire_client, "build it with `make tests-build`")
    # Short path: unix socket paths must fit in 108 bytes.
    e.workdir = tempfile.mkdtemp(prefix="sbxit-")
    e.procs = sbxtest.Procs()
    try:
        e.presets = os.path.join(e.workdir, "presets")
        os.makedirs(e.presets)
        with open(os.path.join(e.presets, "itpreset.yaml"), "w") as f:
            f.write("version: 1\nallow:\n  - host: preset.test\n    ports: [1]\n")
        e.pki = sbxtest.make_pki(os.path.join(e.workdir, "pki"))
        e.dns = sbxtest.Dnsmasq(e.procs, e.workdir)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(e.pki["cert"], e.pki["key"])
        e.tls = sbxtest.OriginServer(sbxtest.UPSTREAM_IP, ctx)
        e.http = sbxtest.OriginServer(sbxtest.UPSTREAM_IP)
        e.banner = sbxtest.BannerServer(sbxtest.UPSTREAM_IP)
        e.banner2 = sbxtest.BannerServer(sbxtest.UPSTREAM_IP)
        e.s_server = sbxtest.OpensslServer(e.procs, e.pki, e.workdir)
        # Rewrite the preset now that ports are known.
        with open(os.path.join(e.presets, "itpreset.yaml"), "w") as f:
            f.write("version: 1\n# integration-test preset\nallow:\n"
                    f"  - host: preset.test\n    ports: [{e.tls.port}]\n")
        yield e
    finally:
        e.procs.kill_all()
        for s in ("tls", "http"):
            srv = getattr(e, s, None)
            if srv:
                srv.shutdown()
                srv.server_close()
        for s in ("banner", "banner2"):
            if getattr(e, s, None):
                getattr(e, s).close()
        if os.environ.get("SBX_KEEP_WORKDIR"):
            print(f"\nintegration workdir kept: {e.workdir}")
        else:
            shutil.rmtree(e.workdir, ignore_errors=True)


@pytest.fixture
def start_proxy(env, request):
    """Factory: start_proxy(policy_text or [texts], args=[...],
    pass_fds=(...)) -> Proxy."""
    started = []
    counter = [0]

    def start(policies=None, args=(), check_ready=True, listen=None, pass_fds=()):
        if policies is None:
            policies = [sbxtest.base_policy(env)]
        elif isinstance(policies, str):
            policies = [policies]
        counter[0] += 1
        name = f"{request.node.name[:40]}-{counter[0]}"
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        p = sbxtest.Proxy(env, name, policies, args, check_ready=check_ready,
                          listen=listen, pass_fds=pass_fds)
        started.append(p)
        return p

    yield start

    reports = []
    for p in started:
        p.stop()
        rep = p.sanitizer_report()
        if rep:
            reports.append(f"sanitizer report from sandbox-proxy ({p.name}):\n{rep[-4000:]}")
    if reports:
        pytest.fail("\n".join(reports), pytrace=False)


@pytest.fixture
def proxy(start_proxy):
    """A proxy with the base policy."""
    return start_proxy()
