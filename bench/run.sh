#!/bin/sh
# SPDX-License-Identifier: MIT
# Router benchmark: tables of 1 000, 100 000 and 1 000 000 records measured
# one after the other in one run (each in its own process, for its load time
# and peak memory), then all three interleaved in one process (the fairer
# ratio when the machine is noisy); prints each size and the ratios to 1k.
# Usage: bench/run.sh [BUILD_DIR] [SECONDS]
set -eu
build=${1:-.}
secs=${2:-2}
bin="$build/bench/bench_router"
[ -x "$bin" ] || { echo "bench/run.sh: build first ($bin missing)" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for n in 1000 100000 1000000; do
    "$bin" "$n" "$secs" | tee -a "$out"
done
echo "interleaved (all sizes loaded in one process, measured in alternating 50 ms slices):"
"$bin" --interleave "$secs" 1000 100000 1000000
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
  END {
    printf "ratio per_s 100k/1k = %.2f\n", v[2, "per_s"] / v[1, "per_s"]
    printf "ratio per_s 1M/1k   = %.2f  (target >= 0.70)\n", v[3, "per_s"] / v[1, "per_s"]
    printf "1M: %.0f resolutions/s on one core (target >= 500000), load %.2f s (target < 3), peak RSS %.0f MB (target <= 300)\n",
      v[3, "per_s"], v[3, "load_s"], v[3, "rss_mb"]
  }' "$out"
