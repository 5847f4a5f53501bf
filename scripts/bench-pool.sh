#!/usr/bin/env bash
# Runs the pool benchmark (benches/pool_alloc.rs) and plots its ratios.
#
#   scripts/bench-pool.sh [RUNS]      # RUNS runs (default 2), one after the other;
#                                     # writes target/pool-bench/run<N>.txt and
#                                     # benches/pool_alloc.svg (one bar per run)
#   scripts/bench-pool.sh --callgrind # instructions per allocate + fill + drop,
#                                     # pool and Vec, one thread and across threads
#
# Each run prints criterion's report, the pool / Vec table, interleaved
# single-thread ratios, the consumer's drop cost, the mixed workload's
# memory figures, and last the `RATIO <name> <value> <aim>` lines that
# scripts/plot-ratios.py draws. Times on a shared machine are noisy: the
# load average is printed before and after each run; compare ratios within
# a run. Instruction counts (--callgrind) are repeatable whatever the load.
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/pool-bench
mkdir -p "$out"

if [ "${1:-}" = "--callgrind" ]; then
  if ! command -v valgrind >/dev/null; then
    if [ "${CI:-}" = "true" ]; then
      echo "bench-pool: FAILED: valgrind is not installed" >&2
      exit 1
    fi
    echo "bench-pool: SKIPPED: valgrind is not installed (scripts/install-deps.sh)" >&2
    exit 0
  fi
  cargo bench --bench pool_alloc --no-run 2>&1 | tail -1
  bin=$(cargo bench --bench pool_alloc --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "pool_alloc" and m.get("executable"):
        print(m["executable"])')
  # Instructions of a loop of N minus a loop of N/2, over N/2: the
  # per-buffer count without the program's start and end.
  count() {
    local spec=$1 n=$2 a b
    a=$(ZCBUF_POOL_LOOP="$spec:$((n / 2))" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
      awk '/Collected/ {print $4}')
    b=$(ZCBUF_POOL_LOOP="$spec:$n" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
      awk '/Collected/ {print $4}')
    echo $(((b - a) / (n / 2)))
  }
  printf '%-10s %-9s %8s %8s %10s\n' size where pool vec pool/vec
  for size in 256 4096; do
    for where in local xthread; do
      if [ "$where" = local ]; then p=pool v=vec; else p=pool_xthread v=vec_xthread; fi
      ip=$(count "$p:$size" 200000)
      iv=$(count "$v:$size" 200000)
      printf '%-10s %-9s %8s %8s %10s\n' "$size" "$where" "$ip" "$iv" \
        "$(python3 -c "print(f'{$ip / $iv:.2f}')")"
      echo "RATIO instructions_pool_vs_vec_${where}_${size} $(python3 -c "print(f'{$ip / $iv:.3f}')")"
    done
  done
  exit 0
fi

runs=${1:-2}
files=()
for i in $(seq 1 "$runs"); do
  f="$out/run$i.txt"
  {
    echo "run $i, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    cargo bench --bench pool_alloc 2>&1
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  } | tee "$f"
  files+=("$f")
done
python3 scripts/plot-ratios.py --title "pool_alloc: pool / Vec time (lower is better), reserved / requested" \
  --out benches/pool_alloc.svg "${files[@]}"
echo "bench-pool: wrote benches/pool_alloc.svg from ${files[*]}"
