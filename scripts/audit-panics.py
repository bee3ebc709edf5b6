#!/usr/bin/env python3
"""Every unwrap/expect/panic (and unreachable!, todo!, unimplemented!,
assert!) in src/ must sit in test code: a `#[cfg(test)] mod ... { }` block,
or a file that is only declared as `#[cfg(test)] mod name;`. Test code is not compiled into capsift, so no
capture byte can reach it. Prints the count and any site outside tests;
exits 1 if there is one. (clippy denies the same outside tests; this
script shows the count and catches `assert!`, which clippy allows.)

    python3 scripts/audit-panics.py
"""
import glob
import re
import sys

SITE = re.compile(r"\.unwrap\(\)|\.expect\(|panic!|unreachable!|todo!|unimplemented!"
                  r"|\b(debug_)?assert(_eq|_ne)?!")
CALLS = re.compile(r"\.unwrap\(\)|\.expect\(|panic!")
CFG_TEST = re.compile(r"\s*#\[cfg\(test\)\]\s*$")
TEST_MOD_BLOCK = re.compile(r"\s*(pub(\([^)]*\))? )?mod \w+\s*\{")
TEST_MOD_FILE = re.compile(r"\s*(pub(\([^)]*\))? )?mod (\w+)\s*;")


def code_only(text):
    """`text` with comments, string and char literals blanked (newlines
    kept), so that braces and macro names inside them are not counted."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = len(re.match(r"r(#*)", text[i:]).group(1))
            end = '"' + "#" * hashes
            j = text.find(end, i + 2 + hashes)
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^'\\])'", text[i:])):
            out.append(" " * len(m.group(0)))
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def test_files():
    """Files declared only under `#[cfg(test)]` (`mod tests;`)."""
    found = set()
    for path in glob.glob("src/**/*.rs", recursive=True):
        lines = open(path, encoding="utf-8").read().split("\n")
        for i in range(len(lines) - 1):
            m = TEST_MOD_FILE.match(lines[i + 1])
            if CFG_TEST.match(lines[i]) and m:
                base = path[:-len("mod.rs")] if path.endswith("mod.rs") else path[:-3] + "/"
                if path.endswith(("lib.rs", "main.rs")):
                    base = "src/"
                found.update({f"{base}{m.group(3)}.rs", f"{base}{m.group(3)}/mod.rs"})
    return found


TEST_FILES = test_files()
sites = calls = 0
outside = []
for path in sorted(glob.glob("src/**/*.rs", recursive=True)):
    text = open(path, encoding="utf-8").read()
    lines = text.split("\n")
    code = code_only(text).split("\n")
    test_blocks = []
    for i in range(len(code) - 1):
        if CFG_TEST.match(code[i]) and TEST_MOD_BLOCK.match(code[i + 1]):
            depth = 0
            for j in range(i + 1, len(code)):
                depth += code[j].count("{") - code[j].count("}")
                if depth == 0:
                    break
            test_blocks.append((i, j))
    for i, line in enumerate(code):
        if not SITE.search(line):
            continue
        sites += 1
        calls += bool(CALLS.search(line))
        if path not in TEST_FILES and not any(a <= i <= b for a, b in test_blocks):
            outside.append(f"{path}:{i + 1}: {lines[i].strip()}")
print(f"{calls} unwrap/expect/panic lines and {sites} panic-capable lines in all "
      f"(asserts included) in src/; outside test code: {len(outside)}")
for o in outside:
    print("  " + o)
sys.exit(1 if outside else 0)
