#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + integration).
#   scripts/test.sh                 release build in build/, `meson test`
#   scripts/test.sh --sanitize      clang AddressSanitizer + UBSan build (-O1, with the fuzz targets)
#                                   in build-asan/ (also SANITIZE=1)
#   scripts/test.sh --tsan          ThreadSanitizer build (-O1) in build-tsan/; runs only the tests
#                                   listed in test/tsan_tests.txt; any report fails the run
#   scripts/test.sh -- ARGS         extra `meson test` arguments, e.g. -- unit   or   -- --suite integration
#                                   or   -- 'integration cache_test' (one source file's tests)
# BUILD_DIR overrides the build directory. Exits non-zero if anything fails; the last line is
# "release: N passed, N failed" (or "sanitized: ...", "tsan: ..."), N counting doctest test cases.
set -euo pipefail
GW_SCRIPT="test"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sanitize="${SANITIZE:-0}"
tsan=0
test_args=()
while (($#)); do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --tsan) tsan=1 ;;
    --) shift; test_args+=("$@"); break ;;
    -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

if ((tsan)); then
  pass=tsan
  dir="${BUILD_DIR:-$GW_ROOT/build-tsan}"
  # -O1 (and -g1, from meson.build): fast enough to run, quicker to build than -O2 -g. No
  # --buildtype: `meson configure` would let it reset the optimization level on every rerun.
  build_args=(-Doptimization=1 -Ddebug=false -Db_ndebug=false -Dsanitize_thread=true)
elif [[ "$sanitize" == 1 ]]; then
  pass=sanitized
  dir="$(gw_sanitized_dir)"
  # Sanitized code runs several times slower; the per-test timeouts are set for release.
  test_args=(--timeout-multiplier 4 "${test_args[@]}")
  # meson test adds halt_on_error/abort_on_error itself; keep leak checking explicit. The
  # suppressions: RapidJSON 1.1's one known report (test/fuzz/ubsan.supp).
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1:print_summary=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1:suppressions=$GW_ROOT/test/fuzz/ubsan.supp}"
else
  pass=release
  dir="${BUILD_DIR:-$GW_ROOT/build}"
  build_args=()
fi

started=$SECONDS
if [[ "$pass" == sanitized ]]; then
  "$GW_ROOT/scripts/setup.sh" --sanitize
  build=(gw_build_sanitized "$dir")
else
  "$GW_ROOT/scripts/setup.sh"
  build=(gw_build "$dir" "${build_args[@]}")
fi
if ! "${build[@]}"; then
  echo "$pass: build failed in $dir"
  exit 1
fi
built=$SECONDS

# ThreadSanitizer: each line of test/tsan_tests.txt is one run of its binary, limited to that
# source file and its test-case filter. Every process writes its reports to files of its own
# (gatewayd and test_backend too, through the inherited TSAN_OPTIONS); any report fails the run.
if ((tsan)); then
  reports="$dir/tsan-reports"
  rm -rf "$reports"
  mkdir -p "$reports"
  # No suppressions: none has been needed (docs/reliability.md, "ThreadSanitizer").
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0:second_deadlock_stack=1:log_path=$reports/report}"
  # A pattern that matches no test case (a renamed test, a typo) would silently drop that test
  # from the pass: every comma-separated pattern of a line must match at least one case.
  unmatched_patterns() {  # EXE SOURCE FILTER: prints each pattern that selects no test case
    local exe="$1" source="$2" pattern listed patterns
    IFS=, read -ra patterns <<<"${3:-*}"
    for pattern in "${patterns[@]}"; do
      listed="$("$exe" "--source-file=*$source" "--test-case=$pattern" --list-test-cases 2>&1 </dev/null)"
      [[ "$listed" =~ passing\ the\ current\ filters:\ ([1-9][0-9]*) ]] || echo "$pattern"
    done
  }
  passed=0 failed=0 runs=0
  while read -r binary source filter; do
    [[ -z "$binary" || "$binary" == \#* ]] && continue
    args=("--source-file=*$source")
    [[ -z "$filter" ]] || args+=("--test-case=$filter")
    if [[ "$binary" == unit ]]; then exe="$dir/test/unit_tests"; else exe="$dir/test/integration/integration_tests"; fi
    gw_log "tsan: $binary $source ${filter:+($filter)}"
    unmatched="$(unmatched_patterns "$exe" "$source" "$filter")"
    if [[ -n "$unmatched" ]]; then
      gw_log "tsan: no test case in $source matches: ${unmatched//$'\n'/, }"
      failed=$((failed + 1))
    fi
    rc=0
    out="$(timeout 900 "$exe" "${args[@]}" 2>&1 </dev/null)" || rc=$?
    # "[doctest] test cases: 42 | 41 passed | 1 failed | 0 skipped"
    tally="$(grep -E '^\[doctest\] test cases:' <<<"$out" | tail -n 1)"
    if [[ "$tally" =~ \|[[:space:]]*([0-9]+)[[:space:]]passed[[:space:]]*\|[[:space:]]*([0-9]+)[[:space:]]failed ]]; then
      passed=$((passed + BASH_REMATCH[1]))
      failed=$((failed + BASH_REMATCH[2]))
      ((rc == 0 || BASH_REMATCH[2] > 0)) || failed=$((failed + 1))
    else
      failed=$((failed + 1))
    fi
    ((rc == 0)) || printf '%s\n' "$out"
    runs=$((runs + 1))
  done <"$GW_ROOT/test/tsan_tests.txt"
  count="$(find "$reports" -type f | wc -l)"
  gw_log "tsan: $runs runs, build $((built - started))s, tests $((SECONDS - built))s, $count report files"
  if ((count > 0)); then
    for f in "$reports"/*; do
      echo "=== $f"
      cat "$f"
    done
    failed=$((failed + count))
  fi
  echo "tsan: $passed passed, $failed failed"
  ((failed == 0 && passed > 0))
  exit
fi

gw_log "running the suite ($pass) in $dir"
rc=0
rm -f "$dir/meson-logs/testlog.json"  # so a run that never started cannot be read as a stale pass
# The integration tests are one meson test per source file; they mostly wait, so twice as many
# run at once as there are cores.
meson test -C "$dir" --print-errorlogs --num-processes "$(($(nproc) * 2))" "${test_args[@]}" || rc=$?

# meson's own summary ("Ok: 2 Fail: 0 ...") is not a line CI tools read, and it counts test
# binaries, not tests. So count from the log meson just wrote: a test binary that printed a
# doctest tally contributes its test cases; one that failed without a failing case (a crash, a
# sanitizer report at exit, a timeout) counts one more failure; any other test counts as one.
# Nothing run at all is a failure: a suite that silently ran nothing must not pass. A binary run
# in shards (one per source file) reports in each shard the cases the others ran as skipped:
# only the cases no shard ran were truly skipped.
read -r passed failed skipped binaries <<<"$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, re, sys
passed = failed = skipped = 0
shards = {}  # executable -> [(cases run, cases skipped), ...]
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    t = json.loads(line)
    result = t.get("result")
    ok = result in ("OK", "EXPECTEDFAIL")
    # "[doctest] test cases: 42 | 41 passed | 1 failed | 0 skipped"
    m = re.search(r"test cases:\s*(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed(?:\s*\|\s*(\d+) skipped)?",
                  t.get("stdout") or "")
    executable = (t.get("command") or [t.get("name")])[0]
    if result == "SKIP":
        shards.setdefault(executable, []).append((0, 1))
    elif m:
        ran, p, f, s = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)
        passed, failed = passed + p, failed + f
        shards.setdefault(executable, []).append((ran, s))
        if not ok and f == 0:
            failed += 1
    elif ok:
        passed += 1
        shards.setdefault(executable, [])
    else:
        failed += 1
        shards.setdefault(executable, [])
for runs in shards.values():
    if runs:
        total = sum(runs[0])  # every shard of a binary sees all of its cases
        skipped += sum(s for _, s in runs) - (len(runs) - 1) * total
print(passed, failed, skipped, len(shards))
PY
)"
gw_log "$pass: $binaries test binaries, build $((built - started))s, tests $((SECONDS - built))s"
if ((passed + failed == 0)); then
  echo "$pass: no test ran (0 passed, 0 failed) -- treating as failure"
  exit 1
fi
line="$pass: $passed passed, $failed failed"
((skipped == 0)) || line+=", $skipped skipped"
echo "$line"
if ((rc != 0 || failed != 0)); then
  exit 1
fi
