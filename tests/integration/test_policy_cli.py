"""sandbox-policy: check and explain, as a user runs them."""
import glob
import os
import subprocess

import pytest

BUILD = os.environ.get("SANDBOX_BUILD", "build")
SRC = os.environ.get("SANDBOX_SRC", ".")
BIN = os.path.join(BUILD, "bin", "sandbox-policy")
PRESETS = os.path.join(SRC, "policies")


def run(*args, env=None):
    e = dict(os.environ)
    e.pop("SANDBOX_PRESETS", None)
    if env:
        e.update(env)
    return subprocess.run([BIN, *args], capture_output=True, text=True, env=e, timeout=30)


def test_every_preset_passes_check():
    files = sorted(glob.glob(os.path.join(PRESETS, "*.yaml")))
    files.append(os.path.join(PRESETS, "examples", "project.yaml"))
    names = {os.path.basename(f)[:-5] for f in files}
    assert {"github", "npm", "pypi", "debian", "claude", "codex", "gemini",
            "copilot", "kiro"} <= names
    for f in files:
        r = run("check", "--presets", PRESETS, f)
        assert r.returncode == 0, (f, r.stderr)
        assert r.stdout.startswith("ok: "), r.stdout
        with open(f, encoding="utf-8") as fh:
            head = fh.read(1000)
        assert "retrieved 2026" in head or "example" in f, f"{f}: no source comment"


def test_check_reports_every_error_with_position(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("version: 1\nallow:\n  - '*'\n  - 127.1\n  - host: a.example\n    prots: [1]\n")
    r = run("check", str(p))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0] == f"{p}:3:5: allow pattern '*': refusing to allow every host name; list the names needed"
    assert lines[1].startswith(f"{p}:4:5: allow pattern '127.1': neither a host name nor an IP address")
    assert lines[2] == f"{p}:6:5: unknown key 'prots' in a rule (expected host, cidr, ports, protocols, mode or inspect)"
    assert lines[3] == "sandbox-policy: 3 errors; the policy was not loaded"


def test_check_summary(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nextends: [pypi]\nallow: [a.example, {cidr: 10.0.0.0/8}]\n"
                 "deny: [b.example]\n")
    r = run("check", str(p), env={"SANDBOX_PRESETS": PRESETS})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok: 2 files, 3 allow, 1 deny, 1 cidr rules"


def test_explain_names_the_rule_and_sets_exit_code(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nallow:\n  - jira.corp.example\n  - host: git.corp.example\n"
                 "    ports: [22]\ndeny:\n  - '**.corp.example'\n")
    r = run("explain", str(p), "--", "JIRA.corp.example.:443")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "jira.corp.example port 443: allow"
    assert f"rule: {p}:3: allow 'jira.corp.example'" in r.stdout
    r = run("explain", str(p), "--", "wiki.corp.example")
    assert r.returncode == 2
    assert "wiki.corp.example any port: deny" in r.stdout
    assert f"rule: {p}:7: deny '**.corp.example'" in r.stdout
    r = run("explain", str(p), "--", "git.corp.example:22", "10.0.0.1:22")
    assert r.returncode == 2
    assert "10.0.0.1 port 22: deny" in r.stdout
    assert "rule: default" in r.stdout
    r = run("explain", str(p), "--allow", "10.0.0.0/8:22", "--", "10.0.0.1:22", "[::1]:22")
    assert r.returncode == 2
    assert "rule: --allow: allow '10.0.0.0/8'" in r.stdout
    assert "::1 port 22: deny" in r.stdout
    r = run("explain", str(p), "--", "127.1")
    assert r.returncode == 1
    assert "neither a host name nor an IP address" in r.stderr


def test_explain_report_mode(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nmode: report\nallow: [a.example]\n")
    r = run("explain", str(p), "--", "b.example:443")
    assert r.returncode == 3
    assert "b.example port 443: would-deny" in r.stdout


def test_default_presets_dir_is_found_next_to_the_program(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nextends: [github]\n")
    r = run("explain", str(p), "--", "github.com:22")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "github.yaml" in r.stdout


@pytest.mark.parametrize("args", [[], ["frobnicate"], ["check"], ["explain", "x.yaml"],
                                  ["check", "--nope", "x"]])
def test_usage_errors(args):
    r = run(*args)
    assert r.returncode == 1
    assert r.stderr


def test_help():
    r = run("--help")
    assert r.returncode == 0
    assert "Exit status" in r.stdout and "explain" in r.stdout


def test_explain_shows_protocols(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("version: 1\nextends: [github]\nallow:\n"
                 "  - host: db.example\n    ports: [5432]\n    protocols: [tcp]\n")
    r = run("explain", str(p), "--", "github.com:22", "github.com:443",
            "db.example:5432")
    assert r.returncode == 0, r.stderr + r.stdout
    out = r.stdout.split("\n")
    i = out.index("github.com port 22: allow")
    assert out[i + 2].startswith("  protocols: tcp (any stream"), out
    i = out.index("github.com port 443: allow")
    assert out[i + 2].startswith("  protocols: tls, http (other streams"), out
    i = out.index("db.example port 5432: allow")
    assert out[i + 2].startswith("  protocols: tcp"), out
    r = run("check", str(p))
    assert r.returncode == 0, r.stderr
    # github.yaml's two SSH rules and db.example
    assert r.stdout.strip().endswith("; 3 allow opaque tcp"), r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nallow:\n  - host: a.example\n    protocols: [ssh]\n")
    r = run("check", str(bad))
    assert r.returncode == 1
    assert r.stderr.startswith(f"{bad}:4:17: unknown protocol 'ssh'"), r.stderr


def test_secrets_in_check_explain_and_diff(tmp_path):
    p = tmp_path / "user.yaml"
    p.write_text("version: 1\nallow:\n  - api.example.com\n"
                 "secrets:\n  - env: TESTKEY\n    hosts: [API.example.com]\n")
    r = run("check", "--presets", PRESETS, str(p))
    assert r.returncode == 0, r.stderr
    assert f"secret TESTKEY goes to api.example.com ({p}:6)" in r.stdout, r.stdout
    r = run("explain", "--presets", PRESETS, str(p), "--", "api.example.com:443")
    assert r.returncode == 0, r.stderr
    assert "  secret: TESTKEY (TLS to it is intercepted" in r.stdout, r.stdout
    r = run("explain", "--presets", PRESETS, str(p), "--", "www.example.com:443")
    assert "secret:" not in r.stdout, r.stdout
    repo = tmp_path / "repo.yaml"
    repo.write_text("version: 1\nsecrets:\n  - env: TESTKEY\n"
                    "    hosts: [api.example.com, paste.example.net]\n")
    r = run("diff", "--presets", PRESETS, str(p), "--", str(repo))
    assert r.returncode == 4, (r.stdout, r.stderr)
    lines = [l for l in r.stdout.splitlines() if l.startswith("+ ")]
    assert lines == [f"+ secret TESTKEY@paste.example.net: the value of the "
                     f"host's variable goes on requests to paste.example.net "
                     f"({repo}:4)"], r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsecrets:\n  - env: K\n    hosts: [github.io]\n"
                   "    format: \"Bearer {}\"\n")
    r = run("check", "--presets", PRESETS, str(bad))
    assert r.returncode != 0
    assert f"{bad}:4:13: secret host 'github.io': a public suffix" in r.stderr, r.stderr
    assert f"{bad}:5:13: secret K: format: needs header:" in r.stderr, r.stderr
    hdr = tmp_path / "hdr.yaml"
    hdr.write_text("version: 1\nsecrets:\n  - env: K\n    hosts: [api.example.com]\n"
                   "    header: Authorization\n    format: \"token {value}\"\n")
    r = run("check", "--presets", PRESETS, str(hdr))
    assert r.returncode == 0, r.stderr
    assert (f"secret K goes to api.example.com, header Authorization: "
            f"token {{value}} ({hdr}:4)") in r.stdout, r.stdout


def test_inspected_host_in_check_explain_and_diff(tmp_path):
    p = tmp_path / "user.yaml"
    p.write_text("version: 1\nallow:\n  - host: API.example.com\n"
                 "    inspect: true\n  - www.example.com\n")
    r = run("check", "--presets", PRESETS, str(p))
    assert r.returncode == 0, r.stderr
    assert f"inspect api.example.com ({p}:4)" in r.stdout, r.stdout
    r = run("explain", "--presets", PRESETS, str(p), "--", "api.example.com:443")
    assert "  inspected: TLS to it is intercepted" in r.stdout, r.stdout
    r = run("explain", "--presets", PRESETS, str(p), "--", "www.example.com:443")
    assert "inspected:" not in r.stdout, r.stdout
    repo = tmp_path / "repo.yaml"
    repo.write_text("version: 1\nallow:\n  - host: www.example.com\n"
                    "    inspect: true\n")
    r = run("diff", "--presets", PRESETS, str(p), "--", str(repo))
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "+ inspect www.example.com: the sandbox CA may sign" in r.stdout, r.stdout


def test_inspect_all_in_check_explain_and_diff(tmp_path):
    p = tmp_path / "all.yaml"
    p.write_text("version: 1\ninspect: all\nallow:\n  - API.example.com\n"
                 "  - '*.cdn.example.org'\n")
    r = run("check", "--presets", PRESETS, str(p))
    assert r.returncode == 0, r.stderr
    assert (f"inspect all: 2 names for the sandbox CA ({p}:2): "
            "api.example.com cdn.example.org") in r.stdout, r.stdout
    r = run("explain", "--presets", PRESETS, str(p), "--", "x.cdn.example.org:443")
    assert "  inspect all: TLS to it is intercepted" in r.stdout, r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ninspect: all\nallow:\n  - localhost\n")
    r = run("check", "--presets", PRESETS, str(bad))
    assert r.returncode != 0
    assert f"{bad}:4:5: allow 'localhost': a name the sandbox CA signs" in r.stderr, r.stderr
    base = tmp_path / "base.yaml"
    base.write_text("version: 1\nallow:\n  - api.example.com\n")
    r = run("diff", "--presets", PRESETS, str(base), "--", str(p))
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "+ inspect all: the sandbox CA may sign every allowed name" in r.stdout, r.stdout
