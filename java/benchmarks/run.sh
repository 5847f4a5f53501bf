#!/usr/bin/env bash
# Runs the zcbuf-vs-Netty JMH benchmarks and prints the zcbuf/Netty ratio per workload.
#
#   java/benchmarks/run.sh                 full run (about 10 minutes on 2 cores)
#   QUICK=1 java/benchmarks/run.sh         shorter warmup/measurement (about 4 minutes)
#   java/benchmarks/run.sh Allocate        only benchmarks matching a JMH regex (any JMH options work)
#   RESULT=/tmp/r.json java/benchmarks/run.sh   where the JMH JSON goes (default target/jmh-result.json)
#   SETTINGS="-f 1 -wi 5 -i 10" java/benchmarks/run.sh   replaces the fork/warmup/measurement settings
#       (JMH refuses an option given twice, so pass -f/-wi/-w/-i/-r this way, not as arguments)
#   JAVA_OPTS="-Djmh.ignoreLock=true" java/benchmarks/run.sh ...   options for the JMH launcher JVM
#
# Prints the ratio table, then `RATIO <name> <value> [<aim>]` lines (also written next to the JSON as
# *.ratios.txt), and plots them with scripts/plot-ratios.py into java/benchmarks/ratios.svg (PLOT_OUT=path
# elsewhere, PLOT_OUT=none not at all; PLOT_WITH="a.ratios.txt b.ratios.txt" adds earlier runs as bars).
#
# Builds java/ with Maven first when benchmarks.jar is missing or older than any Java, pom, or Rust
# source it is built from (set REBUILD=1 to force it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jar="$here/target/benchmarks.jar"
result="${RESULT:-$here/target/jmh-result.json}"

needs_build=0
if [[ ! -f "$jar" || "${REBUILD:-0}" == 1 ]]; then
    needs_build=1
elif [[ -n "$(find "$root/java" "$root/jni-bridge" "$root/core" -type f \
        \( -name '*.java' -o -name 'pom.xml' -o -name '*.rs' -o -name 'Cargo.toml' \) \
        -not -path '*/target/*' -newer "$jar" -print -quit 2>/dev/null)" ]]; then
    needs_build=1
fi
if [[ $needs_build == 1 ]]; then
    echo "building benchmarks.jar (mvn -q -f java -DskipTests package) ..." >&2
    (cd "$root" && mvn -q -B -f java -DskipTests package)
fi

if [[ -n "${SETTINGS:-}" ]]; then
    read -r -a settings <<< "$SETTINGS"
elif [[ "${QUICK:-0}" == 1 ]]; then
    settings=(-f 1 -wi 2 -w 500ms -i 3 -r 500ms)
else
    settings=(-f 1 -wi 3 -w 1s -i 5 -r 1s)
fi

# VethSinkBenchmark needs the private network namespace that veth-sink.sh sets up (root); a plain run
# leaves it out unless asked for by name.
exclude=()
if [[ "$*" != *VethSink* ]]; then
    exclude=(-e VethSink)
fi

mkdir -p "$(dirname "$result")"
read -r -a java_opts <<< "${JAVA_OPTS:-}"
echo "java ${java_opts[*]} -jar $jar ${settings[*]} ${exclude[*]} $* -rf json -rff $result" >&2
java "${java_opts[@]}" -jar "$jar" "${settings[@]}" "${exclude[@]}" "$@" -rf json -rff "$result"

echo
ratios="${result%.json}.ratios.txt"
python3 "$here/ratios.py" "$result" | tee "$ratios"

# The plot of the ratio table: this run, after the runs named in PLOT_WITH (earlier .ratios.txt files),
# one bar per run. PLOT_OUT=none skips it.
plot_out="${PLOT_OUT:-$here/ratios.svg}"
if [[ "$plot_out" != none ]]; then
    read -r -a earlier <<< "${PLOT_WITH:-}"
    python3 "$root/scripts/plot-ratios.py" --title "zcbuf / Netty time, JMH (below 1: zcbuf faster)" \
        --out "$plot_out" "${earlier[@]}" "$ratios"
    echo "ratio plot: $plot_out" >&2
fi
