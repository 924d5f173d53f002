#!/usr/bin/env bash
# Lists the methods (constructors, operators, local functions with block bodies) in src/ longer than a limit, longest
# first: "<lines> <file>:<line> <name>", marked [kernel] under LfmSharp.Kernels (SIMD kernel bodies may stay long).
#   scripts/long-methods.sh [--max N (default 80)] [--fail]   --fail: exit 1 when a method outside the kernels is over
# A brace-and-indent scan, not a parser: it relies on the repository's layout (Allman braces, 4-space indent), which
# `dotnet format` keeps. Expression-bodied members and lambdas inside a method count towards that method.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

args = sys.argv[1:]
limit = int(args[args.index("--max") + 1]) if "--max" in args else 80
fail = "--fail" in args
NOT_METHOD = re.compile(r"^(if|else|for|foreach|while|switch|using|lock|fixed|try|catch|finally|do|return|case|new|"
                        r"checked|unchecked|unsafe|await|yield|throw|get|set|init|add|remove)\b")
TYPE_DECL = re.compile(r"\b(class|struct|record|interface|enum)\b")

def indent(line):
    return len(line) - len(line.lstrip(" "))

def methods(path):
    lines = open(path, encoding="utf-8-sig").read().split("\n")
    for i, line in enumerate(lines):
        if line.strip() != "{":
            continue
        n = indent(line)
        h = i - 1  # walk back over the signature's continuation lines to its head
        while h >= 0 and (lines[h].strip() == "" or indent(lines[h]) > n):
            h -= 1
        if h < 0 or indent(lines[h]) != n:
            continue
        head = lines[h].strip()
        paren = head.find("(")
        if (paren < 0 or NOT_METHOD.match(head) or TYPE_DECL.search(head) or "=>" in head
                or "=" in head[:paren] or head.startswith(("[", "//", "."))):
            continue
        end = next((k for k in range(i + 1, len(lines)) if lines[k].rstrip() == " " * n + "}"), None)
        if end is None:
            continue
        m = re.search(r"(\w+)\s*(<[^()]*>)?\s*\($", head[:paren + 1])
        yield h + 1, end - h + 1, m.group(1) if m else head[:paren]

found = []
for root, dirs, files in os.walk("src"):
    dirs[:] = sorted(d for d in dirs if d not in ("bin", "obj"))
    for f in sorted(files):
        if f.endswith(".cs"):
            path = os.path.join(root, f)
            for line, length, name in methods(path):
                if length > limit:
                    kernel = path.startswith("src/LfmSharp.Kernels/")
                    found.append((length, path, line, name, kernel))

found.sort(key=lambda x: (-x[0], x[1], x[2]))
for length, path, line, name, kernel in found:
    print(f"{length:5} {path}:{line} {name}{'  [kernel]' if kernel else ''}")
others = sum(1 for x in found if not x[4])
print(f"{len(found)} method(s) over {limit} lines ({others} outside the kernels)")
sys.exit(1 if fail and others else 0)
PY
