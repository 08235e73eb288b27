#!/usr/bin/env bash
# What the metrics backend costs on the event path: `vigil replay` over the same generated file,
# with the Prometheus backend (`--metrics-out`: every chunk counted, every score and the chunk's
# latency recorded in swift-prometheus histograms, exactly as `vigil run` records them for
# /metrics) and without (nothing recorded), alternating ROUNDS times so that drift of the
# machine hits both alike. Reports the median events/s of each.
#
#   bench/metrics-overhead.sh [EVENTS] [ROUNDS]     (defaults: 1000000 and 5)
#
# Ends with RESULT metrics_overhead=…% eps_off=… eps_prometheus=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-1000000}"
ROUNDS="${2:-5}"
source "$(dirname "$0")/lib.sh"
bench_setup
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/metrics-overhead"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"

log "generating $EVENTS events with labels"
"$VIGIL" generate --events "$EVENTS" --seed 21 --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" 2>/dev/null

# One replay; prints its events/s.
replay() {
  "$VIGIL" replay --topology topologies/card-payments.yaml --input "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" \
    --alerts "$OUT/alerts.jsonl" --workers 2 "$@" 2>&1 | grep -o '([0-9]* events/s)' | tr -dc '0-9'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

replay >/dev/null  # warm the page cache
off=(); on=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then
    off+=("$(replay)"); on+=("$(replay --metrics-out "$OUT/replay.prom")")
  else
    on+=("$(replay --metrics-out "$OUT/replay.prom")"); off+=("$(replay)")
  fi
  log "round $r: off ${off[-1]} events/s, prometheus ${on[-1]} events/s"
done
eps_off="$(printf '%s\n' "${off[@]}" | median)"
eps_on="$(printf '%s\n' "${on[@]}" | median)"
recorded="$(grep '^vigil_events_total ' "$OUT/replay.prom" | cut -d' ' -f2)"
[[ "$recorded" == "$EVENTS" ]] || { echo "the metrics file counts $recorded events, not $EVENTS" >&2; exit 1; }
overhead="$(awk -v a="$eps_off" -v b="$eps_on" 'BEGIN { printf "%.2f", (a - b) / a * 100 }')"
echo "  medians of $ROUNDS: off $eps_off events/s, prometheus $eps_on events/s (positive overhead = slower with metrics)"
echo "RESULT metrics_overhead=${overhead}% eps_off=$eps_off eps_prometheus=$eps_on"
