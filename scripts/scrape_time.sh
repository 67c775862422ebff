#!/usr/bin/env bash
# What one Prometheus scrape costs: the wall time of GET /metrics on the admin listener, as curl
# measures it, for a gatewayd with many routes (README, "What observability costs").
#   scripts/scrape_time.sh [--routes N] [--workers W] [--scrapes S] [--port P] [--gatewayd BIN]
#     --routes N    routes, each with one request sent through it first (default 100)
#     --workers W   gatewayd workers (default 2);  --scrapes S  timed scrapes (default 50)
#     --port P      gatewayd's port (default 18290; the admin listener takes P+1)
#     --gatewayd B  the binary to measure (default: build/gatewayd, built; or $BUILD_DIR's)
# Prints the median, minimum and maximum in milliseconds and the exposition's size. Everything
# binds 127.0.0.1; the processes it starts are stopped by PID at exit.
set -euo pipefail
GW_SCRIPT=scrape_time
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

routes=100
gw_timing_options scrapes 50 18290 10 "$@"
scrapes="$count"
backend="$build/test/support/test_backend"
[[ -x "$backend" ]] || gw_die "$backend was not built"

tmp="$(mktemp -d /tmp/gwscrape.XXXXXX)"
gw_stop_at_exit "$tmp"

gw_start_test_backend "$backend" origin "$tmp/backend.out" "$tmp/backend.log"
backend_port="$GW_BACKEND_PORT"

{
  printf 'workers: %d\naccess_log: {enabled: false}\n' "$workers"
  printf 'listeners:\n  - {address: 127.0.0.1, port: %d}\n' "$port"
  printf 'admin: {address: 127.0.0.1, port: %d}\n' "$admin_port"
  printf 'upstreams:\n  - name: origin\n    backends: [127.0.0.1:%d]\n' "$backend_port"
  printf 'routes:\n'
  for ((r = 0; r < routes; r++)); do
    printf '  - {name: route-%d, upstream: origin, match: {prefix: /r%d/}}\n' "$r" "$r"
  done
} >"$tmp/gateway.yaml"

"$gatewayd" -c "$tmp/gateway.yaml" >"$tmp/gatewayd.log" 2>&1 &
pids+=("$!")
gw_wait_http "${pids[-1]}" "$admin_port" /ready 20 >/dev/null ||
  gw_die "gatewayd did not start: $(cat "$tmp/gatewayd.log")"

# One request per route, so every route has an http_requests_total series and histogram counts.
for ((r = 0; r < routes; r++)); do
  curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$port/r$r/echo" || gw_die "route $r failed"
done

metrics="http://127.0.0.1:$admin_port/metrics"
size="$(curl -s --max-time 5 "$metrics" | wc -c)"
for ((i = 0; i < 5; i++)); do curl -s -o /dev/null --max-time 5 "$metrics"; done  # warm up
for ((i = 0; i < scrapes; i++)); do
  curl -s -o /dev/null --max-time 5 -w '%{time_total}\n' "$metrics"
done | sort -n | awk -v size="$size" -v routes="$routes" -v workers="$workers" '
  { t[NR] = $1 * 1000 }
  END {
    median = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    printf "%d routes, %d workers, %d scrapes of %d bytes: median %.3f ms (min %.3f, max %.3f)\n",
           routes, workers, NR, size, median, t[1], t[NR]
  }'
