#!/usr/bin/env bash
# The row only zcbuf can have: ZeroCopyWriter with MSG_ZEROCOPY (mode ALWAYS) sending UDP datagrams to a veth
# sink that takes them by reference, against Netty's NIO write of the same bytes (VethSinkBenchmark).
#
#   sudo java/benchmarks/veth-sink.sh                      # 16 KB and 65000 B datagrams
#   SETTINGS="-f 1 -wi 3 -i 5" sudo java/benchmarks/veth-sink.sh
#
# Runs the JMH jar inside a private network namespace (unshare -n, so root): a veth pair v0/v1 with MTU 65535,
# 198.18.0.1/24 on v0, and a permanent neighbour entry for 198.18.0.2 that nobody owns, so each packet is
# dropped after the driver without a copy (loopback, or a peer that owns a socket, always copies). Nothing
# outside the namespace is touched; it vanishes with the process. Prints the zcbuf/Netty ratios and lines
# `RATIO veth_zerocopy_vs_netty_<size> <ratio> <=0.9` for scripts/plot-ratios.py. Without root or unshare it says
# why and exits 1 (CI=true or not: there is nothing to measure).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
jar="$here/target/benchmarks.jar"
result="${RESULT:-$here/target/veth-sink.json}"

if [[ $(id -u) -ne 0 ]] || ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
    echo "veth-sink: needs root, unshare and ip (a private network namespace with a veth pair)" >&2
    exit 1
fi
if [[ ! -f "$jar" || "${REBUILD:-0}" == 1 ]]; then
    echo "building benchmarks.jar (mvn -q -f java -DskipTests package) ..." >&2
    (cd "$root" && mvn -q -B -f java -DskipTests package)
fi
if [[ -n "${SETTINGS:-}" ]]; then
    read -r -a settings <<< "$SETTINGS"
else
    settings=(-f 1 -wi 3 -w 1s -i 5 -r 1s)
fi
mkdir -p "$(dirname "$result")"

# shellcheck disable=SC2016 # expanded inside the namespace's shell
unshare -n bash -euc '
    ip link set lo up
    ip link add v0 mtu 65535 type veth peer name v1 mtu 65535
    ip addr add 198.18.0.1/24 dev v0
    ip link set v0 up
    ip link set v1 up
    ip neigh add 198.18.0.2 lladdr 02:00:00:00:00:02 dev v0 nud permanent
    # Zero-copy sends take option memory for their completions; the default (20 KB) refuses many at once.
    sysctl -qw net.core.optmem_max=1000000 || echo "veth-sink: cannot raise optmem_max; ENOBUFS fallbacks may show" >&2
    jar=$1 result=$2
    shift 2
    java -jar "$jar" "$@" VethSinkBenchmark -rf json -rff "$result"
' veth-sink "$jar" "$result" "${settings[@]}"

echo
python3 "$here/ratios.py" "$result"
python3 - "$result" <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
score = {}
for r in rows:
    method = r["benchmark"].rsplit(".", 1)[1]
    score[(method.split("_")[0], r["params"]["size"])] = r["primaryMetric"]["score"]
for (side, size), z in sorted(score.items()):
    if side == "zcbuf" and ("netty", size) in score:
        print(f"RATIO veth_zerocopy_vs_netty_{size} {z / score[('netty', size)]:.2f} <=0.9")
EOF
