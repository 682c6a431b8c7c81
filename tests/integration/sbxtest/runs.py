"""What the e2e fixtures do around one sandbox-launch run: files written
into the workspace for the test user, the test CA handed to the launcher,
and what a finished run left (the probe's CHECK lines, the run directory's
audit log and console). `e` is an e2e Env (tests/e2e/test_launch_basic.py):
ws, root, own(path), runs()."""

import json
import os
import re


def ws_file(e, name, data):
    """Write data (str or bytes) to e.ws/name, owned by the test user (the
    launcher runs as that user); returns the path."""
    path = os.path.join(e.ws, name)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    e.own(path)
    return path


def copy_ca(e, pki, path):
    """The test CA's PEM at path (for --upstream-ca, or for the guest's
    curl when under e.ws), owned by the test user; returns path."""
    with open(pki["ca"], "rb") as src, open(path, "wb") as f:
        f.write(src.read())
    e.own(path)
    return path


def checks(out):
    """The probe's `CHECK name=value` lines as {name: value}."""
    return dict(re.findall(r"^CHECK (\w+)=(.*?)\r?$", out, re.M))


def run_audit(run_dir):
    """(records, files) of a run's audit log: the rotated set oldest first
    (audit.jsonl.N ... .1, then audit.jsonl)."""
    base = os.path.join(run_dir, "audit.jsonl")
    n = 1
    while os.path.exists(f"{base}.{n}"):
        n += 1
    files = [f"{base}.{k}" for k in range(n - 1, 0, -1)]
    if os.path.exists(base):
        files.append(base)
    records = []
    for path in files:
        with open(path) as f:
            records += [json.loads(l) for l in f if l.strip()]
    return records, files


def run_console(run_dir):
    """The guest's console of a run ("" when there is none)."""
    path = os.path.join(run_dir, "console.log")
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as f:
        return f.read()


def finished(e, r):
    """What the last run of e left, r being its CompletedProcess: r, out
    (stdout), checks, audit, audit_files, console, run (its directory, or
    None when the launcher made none)."""
    out = r.stdout.decode(errors="replace")
    runs = e.runs()
    run = runs[-1] if runs else None
    audit, files = run_audit(run) if run else ([], [])
    return {"r": r, "out": out, "checks": checks(out), "audit": audit,
            "audit_files": files, "console": run_console(run) if run else "",
            "run": run}
