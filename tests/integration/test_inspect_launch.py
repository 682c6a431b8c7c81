"""inspect: true as the launcher takes it (docs/secrets.md "Inspected
hosts"): the real sandbox-launch up to the point where the guest would
boot, with a fake QEMU (the fixtures of test_policy_secrets_launch). The
proxy's CA is the oracle: its name constraints are exactly the hosts it
may intercept.

  - a user policy that inspects a host makes the CA without any secret;
  - with a secret too, the CA covers both;
  - a repository policy that inspects a host is a widening: refused
    without approval (`+ inspect HOST`), honoured with --trust."""

import pytest

from sbxtest.launcher import launch, policy_diff, policy_vm, until_qemu
from test_policy_secrets_launch import USER, VALUE

INSPECT = ("version: 1\nallow:\n  - host: api.example.com\n    ports: [443]\n"
           "  - host: inspect.example.com\n    ports: [443]\n"
           "    inspect: true\n")


@pytest.fixture
def L(env, tmp_path, request):
    x = policy_vm(env, tmp_path, request, USER, {"TESTKEY": VALUE})
    x.env.pop("OTHERKEY", None)
    return x


def test_inspect_alone_makes_the_ca(L):
    del L.env["TESTKEY"]
    L.user_policy.write_text(INSPECT)
    hosts, _, err = until_qemu(L)
    assert hosts == ["inspect.example.com"], (hosts, err)


def test_inspect_and_secret_share_the_ca(L):
    L.user_policy.write_text(INSPECT + "secrets:\n  - env: TESTKEY\n"
                             "    hosts: [api.example.com]\n")
    hosts, _, err = until_qemu(L)
    assert hosts == ["api.example.com", "inspect.example.com"], (hosts, err)


def test_repo_inspect_is_widening(L):
    L.write("version: 1\nallow:\n  - host: api.example.com\n"
            "    ports: [443]\n    inspect: true\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy (1 change)" in err, err
    r = policy_diff(L)
    out = r.stdout.decode()
    assert r.returncode == 4, out
    assert "+ inspect api.example.com" in out, out
    del L.env["TESTKEY"]
    hosts, _, err = until_qemu(L, "--trust")
    assert hosts == ["api.example.com"], (hosts, err)


def test_inspect_all_alone_makes_the_ca_of_the_allowed_names(L):
    del L.env["TESTKEY"]
    L.user_policy.write_text("version: 1\ninspect: all\nallow:\n"
                             "  - host: api.example.com\n    ports: [443]\n"
                             "  - host: '*.cdn.example.org'\n    ports: [443]\n")
    hosts, _, err = until_qemu(L)
    assert sorted(hosts) == ["api.example.com", "cdn.example.org"], (hosts, err)


def test_repo_inspect_all_is_widening(L):
    L.write("version: 1\ninspect: all\nallow:\n  - host: api.example.com\n"
            "    ports: [443]\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy (1 change)" in err, err
    del L.env["TESTKEY"]
    hosts, _, err = until_qemu(L, "--trust")
    assert "api.example.com" in hosts, (hosts, err)
