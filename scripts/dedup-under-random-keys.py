#!/usr/bin/env python3
"""Scrub one capture with N new random keys (--anonymize --hash-names, DNS and
TLS kept) and count how often the copy detector's `capture.duplicate_points`
finding differs from the original's (docs/scrub.md). Anonymized addresses give
other packet fingerprints, hence other slot collisions in the detector's
direct-mapped table, which can hide a copy.

    python3 scripts/dedup-under-random-keys.py [CAPTURE] [N]
"""
import collections, json, os, subprocess, sys, tempfile

CAPSIFT = os.environ.get("CAPSIFT", "target/release/capsift")
capture = sys.argv[1] if len(sys.argv) > 1 else "captures/lab/vxlan-8472-interleaved.pcapng"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 60


def copies(path):
    r = subprocess.run([CAPSIFT, "analyze", "--format", "json", "-q", path],
                       capture_output=True, text=True, check=False)
    for f in json.loads(r.stdout)["findings"]:
        if f["kind"] == "capture.duplicate_points":
            return f["details"]["copies"], tuple(f["evidence"]["frames"])
    return 0, ()


original = copies(capture)
seen = collections.Counter()
differ = 0
with tempfile.TemporaryDirectory() as tmp:
    for _ in range(n):
        key, out = os.path.join(tmp, "key"), os.path.join(tmp, "out.pcapng")
        if os.path.exists(key):
            os.remove(key)
        subprocess.run([CAPSIFT, "scrub", capture, "-o", out, "--keep", "dns", "--keep", "tls-handshake",
                        "--anonymize", "--hash-names", "--key-file", key], capture_output=True, check=False)
        got = copies(out)
        seen[got[0]] += 1
        differ += got != original
print(f"{capture}: original {original[0]} copies; over {n} random keys: "
      f"{dict(sorted(seen.items()))} (copies: keys); finding differs for {differ} of {n}")
