#!/usr/bin/env bash
# Run one fuzz target for SECONDS (default 600) and record its CPU time.
#   fuzz/run.sh TARGET [SECONDS]
# Needs: rustup nightly, cargo install cargo-fuzz; seeds from fuzz/make_seeds.py.
set -euo pipefail
cd "$(dirname "$0")"
t="$1"; secs="${2:-600}"
mkdir -p corpus/"$t" artifacts/"$t" logs
max_len=4096
case "$t" in capture|scrub|tls_stream) max_len=262144 ;; esac
/usr/bin/time -f "$t: %e s wall, %U s user, %S s sys, %M KB max RSS" -o "logs/$t.time" \
  cargo +nightly fuzz run -O "$t" corpus/"$t" -- -max_total_time="$secs" -max_len="$max_len" \
  -timeout=10 -rss_limit_mb=2048 -artifact_prefix=artifacts/"$t"/ -print_final_stats=1 \
  > "logs/$t.log" 2>&1 || true
cat "logs/$t.time"
tail -n 30 "logs/$t.log" | grep -E "stat::|Done|ERROR|SUMMARY|crash|panicked" || true
