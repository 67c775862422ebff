#!/usr/bin/env bash
# Mutation check: plants known kinds of small bugs one at a time, rebuilds, runs the tests that
# should notice, and prints KILLED (a test failed) or SURVIVED (every test passed: a gap in the
# suite) per mutation. On demand, not in CI: about a minute per mutation on two cores.
#   scripts/mutation.sh                  every mutation against its listed tests
#   scripts/mutation.sh --full           every mutation against the whole suite (much slower)
#   scripts/mutation.sh NAME...          only these mutations
#   scripts/mutation.sh --rev REV        plant into another commit (e.g. to see what it missed)
#   scripts/mutation.sh --list           name, file and description of each; runs nothing
#   scripts/mutation.sh --check          only verify that each mutation still applies
#   scripts/mutation.sh --remove         delete the scratch copy
# Mutations are planted in a scratch copy of the committed HEAD or REV (a detached git worktree in
# $GW_MUTATION_DIR, default build-mutation/ here, kept between runs so its build-cc stays
# incremental and under ccache's base_dir): this tree's sources and builds are never touched. A mutation whose search
# text no longer occurs exactly once is reported STALE (update the list after a refactor).
# Results are printed as they come and again as a Markdown table for docs/reliability.md.
# Exit status: 0 when every mutation was killed, 1 otherwise.
set -euo pipefail
GW_SCRIPT="mutation"
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- The mutations ---------------------------------------------------------------------------
# mutation NAME FILE SEARCH REPLACEMENT DESCRIPTION UNIT_TEST_FILES INTEGRATION_TESTS
# SEARCH must occur exactly once in FILE; it is replaced literally. UNIT_TEST_FILES is a doctest
# --source-file filter for build-cc/test/unit_tests, INTEGRATION_TESTS a --test-case filter for
# build-cc/test/integration/integration_tests (comma-separated, * wildcards); "" runs none of
# that binary. --full ignores both and runs the whole suite.
names=() files=() searches=() replacements=() descriptions=() unit_filters=() integration_filters=()
mutation() {
  names+=("$1") files+=("$2") searches+=("$3") replacements+=("$4") descriptions+=("$5")
  unit_filters+=("$6") integration_filters+=("$7")
}

# Issue 9, finding 24: the audit's bugs that passed the suite, (a) to (f).
mutation connection-nominated-plugin-routes gateway/proxy/exchange.cpp \
  'kind == http::FieldName::Dropped || fields.nominated(name)) {' \
  'kind == http::FieldName::Dropped) {' \
  "(a) fields a client's Connection names reach the backend on routes with plugins" \
  '' 'headers*'
mutation rate-limit-reset-previous-window plugins/rate_limit/window_table.cpp \
  'slot.prev > 0 ? w - elapsed : 0;' \
  'slot.prev > 0 ? 2 * w - elapsed : 0;' \
  '(b) the reset time is wrong when only the previous window counts' \
  '*/plugins/rate_limit/*_test.cpp' 'plugins rate limit*'
mutation cache-304-keeps-unstorable-entry plugins/cache/cache.cpp \
  '  } else {
    store.invalidate(key.primary);
  }' \
  '  }' \
  '(c) a 304 that makes a stored entry unstorable leaves it in the store' \
  '*/plugins/cache/*_test.cpp' 'plugins cache*'
mutation local-reply-without-no-store gateway/proxy/local_reply.cpp \
  '  response.headers.add("Cache-Control", "no-store");' \
  '' \
  "(d) the gateway's own answers lose Cache-Control: no-store" \
  '*/local_reply_test.cpp' 'local replies*,gateway answers*,smuggling*'
mutation stale-pooled-connection-not-retried gateway/proxy/forwarder.cpp \
  '                 ? NextAttempt::FreshConnection' \
  '                 ? NextAttempt::Fail' \
  '(e) no retry after a pooled connection the backend had closed' \
  '*/proxy/forwarder_test.cpp' 'pool*'
mutation invalid-path-keeps-connection gateway/proxy/connection.cpp \
  '    reply(target.error(), true);' \
  '    reply(target.error(), false);' \
  '(f) an invalid path is answered but the connection stays open' \
  '' 'local replies*,path guard*'

# The other findings of issue 9, each planted back. A mutation must change behaviour: where two
# guards stand behind each other (Connection options naming framing fields are ignored, and the
# forwarded head is framed from parsed values anyway; the exchange and the pool both refuse an
# upstream connection with unread bytes), disabling one alone changes nothing at the gateway's
# edge, so each is planted where a test sees it alone (the unit tests of the inner guard).
mutation connection-names-framing-fields gateway/http/headers.cpp \
  '} else if (framesOrRoutes(classifyField(option))) {' \
  '} else if (false) {' \
  '(0) Connection: Content-Length / Host are honoured as hop-by-hop names' \
  '*/http/headers_test.cpp' 'smuggling*,headers*'
mutation forwarded-body-unframed gateway/proxy/upstream_request.h \
  '  if (target.contentLength) {' \
  '  if (false) {' \
  "(0) the gateway's own Content-Length is left out: the body reaches the backend unframed" \
  '' 'smuggling*,bodies*,headers*'
mutation connection-nominated-fast-path gateway/proxy/upstream_request.h \
  '    if (fields.nominated(fields.name(i))) continue;' \
  '' \
  "fields a client's Connection names reach the backend on routes without plugins" \
  '' 'headers*'
mutation connection-nominated-response gateway/proxy/response_relay.cpp \
  '    if (nominated && connection.nominates(name)) continue;' \
  '' \
  "fields a backend's Connection names reach the client" \
  '' 'headers*'
mutation retried-failure-counted-twice gateway/proxy/forwarder.cpp \
  '  if (failedBackends_ & bit) return;' \
  '' \
  '(3) a retried reset counts twice toward ejecting the backend' \
  '' 'health*,pool*'
mutation last-backend-ejected gateway/upstream/health.cpp \
  '  if (!ejectionAllowed(upstream, backend, nowMs)) {' \
  '  if (false) {' \
  '(3) passive health ejects the last healthy backend' \
  '*/upstream/health_test.cpp' 'health*'
mutation pipelined-output-unbounded gateway/proxy/connection.cpp \
  '    if (!exchange_ && out_.pending() > kHighWatermark) {' \
  '    if (false) {' \
  '(4) a client that pipelines and never reads makes the gateway queue every answer' \
  '' 'pipelining*'
mutation no-content-204-has-body gateway/http/parser.cpp \
  'headRequest || status == 204 || status == 304, {}};' \
  'headRequest || status == 304, {}};' \
  '(6) a 204 with Content-Length waits for a body' \
  '*/http/parser_test.cpp' 'upstream framing*,bodies*'
mutation informational-with-body-relayed gateway/http/parser.cpp \
  '    if (parser.hasTransferEncoding() || parser.contentLength() > 0) {' \
  '    if (false) {' \
  "(7) a 1xx with a body puts the backend's raw bytes before the gateway's head" \
  '*/http/parser_test.cpp' 'upstream framing*'
mutation status-below-100-relayed gateway/http/parser.cpp \
  '  if (status < 100) return {Kind::Refused, false, "status code below 100"};' \
  '' \
  '(7) a status below 100 is accepted' \
  '*/http/parser_test.cpp' 'upstream framing*'
mutation switching-protocols-relayed gateway/http/parser.cpp \
  '  if (status == 101) return {Kind::Refused, false, "101 Switching Protocols was not asked for"};' \
  '' \
  '(7) a 101 nobody asked for is relayed' \
  '*/http/parser_test.cpp' 'upstream framing*'
mutation upstream-input-compacted-before-flush gateway/proxy/exchange.cpp \
  '  if (!downstream_.flushClient()) return;
  // Only now may the input move' \
  '  if (!forwarder_.lease()->parser().inHead()) forwarder_.lease()->input().compact();
  if (!downstream_.flushClient()) return;
  // Only now may the input move' \
  "(8) the upstream input moves while the client's queue still points into it" \
  '' 'upstream framing*,bodies*'
mutation excess-bytes-connection-pooled gateway/upstream/cluster.cpp \
  '  if (connection->closed() || !connection->clean() ||' \
  '  if (connection->closed() ||' \
  '(8) an upstream connection with bytes after the response goes back to the pool' \
  '*/upstream/cluster_test.cpp' 'upstream framing*'
mutation non-idempotent-retried gateway/proxy/forwarder.cpp \
  '      return facts.idempotent && !facts.requestHasBody && !facts.retriedReuse' \
  '      return !facts.requestHasBody && !facts.retriedReuse' \
  '(10) a POST on a stale pooled connection is sent twice' \
  '*/proxy/forwarder_test.cpp' 'pool*'
mutation retry-drops-queued-body gateway/proxy/forwarder.cpp \
  '        out.appendFrom(queued);' \
  '' \
  '(11a) a retry on the next backend loses the body bytes already queued' \
  '' 'pool*'
mutation empty-field-name-accepted gateway/http/parser.cpp \
  '  if (s.fields_.empty() || s.fields_.back().nameLength == 0) {' \
  '  if (false) {' \
  '(16) an empty header field name is forwarded' \
  '*/http/parser_test.cpp' 'smuggling*'
mutation versionless-request-line-accepted gateway/http/parser.cpp \
  "  if (at + length < s.end_ && (at[length] == '\\r' || at[length] == '\\n')) {" \
  '  if (false) {' \
  '(16) a request line without an HTTP version waits instead of being refused' \
  '*/http/parser_test.cpp' 'smuggling*'
mutation chunk-extensions-unbounded gateway/http/parser.cpp \
  '  if (s.chunkExtensionBytes_ > kMaxChunkExtensionBytes) {' \
  '  if (false) {' \
  '(17) chunk extensions have no length cap' \
  '*/http/parser_test.cpp' 'smuggling*'

mutation underscored-names-forwarded gateway/proxy/request_head.cpp \
  '          kinds[i] = http::FieldName::Dropped;' \
  '' \
  '(18) header names with an underscore reach the backend (X_Forwarded_For read as X-Forwarded-For)' \
  '' 'headers*'
mutation client-address-fields-untrusted gateway/proxy/upstream_request.h \
  '        if (target.fromTrustedProxy) field(fields.name(i), fields.value(i));' \
  '        field(fields.name(i), fields.value(i));' \
  "(18) any client's X-Real-IP and Forwarded reach the backend, not only a trusted proxy's" \
  '' 'headers*'
mutation connection-limit-ignored gateway/runtime/worker.cpp \
  '    if (connections_.size() >= snapshot_->config.limits.max_connections_per_worker) {' \
  '    if (false) {' \
  'a worker accepts connections past limits.max_connections_per_worker' \
  '' 'connections*'

# Promises of the docs that finding 24 found untested.
mutation client-left-not-recorded gateway/proxy/connection.cpp \
  '  if (log_.open()) recordExchange(kClientClosedRequest);' \
  '' \
  'a client that left before its answer is neither logged nor counted (499)' \
  '' 'access log*,admin*'
mutation exception-not-answered gateway/proxy/connection.cpp \
  '  exchange_.reset();
  reply(Error::internal("internal error"), true);' \
  '  exchange_.reset();
  close();' \
  'an exception escaping a request gets no 500, the connection is just cut' \
  '*/proxy/connection_test.cpp' ''
mutation expectation-not-refused gateway/proxy/request_head.cpp \
  '        if (!http::hasToken(parser.fieldValue(base, i), "100-continue")) {' \
  '        if (false) {' \
  'an Expect other than 100-continue is forwarded instead of answered 417' \
  '*/proxy/connection_test.cpp' 'local replies*,bodies*'
mutation connect-method-routed gateway/proxy/request_head.cpp \
  '  if (head.method == HTTP_CONNECT) {' \
  '  if (false) {' \
  'CONNECT is routed instead of answered 501' \
  '*/proxy/connection_test.cpp' 'local replies*'
mutation body-timeout-silent-close gateway/proxy/connection.cpp \
  '    exchange_->failExchange(Error::downstream(ErrorCode::RequestTimeout, "client body timeout"));' \
  '    close();' \
  'a stalled request body is cut without the 408 the docs promise' \
  '' 'timeouts*,local replies*'
mutation only-first-worker-listens gateway/runtime/listening_sockets.cpp \
  '      for (std::size_t i = index; i < fds.size(); i += workers_) {' \
  '      for (std::size_t i = index; i < (index == 0 ? fds.size() : 0); i += workers_) {' \
  'only the first worker accepts connections' \
  '*/runtime/listening_sockets_test.cpp' 'multiworker*'

# --- The run ---------------------------------------------------------------------------------
full=0 check_only=0 rev=HEAD
selected=()
while (($#)); do
  case "$1" in
    --full) full=1 ;;
    --check) check_only=1 ;;
    --rev) rev="$2"; shift ;;
    --list)
      for i in "${!names[@]}"; do printf '%-40s %-36s %s\n' "${names[$i]}" "${files[$i]}" "${descriptions[$i]}"; done
      exit 0 ;;
    --remove)
      dir="${GW_MUTATION_DIR:-$GW_ROOT/build-mutation}"
      [[ -d "$dir" ]] && git -C "$GW_ROOT" worktree remove --force "$dir"
      exit 0 ;;
    -h | --help) sed -n '2,17s/^# \{0,1\}//p' "$0"; exit 0 ;;
    -*) gw_die "unknown option: $1 (see --help)" ;;
    *) selected+=("$1") ;;
  esac
  shift
done

indices=()
if ((${#selected[@]})); then
  for want in "${selected[@]}"; do
    found=0
    for i in "${!names[@]}"; do [[ "${names[$i]}" == "$want" ]] && indices+=("$i") && found=1; done
    ((found)) || gw_die "no mutation named $want (see --list)"
  done
else
  indices=("${!names[@]}")
fi

scratch="${GW_MUTATION_DIR:-$GW_ROOT/build-mutation}"
head="$(git -C "$GW_ROOT" rev-parse --verify "$rev^{commit}")"
if [[ -d "$scratch/.git" || -f "$scratch/.git" ]]; then
  git -C "$scratch" checkout --quiet --force --detach "$head"
else
  git -C "$GW_ROOT" worktree add --quiet --detach "$scratch" "$head"
fi
gw_log "scratch copy of $(git -C "$GW_ROOT" rev-parse --short "$head") in $scratch"
build="$scratch/build-cc"

# The file a mutation changed goes back to HEAD however the script ends.
planted=""
restore() {
  if [[ -n "$planted" ]]; then
    git -C "$scratch" checkout --quiet -- "$planted"
    planted=""
  fi
}
trap restore EXIT
trap 'restore; exit 130' INT TERM

# Replaces SEARCH by REPLACEMENT in FILE when SEARCH occurs exactly once; status 3 otherwise.
plant() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys
path, search, replacement = sys.argv[1:4]
with open(path) as f:
    text = f.read()
if text.count(search) != 1:
    sys.exit(3)
with open(path, "w") as f:
    f.write(text.replace(search, replacement))
PY
}

stale=0
for i in "${indices[@]}"; do
  if [[ "$(python3 -c 'import sys; print(open(sys.argv[1]).read().count(sys.argv[2]))' \
    "$scratch/${files[$i]}" "${searches[$i]}" 2>/dev/null)" != 1 ]]; then
    echo "STALE     ${names[$i]}: its search text is not exactly once in ${files[$i]}"
    stale=1
  fi
done
if ((check_only)); then
  ((stale)) && exit 1
  gw_log "every mutation applies"
  exit 0
fi

command -v ccache >/dev/null && export CC="${CC:-ccache gcc}" CXX="${CXX:-ccache g++}"
# The scratch build compiles the scratch copy's sources, never this tree's.
if [[ -f "$build/meson-info/intro-buildsystem_files.json" ]] &&
  ! grep -qF "\"$scratch/meson.build\"" "$build/meson-info/intro-buildsystem_files.json"; then
  rm -rf "$build"
fi
quiet_build() { GW_ROOT="$scratch" gw_build "$build" >"$scratch/build.log" 2>&1; }
quiet_build || gw_die "the unmutated scratch copy does not build; see $scratch/build.log"

# A filter that selects no test (a renamed test case or file) would let its mutation survive
# unseen, or be killed only by the other binary: each one must select at least one test.
selects_tests() {
  "$@" --list-test-cases 2>/dev/null | grep -q 'unskipped test cases passing the current filters: [1-9]'
}
if ((!full)); then
  for i in "${indices[@]}"; do
    IFS=, read -ra filters <<<"${unit_filters[$i]}"
    for filter in "${filters[@]}"; do
      selects_tests "$build/test/unit_tests" "--source-file=$filter" ||
        gw_die "${names[$i]}: unit test filter '$filter' selects no test"
    done
    IFS=, read -ra filters <<<"${integration_filters[$i]}"
    for filter in "${filters[@]}"; do
      selects_tests "$build/test/integration/integration_tests" "--test-case=$filter" ||
        gw_die "${names[$i]}: integration test filter '$filter' selects no test"
    done
  done
fi

# Runs one test binary with a doctest filter under a time bound; its children (gatewayd,
# test_backend) are stopped by PID if the bound is hit.
run_bounded() {
  local seconds="$1"
  shift
  "$@" >>"$scratch/test.log" 2>&1 &
  local pid=$! waited=0
  while kill -0 "$pid" 2>/dev/null && ((waited < seconds * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "(timed out after ${seconds}s)" >>"$scratch/test.log"
    local child
    for child in $(pgrep -P "$pid" || true); do gw_pid_stop "$child" 3; done
    gw_pid_stop "$pid" 3
    return 124
  fi
  wait "$pid"
}

run_tests() {
  local unit="$1" integration="$2"
  : >"$scratch/test.log"
  if ((full)); then
    run_bounded 1800 meson test -C "$build" --no-rebuild --print-errorlogs
    return
  fi
  if [[ -n "$unit" ]]; then
    run_bounded 600 "$build/test/unit_tests" "--source-file=$unit" || return 1
  fi
  if [[ -n "$integration" ]]; then
    run_bounded 1200 "$build/test/integration/integration_tests" "--test-case=$integration" ||
      return 1
  fi
}

# Without any mutation the same tests must pass, or a kill would prove nothing.
baseline_unit="" baseline_integration=""
for i in "${indices[@]}"; do
  [[ -n "${unit_filters[$i]}" ]] && baseline_unit+="${baseline_unit:+,}${unit_filters[$i]}"
  [[ -n "${integration_filters[$i]}" ]] &&
    baseline_integration+="${baseline_integration:+,}${integration_filters[$i]}"
done
gw_log "baseline: the listed tests on the unmutated copy"
run_tests "$baseline_unit" "$baseline_integration" ||
  gw_die "the listed tests fail without any mutation; see $scratch/test.log"

results=()
survived=0
for i in "${indices[@]}"; do
  name="${names[$i]}"
  started=$SECONDS
  planted="${files[$i]}"
  if ! plant "$scratch/${files[$i]}" "${searches[$i]}" "${replacements[$i]}"; then
    planted=""
    result=STALE
  elif ! quiet_build; then
    result=NO-BUILD
    cp "$scratch/build.log" "$scratch/$name.build.log"
  elif run_tests "${unit_filters[$i]}" "${integration_filters[$i]}"; then
    result=SURVIVED
  else
    result=KILLED
  fi
  [[ -f "$scratch/test.log" ]] && cp "$scratch/test.log" "$scratch/$name.test.log"
  restore
  [[ "$result" == KILLED ]] || survived=1
  printf '%-9s %-40s %4ss  %s\n' "$result" "$name" "$((SECONDS - started))" "${descriptions[$i]}"
  results+=("| \`$name\` | ${descriptions[$i]} | \`${files[$i]}\` | $result |")
done
quiet_build || true  # leave the scratch build matching HEAD for the next run

echo
echo "Mutation check of $(git -C "$GW_ROOT" rev-parse --short "$head"), $(date -u +%Y-%m-%d)$( ((full)) && echo ', whole suite' || echo ', listed tests'):"
echo
echo "| mutation | planted bug | file | result |"
echo "|---|---|---|---|"
printf '%s\n' "${results[@]}"
echo
echo "Test output of each mutation: $scratch/NAME.test.log"
exit "$survived"
