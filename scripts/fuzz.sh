#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan + UBSan; not part of the meson build) into
# build-fuzz/ and runs each for a bounded time from its seed corpus in test/fuzz/corpus/<name>/.
#   scripts/fuzz.sh                       every target, 60 s each
#   scripts/fuzz.sh -t 300 schema_validation
# New inputs are kept in build-fuzz/corpus/<name>/ (the seeds in the tree stay small); a crash
# leaves build-fuzz/crash-* and makes the script exit non-zero. The last line per target is
# libFuzzer's "Done N runs in S second(s)".
set -euo pipefail
GW_SCRIPT="fuzz"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=60
while (($#)); do
  case "$1" in
    -t) seconds="$2"; shift ;;
    -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) gw_die "unknown option: $1 (see --help)" ;;
    *) break ;;
  esac
  shift
done
targets=("$@")
((${#targets[@]})) || targets=(schema_validation)

command -v clang++ >/dev/null || gw_die "clang++ is needed (apt-get install clang)"
out="$GW_ROOT/build-fuzz"
mkdir -p "$out"

# The sources each target links, besides test/fuzz/<name>_fuzz.cpp.
sources_for() {
  case "$1" in
    schema_validation)
      echo plugins/schema_validation/schema_validation.cpp \
        plugins/schema_validation/validation_budget.cpp gateway/http/headers.cpp ;;
    *) gw_die "unknown fuzz target: $1" ;;
  esac
}

for name in "${targets[@]}"; do
  read -r -a sources <<<"$(sources_for "$name")"
  binary="$out/${name}_fuzz"
  gw_log "building $binary"
  # pointer-overflow is off: RapidJSON 1.1.0's internal::Stack computes nullptr + n before its
  # first allocation (harmless, fixed upstream), which would stop every run at start-up.
  (cd "$GW_ROOT" && clang++ -std=c++20 -g -O1 -fno-omit-frame-pointer \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -fno-sanitize=pointer-overflow \
    -DGW_SOURCE_ROOT="\"$GW_ROOT\"" -I"$GW_ROOT" \
    "test/fuzz/${name}_fuzz.cpp" "${sources[@]}" -o "$binary")
  corpus="$out/corpus/$name"
  mkdir -p "$corpus"
  gw_log "running $name for ${seconds}s"
  (cd "$out" && "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 "$corpus" "$GW_ROOT/test/fuzz/corpus/$name")
done
