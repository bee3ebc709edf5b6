#!/usr/bin/env bash
# The serial end of a batch: from the exit of its last worker thread to the
# process's exit_group (the last row groups, the tables' footers, fsync and
# rename, the report), measured with strace on the thread exits only
# (--seccomp-bpf: no other system call stops), RUNS times (default 6).
# (The workers exit together: the first to run out of captures hashes for
# the other until it is done, so their exits do not show how unevenly
# their analyses ended.)
#
#   scripts/bench-serial-end.sh [RUNS]
#
# Needs strace, target/release/capsift and the copies scripts/bench-batch.sh
# makes in bench-data/batch-in/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-6}
trace=$(mktemp)
out=$(mktemp -d)
trap 'rm -rf "$trace" "$out"' EXIT
for r in $(seq 1 "$runs"); do
  rm -rf "$out/b"
  strace -f --seccomp-bpf -ttt -e trace=exit,exit_group -o "$trace" \
    target/release/capsift batch bench-data/batch-in -o "$out/b" -j 2 -q
  python3 - "$trace" <<'PY'
import re, sys
exits, end, names = [], None, {}
for line in open(sys.argv[1]):
    m = re.match(r"(\d+)\s+([\d.]+)\s+(exit|exit_group)\(", line)
    if m:
        t = float(m.group(2))
        if m.group(3) == "exit":
            exits.append(t)
        else:
            end = t
# The workers exit first; the tables' finishing threads (5) after them.
workers = sorted(exits)[:2]
print(f"serial end {1000 * (end - workers[-1]):.1f} ms")
PY
done
