#!/usr/bin/env bash
# Batch scaling on this machine, one run of this script:
#
#  1. 8 copies of a 100 MB mixed capture, `--jobs 1` and `--jobs 2`
#     alternately, RUNS times each (default 10), fresh output directory each
#     time; every run's wall time, CPU time and peak RSS, then the medians
#     and the ratio of the median wall times (the #8 target: at most 0.55).
#     Runs alternate so that a slow moment of the VM hits both settings.
#     Alternating with them, the same 8 files as two independent
#     `--jobs 1` processes of 4 files each, run at once: no shared state at
#     all, so their wall time is what this machine allows for two cores on
#     this work (its own parallel efficiency), the bar for `--jobs 2`.
#  2. An uneven batch, the 1 GB capture beside 4 of the 100 MB ones, with
#     `--jobs 2`, five times: the batch's wall time is the big capture's, the case where
#     idle workers taking over its hashing matters.
#
#     With BASELINE=path/to/another/capsift, the uneven batch alternates
#     that build and this one (to measure a change).
#
#   scripts/bench-batch.sh [RUNS]
#   BASELINE=/tmp/capsift-old scripts/bench-batch.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
src=bench-data/mixed-100M.pcap
big=bench-data/mixed-1G.pcap
[ -f "$src" ] || python3 benches/gen_mixed_capture.py "$src" --size 100M
[ -f "$big" ] || python3 benches/gen_mixed_capture.py "$big" --size 1G
dir=bench-data/batch-in
uneven=bench-data/batch-uneven
halves=bench-data/batch-half
rm -rf "$dir" "$uneven" "$halves" bench-data/batch-out-*
mkdir -p "$dir" "$uneven" "$halves/a" "$halves/b"
for i in 1 2 3 4 5 6 7 8; do cp "$src" "$dir/node-$i.pcap"; done
for i in 1 2 3 4; do ln "$dir/node-$i.pcap" "$halves/a/"; done
for i in 5 6 7 8; do ln "$dir/node-$i.pcap" "$halves/b/"; done
for i in 1 2 3 4; do ln "$dir/node-$i.pcap" "$uneven/node-$i.pcap"; done
ln "$big" "$uneven/hypervisor.pcap"
cargo build --release --quiet --bin capsift
# Write the copies out before timing anything: otherwise the kernel flushes
# 800 MB of dirty pages during the first runs, on the same two cores.
sync
cat "$dir"/*.pcap "$big" > /dev/null

results=$(mktemp)
trap 'rm -f "$results"' EXIT
measure() { # label out jobs input [binary]
  local tf
  tf=$(mktemp)
  rm -rf "$2"
  /usr/bin/time -o "$tf" -f "%e %U %S %M" "${5:-target/release/capsift}" batch "$4" -o "$2" -j "$3" -q
  read -r wall user sys rss < "$tf"
  rm -f "$tf"
  echo "$1 $wall $(python3 -c "print(f'{$user+$sys:.2f}')") $((rss / 1024))" | tee -a "$results"
}
echo "# run: label wall_s cpu_s peak_rss_mb"
two_processes() {
  rm -rf bench-data/batch-out-a bench-data/batch-out-b
  local s e
  s=$(date +%s.%N)
  target/release/capsift batch "$halves/a" -o bench-data/batch-out-a -j 1 -q &
  target/release/capsift batch "$halves/b" -o bench-data/batch-out-b -j 1 -q
  wait
  e=$(date +%s.%N)
  echo "two-j1 $(python3 -c "print(f'{$e-$s:.2f}')") 0 0" | tee -a "$results"
}
for r in $(seq 1 "$runs"); do
  measure j1 bench-data/batch-out-1 1 "$dir"
  measure j2 bench-data/batch-out-2 2 "$dir"
  two_processes
done
for r in 1 2 3 4 5; do
  measure uneven-j2 bench-data/batch-out-uneven 2 "$uneven"
  if [ -n "${BASELINE:-}" ]; then
    measure uneven-j2-baseline bench-data/batch-out-uneven 2 "$uneven" "$BASELINE"
  fi
done
python3 - "$results" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for label, wall, cpu, rss in rows:
    by.setdefault(label, []).append((float(wall), float(cpu), int(rss)))
print()
print("| command | runs | median wall (s) | wall range (s) | median CPU (s) | peak RSS (MB) |")
print("|---|---|---|---|---|---|")
cmd = {"j1": "capsift batch bench-data/batch-in -o bench-data/batch-out-1 -j 1 -q",
       "j2": "capsift batch bench-data/batch-in -o bench-data/batch-out-2 -j 2 -q",
       "uneven-j2": "capsift batch bench-data/batch-uneven -o bench-data/batch-out-uneven -j 2 -q"}
cmd["uneven-j2-baseline"] = cmd["uneven-j2"] + " (the BASELINE build)"
cmd["two-j1"] = ("capsift batch bench-data/batch-half/a -j 1 -q & capsift batch "
                 "bench-data/batch-half/b -j 1 -q (at once; CPU and RSS not taken)")
for label, v in by.items():
    w = [x[0] for x in v]
    print(f"| `{cmd[label]}` | {len(v)} | {st.median(w):.2f} | {min(w):.2f}-{max(w):.2f} "
          f"| {st.median(x[1] for x in v):.2f} | {min(x[2] for x in v)}-{max(x[2] for x in v)} |")
j1 = [x[0] for x in by["j1"]]
j2 = [x[0] for x in by["j2"]]
pairs = [b / a for a, b in zip(j1, j2)]
print()
print(f"ratio of median wall times, -j 2 / -j 1: {st.median(j2) / st.median(j1):.3f} "
      f"(per alternating pair: median {st.median(pairs):.3f}, "
      f"{sum(p <= 0.55 for p in pairs)} of {len(pairs)} pairs at or under 0.55)")
two = [x[0] for x in by["two-j1"]]
print(f"two independent -j 1 processes on 4 files each / -j 1 on 8: "
      f"{st.median(two) / st.median(j1):.3f}; -j 2 / that: {st.median(j2) / st.median(two):.3f}")
EOF
