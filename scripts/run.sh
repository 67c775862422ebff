#!/usr/bin/env bash
# The quick start: installs what is missing, builds a release build, starts a demo backend on
# 127.0.0.1:9000 and gatewayd with conf/gateway.yaml on 127.0.0.1:8080, and prints curl lines.
# Runs until Ctrl-C (or until gatewayd exits); then stops both by PID.
#   scripts/run.sh                  BUILD_DIR overrides the build directory (default build/)
set -euo pipefail
GW_SCRIPT=run
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  "") ;;
  -h | --help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) gw_die "unknown option: $1 (see --help)" ;;
esac

config="$GW_ROOT/conf/gateway.yaml"
dir="${BUILD_DIR:-$GW_ROOT/build}"
listen_port=8080  # conf/gateway.yaml's listener
demo_port=9000    # conf/gateway.yaml's upstream "demo"

"$GW_ROOT/scripts/setup.sh"
gw_build "$dir" || gw_die "build failed"
gatewayd="$dir/gatewayd"
backend="$dir/test/support/test_backend"
[[ -x "$gatewayd" ]] || gw_die "$gatewayd was not built"
[[ -x "$backend" ]] || gw_die "$backend (the demo backend) was not built"
[[ -f "$config" ]] || gw_die "missing $config"

for port in "$listen_port" "$demo_port"; do
  ! gw_port_in_use "$port" || gw_die "127.0.0.1:$port is already in use (another run.sh?)"
done
"$gatewayd" -t -c "$config" >&2 || gw_die "$config does not validate"

tmp="$(mktemp -d /tmp/gatewayd-run.XXXXXX)"
backend_pid=""
gateway_pid=""
cleanup() {
  trap - EXIT INT TERM HUP
  gw_pid_stop "$gateway_pid" 40  # longer than a drain: in-flight requests get to finish
  gw_pid_stop "$backend_pid" 5
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo; gw_log "stopping"; exit 0' INT TERM HUP

# Both run in their own session (setsid), so Ctrl-C reaches only this script, which then sends
# each exactly one SIGTERM: a second signal would make gatewayd skip its drain.
# The backend prints "PORT n" once it listens.
setsid "$backend" --port "$demo_port" --id demo >"$tmp/backend.out" 2>"$tmp/backend.err" &
backend_pid=$!
for ((i = 0; i < 100; i++)); do
  grep -q '^PORT ' "$tmp/backend.out" 2>/dev/null && break
  kill -0 "$backend_pid" 2>/dev/null || { cat "$tmp/backend.err" >&2; gw_die "demo backend exited"; }
  sleep 0.1
done
grep -q '^PORT ' "$tmp/backend.out" || gw_die "demo backend not ready after 10s"
gw_log "demo backend (pid $backend_pid) on 127.0.0.1:$demo_port"

# gatewayd logs to stderr and its access log to stdout, straight to this terminal.
setsid "$gatewayd" -c "$config" &
gateway_pid=$!
gw_wait_http "$gateway_pid" "$listen_port" / 15 >/dev/null ||
  gw_die "gatewayd did not come up on 127.0.0.1:$listen_port"

base="http://127.0.0.1:$listen_port"
cat <<MSG

gatewayd (pid $gateway_pid) is listening on $base, in front of the demo backend.
Try, from another terminal:

  curl -i $base/api/echo                     # route "api": the backend gets /echo and echoes the request
  curl -i -d '{"hello":"world"}' $base/api/echo  # ... with a body
  curl -i $base/api/bytes/100000             # a 100 kB response, streamed
  curl -i $base/api/delay/500                # the backend answers after 500 ms
  curl -i $base/api/status/503               # the backend's status passes through
  curl -i $base/static/logo                  # route "static": Cache-Status miss, then hit with Age
  curl -i $base/hello                        # route "catch-all": path forwarded unchanged
  curl -i --path-as-is $base/x/../api/echo   # normalised to /api/echo before routing
  curl -i $base/api/close-now                # the backend hangs up: a JSON 502 from gatewayd
  curl -i -H 'Host:' $base/api/echo          # no Host header: a JSON 400, nothing forwarded
  curl -s http://127.0.0.1:9901/metrics      # Prometheus metrics (the admin listener)
  curl -s http://127.0.0.1:9901/status       # version, uptime, backend health
  $gatewayd -t -c $config   # check a config

Each request also prints one JSON access log line here (stdout); errors go to stderr.

Edit $config, then apply it without a restart (a broken file is refused, the old one serves on):
  curl -s -X POST http://127.0.0.1:9901/reload
Ctrl-C stops both (gatewayd drains first).

MSG

rc=0
wait "$gateway_pid" || rc=$?
gateway_pid=""
gw_log "gatewayd exited with status $rc"
exit "$rc"
