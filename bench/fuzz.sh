#!/usr/bin/env bash
# The long fuzz runs (issue 19): every target of scripts/fuzz.sh for RUNS executions each
# (default 10,000,000), one target at a time, from the checked-in seeds plus what earlier runs
# found (.build/fuzz/corpus). VIGIL_FUZZ_MAX_SECONDS bounds each target's time; the counts
# reached are what the RESULT line reports. Ends with
#   RESULT fuzz_execs=… fuzz_crashes=… targets=…
# Usage: bench/fuzz.sh [RUNS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-10000000}"; shift || true
scripts/fuzz.sh build >&2
log=$(mktemp)
status=0
scripts/fuzz.sh runs "$runs" "$@" | tee "$log" || status=$?
execs=$(awk '/^FUZZ / {for (i = 2; i <= NF; i++) if ($i ~ /^execs=/) {sub("execs=", "", $i); s += $i}} END {print s + 0}' "$log")
crashes=$(awk '/^FUZZ / {for (i = 2; i <= NF; i++) if ($i ~ /^crashes=/) {sub("crashes=", "", $i); s += $i}} END {print s + 0}' "$log")
targets=$(grep -c '^FUZZ ' "$log" || true)
rm -f "$log"
echo "machine: $(nproc) cores; build: -sanitize=fuzzer,address, release; runs per target: $runs${VIGIL_FUZZ_MAX_SECONDS:+, at most ${VIGIL_FUZZ_MAX_SECONDS}s each}"
echo "RESULT fuzz_execs=$execs fuzz_crashes=$crashes targets=$targets"
exit "$status"
