#!/usr/bin/env bash
# How long a reload takes: from SIGHUP to every worker serving the new configuration, as gatewayd
# logs it ("configuration reloaded: every worker serves it", duration_ms: reading the file,
# building and checking the snapshot, and every worker's switch), for a gatewayd with many routes
# (README, "What reload costs"). Each reload changes the global plugin list, so every route's
# chain is new, while every route's own rate_limit entry (and its windows) is kept.
#   scripts/reload_time.sh [--routes N] [--workers W] [--reloads R] [--port P] [--gatewayd BIN]
#     --routes N    routes, each with a rate_limit entry (default 10)
#     --workers W   gatewayd workers (default 2);  --reloads R  timed reloads (default 20)
#     --port P      gatewayd's port (default 18295; the admin listener takes P+1)
#     --gatewayd B  the binary to measure (default: build/gatewayd, built; or $BUILD_DIR's)
# Prints the median, minimum and maximum in milliseconds. Everything binds 127.0.0.1; the
# processes it starts are stopped by PID at exit.
set -euo pipefail
GW_SCRIPT=reload_time
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

gw_timing_options reloads 20 18295 12 "$@"
reloads="$count"

tmp="$(mktemp -d /tmp/gwreload.XXXXXX)"
gw_stop_at_exit "$tmp"

# The configuration with tag $1 in the global list, written beside and renamed over the live file.
write_config() {
  {
    printf 'workers: %d\naccess_log: {enabled: false}\n' "$workers"
    printf 'listeners:\n  - {address: 127.0.0.1, port: %d}\n' "$port"
    printf 'admin: {address: 127.0.0.1, port: %d}\n' "$admin_port"
    printf 'upstreams:\n  - name: origin\n    backends: [127.0.0.1:9]\n'
    printf 'plugins:\n  - security_headers: {headers: {X-Config: "%s"}}\n' "$1"
    printf 'routes:\n'
    for ((r = 0; r < routes; r++)); do
      printf '  - name: route-%d\n    upstream: origin\n    match: {prefix: /r%d/}\n' "$r" "$r"
      printf '    plugins: [{rate_limit: {limits: [{requests: 100, window: 1m}]}}]\n'
    done
  } >"$tmp/gateway.yaml.next"
  mv "$tmp/gateway.yaml.next" "$tmp/gateway.yaml"
}

write_config 0
"$gatewayd" -c "$tmp/gateway.yaml" >"$tmp/gatewayd.log" 2>&1 &
pid="$!"
pids+=("$pid")
gw_wait_http "$pid" "$admin_port" /ready 20 >/dev/null ||
  gw_die "gatewayd did not start: $(cat "$tmp/gatewayd.log")"

done_line='"msg":"configuration reloaded: every worker serves it"'
for ((i = 1; i <= reloads; i++)); do
  write_config "$i"
  kill -HUP "$pid"
  for ((wait = 0; wait < 300; wait++)); do  # at most 30 s per reload
    (($(grep -c "$done_line" "$tmp/gatewayd.log") >= i)) && break
    sleep 0.1
  done
  (($(grep -c "$done_line" "$tmp/gatewayd.log") >= i)) ||
    gw_die "reload $i did not finish: $(tail -5 "$tmp/gatewayd.log")"
done
grep "$done_line" "$tmp/gatewayd.log" | sed 's/.*"duration_ms":"\([0-9.]*\)".*/\1/' | sort -n |
  awk -v routes="$routes" -v workers="$workers" '
  { t[NR] = $1 }
  END {
    median = NR % 2 ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
    printf "%d routes, %d workers, %d reloads: SIGHUP to every worker switched, median %.2f ms (min %.2f, max %.2f)\n",
           routes, workers, NR, median, t[1], t[NR]
  }'
