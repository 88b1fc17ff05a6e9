#!/usr/bin/env bash
# clang-format (pinned to Debian 12's clang-format-14) over every C++ source of ours.
# usage: scripts/format.sh check|fix
set -euo pipefail
cd "$(dirname "$0")/.."
CF=${CLANG_FORMAT:-clang-format-14}
mapfile -t files < <(git ls-files '*.cc' '*.h')
[ ${#files[@]} -eq 0 ] && exit 0
case "${1:-check}" in
  check) "$CF" --dry-run -Werror "${files[@]}" ;;
  fix) "$CF" -i "${files[@]}" ;;
  *) echo "usage: $0 check|fix" >&2; exit 2 ;;
esac
