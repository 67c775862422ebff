#!/usr/bin/env bash
# Installs the Debian 12 packages gatewayd needs, and only those that are missing.
#   scripts/setup.sh            build + test/runtime packages
#   scripts/setup.sh --bench    also what scripts/bench.sh and ../shared/bench need
#   scripts/setup.sh --format   also clang-format (scripts/format.sh)
#   scripts/setup.sh --soak     also what scripts/soak.sh needs (wrk, gnuplot)
#   scripts/setup.sh --fuzz     also clang and libFuzzer (scripts/fuzz.sh)
#   scripts/setup.sh --sanitize also clang and its sanitizer runtimes (scripts/test.sh --sanitize,
#                               scripts/build.sh --sanitize: the sanitized build is clang's)
#   scripts/setup.sh --build    only the build packages (scripts/install.sh building on this host)
#   scripts/setup.sh --run      only the libraries the gatewayd binary links (scripts/install.sh)
# Idempotent: with everything present it touches nothing (no apt-get update) and works as any
# user; otherwise it needs root.
set -euo pipefail
GW_SCRIPT=setup
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Why each package is here: README.md, "Dependencies".
build_pkgs=(g++ meson ninja-build pkg-config libevent-dev libssl-dev libyaml-cpp-dev rapidjson-dev
  doctest-dev libhiredis-dev node-llhttp libsystemd-dev prometheus-cpp-dev)
runtime_pkgs=(curl python3 ca-certificates procps)
# promtool and a real Prometheus server for the metrics tests; openssl makes the TLS tests'
# certificates; redis-tools holds the real Redis server the Redis tests start (and redis-cli,
# redis-benchmark) without installing redis-server's always-on service.
test_pkgs=(prometheus openssl redis-tools)
# What the gatewayd binary itself needs at run time (`ldd build/gatewayd`; libstdc++6, libgcc-s1
# and libc6 are on every Debian system): all a production host gets from scripts/install.sh.
binary_pkgs=(libevent-core-2.1-7 libyaml-cpp0.7 libsystemd0 libprometheus-cpp-core1.0 libssl3
  libhiredis0.14)
bench_pkgs=(nginx-light haproxy wrk apache2-utils valgrind strace)
bench_optional_pkgs=(h2o)  # a peer in ../shared/bench; its absence only drops that column
format_pkgs=(clang-format)
soak_pkgs=(wrk gnuplot-nox)  # load, and the PNG of RSS and throughput over time
# clang 14 with its libFuzzer and sanitizer runtimes, and llvm-symbolizer for readable reports:
# the sanitized build (tests and fuzz targets in one) is clang's.
clang_pkgs=(clang libclang-rt-14-dev llvm)

want=("${build_pkgs[@]}" "${runtime_pkgs[@]}" "${test_pkgs[@]}")
optional=()
bench=0
for arg in "$@"; do
  case "$arg" in
    --bench) bench=1; want+=("${bench_pkgs[@]}"); optional+=("${bench_optional_pkgs[@]}") ;;
    --format) want+=("${format_pkgs[@]}") ;;
    --soak) want+=("${soak_pkgs[@]}") ;;
    --fuzz | --sanitize) want+=("${clang_pkgs[@]}") ;;
    --build) want=("${build_pkgs[@]}") ;;
    --run) want=("${binary_pkgs[@]}") ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $arg (see --help)" ;;
  esac
done

# "ii " = wanted and installed, "hi " = held and installed; anything else needs apt.
installed() {
  local s
  s="$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" || return 1
  [[ "${s:1:2}" == "i " ]]
}

missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done

if ((${#missing[@]} == 0 && ${#missing_optional[@]} == 0)); then
  gw_log "all ${#want[@]} packages present"
  exit 0
fi

if ((EUID != 0)); then
  if ((${#missing[@]} == 0)); then
    gw_log "optional packages missing (need root to install): ${missing_optional[*]}"
    exit 0
  fi
  gw_die "missing packages: ${missing[*]} -- run as root: sudo $0 $*"
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a dpkg lock held by e.g. unattended-upgrades on a freshly booted machine.
apt_opts=(-y --no-install-recommends -o DPkg::Lock::Timeout=600)

# The servers we install (prometheus; nginx, haproxy, h2o for the benchmarks) are only ever
# started by our scripts on loopback ports; a policy-rc.d that denies everything keeps their
# packages from starting system services on ports 9090 or 80 (which could also clash and leave
# a package half-configured).
policy=/usr/sbin/policy-rc.d
own_policy=0
cleanup() { if ((own_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT
if [[ ! -e "$policy" ]]; then
  printf '#!/bin/sh\n# temporary, from gatewayd scripts/setup.sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  own_policy=1
fi

# One retry: a mirror hiccup on a fresh machine should not fail a whole CI run.
retry() { "$@" || { gw_log "retrying in 10s: $*"; sleep 10; "$@"; }; }

gw_log "installing: ${missing[*]} ${missing_optional[*]}"
retry apt-get -o DPkg::Lock::Timeout=600 update
if ((${#missing[@]})); then
  retry apt-get install "${apt_opts[@]}" "${missing[@]}"
fi
for p in "${missing_optional[@]}"; do
  apt-get install "${apt_opts[@]}" "$p" || gw_log "warning: optional package $p not installed"
done

still=()
for p in "${want[@]}"; do installed "$p" || still+=("$p"); done
((${#still[@]} == 0)) || gw_die "still missing after apt-get install: ${still[*]}"
gw_log "all ${#want[@]} packages present"
