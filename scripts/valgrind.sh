#!/usr/bin/env bash
# Runs the Rust test binaries (core, JNI bridge, the facade's property and
# socket tests) under valgrind memcheck, with fewer proptest cases; any
# error fails. Children are traced: the namespace tests re-execute their
# binary under `unshare -n`, and that child (the one that does the
# zero-copy sends) runs under memcheck too; only the network tools it
# starts (ip, tc) and the `unshare -n true` probe's `true` run natively.
set -euo pipefail
cd "$(dirname "$0")/.."
export PROPTEST_CASES="${PROPTEST_CASES:-24}"
# Tests that bound how long a call may take allow for valgrind's pace.
export ZCBUF_VALGRIND=1
mapfile -t binaries < <(
  cargo test --workspace --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    msg = json.loads(line)
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["profile"]["test"]:
        print(msg["executable"])
'
)
[ ${#binaries[@]} -gt 0 ] || { echo "no test binaries found" >&2; exit 1; }
for bin in "${binaries[@]}"; do
  echo "valgrind: $(basename "$bin")"
  valgrind --quiet --error-exitcode=99 --trace-children=yes \
    --trace-children-skip='*/ip,*/tc,*/true,*/sysctl,*/python3,*/cargo' --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --track-origins=yes "$bin" --test-threads=2 -q ${VALGRIND_TEST_FILTER:-}
done
