#!/usr/bin/env bash
# The webhook's throughput and latency against nginx on the same machine
# (issue #4). Needs wrk and nginx (Debian packages; installed here if
# missing) and a build with the benchmarks (scripts/build.sh).
#
#   bench/webhook_wrk.sh [SECONDS]
#
# 1. ipguard's HTTPS server and admission handler, index of 100k objects,
#    POST of a 1 KB LoadBalancer Service AdmissionReview: wrk -t2 -c16, TLS,
#    keep-alive: the maximum rate.
# 2. nginx, one worker, the same certificate, returning a fixed
#    AdmissionReview: the same wrk settings.
# 3. ipguard at half its maximum rate, open loop (one epoll thread, 16
#    connections): p50 and p99 latency, three times, since one run's tail on
#    a shared 2-core machine moves with its neighbours.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
BUILD_DIR=${BUILD_DIR:-build}
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
cleanup() {
  if [ -n "${server_pid:-}" ]; then kill "$server_pid" 2>/dev/null || true; fi
  if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$BUILD_DIR/bench/bench_webhook" serve "$work" 18443 > "$work/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do grep -q serving "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
cat "$work/serve.log"

# nginx answers every POST with the AdmissionReview ipguard would send.
response='{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","allowed":true}}'
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work;
  server {
    listen 127.0.0.1:18444 ssl;
    ssl_certificate $work/tls.crt;
    ssl_certificate_key $work/tls.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    keepalive_requests 1000000;
    location /validate {
      default_type application/json;
      return 200 '$response';
    }
  }
}
CONF
"$NGINX" -c "$work/nginx.conf" -p "$work"
sleep 0.5

cat > "$work/post.lua" <<LUA
wrk.method = "POST"
local f = io.open("$work/review.json", "r")
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA

rate_of() { awk '/Requests\/sec/ {print $2}'; }
echo "== ipguard (wrk -t2 -c16 -d${SECONDS_RUN}s, TLS, keep-alive)"
wrk -t2 -c16 -d"${SECONDS_RUN}s" --latency -s "$work/post.lua" https://127.0.0.1:18443/validate | tee "$work/ipguard.txt"
echo "== nginx, one worker, fixed answer (same settings)"
wrk -t2 -c16 -d"${SECONDS_RUN}s" --latency -s "$work/post.lua" https://127.0.0.1:18444/validate | tee "$work/nginx.txt"
ipg=$(rate_of < "$work/ipguard.txt")
ngx=$(rate_of < "$work/nginx.txt")
half=$(awk -v r="$ipg" 'BEGIN {printf "%d", r / 2}')
echo "== ipguard at half its maximum rate (${half}/s, open loop), three runs"
for _ in 1 2 3; do
  "$BUILD_DIR/bench/bench_webhook" load 18443 "$work/ca.crt" "$half" "$SECONDS_RUN" "$work/review.json"
done
awk -v a="$ipg" -v b="$ngx" 'BEGIN {printf "ipguard %.0f req/s, nginx %.0f req/s: %.0f%% of nginx\n", a, b, 100 * a / b}'
