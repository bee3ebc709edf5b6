#!/usr/bin/env python3
"""Conformance check: `capsift scrub` output as tshark sees it.

Usage:
    python3 tests/conformance/check_scrub.py [--capsift PATH] [--jobs N] [DIR_OR_FILE ...]

For every capture (default: `captures/`, strict, and `../shared/corpus/` when present):
scrub it twice (default policy; and `--keep dns --keep tls-handshake --anonymize
--hash-names`), then

  * tshark opens the output without an error and counts the same frames;
  * `capsift scrub --verify` passes (every packet there, no removed payload left);
  * (default policy) tshark's protocol stack of every frame, cut after the innermost
    transport layer (tcp, udp, icmp, icmpv6, ...), is the same as the original's.

On `captures/` every check must hold. On the shared corpus (other projects' captures,
some with link types capsift does not decode, whose bytes it therefore removes) the
first two must hold and protocol-stack differences are counted and printed.

Only the Python 3 standard library and tshark are needed. Exit status: 0 when all
strict checks held, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPT_DIR.parent.parent
sys.path.insert(0, str(SCRIPT_DIR))
import conformance_common as cc  # noqa: E402

# Fragment reassembly off: scrubbed fragments cannot be reassembled (their payload is
# gone), so with it on tshark would dissect the same frames differently on each side.
DECODE_AS = ["-d", "udp.port==8472,vxlan", "-d", "udp.port==51871,wg",
             "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
DEFAULT_DIRS = ["captures", "../shared/corpus"]  # relative to the repository root
TRANSPORT = {"tcp", "udp", "icmp", "icmpv6", "sctp", "igmp", "esp", "ah", "udplite", "dccp"}
NOISE = {"_ws.short", "_ws.malformed", "_ws.expert", "data"}


def tshark(args, env):
    return subprocess.run(["tshark", "-n", *DECODE_AS, *args], capture_output=True, text=True,
                          timeout=600, env=env)


def stacks(path, env):
    # frame.encap_type: tshark also lists some pcapng blocks without packets as frames.
    r = tshark(["-r", str(path), "-T", "fields", "-e", "frame.encap_type", "-e", "frame.protocols"], env)
    out = []
    for line in r.stdout.splitlines():
        encap, _, protos = line.partition("\t")
        if not encap:
            continue
        toks = []
        for t in protos.split(":"):
            if t not in NOISE and (not toks or toks[-1] != t):
                toks.append(t)
        last = max((i for i, t in enumerate(toks) if t in TRANSPORT), default=len(toks) - 1)
        out.append(":".join(toks[: last + 1]))
    return r, out


def check(capsift, path: Path, strict: bool, env):
    problems, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        for policy, extra in (("default", []),
                              ("kept+anonymized", ["--keep", "dns", "--keep", "tls-handshake",
                                                   "--anonymize", "--hash-names", "--key-file", str(key)])):
            out = Path(tmp) / f"{policy}.pcapng"
            r = subprocess.run([capsift, "scrub", str(path), "-o", str(out), *extra],
                               capture_output=True, text=True, timeout=600)
            if r.returncode not in (0, 2) or not out.exists():
                problems.append(f"{policy}: scrub failed ({r.returncode}): {cc.first_line(r.stderr)}")
                continue
            v = subprocess.run([capsift, "scrub", "--verify", str(path), str(out)],
                               capture_output=True, text=True, timeout=600)
            if v.returncode != 0:
                problems.append(f"{policy}: verify failed: {' / '.join(v.stdout.splitlines())}")
            so, s_stacks = stacks(out, env)
            if so.returncode != 0 or "appears to be damaged" in so.stderr or "isn't a capture" in so.stderr:
                problems.append(f"{policy}: tshark cannot read the output: {cc.first_line(so.stderr)}")
                continue
            if policy != "default":
                continue
            oo, o_stacks = stacks(path, env)
            if oo.returncode != 0:
                # tshark itself cannot read the original completely (damaged input).
                o_stacks = o_stacks[: len(s_stacks)]
            if len(o_stacks) != len(s_stacks) and oo.returncode == 0:
                problems.append(f"frames: tshark sees {len(o_stacks)} in the original, {len(s_stacks)} scrubbed")
            diff = [i + 1 for i, (a, b) in enumerate(zip(o_stacks, s_stacks)) if a != b]
            if diff:
                i = diff[0] - 1
                msg = (f"{len(diff)} of {len(o_stacks)} frames have another protocol stack, "
                       f"e.g. frame {diff[0]}: {o_stacks[i]} -> {s_stacks[i]}")
                (problems if strict else notes).append(msg)
    return path, strict, problems, notes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capsift", default=str(REPO_ROOT / "target/release/capsift"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("paths", nargs="*")
    a = ap.parse_args()
    if not shutil.which("tshark"):
        print("check_scrub: tshark not found on PATH", file=sys.stderr)
        return 2
    if not Path(a.capsift).exists():
        print(f"check_scrub: {a.capsift} not found: build with cargo build --release", file=sys.stderr)
        return 2
    work = []
    if a.paths:
        caps, skipped = cc.discover(a.paths, True, DEFAULT_DIRS)
        work = [(c.path, True) for c in caps]
    else:
        # Strict on our own captures; the corpus only counts differences.
        # cc.discover leaves out captures/hostile/ (broken on purpose).
        caps, skipped = cc.discover(["captures"], False, DEFAULT_DIRS)
        work = [(c.path, True) for c in caps]
        corpus, more = cc.discover(["../shared/corpus"], False, DEFAULT_DIRS)
        work += [(c.path, False) for c in corpus]
        skipped += more
    for line in skipped:
        print(line)
    env = dict(os.environ)
    env["WIRESHARK_CONFIG_DIR"] = tempfile.mkdtemp()  # a clean profile
    failed = 0
    counted_notes = 0
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        for path, strict, problems, notes in ex.map(lambda w: check(a.capsift, w[0], w[1], env), work):
            rel = os.path.relpath(path, REPO_ROOT)
            if problems:
                failed += 1
                print(f"FAIL {rel}")
                for p in problems:
                    print(f"     {p}")
            elif notes:
                counted_notes += 1
                print(f"note {rel}: {notes[0]}")
    print(f"check_scrub: {len(work) - failed}/{len(work)} files passed; "
          f"{counted_notes} corpus files with protocol-stack differences (not failures)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
