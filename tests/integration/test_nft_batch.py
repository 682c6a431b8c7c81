"""sandbox-init's network set-up without ip(8) or nft(8): the oracle is the
kernel.

tests/tools/nft_load runs the guest's own code (guest/nft_batch.c,
nft_send.c, netif.c) in a fresh network namespace; the same namespace set
up by nft(8) from the rules' text (`nft_load --ruleset`), or by the ip(8)
commands the guest used to run, must leave the kernel holding exactly the
same thing, as `nft --debug=netlink list ruleset` (every expression and
register) and `ip -d link`, `ip addr`, `ip route` show it.
Needs root (for unshare -n); skipped otherwise.
"""
import os
import shutil
import subprocess

import pytest

SRC = os.environ.get("SANDBOX_SRC") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SANDBOX_BUILD") or os.path.join(SRC, "build")
TOOL = os.path.join(BUILD, "tools", "nft_load")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for unshare -n"),
    pytest.mark.skipif(not shutil.which("nft") or not shutil.which("unshare"),
                       reason="needs nft and unshare"),
]

LIST = "nft --debug=netlink list ruleset"
SHOW_IF = ("ip -d link | sed 's#link/ether [0-9a-f:]*##'; "
           "ip addr | sed 's#link/ether [0-9a-f:]*##'; "
           "ip route show table all; ip -6 route show table all")
IP_CMDS = ("ip link set lo up && ip link add eth0 type dummy && "
           "ip addr add 192.0.2.2/24 dev eth0 && ip link set eth0 up && "
           "ip route add default via 192.0.2.1 dev eth0")


def in_netns(script, **kw):
    return subprocess.run(["unshare", "-n", "sh", "-ec", script],
                          capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture
def ruleset(tmp_path):
    r = subprocess.run([TOOL, "--ruleset"], capture_output=True, text=True,
                       check=True)
    p = tmp_path / "capture.nft"
    p.write_text(r.stdout)
    return p


def test_rules_match_what_nft_loads(ruleset):
    ref = in_netns("nft -f %s; %s" % (ruleset, LIST))
    assert ref.returncode == 0, ref.stderr
    got = in_netns("%s --rules; %s" % (TOOL, LIST))
    assert got.returncode == 0, got.stderr
    # Not vacuous: the capture's own rules are there.
    assert "redir proto_min reg 1" in got.stdout
    assert "nat dnat ip addr_min reg 1" in got.stdout
    assert got.stdout.count("type filter hook") == 3
    assert got.stdout == ref.stdout


def test_rules_replace_whatever_was_there(ruleset):
    """flush ruleset first: a table loaded before is gone, and loading
    twice leaves one copy of the rules."""
    ref = in_netns("nft -f %s; %s" % (ruleset, LIST))
    got = in_netns("nft add table inet stray; "
                   "nft add chain inet stray c '{ type filter hook output "
                   "priority 0; policy accept; }'; "
                   "%s --rules; %s --rules; %s" % (TOOL, TOOL, LIST))
    assert got.returncode == 0, got.stderr
    assert "stray" not in got.stdout
    assert got.stdout == ref.stdout


def test_refused_without_privilege_is_a_clear_error():
    """Without CAP_NET_ADMIN the kernel refuses the batch; the loader says
    which step failed and why (and nothing is loaded)."""
    cmd = [TOOL, "--rules"]
    if shutil.which("setpriv"):
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "--inh-caps=-all", "--bounding-set=-all"] + cmd
    else:
        pytest.skip("needs setpriv")
    r = subprocess.run(["unshare", "-n"] + cmd, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert "nft_load: nftables: " in r.stderr
    assert "Operation not permitted" in r.stderr


def test_interfaces_match_what_ip_sets_up():
    ref = in_netns("%s; %s" % (IP_CMDS, SHOW_IF))
    if "Unknown device type" in ref.stderr:
        pytest.skip("this kernel has no dummy interfaces (the guest's has)")
    assert ref.returncode == 0, ref.stderr
    got = in_netns("%s --ifaces; %s" % (TOOL, SHOW_IF))
    assert got.returncode == 0, got.stderr
    assert "192.0.2.2/24" in got.stdout
    assert "default via 192.0.2.1 dev eth0" in got.stdout
    assert got.stdout == ref.stdout


def test_interfaces_error_names_the_step():
    """Where the dummy cannot be made (or eth0 exists already), the error
    names the ip(8) step it stands for."""
    r = in_netns("ip link add eth0 type veth peer name x0 || "
                 "ip link add eth0 type dummy || true; %s --ifaces" % TOOL)
    assert r.returncode != 0
    assert "nft_load: ip link add eth0 type dummy: " in r.stderr
