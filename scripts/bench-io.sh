#!/usr/bin/env bash
# Runs the io_zerocopy bench (UDP through the veth sink in a private
# namespace: the raw MSG_ZEROCOPY loop, zcbuf's sender, plain sends, and
# whatever other paths add their rows), keeps its output, and plots its
# RATIO lines into benches/io_zerocopy.svg.
#
#   scripts/bench-io.sh                 # the veth part (ZCBUF_BENCH_NO_AUTO=1)
#   scripts/bench-io.sh --all           # also Auto vs Never by shape (minutes longer)
#   scripts/bench-io.sh old.txt ...     # also plot earlier runs' outputs, one bar each
#
# The output of this run goes to target/bench-io/<UTC time>.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
all=0
if [ "${1:-}" = "--all" ]; then
  all=1
  shift
fi
mkdir -p target/bench-io
out="target/bench-io/$(date -u +%Y%m%dT%H%M%SZ).txt"
if [ "$all" = 1 ]; then
  cargo bench --bench io_zerocopy 2>&1 | tee "$out"
else
  ZCBUF_BENCH_NO_AUTO=1 cargo bench --bench io_zerocopy 2>&1 | tee "$out"
fi
if ! grep -q '^RATIO ' "$out"; then
  echo "bench-io: no RATIO lines in $out (skipped, or failed): nothing to plot" >&2
  exit 1
fi
python3 scripts/plot-ratios.py \
  --title "io_zerocopy: UDP via the veth sink, a's throughput / b's (interleaved, sending thread's CPU time)" \
  --out benches/io_zerocopy.svg "$@" "$out"
echo "bench-io: output $out, plot benches/io_zerocopy.svg"
