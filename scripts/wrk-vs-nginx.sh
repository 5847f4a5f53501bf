#!/usr/bin/env bash
# The example HTTP file server (examples/http_file_server.rs) against nginx
# (one worker, sendfile on) serving the same files: both servers pinned to
# CPU 0, wrk on CPU 1, requests/s at 1 KiB, 64 KiB and 1 MiB, and the
# ratios zcbuf / nginx. Installs wrk and nginx with apt-get when missing.
#
# Usage: scripts/wrk-vs-nginx.sh [SECONDS per run, default 5] [CONNECTIONS, default 50]
# Loopback only; every run is bounded by its duration and stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR="${1:-5}"
CONNS="${2:-50}"
NGINX_PORT=18080
ZCBUF_PORT=18081

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if [ "$(nproc)" -lt 2 ]; then
  echo "needs 2 CPUs (servers on one, wrk on the other)" >&2
  exit 1
fi

cargo build -q --release --features tokio --example http_file_server
SERVER=target/release/examples/http_file_server

WORK=$(mktemp -d)
NGINX_PID=""
ZCBUF_PID=""
cleanup() {
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  [ -n "$ZCBUF_PID" ] && kill "$ZCBUF_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# A signal ends the script through exit, so the EXIT trap stops the servers too.
trap "exit 143" INT TERM HUP

mkdir -p "$WORK/www" "$WORK/logs"
head -c 1024 /dev/urandom >"$WORK/www/1k"
head -c 65536 /dev/urandom >"$WORK/www/64k"
head -c 1048576 /dev/urandom >"$WORK/www/1m"

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
user root;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
  }
}
EOF

taskset -c 0 "$NGINX" -p "$WORK" -c "$WORK/nginx.conf" &
NGINX_PID=$!
ZCBUF_WORKERS=1 taskset -c 0 "$SERVER" "$WORK/www" "127.0.0.1:$ZCBUF_PORT" 2>"$WORK/logs/zcbuf.log" &
ZCBUF_PID=$!

for port in $NGINX_PORT $ZCBUF_PORT; do
  for _ in $(seq 1 50); do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then break; fi
    sleep 0.1
  done
done

rps() { # url [seconds] -> requests/s
  taskset -c 1 wrk -t1 -c"$CONNS" -d"${2:-$DUR}s" "$1" | awk '/Requests\/sec/ {print $2}'
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %14s %14s %8s\n' size nginx_req/s zcbuf_req/s ratio
for f in 1k 64k 1m; do
  rps "http://127.0.0.1:$NGINX_PORT/$f" 1 >/dev/null # warm caches and maps
  rps "http://127.0.0.1:$ZCBUF_PORT/$f" 1 >/dev/null
  n=$(rps "http://127.0.0.1:$NGINX_PORT/$f")
  z=$(rps "http://127.0.0.1:$ZCBUF_PORT/$f")
  printf '%-8s %14s %14s %8s\n' "$f" "$n" "$z" "$(awk -v z="$z" -v n="$n" 'BEGIN { printf "%.2fx", z / n }')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
