#!/usr/bin/env bash
# gatewayd's own benchmark: throughput and latency of gatewayd against nginx (both as reverse
# proxies with upstream keep-alive and the same worker count) in front of the same nginx backend,
# plus the backend measured directly as the reference. wrk runs against each target in turn,
# the order rotating each round; the table shows medians over the rounds.
#   scripts/bench.sh [--body small|big] [--rounds N] [--duration S] [--workers N] [--config FILE]
#                    [--tls [--close [--no-resume]]] [--gateway-port P] [--nginx-port P]
#                    [--backend-port P] [--admin-port P] [--rate-limit [--redis-port P]]
#     --body small   100-byte JSON responses (default);  big = 64 KiB responses
#     --rounds N     rounds (default $ROUNDS or 3);  --duration S  seconds per wrk run ($DURATION or 8)
#     --workers N    workers of gatewayd and of the nginx proxy (default 1)
#     --config FILE  gatewayd config (default conf/examples/bench.yaml); it must listen on
#                    127.0.0.1:18090 (18443 with --tls) and proxy every path to 127.0.0.1:18081;
#                    the ports options rewrite those in the copy gatewayd runs
#     --tls          gatewayd (conf/examples/bench-tls.yaml, port 18443) and nginx terminate TLS
#                    with the same certificate and ciphers, made here in /tmp/gatewayd-bench-tls
#                    (ECDSA P-256, subjectAltName IP:127.0.0.1, DNS:localhost); the backend stays
#                    plain.  --close: every request on a new connection (handshakes per second);
#                    wrk resumes each connection's previous TLS session, as browsers do, with
#                    both.  --no-resume: session tickets off on both servers, so every
#                    handshake is a full one (certificate, signature, key exchange)
#     --gateway-port, --nginx-port, --backend-port, --admin-port: other ports than 18090 (18443
#                    with --tls), 18082, 18081 and 9901, when others benchmark on this machine
#     --rate-limit   instead of nginx and the backend: three gatewayd (the default config plus
#                    one rate_limit entry that never refuses, keyed by client IP: one hot key)
#                    with store: local, redis and hybrid, on ports P, P+1, P+2 (admin A, A+1,
#                    A+2), sharing a redis-server started here on --redis-port (default 18379);
#                    prints redis / local and hybrid / local (issue 12: >= 0.8x and >= 0.95x)
# Everything binds 127.0.0.1, runs in a temp dir under /tmp and is stopped by PID at exit.
# Build: release, in build/ (or $BUILD_DIR).
# For comparisons with HAProxy/h2o, instructions and syscalls per request, see README.md.
set -euo pipefail
GW_SCRIPT=bench
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

body=small
rounds="${ROUNDS:-3}"
duration="${DURATION:-8}"
workers=1
config="$GW_ROOT/conf/examples/bench.yaml"
backend_port=18081
nginx_port=18082
gateway_port=18090
warmup=2
conns=64
admin_port=9901
tls=0
close=0
resume=1
tls_dir=/tmp/gatewayd-bench-tls
rate_limit=0
redis_port=18379

need_arg() { (($# >= 2)) || gw_die "$1 needs a value"; }
while (($#)); do
  case "$1" in
    --body) need_arg "$@"; body="$2"; shift ;;
    --rounds) need_arg "$@"; rounds="$2"; shift ;;
    --duration) need_arg "$@"; duration="$2"; shift ;;
    --workers) need_arg "$@"; workers="$2"; shift ;;
    --config) need_arg "$@"; config="$2"; shift ;;
    --gateway-port) need_arg "$@"; gateway_port_option="$2"; shift ;;
    --nginx-port) need_arg "$@"; nginx_port="$2"; shift ;;
    --backend-port) need_arg "$@"; backend_port="$2"; shift ;;
    --admin-port) need_arg "$@"; admin_port="$2"; shift ;;
    --tls) tls=1; config="$GW_ROOT/conf/examples/bench-tls.yaml"; gateway_port=18443 ;;
    --close) close=1 ;;
    --no-resume) resume=0 ;;
    --rate-limit) rate_limit=1 ;;
    --redis-port) need_arg "$@"; redis_port="$2"; shift ;;
    -h | --help) sed -n '2,31s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
case "$body" in
  small) path=/ body_len=100 ;;
  big) path=/big body_len=65536 ;;
  *) gw_die "--body must be small or big" ;;
esac
config_gateway_port="$gateway_port"  # what the shipped configs listen on
gateway_port="${gateway_port_option:-$gateway_port}"
for v in rounds duration workers gateway_port nginx_port backend_port admin_port redis_port; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || gw_die "--${v//_/-} must be a positive integer"
done
((duration <= 120 && rounds <= 20)) || gw_die "keep it bounded: --duration <= 120, --rounds <= 20"
[[ -f "$config" ]] || gw_die "no such config: $config"

((close == 0 || tls == 1)) || gw_die "--close goes with --tls"
((resume == 1 || close == 1)) || gw_die "--no-resume goes with --tls --close"
[[ "$rate_limit" == 0 || ("$tls" == 0 && "$config" == "$GW_ROOT/conf/examples/bench.yaml") ]] ||
  gw_die "--rate-limit goes with the default config, without --tls"
scheme=http
if ((tls)); then
  scheme=https
  # The benchmark's own certificate: ECDSA P-256, valid for 127.0.0.1 and localhost.
  mkdir -p "$tls_dir"
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null ||
    gw_die "openssl could not make $tls_dir/cert.pem"
  chmod 0644 "$tls_dir/cert.pem" "$tls_dir/key.pem"  # nginx workers run as "nobody"
fi

"$GW_ROOT/scripts/setup.sh" --bench
dir="${BUILD_DIR:-$GW_ROOT/build}"
gw_build "$dir" || gw_die "build failed"
if [[ "$(meson introspect --buildoptions "$dir" | python3 -c \
  'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))')" != release ]]; then
  gw_log "warning: $dir is not a release build; figures will not be representative"
fi
gatewayd="$dir/gatewayd"
[[ -x "$gatewayd" ]] || gw_die "$gatewayd was not built"

ports_needed=("$backend_port" "$nginx_port" "$gateway_port" "$admin_port")
((rate_limit)) && ports_needed=("$backend_port" "$redis_port" "$gateway_port" $((gateway_port + 1))
  $((gateway_port + 2)) "$admin_port" $((admin_port + 1)) $((admin_port + 2)))
for port in "${ports_needed[@]}"; do
  ! gw_port_in_use "$port" || gw_die "127.0.0.1:$port is already in use"
done

tmp="$(mktemp -d /tmp/gwbench-own.XXXXXX)"
chmod 0755 "$tmp"  # nginx workers run as "nobody" when started by root
mkdir -m 0755 "$tmp/backend" "$tmp/backend/www" "$tmp/backend/tmp" "$tmp/nginx" "$tmp/nginx/tmp"
pids=()
cleanup() {
  trap - EXIT INT TERM
  local p
  for p in "${pids[@]}"; do gw_pid_stop "$p" 15; done
  if [[ "${BENCH_KEEP_TMP:-0}" == 1 ]]; then gw_log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'gw_log "interrupted"; exit 130' INT TERM

# nginx.conf "http" block shared by the backend and the nginx proxy.
http_common() {
  cat <<CONF
    access_log off;
    server_tokens off;
    keepalive_timeout 300s;
    keepalive_requests 100000000;
    client_body_temp_path $1/tmp/client_body;
    proxy_temp_path       $1/tmp/proxy;
    fastcgi_temp_path     $1/tmp/fastcgi;
    uwsgi_temp_path       $1/tmp/uwsgi;
    scgi_temp_path        $1/tmp/scgi;
CONF
}
# $1 run dir, $2 worker count, $3 the http block's own part.
nginx_conf() {
  cat <<CONF
daemon off;
master_process on;
worker_processes $2;
pid $1/nginx.pid;
error_log $1/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
$(http_common "$1")
$3
}
CONF
}

# The backend: one nginx worker; 100-byte JSON from memory at /, a 64 KiB JSON file at /big.
python3 - "$tmp/backend/www/big.json" <<'PY'
import sys
item = '{"id":%06d,"name":"item-%06d","tags":["a","b","c"],"price":123.45},'
body, i = '{"items":[', 0
while len(body) < 65536 - 200:
    body += item % (i, i)
    i += 1
body = body.rstrip(",") + '],"pad":"'
body += "x" * (65536 - len(body) - 2) + '"}'
open(sys.argv[1], "w").write(body)
PY
chmod 0644 "$tmp/backend/www/big.json"
nginx_conf "$tmp/backend" 1 "
    sendfile on;
    tcp_nopush on;
    open_file_cache max=16 inactive=300s;
    server {
        listen 127.0.0.1:$backend_port backlog=4096;
        default_type application/json;
        location / {
            return 200 '{\"status\":\"ok\",\"service\":\"bench-backend\",\"request_id\":\"0123456789abcde\",\"items\":[1,2,3,4],\"ok\":true}';
        }
        location = /big { root $tmp/backend/www; try_files /big.json =404; }
    }" >"$tmp/backend/nginx.conf"

# The reference proxy: nginx with an upstream keep-alive pool.
nginx_conf "$tmp/nginx" "$workers" "
    upstream backend {
        server 127.0.0.1:$backend_port;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$nginx_port $( ((tls)) && echo ssl) backlog=4096;
$( ((tls)) && cat <<TLS
        ssl_certificate $tls_dir/cert.pem;
        ssl_certificate_key $tls_dir/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_session_tickets $( ((resume)) && echo on || echo off);
TLS
)
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_max_temp_file_size 0;
        }
    }" >"$tmp/nginx/nginx.conf"

# gatewayd: the given config with its top-level worker count set to --workers, the ports
# moved, and with --no-resume its listener's session tickets off.
gw_conf="$tmp/gateway.yaml"
grep -q '^admin:' "$config" && gw_die "$config has an admin section: the bench sets its own"
{
  grep -q '^workers:' "$config" || echo "workers: $workers"
  sed -e "s/^workers:.*/workers: $workers/" \
    -e "s/^\( *port: \)$config_gateway_port\$/\1$gateway_port/" \
    -e "s/127\.0\.0\.1:18081/127.0.0.1:$backend_port/" "$config"
  printf 'admin:\n  port: %s\n' "$admin_port"
} >"$gw_conf"
if ((!resume)); then
  sed -i 's/^\( *\)tls:$/&\n\1  session_tickets: false/' "$gw_conf"
  grep -q 'session_tickets: false' "$gw_conf" || gw_die "no tls: section in $config"
fi

start() {  # name cmd...; logs in $tmp/name.log
  local name="$1"
  shift
  "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
}
ready() {  # name port pid [scheme]: a 200 with the expected body length within 30 s
  local code s="${4:-http}"
  code="$(gw_wait_http "$3" "$2" "$path" 30 "$s")" || { cat "$tmp/$1.log" >&2; gw_die "$1 did not start"; }
  [[ "$code" == 200 ]] || gw_die "$1 answered $path with $code, not 200"
  local len
  len="$(curl -sk --max-time 5 "$s://127.0.0.1:$2$path" | wc -c)"
  ((len == body_len)) || gw_die "$1 returned $len body bytes for $path, expected $body_len"
}

start backend nginx -p "$tmp/backend" -c "$tmp/backend/nginx.conf" -e "$tmp/backend/error.log"
ready backend "$backend_port" "${pids[-1]}"
if ((rate_limit)); then
  # Debian's redis-tools ships the server as redis-check-rdb, which runs as the server under
  # that name (see test/support/redis_server.h).
  ln -s "$(command -v redis-check-rdb)" "$tmp/redis-server" ||
    gw_die "no redis-check-rdb: run scripts/setup.sh"
  start redis "$tmp/redis-server" --port "$redis_port" --bind 127.0.0.1 --save "" \
    --appendonly no --dir "$tmp"
  for ((i = 0; i < 50; i++)); do
    [[ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" == PONG ]] && break
    sleep 0.1
  done
  [[ "$(redis-cli -p "$redis_port" PING 2>/dev/null)" == PONG ]] || gw_die "redis did not start"
  names=(local redis hybrid)
  ports=()
  gateway_pids=()
  for k in 0 1 2; do
    # The default config's one route: its plugin list goes after its upstream.
    sed -e "s/^\( *port: \)$gateway_port\$/\1$((gateway_port + k))/" \
      -e "s/^\( *port: \)$admin_port\$/\1$((admin_port + k))/" \
      -e "s/^\(    upstream: bench.*\)\$/\1\n    plugins:\n      - rate_limit: {limits: [{requests: 1000000000, window: 1h}], store: ${names[$k]}}/" \
      "$gw_conf" >"$tmp/${names[$k]}.yaml"
    printf 'redis:\n  address: 127.0.0.1:%s\n' "$redis_port" >>"$tmp/${names[$k]}.yaml"
    start "gatewayd-${names[$k]}" "$gatewayd" -c "$tmp/${names[$k]}.yaml"
    gateway_pids+=("${pids[-1]}")
    ports+=($((gateway_port + k)))
    ready "gatewayd-${names[$k]}" $((gateway_port + k)) "${pids[-1]}"
  done
  schemes=(http http http)
else
  start nginx nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log"
  ready nginx "$nginx_port" "${pids[-1]}" "$scheme"
  start gatewayd "$gatewayd" -c "$gw_conf"
  gateway_pids=("${pids[-1]}")
  ready gatewayd "$gateway_port" "${pids[-1]}" "$scheme"
  names=(direct gatewayd nginx)
  ports=("$backend_port" "$gateway_port" "$nginx_port")
  schemes=(http "$scheme" "$scheme")
fi
wrk_headers=()
((close)) && wrk_headers=(-H "Connection: close")

# One wrk run against port $1 for $2 seconds with scheme $3; prints "rps p50_ms p99_ms errors".
wrk_run() {
  local out
  out="$(timeout $(($2 + 30)) wrk -t1 -c"$conns" -d"$2"s --latency "${wrk_headers[@]}" \
    "${3:-http}://127.0.0.1:$1$path")" ||
    gw_die "wrk against port $1 failed"
  awk '
    function ms(s) {
      if (s ~ /us$/) return substr(s, 1, length(s) - 2) / 1000
      if (s ~ /ms$/) return substr(s, 1, length(s) - 2) + 0
      if (s ~ /s$/) return substr(s, 1, length(s) - 1) * 1000
      return s + 0
    }
    /^ +50% / { p50 = ms($2) }
    /^ +99% / { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END { printf "%s %s %s %d\n", rps, p50, p99, err }' <<<"$out"
}

gw_log "warm-up: ${warmup}s per target"
for i in "${!names[@]}"; do wrk_run "${ports[$i]}" "$warmup" "${schemes[$i]}" >/dev/null; done

results="$tmp/results.txt"  # round target rps p50 p99 errors
: >"$results"
n=${#names[@]}
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < n; k++)); do
    i=$(((r + k) % n))
    line="$(wrk_run "${ports[$i]}" "$duration" "${schemes[$i]}")"
    echo "$r ${names[$i]} $line" >>"$results"
    gw_log "round $((r + 1))/$rounds ${names[$i]}: $line (req/s p50ms p99ms errors)"
  done
  for p in "${gateway_pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { cat "$tmp"/gatewayd*.log >&2; gw_die "gatewayd died"; }
  done
done

# How many requests each script call decided, over the whole run (warm-up included).
if ((rate_limit)); then
  for k in 1 2; do
    curl -s --max-time 5 "http://127.0.0.1:$((admin_port + k))/metrics" | awk -v name="${names[$k]}" '
      /^gatewayd_http_requests_total\{/ { requests += $NF }
      /^gatewayd_rate_limit_redis_calls_total\{/ { calls += $NF }
      /^gatewayd_rate_limit_redis_waits_total\{/ { waits += $NF }
      END { if (calls > 0) printf "%s: %d requests, %d script calls (%.1f requests per call), %d waited\n",
              name, requests, calls, requests / calls, waits }'
  done >"$tmp/calls.txt"
fi

python3 - "$results" "$body" "$body_len" "$workers" "$rounds" "$duration" "$conns" "$scheme" "$close" "$resume" "$rate_limit" "$tmp/calls.txt" <<'PY'
import statistics as st, sys
path, body, body_len, workers, rounds, duration, conns, scheme, close, resume, rate_limit = sys.argv[1:12]
rows = [l.split() for l in open(path) if l.strip()]
by = {}
for r, name, rps, p50, p99, err in rows:
    by.setdefault(name, []).append((int(r), float(rps), float(p50), float(p99), int(err)))
def col(name, i): return [x[i] for x in by[name]]
per_round = {name: {x[0]: x[1] for x in v} for name, v in by.items()}
def ratios(a, b):  # per-round throughput ratios a / b
    return [per_round[a][r] / per_round[b][r] for r in per_round[a] if per_round[b].get(r)]
def ratio_line(a, b, target=""):
    q = ratios(a, b)
    print(f"{a} / {b} throughput: {st.median(q):.2f}x{target}  "
          f"(median of per-round ratios; min {min(q):.2f}, max {max(q):.2f})")
mode = "" if scheme == "http" else ("  TLS keep-alive" if close == "0" else
    "  TLS, a new connection per request" +
    (" (sessions resumed)" if resume == "1" else " (full handshakes)"))
if rate_limit == "1":
    mode += "  rate_limit stores (one hot key, never refused)"
names = ("local", "redis", "hybrid") if rate_limit == "1" else ("direct", "nginx", "gatewayd")
print(f"\n# scripts/bench.sh  body={body} ({body_len} B)  workers={workers}{mode}  "
      f"wrk -t1 -c{conns} -d{duration}s  x{rounds} rounds, medians")
print(f"{'target':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
for name in names:
    print(f"{name:<10} {st.median(col(name, 1)):>10.0f} {st.median(col(name, 2)):>8.3f} "
          f"{st.median(col(name, 3)):>8.3f} {sum(col(name, 4)):>7d}")
print()
if rate_limit == "1":
    ratio_line("redis", "local", " (target >= 0.8)")
    ratio_line("hybrid", "local", " (target >= 0.95)")
    print(open(sys.argv[12]).read(), end="")
else:
    ratio_line("gatewayd", "nginx")
    print("direct = wrk straight to the backend: the ceiling for any proxy on this machine.")
PY
