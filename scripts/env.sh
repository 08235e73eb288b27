#!/usr/bin/env bash
# Prints the shell exports that `swift build` / `swift test` need outside the scripts:
#   eval "$(scripts/env.sh)"
source "$(dirname "$0")/common.sh"
vigil_env
printf 'export PKG_CONFIG_PATH=%q\nexport PATH=%q\n' "$PKG_CONFIG_PATH" "$PATH"
[[ -z "${VIGIL_RDKAFKA:-}" ]] || printf 'export VIGIL_RDKAFKA=%q\n' "$VIGIL_RDKAFKA"
