#!/usr/bin/env bash
# Times `capsift scrub` against tcprewrite and editcap on the same file, in
# one run, and prints a Markdown table for docs/PERFORMANCE.md.
#
#   scripts/bench-scrub.sh [SIZE]        # default 1G (benches/gen_mixed_capture.py)
#
# Outputs go to bench-data/scrub-out/ (gitignored) and are deleted after each
# command; the input is read once beforehand so the page cache holds it.
# tcprewrite --seed rewrites IPv4/IPv6 addresses (not prefix-preserving) and
# keeps payload; editcap -s 128 cuts every packet at 128 bytes (payload of
# short packets and inner headers of long tunnels included). Neither parses
# DNS or TLS, so they are the floor for "rewrite every packet".
set -euo pipefail
cd "$(dirname "$0")/.."
size="${1:-1G}"
file="bench-data/mixed-${size}.pcap"
[ -f "$file" ] || python3 benches/gen_mixed_capture.py "$file" --size "$size"
for t in tcprewrite editcap /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (apt-get install tcpreplay tshark time)"; exit 1; }
done
cargo build --release --quiet --bin capsift
out=bench-data/scrub-out
mkdir -p "$out"
key="$out/key"
rm -f "$key"
cat "$file" > /dev/null
bytes=$(stat -c %s "$file")

run() { # name, output file, command...
  local name="$1" o="$2"; shift 2
  local tf
  tf=$(mktemp)
  /usr/bin/time -o "$tf" -f "%e %U %S %M" "$@" > /dev/null 2>&1 || true
  read -r wall user sys rss < "$tf"
  rm -f "$tf"
  local size_out
  size_out=$(stat -c %s "$o" 2>/dev/null || echo 0)
  rm -f "$o"
  printf '| %s | `%s` | %s | %s | %s | %s | %s |\n' "$name" "$*" "$wall" \
    "$(python3 -c "print(f'{$user+$sys:.2f}')")" \
    "$(python3 -c "print(f'{$bytes/1e9/max($wall,1e-9):.2f}')")" "$((rss / 1024))" \
    "$(python3 -c "print(f'{$size_out/1e6:.0f}')")"
}

echo "file: $file ($bytes bytes)"
echo
echo "| tool | command | wall s | CPU s | GB/s (wall) | peak RSS MB | output MB |"
echo "|---|---|---|---|---|---|---|"
run "capsift scrub (default policy)" "$out/a.pcapng" target/release/capsift scrub "$file" -o "$out/a.pcapng"
run "capsift scrub --anonymize" "$out/b.pcapng" target/release/capsift scrub "$file" -o "$out/b.pcapng" --anonymize --key-file "$key"
run "capsift scrub --keep dns --keep tls-handshake --anonymize --hash-names" "$out/c.pcapng" target/release/capsift scrub "$file" -o "$out/c.pcapng" --keep dns --keep tls-handshake --anonymize --hash-names --key-file "$key"
run "tcprewrite --seed" "$out/d.pcap" tcprewrite --seed=42 -i "$file" -o "$out/d.pcap"
run "editcap -s 128" "$out/e.pcap" editcap -s 128 "$file" "$out/e.pcap"
