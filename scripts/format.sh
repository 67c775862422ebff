#!/usr/bin/env bash
# Formats our C++ sources (gateway/ plugins/ test/) in place with clang-format and the
# repository's .clang-format.
#   scripts/format.sh           rewrite files
#   scripts/format.sh --check   change nothing; list unformatted files and exit 1 if any
set -euo pipefail
GW_SCRIPT=format
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

check=0
case "${1:-}" in
  "") ;;
  --check) check=1 ;;
  -h | --help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) gw_die "unknown option: $1 (see --help)" ;;
esac

command -v clang-format >/dev/null || "$GW_ROOT/scripts/setup.sh" --format
cd "$GW_ROOT"
mapfile -d '' files < <(find gateway plugins test -type f \
  \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \) -print0 2>/dev/null | sort -z)
((${#files[@]})) || { gw_log "no sources found"; exit 0; }

if ((check)); then
  bad=0
  for f in "${files[@]}"; do
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "needs formatting: $f"
      bad=1
    fi
  done
  ((bad == 0)) && gw_log "${#files[@]} files formatted"
  exit "$bad"
fi
clang-format -i "${files[@]}"
gw_log "formatted ${#files[@]} files"
