#!/usr/bin/env bash
# Soak test: gatewayd with every plugin on, in front of two test_backend processes, under a bounded
# mixed load on loopback, sampled every few seconds: RSS, descriptors, CPU, requests, 4xx/5xx.
# Results go to one directory: samples.csv, summary.txt, soak.png. Exits non-zero if gatewayd
# dies or exits non-zero after SIGTERM, or if any request failed (wrk, the idle connections, a
# 5xx); whether RSS and descriptors stay flat is read from the summary and the plot.
#   scripts/soak.sh [--minutes N] [--busy K] [--idle I] [--churn C] [--workers W] [--out DIR]
#     --minutes N   load duration, 1..240 (default 2)
#     --busy K      keep-alive connections kept busy by wrk (default 500)
#     --idle I      keep-alive connections opened with one request each, then held idle for the
#                   whole run (default 2000); their cost is measured before the load starts (KiB
#                   of RSS per connection) and each must still answer at the end
#     --churn C     connections that each send one request and close, then reconnect (default 16)
#     --workers W   gatewayd workers (default 2);  --interval S  seconds per sample (default 5)
#     --out DIR     results directory (default soak-results/<timestamp>; keep it out of git)
#     --port P      gatewayd's port (default 18190; the admin listener takes P+1)
#     --no-plot     skip the PNG (gnuplot; scripts/setup.sh --soak installs it and wrk)
# Everything binds 127.0.0.1; the processes it starts are stopped by PID at exit.
# Build: release, in build/ (or $BUILD_DIR).
set -euo pipefail
GW_SCRIPT=soak
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

minutes=2
busy=500
idle=2000
churn=16
workers=2
interval=5
port=18190
out=""
plot=1
need_arg() { (($# >= 2)) || gw_die "$1 needs a value"; }
while (($#)); do
  case "$1" in
    --minutes) need_arg "$@"; minutes="$2"; shift ;;
    --busy) need_arg "$@"; busy="$2"; shift ;;
    --idle) need_arg "$@"; idle="$2"; shift ;;
    --churn) need_arg "$@"; churn="$2"; shift ;;
    --workers) need_arg "$@"; workers="$2"; shift ;;
    --interval) need_arg "$@"; interval="$2"; shift ;;
    --port) need_arg "$@"; port="$2"; shift ;;
    --out) need_arg "$@"; out="$2"; shift ;;
    --no-plot) plot=0 ;;
    -h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
for v in minutes busy idle churn workers interval port; do
  [[ "${!v}" =~ ^[0-9]+$ ]] || gw_die "--$v must be a non-negative integer"
done
((minutes >= 1 && minutes <= 240)) || gw_die "keep it bounded: --minutes 1..240"
((busy >= 1 && busy <= 20000 && idle <= 50000 && churn <= 1000)) ||
  gw_die "keep it bounded: --busy 1..20000, --idle <= 50000, --churn <= 1000"
((workers >= 1 && interval >= 1)) || gw_die "--workers and --interval must be at least 1"
admin_port=$((port + 1))

# Descriptors: one per client connection in gatewayd, the holder and wrk, plus upstream ones.
want_fds=$((busy + idle + churn + 4096))
if (($(ulimit -n) < want_fds)); then
  ulimit -Hn "$want_fds" 2>/dev/null || true
  ulimit -n "$want_fds" 2>/dev/null ||
    gw_die "need $want_fds descriptors (ulimit -n is $(ulimit -n), hard $(ulimit -Hn)); run as root"
fi

"$GW_ROOT/scripts/setup.sh" --soak
build="${BUILD_DIR:-$GW_ROOT/build}"
gw_build "$build" || gw_die "build failed"
gatewayd="$build/gatewayd"
backend="$build/test/support/test_backend"
[[ -x "$gatewayd" && -x "$backend" ]] || gw_die "$gatewayd or $backend was not built"
gw_require_free_ports "$port" "$admin_port"

out="${out:-$PWD/soak-results/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d /tmp/gwsoak.XXXXXX)"
gw_stop_at_exit "$tmp"

# --- backends -------------------------------------------------------------------------------------
backend_ports=()
for id in b1 b2; do
  gw_start_test_backend "$backend" "$id" "$tmp/$id.out" "$out/$id.log"
  backend_ports+=("$GW_BACKEND_PORT")
done

# --- gatewayd: every plugin on --------------------------------------------------------------------
# Global: request_id, ip_filter, cors, a rate_limit keyed by client IP + X-Soak-Key (a limit no run
# reaches; more distinct keys than max_keys, so its LRU eviction runs all along) and security
# headers. /c/ is cached (a small store with short lifetimes: entries expire, are refetched and
# evicted); POST /items is validated against a schema; the rest is proxied. The access log goes
# to /dev/null: its writer thread runs, no disk fills. Active health checks probe both backends.
cat >"$out/soak.yaml" <<EOF
workers: $workers
listeners:
  - address: 127.0.0.1
    port: $port
admin: {address: 127.0.0.1, port: $admin_port}
access_log: {enabled: true, path: /dev/null}
limits:
  idle_timeout: $((minutes + 10))m   # the idle connections are held through the whole run
upstreams:
  - name: soak
    backends:
      - 127.0.0.1:${backend_ports[0]}
      - 127.0.0.1:${backend_ports[1]}
    pool: {max_idle: 256}
    health_checks:
      active: {path: /echo, interval: 1s, timeout: 1s}
plugins:
  - request_id
  - ip_filter: {allow: [127.0.0.0/8]}
  - cors: {allow_origins: [https://app.soak.test], max_age: 10m}
  - rate_limit:
      limits:
        - {requests: 1000000000, window: 1s}
        - {requests: 1000000000, window: 1m, name: minute}
      key: [client_ip, {header: X-Soak-Key}]
      max_keys: 20000
  - security_headers
routes:
  - name: cached
    match: {prefix: /c/}
    upstream: soak
    strip_prefix: /c
    plugins:
      - cache: {max_bytes: 4MiB, default_ttl: 2s}
  - name: items
    match: {prefix: /items}
    upstream: soak
    plugins:
      - schema_validation:
          max_body_bytes: 64KiB
          schema:
            type: object
            required: [id, name]
            properties:
              id: {type: integer, minimum: 0}
              name: {type: string, pattern: "^[a-z]+$"}
            additionalProperties: false
  - name: api
    upstream: soak
EOF
"$gatewayd" -t -c "$out/soak.yaml" >/dev/null || gw_die "the soak configuration does not load"
"$gatewayd" -c "$out/soak.yaml" 2>"$out/gatewayd.log" >/dev/null &
gw_pid=$!
pids+=("$gw_pid")
code="$(gw_wait_http "$gw_pid" "$admin_port" /ready 20)" || gw_die "gatewayd did not start: $out/gatewayd.log"
for ((i = 0; i < 100; i++)); do
  code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$admin_port/ready" || true)"
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
[[ "$code" == 200 ]] || gw_die "gatewayd not ready (/ready answered $code)"

clk_tck="$(getconf CLK_TCK)"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$gw_pid/status"; }
fd_count() { find "/proc/$gw_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
cpu_seconds() { awk -v t="$clk_tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$gw_pid/stat"; }
# "requests 4xx 5xx open accepted" from one scrape of /metrics.
scrape() {
  curl -s --max-time 5 "http://127.0.0.1:$admin_port/metrics" | awk '
    /^gatewayd_http_requests_total\{/ {
      n = $NF; total += n
      if (match($0, /code="[0-9]+"/)) { c = substr($0, RSTART + 6, 1); if (c == "4") e4 += n; if (c == "5") e5 += n }
    }
    /^gatewayd_downstream_connections / { open = $NF }
    /^gatewayd_downstream_connections_accepted_total / { acc = $NF }
    END { printf "%d %d %d %d %d\n", total, e4, e5, open, acc }'
}

# A few requests through every route so every lazy structure exists before the baseline.
for path in /echo /c/origin/warm; do curl -s -o /dev/null "http://127.0.0.1:$port$path" || true; done
curl -s -o /dev/null -H 'Content-Type: application/json' --data '{"id":1,"name":"warm"}' \
  "http://127.0.0.1:$port/items/echo" || true

# --- idle keep-alive connections: memory per connection --------------------------------------------
cat >"$tmp/holder.py" <<'PY'
# Opens N keep-alive connections to 127.0.0.1:PORT, one request on each, prints "ready", and
# leaves them idle until SIGTERM or DEADLINE (epoch seconds); then sends one more request on each
# (in turn, bounded by the deadline plus 60 s) and prints how many still answered.
import resource, signal, socket, sys, time
port, n, deadline = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
REQ = b"GET /echo HTTP/1.1\r\nHost: soak\r\nX-Soak-Key: idle\r\n\r\n"

def exchange(s):
    s.sendall(REQ)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise OSError(head.split(b"\r\n")[0].decode(errors="replace"))
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed in body")
        body += chunk

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    exchange(s)
    return s

conns = [connect() for _ in range(n)]
print("ready", n, flush=True)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop and time.time() < deadline:
    time.sleep(1)
answered = failed = 0
for s in conns:
    if time.time() > deadline + 60:
        break
    try:
        exchange(s)
        answered += 1
    except OSError:
        failed += 1
print(f"idle connections still answering after the run: {answered} of {n}, failed {failed}", flush=True)
PY

deadline=$(($(date +%s) + minutes * 60 + 30))
rss_before="$(rss_kib)"
per_conn_kib=-
if ((idle > 0)); then
  python3 "$tmp/holder.py" "$port" "$idle" "$deadline" >"$out/holder.log" 2>&1 &
  holder_pid=$!
  pids+=("$holder_pid")
  # Opening I connections one by one: bounded by 1 s per 500 connections plus slack.
  for ((i = 0; i < (idle / 500 + 30) * 10; i++)); do
    grep -q '^ready' "$out/holder.log" && break
    kill -0 "$holder_pid" 2>/dev/null || gw_die "the idle holder failed: $out/holder.log"
    sleep 0.1
  done
  grep -q '^ready' "$out/holder.log" || gw_die "the idle holder did not open $idle connections"
  sleep 1  # let the last responses' buffers be recycled before measuring
  rss_idle="$(rss_kib)"
  per_conn_kib="$(awk -v a="$rss_before" -v b="$rss_idle" -v n="$idle" 'BEGIN {printf "%.2f", (b - a) / n}')"
  gw_log "$idle idle keep-alive connections: RSS $rss_before -> $rss_idle KiB = $per_conn_kib KiB each"
fi

# --- load: busy keep-alive connections and churn ---------------------------------------------------
# A mix over every plugin: cached GETs over 3000 URLs (hits, misses, expiry), validated POSTs,
# CORS preflights (answered by the gateway), plain proxied GETs; 100,000 rate-limit keys.
cat >"$tmp/mix.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local kind = n % 10
  local h = {["X-Soak-Key"] = "k" .. math.random(1, 100000), ["Origin"] = "https://app.soak.test"}
  if kind < 5 then
    return wrk.format("GET", "/c/origin/item" .. math.random(1, 3000) .. "?size=512", h)
  elseif kind < 7 then
    h["Content-Type"] = "application/json"
    return wrk.format("POST", "/items/echo", h, '{"id":' .. n .. ',"name":"soak"}')
  elseif kind == 7 then
    h["Access-Control-Request-Method"] = "PUT"
    return wrk.format("OPTIONS", "/echo", h)
  else
    return wrk.format("GET", "/echo?n=" .. n, h)
  end
end
LUA
wrk_threads=$((busy < 2 ? 1 : 2))
wrk -t"$wrk_threads" -c"$busy" -d"${minutes}m" --timeout 10s -s "$tmp/mix.lua" \
  "http://127.0.0.1:$port/" >"$out/wrk-busy.txt" 2>&1 &
pids+=("$!")
busy_pid=$!
churn_pid=""
if ((churn > 0)); then
  # wrk opens a new connection after every "Connection: close" answer: one connection per request.
  wrk -t1 -c"$churn" -d"${minutes}m" --timeout 10s -H 'Connection: close' \
    "http://127.0.0.1:$port/echo" >"$out/wrk-churn.txt" 2>&1 &
  churn_pid=$!
  pids+=("$churn_pid")
fi

# --- samples ----------------------------------------------------------------------------------------
csv="$out/samples.csv"
echo "seconds,rss_kib,fds,cpu_seconds,requests,responses_4xx,responses_5xx,open_connections,accepted_connections,req_per_s,cpu_cores" >"$csv"
start=$(date +%s)
end_load=$((start + minutes * 60))
prev_requests=""
prev_t=""
prev_cpu=""
while (($(date +%s) < end_load + interval)) && kill -0 "$gw_pid" 2>/dev/null; do
  t=$(($(date +%s) - start))
  read -r requests e4 e5 open accepted <<<"$(scrape)"
  cpu="$(cpu_seconds)"
  rate=0
  cores=0
  if [[ -n "$prev_requests" ]] && ((t > prev_t)); then
    rate=$(((requests - prev_requests) / (t - prev_t)))
    cores="$(awk -v a="$prev_cpu" -v b="$cpu" -v d=$((t - prev_t)) 'BEGIN {printf "%.2f", (b - a) / d}')"
  fi
  prev_requests=$requests
  prev_t=$t
  prev_cpu=$cpu
  echo "$t,$(rss_kib),$(fd_count),$cpu,$requests,$e4,$e5,$open,$accepted,$rate,$cores" >>"$csv"
  # The backends record every request for the tests; forget them so their memory stays flat.
  for bport in "${backend_ports[@]}"; do curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$bport/__reset" || true; done
  # Wait for the next sample, bounded; the load generators end on their own at end_load.
  sleep "$interval"
  if [[ -n "$churn_pid" ]] && ! kill -0 "$churn_pid" 2>/dev/null && ! kill -0 "$busy_pid" 2>/dev/null; then
    break
  fi
done
kill -0 "$gw_pid" 2>/dev/null || gw_die "gatewayd died during the soak: $out/gatewayd.log"
wait "$busy_pid" || true
[[ -z "$churn_pid" ]] || wait "$churn_pid" || true

# The holder asks each idle connection once more, then exits.
if ((idle > 0)); then
  kill -TERM "$holder_pid" 2>/dev/null || true
  for ((i = 0; i < 1200; i++)); do
    kill -0 "$holder_pid" 2>/dev/null || break
    sleep 0.1
  done
fi
# Stopped here rather than by cleanup: its exit status after SIGTERM (a drain) is part of the pass.
kill -TERM "$gw_pid"
for ((i = 0; i < 400; i++)); do
  kill -0 "$gw_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$gw_pid" 2>/dev/null && kill -KILL "$gw_pid"
gw_exit=0
wait "$gw_pid" 2>/dev/null || gw_exit=$?

# --- summary -----------------------------------------------------------------------------------------
wrk_errors() {  # "socket errors + non-2xx/3xx" from one wrk output
  awk '/Socket errors:/ {gsub(/,/, ""); s = $4 + $6 + $8 + $10}
       /Non-2xx or 3xx responses:/ {n = $NF}
       END {printf "%d", s + n}' "$1"
}
wrk_requests() { awk '/requests in/ {print $1}' "$1"; }
{
  echo "command: scripts/soak.sh --minutes $minutes --busy $busy --idle $idle --churn $churn --workers $workers"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  host: $(nproc) CPUs, load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "idle keep-alive connections: $idle; RSS before $rss_before KiB, with them ${rss_idle:-$rss_before} KiB: $per_conn_kib KiB per connection"
  python3 - "$csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
if len(rows) < 3:
    print("too few samples"); sys.exit(0)
load = rows[1:]  # the first sample is taken as the load starts
rss = [int(r["rss_kib"]) for r in load]; fds = [int(r["fds"]) for r in load]
rates = [int(r["req_per_s"]) for r in load[1:]]
last, first = rows[-1], rows[0]
secs = int(last["seconds"]) - int(first["seconds"])
reqs = int(last["requests"]) - int(first["requests"])
third = max(1, len(rss) // 3)
print(f"samples: {len(rows)} over {secs} s")
print(f"RSS KiB: start {rss[0]}, end {rss[-1]}, min {min(rss)}, max {max(rss)}; "
      f"mean of first third {sum(rss[:third]) // third}, of last third {sum(rss[-third:]) // third}")
print(f"fds: start {fds[0]}, end {fds[-1]}, min {min(fds)}, max {max(fds)}")
print(f"requests: {reqs} in {secs} s = {reqs / max(1, secs):.0f} req/s (min sample {min(rates)}, max {max(rates)})")
cpu = float(last["cpu_seconds"]) - float(first["cpu_seconds"])
print(f"gatewayd CPU: {cpu:.0f} s in {secs} s = {cpu / max(1, secs):.2f} cores")
print(f"gateway answers 4xx: {int(last['responses_4xx']) - int(first['responses_4xx'])}, "
      f"5xx: {int(last['responses_5xx']) - int(first['responses_5xx'])}; "
      f"connections accepted: {int(last['accepted_connections']) - int(first['accepted_connections'])}")
PY
  echo "wrk busy ($busy conns): $(wrk_requests "$out/wrk-busy.txt") requests, errors (socket + non-2xx/3xx): $(wrk_errors "$out/wrk-busy.txt")"
  if [[ -n "$churn_pid" ]]; then
    echo "wrk churn ($churn conns, one request each): $(wrk_requests "$out/wrk-churn.txt") requests, errors: $(wrk_errors "$out/wrk-churn.txt")"
  fi
  if ((idle > 0)); then echo "idle holder: $(tail -n 1 "$out/holder.log")"; fi
  echo "gatewayd exit status after SIGTERM: $gw_exit"
} | tee "$out/summary.txt"

if ((plot)); then
  gnuplot <<EOF
set terminal pngcairo size 1000,620 font ",10"
set output "$out/soak.png"
set datafile separator ","
set key autotitle columnhead top left
set multiplot layout 2,1 title "gatewayd soak: $minutes min, $busy busy + $idle idle + $churn churning connections, $workers workers"
set xlabel "seconds"
set ylabel "RSS (MiB)"
set y2label "requests/s"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot "$csv" every ::1 using 1:(\$2/1024) with lines lw 2 title "RSS (MiB)", \
     "$csv" every ::2 using 1:10 axes x1y2 with lines title "requests/s"
set ylabel "descriptors"
set y2label "CPU (cores)"
plot "$csv" every ::1 using 1:3 with lines lw 2 title "open descriptors", \
     "$csv" every ::2 using 1:11 axes x1y2 with lines title "gatewayd CPU (cores)"
unset multiplot
EOF
  gw_log "plot: $out/soak.png"
fi
gw_log "results in $out"
((gw_exit == 0)) || gw_die "gatewayd exited with $gw_exit after SIGTERM"
failures=$(($(wrk_errors "$out/wrk-busy.txt") + $(awk -F, 'END {print $7 - first} NR == 2 {first = $7}' "$csv")))
[[ -z "$churn_pid" ]] || failures=$((failures + $(wrk_errors "$out/wrk-churn.txt")))
if ((idle > 0)) && ! grep -q "answering after the run: $idle of $idle," "$out/holder.log"; then
  failures=$((failures + 1))
fi
((failures == 0)) || gw_die "failed requests: see $out/summary.txt"
