#!/usr/bin/env bash
# Configures (first time) and builds gatewayd with meson + ninja.
#   scripts/build.sh                      release build in build/ (or $BUILD_DIR)
#   scripts/build.sh --sanitize           clang ASan/UBSan build (-O1, with the fuzz targets) in
#                                         build-asan/ (or $BUILD_DIR), as scripts/test.sh --sanitize
#   scripts/build.sh -- -Dllhttp_src_dir=/opt/llhttp/src    extra meson arguments
# Does not install packages; scripts/setup.sh does (run.sh and test.sh call both).
set -euo pipefail
GW_SCRIPT=build
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

sanitize="${SANITIZE:-0}"
extra=()
while (($#)); do
  case "$1" in
    --sanitize) sanitize=1 ;;
    --) shift; extra+=("$@"); break ;;
    -h | --help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) gw_die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

if [[ "$sanitize" == 1 ]]; then
  gw_build_sanitized "$(gw_sanitized_dir)" "${extra[@]}"
else
  gw_build "${BUILD_DIR:-$GW_ROOT/build}" "${extra[@]}"
fi
