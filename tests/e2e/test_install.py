"""`make install` as an ordinary user, into a prefix of its own: the
installed sandbox-launch boots a guest from any directory with no SANDBOX_*
variable set (it finds the kernel, initramfs and presets under
PREFIX/share/sandbox), the man pages read with `man -M`, and `make
uninstall` takes it all away again. The build tree belongs to root here, so
the test user's `make install` must not need to write it (e2e: man)."""
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_launch_basic import SRC, Env, leftovers, require, track, wait_for  # noqa: E402


@pytest.fixture(scope="module")
def installed():
    require()
    env = Env()
    prefix = os.path.join(env.root, "p")
    yield env, prefix
    env.cleanup()


def as_user(env, argv, cwd=None, timeout=120):
    """argv as the test user with a login-like, minimal environment."""
    clean = ["env", "-i", "HOME=" + env.home, "PATH=/usr/bin:/bin",
             "XDG_RUNTIME_DIR=" + env.runtime]
    p = track(subprocess.Popen(env.prefix + clean + argv, cwd=cwd or env.ws,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True,
                               start_new_session=True))
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_install_runs_as_an_ordinary_user(installed):
    env, prefix = installed
    r = as_user(env, ["make", "-s", "-C", SRC, "install", "PREFIX=" + prefix])
    assert r.returncode == 0, r.stdout + r.stderr
    for prog in ("launch", "proxy", "policy", "audit", "vsock"):
        path = os.path.join(prefix, "bin", "sandbox-" + prog)
        assert os.access(path, os.X_OK), path
        assert os.path.isfile(os.path.join(
            prefix, "share", "man", "man1", "sandbox-%s.1" % prog))
    data = os.path.join(prefix, "share", "sandbox")
    for f in ("guest/vmlinux", "guest/initramfs.cpio",
              "policies/github.yaml", "policies/agents/claude.yaml"):
        assert os.path.isfile(os.path.join(data, f)), f
    assert not os.path.exists(os.path.join(data, "images", "test.img"))


def test_installed_presets_found_without_environment(installed):
    env, prefix = installed
    pol = os.path.join(env.ws, "p.yaml")
    with open(pol, "w") as f:
        f.write("version: 1\nextends: [github]\n")
    env.own(pol)
    r = as_user(env, [os.path.join(prefix, "bin", "sandbox-policy"),
                      "explain", pol, "--", "github.com:443"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.join(prefix, "share", "sandbox", "policies",
                        "github.yaml") in r.stdout, r.stdout


def test_installed_launch_boots_from_any_directory(installed):
    env, prefix = installed
    r = as_user(env, [os.path.join(prefix, "bin", "sandbox-launch"), "--",
                      "sh", "-c", "echo installed-$(id -u)"], timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "installed-%d" % env.uid, r.stdout
    wait_for(lambda: leftovers(env.uid) == [], 30, "the run's processes to exit")


def test_man_page_reads(installed):
    env, prefix = installed
    r = as_user(env, ["man", "-M", os.path.join(prefix, "share", "man"),
                      "sandbox-launch"])
    assert r.returncode == 0, r.stderr
    assert "SANDBOX-LAUNCH(1)" in r.stdout
    assert "--workspace DIR" in r.stdout
    assert "SANDBOX-LAUNCH POLICY" in r.stdout  # a subcommand's own --help


def test_uninstall_removes_everything(installed):
    env, prefix = installed
    r = as_user(env, ["make", "-s", "-C", SRC, "uninstall",
                      "PREFIX=" + prefix])
    assert r.returncode == 0, r.stdout + r.stderr
    left = [os.path.join(d, f) for d, _, fs in os.walk(prefix) for f in fs]
    assert left == [], left
