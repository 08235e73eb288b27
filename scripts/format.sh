#!/usr/bin/env bash
# Formats the Swift sources with swift-format (shipped with the Swift toolchain) and the
# repository's .swift-format, or checks them as CI does:
#
#   scripts/format.sh          rewrite every file in place
#   scripts/format.sh lint     report what differs and exit 1 if anything does
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests bench/Sources Package.swift bench/Package.swift)
case "${1:-format}" in
  format) swift-format format --in-place --parallel --recursive "${paths[@]}" ;;
  lint)
    if ! swift-format lint --strict --parallel --recursive "${paths[@]}"; then
      echo "swift-format: the files above are not formatted; run scripts/format.sh" >&2
      exit 1
    fi ;;
  *) sed -n '2,6p' "$0"; exit 2 ;;
esac
