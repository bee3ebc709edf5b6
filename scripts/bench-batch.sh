#!/usr/bin/env bash
# Batch scaling: 8 copies of a 100 MB mixed capture, --jobs 1 then --jobs 2,
# same machine, one run. Prints wall time, CPU time and peak RSS of each.
#
#   scripts/bench-batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=bench-data/mixed-100M.pcap
[ -f "$src" ] || python3 benches/gen_mixed_capture.py "$src" --size 100M
dir=bench-data/batch-in
rm -rf "$dir" bench-data/batch-out-1 bench-data/batch-out-2
mkdir -p "$dir"
for i in 1 2 3 4 5 6 7 8; do cp "$src" "$dir/node-$i.pcap"; done
cargo build --release --quiet --bin capsift
cat "$dir"/*.pcap > /dev/null
for j in 1 2; do
  tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %U %S %M" target/release/capsift batch "$dir" -o "bench-data/batch-out-$j" -j "$j" -q
  read -r wall user sys rss < "$tf"
  rm -f "$tf"
  echo "| \`capsift batch $dir -o bench-data/batch-out-$j -j $j -q\` | $j | $wall | $(python3 -c "print(f'{$user+$sys:.2f}')") | $((rss / 1024)) |"
done
