#!/usr/bin/env python3
"""Check every #include against the allowed include graph in docs/design.md.

The graph is the "Folder map" table of docs/design.md (the rows after the
`include-graph` marker): a file in folder F may include files of F itself
and of the folders in F's "may include" column, and the external libraries
named there; nothing else. A folder with C sources that is not in the table
is an error too, so a new folder must be placed in the graph.

A module's private header may be included only by the module's own files:
the list after the `private-headers` marker in docs/design.md names each
private header and its includers (`- `HEADER`: `FILE`, `FILE`, ...`).

Usage: tests/check_includes.py [ROOT]   (exit 0 = ok, 1 = violations)
"""
import os
import re
import subprocess
import sys

# External libraries by the headers that pull them in.
LIBRARIES = {
    "libevent": re.compile(r"^(event2/|event\.h$|evdns\.h$|evhttp\.h$|evutil\.h$)"),
    "openssl": re.compile(r"^openssl/"),
    "c-ares": re.compile(r"^ares"),
    "libyaml": re.compile(r"^yaml\.h$"),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def load_graph(root):
    path = os.path.join(root, "docs", "design.md")
    graph = {}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        start = next(i for i, l in enumerate(lines) if "include-graph" in l)
    except StopIteration:
        sys.exit(f"{path}: no include-graph marker before the folder table")
    for n, line in enumerate(lines[start + 1:], start + 2):
        if not line.startswith("|"):
            if graph:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4:
            sys.exit(f"{path}:{n}: folder table row needs 4 cells, has {len(cells)}")
        folder = cells[0].strip("`").rstrip("/")
        if folder == "folder" or set(folder) <= set("-: "):
            continue
        if not re.fullmatch(r"[a-z_]+", folder):
            sys.exit(f"{path}:{n}: bad folder name {cells[0]!r}")
        allowed = {a.strip() for a in cells[3].split(",") if a.strip() not in ("", "-")}
        graph[folder] = (allowed, n)
    if not graph:
        sys.exit(f"{path}: include-graph table is empty")
    for folder, (allowed, n) in graph.items():
        for a in allowed:
            if a not in graph and a not in LIBRARIES:
                sys.exit(f"{path}:{n}: {folder}/ may include {a!r}, which is "
                         "neither a folder in the table nor a known library")
    return graph


def load_private(root):
    """{header: (set of files allowed to include it, line)}"""
    path = os.path.join(root, "docs", "design.md")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next((i for i, l in enumerate(lines) if "private-headers" in l), None)
    private = {}
    if start is None:
        return private
    for n, line in enumerate(lines[start + 1:], start + 2):
        if not line.startswith("- `"):
            if private:
                break
            continue
        m = re.fullmatch(r"- `([^`]+)`: (.+)", line.strip())
        if not m:
            sys.exit(f"{path}:{n}: private header line must read "
                     "- `HEADER`: `FILE`, `FILE`, ...")
        files = set(re.findall(r"`([^`]+)`", m.group(2)))
        private[m.group(1)] = (files, n)
    for h, (files, n) in private.items():
        for f in files | {h}:
            if not os.path.exists(os.path.join(root, f)):
                sys.exit(f"{path}:{n}: {f} does not exist")
    return private


def sources(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h"],
                             check=True, capture_output=True, text=True).stdout
        return out.split()
    except (OSError, subprocess.CalledProcessError):
        found = []
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith((".c", ".h")):
                    found.append(os.path.relpath(os.path.join(d, f), root))
        return found


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), ".."))
    graph = load_graph(root)
    private = load_private(root)
    errors = []
    checked = 0
    for rel in sorted(sources(root)):
        top = rel.split("/")[0]
        if "/" not in rel or top in ("tests", "build"):
            continue
        if top not in graph:
            errors.append(f"{rel}: folder {top}/ is not in the include graph "
                          "(docs/design.md, Folder map)")
            continue
        allowed, _ = graph[top]
        checked += 1
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                if kind == "<":
                    for lib, pat in LIBRARIES.items():
                        if pat.search(name) and lib not in allowed:
                            errors.append(f"{rel}:{n}: includes <{name}> ({lib}), "
                                          f"which {top}/ may not use")
                    continue
                target = os.path.normpath(os.path.join(os.path.dirname(rel), name))
                if target.startswith("..") or os.path.isabs(target):
                    errors.append(f"{rel}:{n}: \"{name}\" leaves the source tree")
                    continue
                if not os.path.exists(os.path.join(root, target)):
                    errors.append(f"{rel}:{n}: \"{name}\" does not exist")
                    continue
                if target in private and rel not in private[target][0]:
                    errors.append(f"{rel}:{n}: \"{name}\" is private to the "
                                  "files docs/design.md lists for it "
                                  f"(line {private[target][1]})")
                    continue
                dest = target.split("/")[0] if "/" in target else "."
                if dest != top and dest not in allowed:
                    errors.append(f"{rel}:{n}: \"{name}\" is in {dest}/, which "
                                  f"{top}/ may not include (may include: "
                                  f"{', '.join(sorted(allowed)) or 'nothing'})")
    for e in errors:
        print(f"check-includes: {e}", file=sys.stderr)
    if errors:
        print(f"check-includes: {len(errors)} include(s) break the graph in "
              "docs/design.md", file=sys.stderr)
        return 1
    print(f"check-includes: ok ({checked} files, {len(graph)} folders)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
