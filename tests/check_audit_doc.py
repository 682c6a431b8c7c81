#!/usr/bin/python3
"""Every "reason" an example in the docs shows is one the code writes.

Scans docs/*.md and README.md for JSON `"reason": "..."` strings and checks
that each is produced by a C string literal of the project (adjacent
literals joined, printf conversions such as %s or %03llu matching any
text): either the literal itself or a format string it fills in. A
reason made up in the docs, or one the code stopped writing, fails with
the file and line. Pure text, no build needed: `make check-audit-doc`,
run by `make test`.

usage: check_audit_doc.py [REPO]
"""

import glob
import json
import os
import re
import sys

REASON = re.compile(r'"reason"\s*:\s*"((?:[^"\\]|\\.)*)"')
# a C string literal, and the blanks/comments that may separate adjacent ones
LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
BETWEEN = re.compile(r'^(?:\s|/\*.*?\*/|//[^\n]*\n)*$', re.S)
CONVERSION = re.compile(r"%(%|[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?"
                        r"(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfgGcsp])")
C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'",
             "0": "\0"}
# The folders whose code writes sandbox-proxy's audit log (the proxy, the
# parsers and policy engine whose messages become reasons, the log
# writer). Not audit/: its `generate` writes made-up records for tests.
WRITERS = ("proxy", "parse", "policy", "auditlog", "common")


def c_unescape(s):
    return re.sub(r"\\(.)", lambda m: C_ESCAPES.get(m.group(1), m.group(1)), s)


def literals(text):
    """The string literals of one C file, adjacent ones joined."""
    out, cur, end = [], None, None
    for m in LITERAL.finditer(text):
        if cur is not None and BETWEEN.match(text[end:m.start()]):
            cur += m.group(1)
        else:
            if cur is not None:
                out.append(cur)
            cur = m.group(1)
        end = m.end()
    if cur is not None:
        out.append(cur)
    return [c_unescape(s) for s in out]


def pattern(lit):
    """(regex source for what a format string can print, the indexes of its
    %s parts, whether it has enough fixed text to say anything alone)."""
    parts, strs, pos, fixed = [], [], 0, ""
    for m in CONVERSION.finditer(lit):
        chunk = lit[pos:m.start()]
        parts.append(re.escape(chunk))
        fixed += chunk
        if m.group(1) == "%":
            parts.append("%")
        else:
            if m.group(1).endswith("s"):
                strs.append(len(parts))
            parts.append(".+?")
        pos = m.end()
    parts.append(re.escape(lit[pos:]))
    fixed += lit[pos:]
    return parts, strs, sum(c.isalpha() for c in fixed) >= 3


def composed(formats, pieces, reason):
    """Regexes for a format with little fixed text ("%s %s:%u") whose one
    %s is filled by a known literal or format (one level of nesting, as in
    fmt_buf(why, "%s %s:%u", "denied by rule for", name, port)). Only
    pieces whose longest fixed part occurs in the reason are tried."""
    cands = sorted({src for src, key in pieces if key in reason}, key=len, reverse=True)
    if not cands:
        return
    alt = "(?:" + "|".join(cands) + ")"
    for parts, strs in formats:
        # The other conversions stand for a name, number or address here:
        # no spaces, or "%s %s" would let any known phrase be followed by
        # any made-up text.
        token = [r"[^ ]+?" if x == ".+?" else x for x in parts]
        for i in strs:
            yield re.compile("".join(token[:i] + [alt] + token[i + 1:]), re.S)


def fixed_parts(lit):
    return [x for x in CONVERSION.split(lit) if x] if "%" in lit else [lit]


def sources(repo):
    for d in WRITERS:
        for path in sorted(glob.glob(os.path.join(repo, d, "**", "*.[ch]"),
                                     recursive=True)):
            yield os.path.relpath(path, repo), open(path, errors="replace").read()


def docs(repo):
    paths = sorted(glob.glob(os.path.join(repo, "docs", "*.md")))
    paths.append(os.path.join(repo, "README.md"))
    for path in paths:
        if os.path.exists(path):
            yield os.path.relpath(path, repo), open(path).read()


def main(argv):
    repo = os.path.abspath(argv[1] if len(argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    exact, patterns, weak, pieces = set(), [], [], []
    for _, text in sources(repo):
        for lit in literals(text):
            exact.add(lit)
            parts, strs, alone = pattern(lit) if "%" in lit else ([re.escape(lit)], [], True)
            if alone:
                if "%" in lit:
                    patterns.append(re.compile("".join(parts), re.S))
                # a piece for composed(): enough fixed text to be specific
                fixed = "".join(x for x in fixed_parts(lit) if not x.startswith("%"))
                if sum(c.isalpha() for c in fixed) >= 6:
                    key = max((x for x in fixed_parts(lit) if not x.startswith("%")),
                              key=len)
                    pieces.append(("".join(parts), key))
            elif strs:
                weak.append((parts, strs))
    bad, n = [], 0
    for rel, text in docs(repo):
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in REASON.finditer(line):
                n += 1
                try:
                    reason = json.loads('"' + m.group(1) + '"')
                except ValueError:
                    bad.append(f"{rel}:{lineno}: reason is not a JSON string: {m.group(0)}")
                    continue
                if reason in exact or any(p.fullmatch(reason) for p in patterns):
                    continue
                if any(p.fullmatch(reason) for p in composed(weak, pieces, reason)):
                    continue
                bad.append(f"{rel}:{lineno}: reason {reason!r} is not written by the "
                           "code (no C string or format string produces it)")
    if n == 0:
        bad.append("docs: no \"reason\" examples found; is docs/audit-log.md there?")
    for b in bad:
        print(b, file=sys.stderr)
    if bad:
        print("check-audit-doc: regenerate the examples with `make audit-examples`, "
              "or fix the text", file=sys.stderr)
        return 1
    print(f"check-audit-doc: ok ({n} reasons)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
