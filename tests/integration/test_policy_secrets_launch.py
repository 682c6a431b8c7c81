"""secrets: in policy files as the launcher takes them (docs/secrets.md):
the real sandbox-launch up to the point where the guest would boot, with
a fake QEMU (a shell script that records its environment and waits). What
the proxy was given is read from the CA it made: its name constraints are
exactly the secret hosts it intercepts for.

  - a secret in the user's policy reaches the proxy, and its value is in
    no child's environment (QEMU's here);
  - one whose variable is not set is skipped with a notice;
  - --secret wins over the policy for the same variable;
  - a repository policy that adds a secret, or a host for one, is a
    widening: refused without approval, honoured with --trust;
  - bad secrets: entries stop the launch naming file:line:col."""

import glob
import os

import pytest

from sbxtest.launcher import launch, policy_diff, policy_vm, until_qemu

VALUE = "sk-test-0123456789abcdefghijklmnopqrstuvwxyz"
USER = ("version: 1\nallow:\n  - host: api.example.com\n    ports: [443]\n"
        "secrets:\n  - env: TESTKEY\n    hosts: [api.example.com]\n")


@pytest.fixture
def L(env, tmp_path, request):
    x = policy_vm(env, tmp_path, request, USER, {"TESTKEY": VALUE})
    x.env.pop("OTHERKEY", None)
    return x


def test_user_policy_secret_reaches_the_proxy_not_the_children(L):
    hosts, qenv, err = until_qemu(L)
    assert hosts == ["api.example.com"], (hosts, err)
    assert VALUE not in qenv and "TESTKEY=" not in qenv, \
        "the value (or the variable) reached a child"


def test_unset_variable_is_skipped_with_a_notice(L):
    del L.env["TESTKEY"]
    hosts, _, err = until_qemu(L)
    assert hosts is None, "no secret, no interception CA"
    assert "secret TESTKEY" in err and "not set here, skipped" in err, err


def test_command_line_wins(L):
    hosts, _, err = until_qemu(L, "--secret", "TESTKEY@other.example.com")
    assert hosts == ["other.example.com"], (hosts, err)
    assert "the policy's are not used" in err, err


def test_repo_new_secret_is_widening(L):
    L.env["OTHERKEY"] = "gh-" + "x" * 30
    L.write("version: 1\nsecrets:\n  - env: OTHERKEY\n"
            "    hosts: [api.example.com]\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy (1 change)" in err, err
    r = policy_diff(L)
    out = r.stdout.decode()
    assert r.returncode == 4, out
    assert "+ secret OTHERKEY@api.example.com" in out, out
    hosts, qenv, err = until_qemu(L, "--trust")
    assert hosts == ["api.example.com"], (hosts, err)
    assert L.env["OTHERKEY"] not in qenv


def test_repo_new_host_for_a_secret_is_widening(L):
    L.write("version: 1\nsecrets:\n  - env: TESTKEY\n"
            "    hosts: [paste.example.net]\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy (1 change)" in err, err
    hosts, _, err = until_qemu(L, "--trust")
    assert hosts == ["api.example.com", "paste.example.net"], (hosts, err)


def test_repo_same_secret_is_not_widening(L):
    L.write("version: 1\nsecrets:\n  - env: TESTKEY\n"
            "    hosts: [API.example.com]\n")
    hosts, _, err = until_qemu(L)
    assert hosts == ["api.example.com"], (hosts, err)


def test_bad_secret_entry_stops_the_launch(L):
    L.user_policy.write_text("version: 1\nsecrets:\n  - env: TESTKEY\n"
                             "    hosts: [\"*.example.com\"]\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "policy.yaml:4:13" in err and "no wildcard" in err, err
    assert not L.qemu_env.exists()


def test_notice_said_once_with_a_repository_policy(L):
    L.write("version: 1\ndeny:\n  - ads.example.com\n")
    hosts, _, err = until_qemu(L, "--secret", "TESTKEY@other.example.com")
    assert hosts == ["other.example.com"], (hosts, err)
    assert err.count("the policy's are not used") == 1, err


def test_reserved_variable_refused_on_the_command_line(L):
    rc, err = launch(L, "--secret", "HOME@api.example.com")
    assert rc == 125, err
    assert "HOME cannot be a secret" in err, err
    assert not L.qemu_env.exists()


def test_policy_header_reaches_the_proxy(L):
    """header:/format: travel on the secrets pipe with the value (the
    format holds a space); the proxy checks them again and would refuse to
    start on a line it does not take."""
    L.user_policy.write_text(USER + "    header: Authorization\n"
                             "    format: \"token {value}\"\n")
    hosts, qenv, err = until_qemu(L)
    assert hosts == ["api.example.com"], (hosts, err)
    assert VALUE not in qenv and VALUE not in err
    logs = [c for d in (L.runtime, str(L.root))
            for c in glob.glob(os.path.join(d, "**", "proxy.log"), recursive=True)]
    text = "".join(open(c).read() for c in logs)
    assert ("secret TESTKEY for api.example.com; sets header "
            "Authorization: token {value}") in text, text
    assert VALUE not in text


def test_repo_header_for_a_secret_is_widening(L):
    L.write("version: 1\nsecrets:\n  - env: TESTKEY\n"
            "    hosts: [api.example.com]\n    header: X-Echo\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "widens the network policy (1 change)" in err, err
    r = policy_diff(L)
    out = r.stdout.decode()
    assert r.returncode == 4, out
    assert "+ secret TESTKEY header X-Echo: {value}: the proxy sets this header" in out, out


def test_bad_secret_header_stops_the_launch(L):
    L.user_policy.write_text(USER + "    header: Content-Length\n")
    rc, err = launch(L)
    assert rc == 125, err
    assert "policy.yaml:8:13" in err and "framing or hop-by-hop" in err, err
    assert not L.qemu_env.exists()
