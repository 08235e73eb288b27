#!/usr/bin/env bash
# The distinct-key attack: KEYS events, every one from a new card, through `vigil replay` (release,
# 2 workers, the full pipeline at full speed) with the card-payments topology, once with
# `state.max_entities: CAP` and once with room for every key. Reports the peak RSS of each, the
# entities kept and the evictions counted (from replay's summary). The generator draws the cards
# at random, so about 63 % of KEYS are distinct.
#
#   bench/hostile-keys.sh [KEYS] [CAP]     (defaults: 10000000 and 200000)
#
# Ends with RESULT keys=… max_entities=… peak_rss_mb=… evictions=… entities=… eps=… uncapped_peak_rss_mb=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
KEYS="${1:-10000000}"
CAP="${2:-200000}"
source "$(dirname "$0")/lib.sh"
bench_setup
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/hostile-keys"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"

log "generating $KEYS events from $KEYS distinct cards"
"$VIGIL" generate --events "$KEYS" --cards "$KEYS" --seed 5 --output "$OUT/events.jsonl" 2>/dev/null

# `replay NAME MAX_ENTITIES`: prints "PEAK_RSS_KB EVENTS_PER_S".
replay() {
  { cat topologies/card-payments.yaml; printf '\nstate: { max_entities: %s }\n' "$2"; } > "$OUT/$1.yaml"
  # The peak RSS of the child, from the kernel's accounting (ru_maxrss, kB).
  python3 - "$VIGIL" replay --topology "$OUT/$1.yaml" --input "$OUT/events.jsonl" --alerts "$OUT/$1-alerts.jsonl" \
    --workers 2 <<'EOF' 2> "$OUT/$1.txt"
import re, resource, subprocess, sys
run = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True)
sys.stderr.write(run.stderr)
if run.returncode != 0:
    sys.exit(run.returncode)
eps = re.search(r"\((\d+) events/s\)", run.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, eps.group(1) if eps else "0")
EOF
}
# `summary NAME FIELD`: a number from replay's closing summary ("entities N (evicted: capacity
# N, idle N)", "N events in").
summary() {
  case "$2" in
    events) grep -o '[0-9]* events in' "$OUT/$1.txt" | cut -d' ' -f1 ;;
    entities) grep -o 'entities [0-9]*' "$OUT/$1.txt" | cut -d' ' -f2 ;;
    capacity | idle) grep -o "$2 [0-9]*" "$OUT/$1.txt" | head -1 | cut -d' ' -f2 ;;
  esac
}

log "replay with state.max_entities: $CAP"
read -r capped_kb eps < <(replay capped "$CAP")
log "replay with state.max_entities: $KEYS (no eviction needed)"
read -r uncapped_kb uncapped_eps < <(replay uncapped "$KEYS")

for run in capped uncapped; do
  echo "  $run: events $(summary $run events), entities kept $(summary $run entities), evicted for capacity $(summary $run capacity), idle $(summary $run idle)"
done
events="$(summary capped events)"
[[ "$events" == "$KEYS" ]] || die "the capped replay read $events events, not $KEYS"
entities="$(summary capped entities)"
evictions="$(summary capped capacity)"
echo "  capped: peak RSS $((capped_kb / 1024)) MB at $eps events/s; uncapped: $((uncapped_kb / 1024)) MB at $uncapped_eps events/s"
echo "RESULT keys=$KEYS max_entities=$CAP peak_rss_mb=$((capped_kb / 1024)) evictions=$evictions entities=$entities eps=$eps uncapped_peak_rss_mb=$((uncapped_kb / 1024)) uncapped_eps=$uncapped_eps"
