#!/usr/bin/env python3
"""Every unwrap/expect/panic (and unreachable!, todo!, unimplemented!,
assert!) in src/ must sit in test code: a `#[cfg(test)] mod ... { }` block
or src/capture/tests.rs. Test code is not compiled into capsift, so no
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
TEST_FILES = {"src/capture/tests.rs"}

sites = calls = 0
outside = []
for path in sorted(glob.glob("src/**/*.rs", recursive=True)):
    lines = open(path, encoding="utf-8").read().split("\n")
    test_blocks = []
    for i, line in enumerate(lines):
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(
                r"\s*(pub(\([^)]*\))? )?mod \w+\s*\{", lines[i + 1]):
            depth = 0
            for j in range(i + 1, len(lines)):
                depth += lines[j].count("{") - lines[j].count("}")
                if depth == 0:
                    break
            test_blocks.append((i, j))
    for i, line in enumerate(lines):
        code = line.split("//")[0]
        if not SITE.search(code):
            continue
        sites += 1
        calls += bool(CALLS.search(code))
        if path not in TEST_FILES and not any(a <= i <= b for a, b in test_blocks):
            outside.append(f"{path}:{i + 1}: {line.strip()}")
print(f"{calls} unwrap/expect/panic lines and {sites} panic-capable lines in all "
      f"(asserts included) in src/; outside test code: {len(outside)}")
for o in outside:
    print("  " + o)
sys.exit(1 if outside else 0)
