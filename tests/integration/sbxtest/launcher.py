"""The real sandbox-launch (with the real proxy and bridge) and a fake VM:
a stand-in kernel and initramfs the launcher only checks for, and a shell
script as QEMU. No guest boots; the tests look at what the launcher did up
to starting QEMU (its argv, its environment, the run directory)."""

import os
import shutil
import tempfile
import types

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
    (guest / "initramfs.cpio.gz").write_bytes(b"not an initramfs")
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
