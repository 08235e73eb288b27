#!/usr/bin/env bash
# VigilFeatures against River, in one run, on the same generated card-payment events: ns/event of
# update + extract on one worker for the 8-feature topology bench/topologies/features-8.yaml, with
# 10k and 1M active entities, bytes of state per entity, and the same features in River.
#
#   bench/features-vs-river.sh [EVENTS] [RIVER_EVENTS] [REPS]
#       defaults: 5000000 timed Vigil events, 200000 timed River events, 3 repetitions (medians)
#
# River runs in bench/.venv (created by bench/lib.sh, pinned versions from PyPI). Every entity first gets one untimed
# event (the warm-up), for both. Ends with
#   RESULT ns_per_event_1m=… bytes_per_entity=… vs_river=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-5000000}"
RIVER_EVENTS="${2:-200000}"
REPS="${3:-3}"

source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
FB="$(bench_build feature-bench)"
OUT="$VIGIL_ROOT/bench/out"
mkdir -p "$OUT"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A VIGIL RIVER BYTES P99 HASH RRSS
for entities in 10000 1000000; do
  runs=()
  for rep in $(seq "$REPS"); do
    csv=()
    [[ $rep == 1 ]] && csv=(--csv "$OUT/features-$entities.csv" --csv-events "$RIVER_EVENTS")
    line="$("$FB" --entities "$entities" --events "$EVENTS" "${csv[@]}")"
    log "vigil $entities entities, run $rep: $line"
    runs+=("$line")
  done
  VIGIL[$entities]="$(printf '%s\n' "${runs[@]}" | field ns_per_event | median)"
  P99[$entities]="$(printf '%s\n' "${runs[@]}" | field p99 | median)"
  HASH[$entities]="$(printf '%s\n' "${runs[@]}" | field ingest_hash_ns_per_event | median)"
  BYTES[$entities]="$(printf '%s\n' "${runs[@]}" | field bytes_per_entity | head -1)"
  rline="$("$PY" bench/river_features.py "$OUT/features-$entities.csv" "$entities")"
  log "river $entities entities: $rline"
  RIVER[$entities]="$(echo "$rline" | field ns_per_event)"
  RRSS[$entities]="$(echo "$rline" | field peak_rss_mib)"
done
CARD="$("$FB" --topology topologies/card-payments.yaml --entities 1000000 --events "$EVENTS")"
log "vigil card-payments topology, 1M entities: $CARD"
COMPACT="$("$FB" --topology bench/topologies/features-8-compact.yaml --entities 1000000 --events "$EVENTS")"
log "vigil compact 8-feature topology, 1M entities: $COMPACT"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", a / b}'; }
echo
echo "$(machine_line)"
echo "events: $EVENTS timed per Vigil run (median of $REPS), $RIVER_EVENTS timed for River; features: bench/topologies/features-8.yaml"
printf '%-10s %14s %12s %16s %14s %16s %10s %12s %15s\n' entities vigil_ns/event p99_batch hash_ns/event bytes/entity vigil_state_mib river_ns/event vs_river river_rss_mib
for entities in 10000 1000000; do
  printf '%-10s %14s %12s %16s %14s %16s %10s %11sx %15s\n' "$entities" "${VIGIL[$entities]}" "${P99[$entities]}" \
    "${HASH[$entities]}" "${BYTES[$entities]}" "$(awk -v b="${BYTES[$entities]}" -v n="$entities" 'BEGIN {printf "%.1f", b * n / 1048576}')" \
    "${RIVER[$entities]}" "$(ratio "${RIVER[$entities]}" "${VIGIL[$entities]}")" "${RRSS[$entities]}"
done
echo "same 8 features, compact state (4 panes, no reorder buffer), 1M entities: ns/event $(echo "$COMPACT" | field ns_per_event), bytes/entity $(echo "$COMPACT" | field bytes_per_entity)"
echo "card-payments topology (10 features), 1M entities: ns/event $(echo "$CARD" | field ns_per_event), bytes/entity $(echo "$CARD" | field bytes_per_entity)"
echo "RESULT ns_per_event_1m=${VIGIL[1000000]} bytes_per_entity=${BYTES[1000000]} vs_river=$(ratio "${RIVER[1000000]}" "${VIGIL[1000000]}")"
