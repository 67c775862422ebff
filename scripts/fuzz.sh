#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz/ (meson -Dfuzz=true with clang: ASan + UBSan +
# coverage) in the sanitized build, build-asan/ (the one scripts/test.sh --sanitize runs the tests
# in), and runs each for a bounded time from its seed corpus.
#   scripts/fuzz.sh                       every target, 60 s each
#   scripts/fuzz.sh --seconds 600         each target for 10 minutes
#   scripts/fuzz.sh --target request      only that target (repeatable)
#   scripts/fuzz.sh --list                the targets
#   scripts/fuzz.sh --keep-going          after a finding, go on for the time left (long runs)
# Inputs that reach new code are kept in build-asan/corpus/<name>/ (scratch: the seeds in
# test/fuzz/corpus/<name>/ stay small and hand-picked). A crash, a broken invariant, a leak, a
# timeout or running out of memory stops that target, keeps the input in
# build-asan/crashes/<name>/ and makes the script exit non-zero after the other targets ran.
# One summary line per target: runs, coverage, features, corpus, peak RSS, crashes.
# Through ccache when it is installed; CC/CXX may name another clang. BUILD_DIR overrides build-asan/.
set -euo pipefail
GW_SCRIPT="fuzz"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

all_targets=(request response config cache_control traceparent schema_validation)
seconds=60
targets=()
list=0
keep_going=0
while (($#)); do
  case "$1" in
    --seconds) [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || gw_die "--seconds needs a positive integer"
      seconds="$2"; shift ;;
    --target) [[ " ${all_targets[*]} " == *" ${2:-} "* ]] || gw_die "unknown target: ${2:-} (--list)"
      targets+=("$2"); shift ;;
    --list) list=1 ;;
    --keep-going) keep_going=1 ;;
    -h | --help) sed -n '2,15s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done
if ((list)); then
  printf '%s\n' "${all_targets[@]}"
  exit 0
fi
((${#targets[@]})) || targets=("${all_targets[@]}")

"$GW_ROOT/scripts/setup.sh" --fuzz
dir="$(gw_sanitized_dir)"
binaries=()
for name in "${targets[@]}"; do binaries+=("test/fuzz/${name}_fuzz"); done
# Only the targets (and what they link), not the tests. -O1 is libFuzzer's usual trade: fast
# enough per input, still close to the source.
GW_BUILD_TARGETS="${binaries[*]}" gw_build_sanitized "$dir" || gw_die "build failed in $dir"

# Every sanitizer report ends the run and leaves the input behind; symbolized stacks.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:print_summary=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:print_summary=1:suppressions=$GW_ROOT/test/fuzz/ubsan.supp}"

# Dictionaries: the protocol's words, which random mutation takes long to spell.
dictionary_for() {
  case "$1" in
    request | response) echo "$GW_ROOT/test/fuzz/http.dict" ;;
    config) echo "$GW_ROOT/test/fuzz/config.dict" ;;
    cache_control) echo "$GW_ROOT/test/fuzz/cache_control.dict" ;;
  esac
}

failed=()
summaries=()
for name in "${targets[@]}"; do
  corpus="$dir/corpus/$name"
  crashes="$dir/crashes/$name"
  log="$dir/logs/$name.log"
  mkdir -p "$corpus" "$crashes" "$dir/logs"
  args=(-timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1
    -artifact_prefix="$crashes/")
  dict="$(dictionary_for "$name")"
  [[ -z "$dict" ]] || args+=(-dict="$dict")
  gw_log "running $name for ${seconds}s (log: $log)"
  before=$(find "$crashes" -type f | wc -l)
  : >"$log"
  started=$SECONDS
  rc=0
  while :; do
    run_rc=0
    # The first directory receives new inputs; the seeds in the tree are only read.
    (cd "$dir" && "./test/fuzz/${name}_fuzz" "${args[@]}" -max_total_time=$((seconds - (SECONDS - started))) \
      "$corpus" "$GW_ROOT/test/fuzz/corpus/$name") >>"$log" 2>&1 || run_rc=$?
    ((run_rc == 0)) || rc=$run_rc
    ((run_rc != 0 && keep_going && SECONDS - started < seconds - 1)) || break
    gw_log "$name: a finding (exit status $run_rc); going on for $((seconds - (SECONDS - started)))s"
  done
  summary="$(python3 - "$log" "$name" "$rc" "$crashes" "$before" <<'PY'
import os, re, sys
log, name, rc, crashes, before = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
text = open(log, errors="replace").read()
def last(pattern, default="?"):
    found = re.findall(pattern, text)
    return found[-1] if found else default
# Every run of the target (--keep-going restarts it after a finding) adds its executions.
runs = sum(int(n) for n in re.findall(r"stat::number_of_executed_units:\s*(\d+)", text))
speed = last(r"stat::average_exec_per_sec:\s*(\d+)")
new = sum(int(n) for n in re.findall(r"stat::new_units_added:\s*(\d+)", text))
rss = max((int(n) for n in re.findall(r"stat::peak_rss_mb:\s*(\d+)", text)), default="?")
cov = last(r"cov: (\d+)")
ft = last(r"ft: (\d+)")
corp = last(r"corp: (\d+)/")
kept = len(os.listdir(crashes)) - before
line = (f"{name}: {runs} runs ({speed}/s), cov {cov}, ft {ft}, corpus {corp} (+{new} new), "
        f"peak RSS {rss} MB, crashes {kept}")
if rc != 0:
    # The first report that names a cause; libFuzzer's own line only says how it ended.
    reason = f"exit status {rc}"
    for pattern in (r"fuzz invariant broken at [^\n]*", r"runtime error: [^\n]*",
                    r"ERROR: (?:Address|Leak)Sanitizer: [^\n]*", r"ERROR: libFuzzer: [^\n]*"):
        found = re.search(pattern, text)
        if found:
            reason = found.group(0)
            break
    line += f" -- FAILED: {reason}"
print(line)
PY
)"
  summaries+=("$summary")
  if ((rc != 0)); then
    failed+=("$name")
    gw_log "$name failed; the input is in $crashes/, the report in $log:"
    grep -E -A12 "ERROR: |fuzz invariant broken|runtime error:" "$log" | head -40 >&2 || true
  fi
done

printf '%s\n' "${summaries[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $dir/crashes/; reproduce with $dir/test/fuzz/<name>_fuzz <input>)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
