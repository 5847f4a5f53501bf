#!/usr/bin/env bash
# The Java example FileServer against nginx (one worker, sendfile on) serving the same files over loopback:
# both servers pinned to one core, wrk -t1 pinned to another, requests/s per file size and connection count,
# and the ratio zcbuf / nginx (above 1: FileServer is faster).
#
#   scripts/wrk-vs-nginx-java.sh            # 1 KiB, 64 KiB, 1 MiB files; 16 and 64 connections; 3 rounds of 5 s
#   DURATION=3 ROUNDS=5 CONNECTIONS="16" scripts/wrk-vs-nginx-java.sh
#
# The two servers take turns (FileServer, nginx, FileServer, nginx, ...), ROUNDS times per size and connection
# count, so that a neighbour's load falls on both; each round gives a ratio, and the line printed is the median
# round with the lowest and highest ratio beside it (their spread says how noisy the machine was). Each
# size and connection count ends with a line `RATIO java_vs_nginx_<size>_c<conns> <median> >=<aim>` for
# scripts/plot-ratios.py (aims of issue 15: 0.7 at 1 KiB, 0.9 at 64 KiB and 1 MiB).
# Beside requests/s, requests per second of the server's own CPU time (user + system from /proc, all threads;
# nginx: master and workers): a neighbour that takes a share of the servers' CPU moves the first, not this
# (`RATIO java_vs_nginx_per_cpu_...`). Part of the loopback's receive work lands in the sender's system time.
#
# Environment: DURATION (seconds per run, default 5), ROUNDS (default 3), WARMUP (seconds of JIT warm-up per
# size, default 5),
# CONNECTIONS (default "16 64"), SERVER_CPU (default 0), CLIENT_CPU (default 1), SKIP_BUILD=1 to use the jars
# already built. Installs wrk and nginx with apt-get when they are missing (root, or sudo). Prints the load
# average before and after: on a busy machine the ratios are what to compare, not the rates.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-"16 64"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SIZES="1k:1024 64k:65536 1m:1048576"

aim() { case $1 in 1k) echo 0.7 ;; *) echo 0.9 ;; esac; }

die() {
    echo "wrk-vs-nginx-java: $*" >&2
    exit 1
}

install_missing() {
    local missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v taskset >/dev/null || missing+=(util-linux)
    [ ${#missing[@]} -eq 0 ] && return
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "installing ${missing[*]} with apt-get"
    $sudo apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

install_missing
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (servers on one, wrk on the other); this machine has $(nproc)"

JAR_LIB=java/zcbuf/target/zcbuf-0.1.0-SNAPSHOT.jar
JAR_EX=java/examples/target/zcbuf-examples-0.1.0-SNAPSHOT.jar
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "building the examples (mvn package -DskipTests)"
    mvn -q -f java -pl examples -am package -DskipTests >/dev/null
fi
[ -f "$JAR_LIB" ] && [ -f "$JAR_EX" ] || die "jars missing: $JAR_LIB, $JAR_EX"

WORK=$(mktemp -d /tmp/zcbuf-wrk.XXXXXX)
JAVA_PID=""
NGINX_STARTED=""
cleanup() {
    # `|| true` on each: under set -e a failing last command (wait returns the killed server's status)
    # would end the cleanup before it stopped nginx.
    [ -n "$JAVA_PID" ] && kill "$JAVA_PID" 2>/dev/null && wait "$JAVA_PID" 2>/dev/null || true
    [ -n "$NGINX_STARTED" ] && [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap stops the servers too.
trap "exit 143" INT TERM HUP

mkdir -p "$WORK/www" "$WORK/nginx/logs"
for s in $SIZES; do
    head -c "${s#*:}" /dev/urandom >"$WORK/www/${s%%:*}.bin"
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
NGINX_PORT=$(free_port)
JAVA_PORT=$(free_port)

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
    }
}
EOF
taskset -c "$SERVER_CPU" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx.conf"
NGINX_STARTED=1

taskset -c "$SERVER_CPU" java -cp "$JAR_EX:$JAR_LIB" io.zcbuf.examples.FileServerCli "$WORK/www" "$JAVA_PORT" \
    >"$WORK/java.log" 2>&1 &
JAVA_PID=$!

wait_port() {
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$1/1k.bin" && return 0
        sleep 0.1
    done
    die "nothing answers on port $1"
}
wait_port "$NGINX_PORT"
wait_port "$JAVA_PORT"

# Both serve the same bytes.
for s in $SIZES; do
    f=${s%%:*}.bin
    cmp -s <(curl -sf "http://127.0.0.1:$NGINX_PORT/$f") "$WORK/www/$f" || die "nginx served $f wrong"
    cmp -s <(curl -sf "http://127.0.0.1:$JAVA_PORT/$f") "$WORK/www/$f" || die "FileServer served $f wrong"
done

rate() { # port file connections seconds -> requests/s
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$3" -d"$4"s "http://127.0.0.1:$1/$2" |
        awk '/^Requests\/sec:/ { print $2 } /Non-2xx|Socket errors/ { print "wrk: " $0 > "/dev/stderr" }'
}

# CPU time (user + system, clock ticks) of the processes given, threads included, from /proc.
cpu_ticks() {
    local t=0 pid
    for pid in "$@"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
nginx_pids() { echo "$(cat "$WORK/nginx.pid") $(pgrep -P "$(cat "$WORK/nginx.pid")" | tr '\n' ' ')"; }
TICKS=$(getconf CLK_TCK)

# Requests per second of the server's own CPU time: what a request costs the server, whatever share of its
# CPU a neighbour took meanwhile (the requests/s above depend on that share; this does not).
# port file connections seconds pids... -> "requests/s requests/cpu-second"
measure() {
    local port=$1 file=$2 conns=$3 secs=$4
    shift 4
    local before after r
    before=$(cpu_ticks "$@")
    r=$(rate "$port" "$file" "$conns" "$secs")
    after=$(cpu_ticks "$@")
    awk -v r="$r" -v s="$secs" -v d=$((after - before)) -v hz="$TICKS" \
        'BEGIN { printf "%s %.0f\n", r, (d > 0 ? r * s / (d / hz) : 0) }'
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "servers on CPU $SERVER_CPU, wrk -t1 on CPU $CLIENT_CPU, ${ROUNDS} interleaved rounds of ${DURATION}s per row"
printf '%-6s %5s %13s %13s %6s %11s %11s %11s %6s\n' size conns "FileServer/s" "nginx/s" ratio "min..max" \
    "FS/cpu-s" "nginx/cpu-s" "cpu"
ratios=()
for s in $SIZES; do
    f=${s%%:*}.bin
    rate "$JAVA_PORT" "$f" 16 "$WARMUP" >/dev/null # JIT warm-up
    for c in $CONNECTIONS; do
        rows=""
        for _ in $(seq "$ROUNDS"); do
            read -r j jc <<<"$(measure "$JAVA_PORT" "$f" "$c" "$DURATION" "$JAVA_PID")"
            # shellcheck disable=SC2046 # one argument per pid
            read -r n nc <<<"$(measure "$NGINX_PORT" "$f" "$c" "$DURATION" $(nginx_pids))"
            rows+="$j $n $jc $nc"$'\n'
        done
        # The round with the median ratio, and the spread of the ratios; the same for requests per CPU-second.
        line=$(printf '%s' "$rows" | awk 'NF == 4 && $2 > 0 { print $1 / $2, $1, $2 }' | sort -g |
            awk '{ r[NR] = $1; j[NR] = $2; n[NR] = $3 } END {
                m = int((NR + 1) / 2); printf "%s %s %.2f %.2f..%.2f", j[m], n[m], r[m], r[1], r[NR] }')
        cpu=$(printf '%s' "$rows" | awk 'NF == 4 && $4 > 0 { print $3 / $4, $3, $4 }' | sort -g |
            awk '{ r[NR] = $1; j[NR] = $2; n[NR] = $3 } END { m = int((NR + 1) / 2); printf "%s %s %.2f", j[m], n[m], r[m] }')
        read -r j n ratio spread <<<"$line"
        read -r jc nc cratio <<<"$cpu"
        printf '%-6s %5s %13s %13s %6s %11s %11s %11s %6s\n' "${s%%:*}" "$c" "$j" "$n" "$ratio" "$spread" \
            "$jc" "$nc" "$cratio"
        ratios+=("RATIO java_vs_nginx_${s%%:*}_c$c $ratio >=$(aim "${s%%:*}")")
        ratios+=("RATIO java_vs_nginx_per_cpu_${s%%:*}_c$c $cratio >=$(aim "${s%%:*}")")
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${ratios[@]}"
