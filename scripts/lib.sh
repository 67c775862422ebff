# Shared helpers for the scripts in this folder. Source it; it defines functions only.
# shellcheck shell=bash

GW_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

gw_log() { printf '%s: %s\n' "${GW_SCRIPT:-gatewayd}" "$*" >&2; }
gw_die() { gw_log "error: $*"; exit 1; }

# gw_build DIR [MESON_ARGS...]
# Configures DIR on first use (release unless the arguments say otherwise), applies any
# arguments to an existing DIR with `meson configure` (so e.g. a changed -D option takes
# effect), then builds with ninja (every target, or only $GW_BUILD_TARGETS). ninja re-runs meson
# by itself when a meson.build changed.
gw_build() {
  gw_configure "$@" || return 1
  gw_log "building $1${GW_BUILD_TARGETS:+ ($GW_BUILD_TARGETS)}"
  # shellcheck disable=SC2086  # a list of targets
  ninja -C "$1" ${GW_BUILD_TARGETS:-} || return 1
}

# The sanitized build: clang, AddressSanitizer + UBSan, -O1, with the libFuzzer targets. One build
# for the sanitized tier of the tests (scripts/test.sh --sanitize) and for the fuzz targets
# (scripts/fuzz.sh), in build-asan/ by default: every object is compiled once for both.
# -Dsanitize_debug=true alone still builds with gcc by hand (README.md, "Build").
# No --buildtype: `meson configure` would let it reset the optimization level on every rerun.
gw_sanitized_args=(-Doptimization=1 -Ddebug=true -Db_ndebug=false -Dsanitize_debug=true -Dfuzz=true)
gw_sanitized_dir() { echo "${BUILD_DIR:-$GW_ROOT/build-asan}"; }

# gw_build_sanitized DIR [MESON_ARGS...]: gw_build DIR with clang (CC/CXX may name another) and
# gw_sanitized_args. A DIR an older setup configured with gcc is set up afresh.
gw_build_sanitized() {
  local dir="$1"
  shift
  # Through ccache when there is one, as meson does by itself for the default compiler.
  if [[ -z "${CC:-}" ]] && command -v ccache >/dev/null; then
    export CC="ccache clang" CXX="ccache clang++"
  fi
  export CC="${CC:-clang}" CXX="${CXX:-clang++}"
  if [[ -f "$dir/meson-info/intro-targets.json" ]] && ! python3 - "$dir/meson-info/intro-targets.json" <<'PY'
import json, os, sys
# The C++ compiler the directory was set up with, as its targets name it (["ccache", "clang++"]).
compilers = [os.path.basename(s["compiler"][-1]) for t in json.load(open(sys.argv[1]))
             for s in t["target_sources"] if s.get("language") == "cpp"]
sys.exit(0 if compilers and compilers[0].startswith("clang") else 1)
PY
  then
    gw_log "$dir was configured with another compiler than clang: setting it up afresh"
    meson setup --wipe "$dir" "$GW_ROOT" "${gw_sanitized_args[@]}" >/dev/null || return 1
  fi
  gw_build "$dir" "${gw_sanitized_args[@]}" "$@"
}

# gw_configure DIR [MESON_ARGS...]: the configuring half of gw_build.
gw_configure() {
  local dir="$1"
  shift
  if [[ ! -f "$dir/meson-private/coredata.dat" ]]; then
    local has_buildtype=0 a
    # -Doptimization (with -Ddebug) stands for a build type: both would draw a warning from meson.
    for a in "$@"; do [[ "$a" == --buildtype=* || "$a" == -Doptimization=* ]] && has_buildtype=1; done
    local setup_args=()
    ((has_buildtype)) || setup_args+=(--buildtype=release)
    gw_log "configuring $dir: meson setup $dir ${setup_args[*]} $*"
    # Also fine on a directory left by a setup that failed half-way (no coredata.dat yet).
    meson setup "$dir" "$GW_ROOT" "${setup_args[@]}" "$@" || return 1
  elif (($#)); then
    meson configure "$dir" "$@" >/dev/null || return 1
  fi
}

# gw_pid_stop PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for it to go, then SIGKILL.
# Only ever called with PIDs the calling script started itself.
gw_pid_stop() {
  local pid="$1" secs="${2:-10}" i
  [[ -n "$pid" ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    gw_log "pid $pid still running ${secs}s after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# gw_port_in_use PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
gw_port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# gw_require_free_ports PORT...: dies naming the first of the ports something already listens on.
gw_require_free_ports() {
  local p
  for p in "$@"; do
    ! gw_port_in_use "$p" || gw_die "127.0.0.1:$p is already in use (--port)"
  done
}

# gw_wait_http PID PORT PATH SECONDS [SCHEME]: wait until 127.0.0.1:PORT answers PATH with any
# HTTP status (prints it), failing early if PID exits. Polls; never a fixed sleep. SCHEME https
# accepts any certificate (a benchmark's own).
gw_wait_http() {
  local pid="$1" port="$2" path="$3" secs="$4" scheme="${5:-http}" code i
  for ((i = 0; i < secs * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    code="$(curl -sk -o /dev/null --max-time 1 -w '%{http_code}' "$scheme://127.0.0.1:$port$path" || true)"
    if [[ -n "$code" && "$code" != 000 ]]; then
      printf '%s\n' "$code"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# gw_start_test_backend BINARY ID OUT LOG: starts test_backend (BINARY) on a free loopback port
# with its stdout in OUT and stderr in LOG, appends its PID to the caller's `pids` array (stopped
# by the caller's exit trap) and sets GW_BACKEND_PORT to the port it prints. Bounded wait.
gw_start_test_backend() {
  local binary="$1" id="$2" out="$3" log="$4" word i
  "$binary" --port 0 --id "$id" >"$out" 2>"$log" &
  pids+=("$!")
  for ((i = 0; i < 100; i++)); do
    [[ -s "$out" ]] && break
    sleep 0.05
  done
  read -r word GW_BACKEND_PORT <"$out" || true
  [[ "$word" == PORT && "$GW_BACKEND_PORT" =~ ^[0-9]+$ ]] || gw_die "test_backend $id did not start"
}

# gw_stop_at_exit DIR: from now on, exiting (or INT/TERM) stops every PID in the caller's `pids`
# array with gw_pid_stop and removes DIR. Only ever PIDs the calling script started itself.
gw_stop_at_exit() {
  GW_EXIT_DIR="$1"
  pids=()
  trap gw_stop_now EXIT
  trap 'exit 130' INT TERM
}
gw_stop_now() {
  trap - EXIT INT TERM
  local p
  for p in "${pids[@]}"; do gw_pid_stop "$p" 15; done
  rm -rf "$GW_EXIT_DIR"
}

# The options of the scripts that time an admin-side operation on a gatewayd with many routes
# (scrape_time.sh, reload_time.sh): gw_timing_options COUNT_NAME DEFAULT_COUNT DEFAULT_PORT
# HELP_LAST_LINE "$@" reads --routes N --workers W --COUNT_NAME K --port P --gatewayd BIN and
# sets routes (default 10 unless $routes is set), workers (2), count, port, admin_port (port + 1),
# build and gatewayd (built from $BUILD_DIR, default build/, unless given); --help prints the
# script's header comment up to HELP_LAST_LINE.
gw_timing_options() {
  local count_name="$1" help_last="$4"
  count="$2"
  port="$3"
  routes="${routes:-10}"
  workers=2
  gatewayd=""
  shift 4
  while (($#)); do
    case "$1" in
      --routes | --workers | --"$count_name" | --port | --gatewayd)
        (($# >= 2)) || gw_die "$1 needs a value"
        case "$1" in
          --routes) routes="$2" ;;
          --workers) workers="$2" ;;
          --port) port="$2" ;;
          --gatewayd) gatewayd="$2" ;;
          *) count="$2" ;;
        esac
        shift ;;
      -h | --help) sed -n "2,${help_last}s/^# \{0,1\}//p" "$0"; exit 0 ;;
      *) gw_die "unknown option: $1 (see --help)" ;;
    esac
    shift
  done
  ((routes >= 1 && routes <= 10000 && workers >= 1 && count >= 1 && count <= 10000)) ||
    gw_die "keep it bounded: --routes 1..10000, --$count_name 1..10000, --workers >= 1"
  admin_port=$((port + 1))
  build="${BUILD_DIR:-$GW_ROOT/build}"
  if [[ -z "$gatewayd" ]]; then
    gw_build "$build" || gw_die "build failed"
    gatewayd="$build/gatewayd"
  fi
  [[ -x "$gatewayd" ]] || gw_die "$gatewayd was not built"
  gw_require_free_ports "$port" "$admin_port"
}
