"""sandbox-audit on generated and hand-made logs: verify against tampering
(edit, delete, swap, truncate, across rotated files), summary/denied against
an independent Python computation, filters, suggest checked by
sandbox-policy, the HTML report rendered in headless Chromium, help and
errors. Logs are written through the proxy's own writer (generate)."""

import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time

import pytest

BUILD = os.environ.get("SANDBOX_BUILD", "build")
AUDIT = os.path.join(BUILD, "bin", "sandbox-audit")
POLICY = os.path.join(BUILD, "bin", "sandbox-policy")
COMMANDS = ["verify", "summary", "denied", "follow", "suggest", "report", "generate"]


def run(*args, timeout=120, **kw):
    return subprocess.run([AUDIT, *args], capture_output=True, timeout=timeout, **kw)


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="audit-cli-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def gen(tmp, n, name="a.jsonl", mode="report", sandbox="gen"):
    p = os.path.join(tmp, name)
    r = run("generate", "--records", str(n), "--mode", mode, "--sandbox", sandbox, "-o", p)
    assert r.returncode == 0, r.stderr
    return p


def docs_verifier(paths):
    """The verification script from docs/audit-log.md, run as written."""
    src = open(os.path.join(os.environ.get("SANDBOX_SRC", "."), "docs", "audit-log.md")).read()
    m = re.search(r"```python\n(# verify-audit.py.*?)```", src, re.S)
    assert m, "docs/audit-log.md lacks the verify-audit.py script"
    d = tempfile.mkdtemp()
    script = os.path.join(d, "verify-audit.py")
    open(script, "w").write(m.group(1))
    r = subprocess.run(["/usr/bin/python3", script, *paths], capture_output=True, timeout=60)
    shutil.rmtree(d)
    return r


def lines_of(p):
    return open(p, "rb").read().split(b"\n")[:-1]


def write_lines(p, lines):
    open(p, "wb").write(b"".join(l + b"\n" for l in lines))


def test_help_for_every_command():
    r = run("--help")
    assert r.returncode == 0 and b"verify" in r.stdout
    for c in COMMANDS:
        r = run(c, "--help")
        assert r.returncode == 0, (c, r.stderr)
        assert r.stdout.startswith(b"usage: sandbox-audit " + c.encode()), (c, r.stdout)
    r = run("frobnicate")
    assert r.returncode == 2 and b"unknown command 'frobnicate'" in r.stderr
    r = run("summary", "--strict", "x")
    assert r.returncode == 2 and b"--strict" in r.stderr


def test_verify_intact_and_docs_script_agrees(tmp):
    p = gen(tmp, 2000)
    r = run("verify", "--strict", p)
    assert r.returncode == 0, r.stdout + r.stderr
    assert b"intact: 2001 records in 1 file" in r.stdout
    d = docs_verifier([p])
    assert d.returncode == 0 and b"intact" in d.stdout, d.stdout + d.stderr
    j = json.loads(run("verify", "--json", p).stdout)
    assert j["intact"] and j["records"] == 2001 and j["closed"] and j["from_genesis"]


@pytest.mark.parametrize("how", ["edit", "delete", "swap", "insert", "truncate", "cut-start"])
def test_verify_detects_tampering(tmp, how):
    p = gen(tmp, 300)
    ls = lines_of(p)
    want_line = 101
    if how == "edit":
        # flip one byte of the host inside record 101: only its hash breaks
        ls[100] = ls[100].replace(b'"host":"', b'"host":"X', 1)
    elif how == "delete":
        del ls[100]
    elif how == "swap":
        ls[100], ls[101] = ls[101], ls[100]
    elif how == "insert":
        ls.insert(100, ls[50])
    elif how == "truncate":
        ls = ls[:200]
    elif how == "cut-start":
        ls = ls[10:]
    write_lines(p, ls)
    r = run("verify", "--json", "--strict", p)
    assert r.returncode == 1, r.stdout + r.stderr
    j = json.loads(r.stdout)
    assert j["intact"] is False
    if how in ("truncate", "cut-start"):
        # Without --strict, an end or start cut is reported as a note only.
        assert "--strict" in j["error"]
        plain = run("verify", p)
        assert plain.returncode == 0
        assert b"note: no closing record" in plain.stdout or b"genesis" in plain.stdout
    else:
        assert j["line"] == want_line, j
        assert j["file"] == p
        text = run("verify", p)
        assert text.returncode == 1
        assert f"{p}:{want_line}:".encode() in text.stdout, text.stdout
        assert docs_verifier([p]).returncode != 0
    if how == "edit":
        assert "edited" in j["error"]


def test_verify_byte_edit_anywhere(tmp):
    p = gen(tmp, 50)
    data = bytearray(open(p, "rb").read())
    ls = lines_of(p)
    off = sum(len(l) + 1 for l in ls[:20]) + 30  # inside record 21's time
    data[off] = ord("9") if data[off] != ord("9") else ord("8")
    open(p, "wb").write(bytes(data))
    j = json.loads(run("verify", "--json", p).stdout)
    assert not j["intact"] and j["line"] == 21, j


def test_verify_rotated_set_auto_ordered(tmp):
    p = gen(tmp, 900)
    ls = lines_of(p)
    # split into FILE.2 (oldest), FILE.1, FILE the way rotation does
    write_lines(p + ".2", ls[:300])
    write_lines(p + ".1", ls[300:600])
    write_lines(p, ls[600:])
    r = run("verify", "--strict", p)
    assert r.returncode == 0 and b"901 records in 3 files" in r.stdout, r.stdout
    # the same set named explicitly, in order
    r = run("verify", "--json", p + ".2", p + ".1", p)
    assert r.returncode == 0 and json.loads(r.stdout)["records"] == 901, r.stdout
    # a deleted middle file breaks the chain at the first line of the next
    os.rename(p + ".1", os.path.join(tmp, "gone"))
    j = json.loads(run("verify", "--json", p + ".2", p).stdout)
    assert not j["intact"] and j["file"] == p and j["line"] == 1, j


def test_torn_fragment_is_tolerated_but_not_a_hiding_place(tmp):
    p = gen(tmp, 20)
    ls = lines_of(p)
    ls.insert(10, b'{"time":"2026-01-01T00:0')  # a torn write, terminated
    write_lines(p, ls)
    r = run("verify", p)
    assert r.returncode == 0 and b"1 incomplete line" in r.stdout, r.stdout
    # cutting a real record down to a fragment is still caught
    ls = lines_of(gen(tmp, 20, name="b.jsonl"))
    ls[10] = ls[10][:40]
    q = os.path.join(tmp, "b.jsonl")
    write_lines(q, ls)
    j = json.loads(run("verify", "--json", q).stdout)
    assert not j["intact"] and j["line"] == 12, j


def py_summary(paths):
    agg = {}
    for p in paths:
        for l in open(p, "rb"):
            r = json.loads(l)
            if "host" not in r:
                continue
            k = (r.get("sandbox", ""), r["host"])
            a = agg.setdefault(k, {"allow": 0, "deny": 0, "would_deny": 0,
                                   "bytes_up": 0, "bytes_down": 0, "first": r["time"], "last": r["time"]})
            if r["event"] != "close" and "decision" in r:
                a[r["decision"].replace("-", "_")] += 1
            if r["event"] == "close":
                a["bytes_up"] += r.get("bytes_up", 0)
                a["bytes_down"] += r.get("bytes_down", 0)
            a["first"] = min(a["first"], r["time"])
            a["last"] = max(a["last"], r["time"])
    return agg


def test_summary_matches_python_on_two_sandboxes(tmp):
    a = gen(tmp, 3000, "a.jsonl", sandbox="alpha")
    b = gen(tmp, 1000, "b.jsonl", mode="enforce", sandbox="beta")
    r = run("summary", "--json", a, b)
    assert r.returncode == 0, r.stderr
    got = {}
    for l in r.stdout.splitlines():
        o = json.loads(l)
        got[(o.pop("sandbox"), o.pop("host"))] = o
    assert got == py_summary([a, b])
    assert {s for s, _ in got} == {"alpha", "beta"}
    text = run("summary", a, b).stdout.decode()
    assert re.search(r"^beta +ads\.example\.org +0 +\d+ +0 ", text, re.M), text
    # --sandbox keeps one
    r = run("summary", "--json", "--sandbox", "beta", a, b)
    assert {json.loads(l)["sandbox"] for l in r.stdout.splitlines()} == {"beta"}


def test_filters(tmp):
    a = gen(tmp, 3000)
    hosts = lambda *f: {json.loads(l)["host"] for l in run("summary", "--json", *f, a).stdout.splitlines()}
    assert hosts("--host", "*.cdn.example.net") == {f"{c}.cdn.example.net" for c in "abcd"}
    assert hosts("--host", "*.example.com") == set()  # x.deep.example.com is two labels down
    assert hosts("--host", "**.example.com") == {f"{c}.deep.example.com" for c in "xyz"}
    assert hosts("--host", "github.com", "--host", "pypi.org") == {"github.com", "pypi.org"}
    assert hosts("--decision", "would-deny") == {"ads.example.org", "telemetry.example.org"}
    # generate starts at 2026-01-01T00:00:00Z, one record per second
    r = run("denied", "--json", "--since", "2026-01-01T00:10:00Z", "--until", "2026-01-01T00:20:00Z", a)
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    assert recs and all("2026-01-01T00:10:00" <= x["time"] < "2026-01-01T00:20:00" for x in recs)
    assert run("denied", "--json", "--since", "1h", a).stdout == b""  # all in 2026-01-01
    bad = run("summary", "--since", "yesterday", a)
    assert bad.returncode == 2 and b"yesterday" in bad.stderr
    bad = run("summary", "--host", "a*b.com", a)
    assert bad.returncode == 2 and b"a*b.com" in bad.stderr
    bad = run("summary", "--decision", "maybe", a)
    assert bad.returncode == 2 and b"maybe" in bad.stderr


def test_denied(tmp):
    a = gen(tmp, 3000, mode="enforce")
    r = run("denied", "--json", a)
    recs = [json.loads(l) for l in r.stdout.splitlines()]
    want = [json.loads(l) for l in open(a, "rb")]
    want = [x for x in want if x.get("decision") in ("deny", "would-deny") and x["event"] != "close"]
    assert recs == want and len(want) > 100
    text = run("denied", a).stdout.decode().splitlines()
    assert len(text) == len(want)
    assert re.match(r"2026-01-01T\S+ \"gen\" (dns|connect) \"(ads|telemetry)\.example\.org\"(:443)? deny default", text[0]), text[0]


def test_malformed_record_named_by_file_and_line(tmp):
    a = gen(tmp, 10)
    with open(a, "ab") as f:
        f.write(b'{"time":"2026-01-01T00:00:00Z","host":"x",}\n')
        f.write(b'{"time":"2026-01-01T00:00:00Z","host":"ok.test","event":"dns","decision":"deny"}\n')
    r = run("summary", "--json", a)
    assert r.returncode == 1
    assert f"{a}:12: malformed record".encode() in r.stderr, r.stderr
    assert b'"ok.test"' in r.stdout  # the rest is still read
    r = run("summary", os.path.join(tmp, "missing.jsonl"))
    assert r.returncode == 2 and b"missing.jsonl: No such file" in r.stderr
    # an empty log: empty views, a policy with nothing allowed, no crash
    empty = os.path.join(tmp, "empty.jsonl")
    open(empty, "w").close()
    for c in ("summary", "denied"):
        assert run(c, "--json", empty).returncode == 0
    out = os.path.join(tmp, "empty.yaml")
    assert run("suggest", "-o", out, empty).returncode == 0
    assert subprocess.run([POLICY, "check", out], capture_output=True).returncode == 0
    assert run("report", "--html", os.path.join(tmp, "e.html"), empty).returncode == 0
    v = run("verify", empty)
    assert v.returncode == 1 and b"no chained record" in v.stdout


def test_hostile_names_do_not_reach_the_terminal(tmp):
    p = os.path.join(tmp, "h.jsonl")
    open(p, "w").write(json.dumps({"time": "2026-01-01T00:00:00.000Z", "sandbox": "s",
                                   "event": "connect", "host": "x\u001b[2J.test",
                                   "decision": "deny", "reason": "\u001b]0;pwned\u0007"}) + "\n")
    for c in ("summary", "denied"):
        out = run(c, p).stdout
        assert b"\x1b" not in out and b"\x07" not in out, (c, out)


def test_c1_and_bidi_do_not_reach_the_terminal(tmp):
    """C1 CSI (U+009B) and a right-to-left override (U+202E) are valid
    UTF-8 a guest can put in a name: escaped in every text view, and in
    JSON as \\u escapes."""
    p = os.path.join(tmp, "c1.jsonl")
    open(p, "w").write(json.dumps({
        "time": "2026-01-01T00:00:00.000Z", "sandbox": "s\u202e",
        "event": "connect", "host": "x\u009b2J\u202egnp.test",
        "decision": "deny", "rule": "r\u009b1m",
        "reason": "\u202e\u2066why"}) + "\n")
    for c in (("summary",), ("denied",), ("summary", "--json")):
        out = run(*c, p).stdout
        assert b"x" in out, (c, out)
        for bad in (b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x81\xa6"):
            assert bad not in out, (c, bad, out)


def test_suggest_is_accepted_by_sandbox_policy(tmp):
    a = gen(tmp, 3000)
    out = os.path.join(tmp, "suggested.yaml")
    r = run("suggest", "-o", out, a)
    assert r.returncode == 0, r.stderr
    text = open(out).read()
    c = subprocess.run([POLICY, "check", out], capture_output=True, timeout=30)
    assert c.returncode == 0, c.stdout + c.stderr + text.encode()
    assert '"*.cdn.example.net"' in text  # 4 siblings under a private suffix
    assert '"*.deep.example.com"' in text
    assert '"*.github.com"' not in text  # only 2 siblings (api, codeload) + apex
    assert '"api.github.com"' in text and '"github.com"' in text
    assert re.search(r'"deb\.debian\.org"\n    ports: \[80\]', text), text
    assert re.search(r"# \d+ connections", text)
    # the suggested policy allows every connection the log had, on its port
    used = {(x["host"], x["port"]) for x in map(json.loads, open(a, "rb"))
            if x["event"] == "connect"}
    e = subprocess.run([POLICY, "explain", out, "--", *[f"{h}:{p}" for h, p in sorted(used)]],
                       capture_output=True, timeout=30)
    verdicts = re.findall(r"^(\S+) port (\d+): (\S+)$", e.stdout.decode(), re.M)
    assert len(verdicts) == len(used), e.stdout
    assert all(v[2] == "allow" for v in verdicts), e.stdout.decode()
    assert e.returncode == 0, e.stderr


def test_suggest_never_wildcards_a_public_suffix(tmp):
    p = os.path.join(tmp, "psl.jsonl")
    with open(p, "w") as f:
        for h in ("a.github.io", "b.github.io", "c.github.io", "x.co.uk", "y.co.uk", "z.co.uk"):
            f.write(json.dumps({"time": "2026-01-01T00:00:00.000Z", "event": "connect", "host": h,
                                "port": 443, "decision": "would-deny"}) + "\n")
    text = run("suggest", p).stdout.decode()
    assert "*." not in text.replace("'*.' only", ""), text
    assert '"a.github.io"' in text and '"z.co.uk"' in text
    out = os.path.join(tmp, "p.yaml")
    open(out, "w").write(text)
    c = subprocess.run([POLICY, "check", out], capture_output=True, timeout=30)
    assert c.returncode == 0, c.stdout + c.stderr


def chromium():
    for c in ("chromium", "chromium-browser"):
        if shutil.which(c):
            return shutil.which(c)
    pytest.skip("chromium not installed (make test-deps)")


def test_html_report_renders_and_escapes(tmp):
    a = gen(tmp, 3000)
    with open(a, "a") as f:
        f.write(json.dumps({"time": "2026-01-01T00:05:00.000Z", "sandbox": "evil</td><b id=injected>",
                            "event": "connect", "host": "<img src=x id=injected2>.test",
                            "sni": "<script>document.title='pwned'</script>",
                            "decision": "deny"}) + "\n")
    out = os.path.join(tmp, "report.html")
    r = run("report", "--html", out, a)
    assert r.returncode == 0, r.stderr
    html = open(out).read()
    assert not re.search(r"<(img|script|b id)", html)
    assert not re.search(r"(src|href)=\"?(https?:)?//", html)  # no network fetches
    prof = tempfile.mkdtemp()
    try:
        base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={prof}"]
        d = subprocess.run(base + ["--dump-dom", "file://" + out], capture_output=True, timeout=90)
        dom = d.stdout.decode()
        assert 'id="summary"' in dom and 'id="timeline"' in dom, d.stderr[-2000:]
        assert "<title>sandbox audit report</title>" in dom
        assert "id=\"injected\"" not in dom and "<img" not in dom
        assert "&lt;img src=x id=injected2&gt;.test" in dom
        rows = re.findall(r"<tr class=\"(\w+)\">", dom)
        assert len(rows) == 17 and rows.count("would") == 2 and rows.count("deny") == 1, rows
        assert len(re.findall(r"<g class=\"row\">", dom)) == 17
        assert dom.count("<rect") > 100
        png = os.path.join(tmp, "report.png")
        s = subprocess.run(base + ["--window-size=1200,1400", f"--screenshot={png}", "file://" + out],
                           capture_output=True, timeout=90)
        assert os.path.exists(png) and os.path.getsize(png) > 20000, s.stderr[-2000:]
    finally:
        shutil.rmtree(prof, ignore_errors=True)


def test_follow_survives_rotation(tmp):
    p = os.path.join(tmp, "f.jsonl")
    open(p, "w").close()
    # --from-start: the file is empty when the follower starts, so this
    # prints what "at the end" would, without a race against its first
    # open (no sleep until it has opened the file).
    f = subprocess.Popen([AUDIT, "follow", "--json", "--from-start", "--interval", "0.05",
                          "--decision", "deny", p],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""

    def read_until(n):
        # Read along until n records arrived (the event), instead of
        # sleeping; anything the follower prints after is kept too.
        nonlocal seen
        deadline = time.monotonic() + 10
        while seen.count(b"\n") < n and time.monotonic() < deadline:
            r, _, _ = select.select([f.stdout], [], [], 0.2)
            if r:
                d = os.read(f.stdout.fileno(), 65536)
                if not d:
                    break
                seen += d
    try:
        def rec(i, d):
            return json.dumps({"time": "2026-01-01T00:00:00.000Z", "event": "dns",
                               "host": f"h{i}.test", "decision": d}) + "\n"
        with open(p, "a") as w:
            for i in range(5):
                w.write(rec(i, "deny"))
                w.write(rec(i, "allow"))
        # The follower has read the old file (its five denials printed)
        # before it is rotated away.
        read_until(5)
        os.rename(p, p + ".1")  # rotate; a late write to the old file still counts
        with open(p + ".1", "a") as w:
            w.write(rec(5, "deny"))
        with open(p, "w") as w:
            for i in range(6, 9):
                w.write(rec(i, "deny"))
        read_until(9)
    finally:
        f.terminate()
        out, err = f.communicate(timeout=10)
    out = seen + out
    hosts = [json.loads(l)["host"] for l in out.splitlines()]
    assert hosts == [f"h{i}.test" for i in range(9)], (hosts, err)


def test_large_log_verified_and_summarised(tmp):
    # Correctness on a large log only: how fast is measured by
    # `make bench-audit`, as ratios against wc -l and jq in the same run,
    # never timed here (this runs under sanitizers).
    p = gen(tmp, 100000)
    r = run("verify", p)
    assert r.returncode == 0 and b"100001 records" in r.stdout
    r = run("summary", "--json", p)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 16


def test_aggregates_count_as_what_they_stand_for(tmp):
    # a first record, its aggregate (count 41), a connection's resolve
    # record next to its connect and close: 42 denied queries, 1 connection
    p = os.path.join(tmp, "agg.jsonl")
    t = "2026-01-01T00:00:0%d.000Z"
    recs = [
        {"time": t % 1, "sandbox": "s", "event": "dns", "conn": 1, "host": "flood.test",
         "qtype": "A", "decision": "deny", "rule": "default", "reason": "denied by policy"},
        {"time": t % 2, "sandbox": "s", "event": "dns", "conn": 1, "host": "flood.test",
         "qtype": "A", "decision": "deny", "rule": "default", "reason": "denied by policy",
         "count": 41, "first": t % 1, "last": t % 2},
        {"time": t % 3, "sandbox": "s", "event": "resolve", "conn": 2, "host": "ok.test",
         "port": 443, "decision": "would-deny", "rule": "default"},
        {"time": t % 4, "sandbox": "s", "event": "connect", "conn": 2, "host": "ok.test",
         "port": 443, "decision": "would-deny", "rule": "default"},
        {"time": t % 5, "sandbox": "s", "event": "close", "conn": 2, "host": "ok.test",
         "port": 443, "decision": "would-deny", "bytes_up": 5, "bytes_down": 7},
    ]
    write_lines(p, [json.dumps(r).encode() for r in recs])
    rows = {r["host"]: r for r in map(json.loads, run("summary", "--json", p).stdout.splitlines())}
    assert rows["flood.test"]["deny"] == 42, rows
    assert rows["ok.test"]["would_deny"] == 1, rows  # not the resolve record
    text = run("denied", p).stdout.decode().splitlines()
    assert len(text) == 3, text  # dns, its aggregate, connect: no resolve
    assert "(x41 from 2026-01-01T00:00:01.000Z to 2026-01-01T00:00:02.000Z)" in text[1], text
    out = os.path.join(tmp, "agg.yaml")
    assert run("suggest", "-o", out, p).returncode == 0
    assert re.search(r"# 1 connection", open(out).read()), open(out).read()
