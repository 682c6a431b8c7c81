"""A policy with errors stops sandbox-launch before anything starts, with
every error as file:line:col (or the option) and one closing line naming
`sandbox-policy check`; the exit status is the launcher's set-up failure.

The policy is loaded once in the launcher (launcher/policy_secrets.c, the
same library and inputs as the proxy); the oracle that nothing started is
the fake QEMU's argument file and the runs directory (no run, no proxy)."""

import os

import pytest

from test_remembered_settings import S  # noqa: F401  (the fixture)


BAD = ("version: 1\n"
       "alow:\n"
       "  - host: a.example.com\n"
       "deny:\n"
       "  - host: \"a*b.example.com\"\n")


def nothing_started(S):
    runs = S.state / "sandbox" / "runs"
    return not S.qemu_argv.exists() and (
        not runs.exists() or not os.listdir(runs))


def test_every_error_of_a_policy_file_is_shown_and_nothing_starts(S):
    bad = S.ws / "bad.yaml"
    bad.write_text(BAD)
    rc, err = S.launch("--workspace", str(S.ws), "--policy", str(bad),
                       "--", "true")
    assert rc == 125, err
    lines = err.splitlines()
    assert any(l.startswith(f"{bad}:2:1: unknown key 'alow'") for l in lines), err
    assert any(l.startswith(f"{bad}:5:") for l in lines), err
    assert lines[-1] == ("sandbox-launch: the policy has errors (above): fix "
                         "them, then check with sandbox-policy check"), err
    assert nothing_started(S)


@pytest.mark.parametrize("opt,spec", [("--allow", "a*b.example.com"),
                                      ("--deny", "-bad-.example.com:99999")])
def test_a_bad_rule_on_the_command_line_is_named(S, opt, spec):
    rc, err = S.launch("--workspace", str(S.ws), opt, spec, "--", "true")
    assert rc == 125, err
    assert f"{opt}" in err and "the policy has errors (above)" in err, err
    assert nothing_started(S)
