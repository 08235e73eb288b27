#!/usr/bin/env bash
# The project's own quality gate: evaluates topologies/card-payments.yaml on a generated card
# stream (100,000 events, seed 11) against the committed baseline bench/quality-baseline.json,
# with the rules of bench/quality-gate.yaml. Exits 1 when a change lowers detection quality.
# .ci/run calls it after the tests; it uses the debug build they made.
#
#   scripts/quality-gate.sh            check (writes .deps/run/quality/report.html)
#   scripts/quality-gate.sh --update   rewrite the baseline from this build (a deliberate change:
#                                      commit it with the reason)
set -euo pipefail
VIGIL_STEP=quality
source "$(dirname "$0")/common.sh"
vigil_env
cd "$VIGIL_ROOT"

vigil=".build/debug/vigil"
[[ -x "$vigil" ]] || { log "building vigil (debug)"; swift build --product vigil; }
out="$DEPS/run/quality"
mkdir -p "$out"
if [[ ! -s "$out/labels.jsonl" ]]; then
  log "generating the stream (100,000 events, seed 11)"
  "$vigil" generate --events 100000 --seed 11 --cards 10000 --output "$out/events.jsonl" --labels "$out/labels.jsonl"
fi
# Two workers always: results depend on the worker count, and the baseline was made with two.
# Segments: the topology's own (channel, country).
args=(evaluate --topology topologies/card-payments.yaml --input "$out/events.jsonl" --labels "$out/labels.jsonl"
      --workers 2)
if [[ "${1:-}" == --update ]]; then
  "$vigil" "${args[@]}" --json bench/quality-baseline.json
  log "wrote bench/quality-baseline.json"
else
  "$vigil" "${args[@]}" --baseline-results bench/quality-baseline.json --gate bench/quality-gate.yaml \
    --json "$out/result.json" --report "$out/report.html"
  log "quality gate passed (report: $out/report.html)"
fi
