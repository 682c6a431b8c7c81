"""The real sandbox-launch (with the real proxy and bridge) and a fake VM:
a stand-in kernel and initramfs the launcher only checks for, and a shell
script as QEMU. No guest boots; the tests look at what the launcher did up
to starting QEMU (its argv, its environment, the run directory)."""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import types

from .procs import run

# Fake QEMU bodies (shell, after "#!/bin/sh"). {marker} is a file the
# script writes, so a test can tell whether QEMU was reached.
QEMU_EXITS = ": > '{marker}'\nexit 1\n"
"""A VM that stops at once: the launcher reports "the VM stopped before
the guest was up"."""
QEMU_ARGV_EXITS = "printf '%s\\n' \"$@\" > '{marker}'\nexit 1\n"
"""The same, writing its command line to {marker}, one argument a line."""
QEMU_WAITS = "exec sleep 600\n"
"""A VM that never boots: it waits until it is killed."""
QEMU_ENV_WAITS = "env > '{marker}.tmp'\nmv '{marker}.tmp' '{marker}'\nexec sleep 600\n"
"""The same, after writing its environment to {marker} (atomically)."""


def fake_vm(env, root, request, qemu=QEMU_EXITS, marker="qemu-ran"):
    """Everything sandbox-launch needs under root (a pytest tmp_path):
    ws/ (the workspace), guest/, fake-qemu, config/, state/, cache/, and a
    short XDG_RUNTIME_DIR under /tmp (unix socket paths must fit in 108
    bytes) removed at the end of the test. Returns a namespace with bin,
    root, ws, config, state, runtime, marker (the file the fake QEMU
    writes) and env (HOME and XDG_* private to the test,
    SANDBOX_AGENTS_DIR unset)."""
    x = types.SimpleNamespace()
    x.bin = os.path.join(env.build, "bin", "sandbox-launch")
    x.root = root
    x.ws = root / "ws"
    x.ws.mkdir(exist_ok=True)
    guest = root / "guest"
    guest.mkdir()
    (guest / "vmlinuz").write_bytes(b"not a kernel")
    (guest / "initramfs.cpio").write_bytes(b"not an initramfs")
    x.marker = root / marker
    script = root / "fake-qemu"
    script.write_text("#!/bin/sh\n" + qemu.replace("{marker}", str(x.marker)))
    script.chmod(0o755)
    x.config = root / "config"
    x.state = root / "state"
    x.runtime = tempfile.mkdtemp(prefix="sbx-", dir="/tmp")
    request.addfinalizer(lambda: shutil.rmtree(x.runtime, ignore_errors=True))
    x.env = dict(os.environ, HOME=str(root), XDG_CONFIG_HOME=str(x.config),
                 XDG_STATE_HOME=str(x.state),
                 XDG_CACHE_HOME=str(root / "cache"),
                 XDG_RUNTIME_DIR=x.runtime,
                 SANDBOX_GUEST_DIR=str(guest), SANDBOX_QEMU=str(script),
                 SANDBOX_PRESETS=os.path.join(env.src, "policies"))
    x.env.pop("SANDBOX_AGENTS_DIR", None)
    return x


def policy_vm(env, root, request, user_policy, variables=()):
    """fake_vm with a VM that never boots (QEMU_ENV_WAITS: qemu_env is
    the file holding its environment), the user's policy file
    (user_policy: config/sandbox/policy.yaml) holding user_policy, a
    workspace with .sandbox/ (write(text): its repository policy) and
    the variables (name: value) set for the launcher. argv(*opts) is
    the launch of `true` in the workspace."""
    x = fake_vm(env, root, request, QEMU_ENV_WAITS, marker="qemu-env")
    x.qemu_env = x.marker
    (x.ws / ".sandbox").mkdir(parents=True)
    (x.config / "sandbox").mkdir(parents=True)
    x.user_policy = x.config / "sandbox" / "policy.yaml"
    x.user_policy.write_text(user_policy)
    x.env.update(dict(variables))

    def write(text):
        (x.ws / ".sandbox" / "policy.yaml").write_text(text)
    x.write = write

    def argv(*opts):
        return [x.bin, "--workspace", str(x.ws), "--boot-timeout", "300",
                *opts, "--", "true"]
    x.argv = argv
    return x


def launch(x, *opts):
    """Run the launcher of a policy_vm to its end: (exit code, stderr)."""
    r = run(x.argv(*opts), timeout=60, env=x.env)
    return r.returncode, r.stderr.decode(errors="replace")


def policy_diff(x):
    """`sandbox-policy diff` of the user's policy against the workspace's."""
    return run([os.path.join(os.path.dirname(x.bin), "sandbox-policy"), "diff",
                str(x.user_policy), "--", str(x.ws / ".sandbox" / "policy.yaml")],
               env=x.env)


def ca_hosts(pem):
    """The permitted DNS names of the sandbox CA's name constraints."""
    r = subprocess.run(["openssl", "x509", "-noout", "-ext",
                        "nameConstraints"], input=pem, capture_output=True,
                       timeout=30, check=True)
    out = r.stdout.decode()
    return sorted(w[len("DNS:"):] for w in out.split() if w.startswith("DNS:"))


def until_qemu(x, *opts):
    """Launch a policy_vm, wait until QEMU (the fake) runs; return what the
    proxy got: (the CA's hosts, or None without secrets or inspected
    hosts; QEMU's environment; the launcher's stderr)."""
    p = subprocess.Popen(x.argv(*opts), env=x.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while not x.qemu_env.exists() and p.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert x.qemu_env.exists(), "QEMU never started"
        qenv = x.qemu_env.read_text()
        cas = [c for d in (x.runtime, str(x.root))
               for c in glob.glob(os.path.join(d, "**", "sandbox-ca.pem"),
                                  recursive=True)]
        hosts = ca_hosts(open(cas[0], "rb").read()) if cas else None
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    return hosts, qenv, err.decode(errors="replace")
