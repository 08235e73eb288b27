#!/usr/bin/env bash
# The outputs producer's batching settings, measured (issue 20): for each setting, through the
# local broker,
#   - the event → alert latency at 10k events/s (alerts on 5 % of events, as in
#     bench/pipeline-vs-peers.sh), and the engine's own poll → hand-over p99;
#   - `vigil run` over a backlog of N events at full speed (same 5 % alert rate), events/s.
# Each setting goes through `source.kafka.producer_properties`; every round runs the settings in
# a new order, so a slow spell of the machine does not fall on one setting only. A pass-through
# relay at 10k events/s is measured once per round as the floor.
#
#   bench/producer-settings.sh [N] [ROUNDS]     (defaults: 1000000 and 2)
#
# Ends with RESULT linger0_p99_ms=… linger1_p99_ms=… linger5_p99_ms=… linger20_p99_ms=…
#   linger5_batch1k_p99_ms=… relay_p99_ms=… and the full-speed events/s of each (medians).
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"
ROUNDS="${2:-2}"

source "$(dirname "$0")/lib.sh"
bench_setup
log "building vigil (release)"
swift build -c release --product vigil >/dev/null 2>&1 || swift build -c release --product vigil >&2
VIGIL="$VIGIL_ROOT/.build/release/vigil"
PB="$(bench_build pipeline-bench)"
OUT="$VIGIL_ROOT/bench/out/producer"
mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"

export VIGIL_BROKER_NAME=bench
relay_pid=""; vigil_pid=""
cleanup() {
  [[ -n "$relay_pid" ]] && kill "$relay_pid" 2>/dev/null || true
  [[ -n "$vigil_pid" ]] && kill "$vigil_pid" 2>/dev/null || true
  scripts/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
BROKERS="127.0.0.1:$(scripts/broker.sh start)"

log "generating 200,000 events for the latency runs, and $N events to the backlog topic"
"$VIGIL" generate --events 200000 --seed 7 --output "$OUT/events.jsonl" 2>/dev/null
scripts/broker.sh topic backlog-in 4 >/dev/null
"$VIGIL" generate --brokers "$BROKERS" --topic backlog-in --events "$N" --seed 9 2>&1 | sed 's/^/  /'

# name → producer_properties (flow mapping)
declare -A SETTINGS=(
  [linger0]='{ linger.ms: "0" }'
  [linger1]='{ linger.ms: "1" }'
  [linger5]='{ linger.ms: "5" }'
  [linger20]='{ linger.ms: "20" }'
  [linger5_batch1k]='{ linger.ms: "5", batch.num.messages: "1000" }'
)
NAMES=(linger0 linger1 linger5 linger20 linger5_batch1k)

topology() {   # $1 prefix, $2 source topic, $3 producer_properties; writes $OUT/$1.yaml
  sed -e "s/topics: \[payments\]/topics: [$2]/" -e "s/payments-labels/$1-labels/" -e "s/payments-alerts/$1-alerts/" \
      -e "s/payments-dlq/$1-dlq/" -e "s/group: vigil-card-payments/group: $1-group/" \
      -e "s/vigil-card-payments-checkpoints/$1-checkpoints/" -e "/^threshold:/,/^\$/d" \
      -e "s/^    consumer_properties:/    producer_properties: $3\n    consumer_properties:/" \
      topologies/card-payments.yaml > "$OUT/$1.yaml"
  printf '%s\n' "threshold: { target_alert_rate: 0.05, min_score: 0.5, warmup_events: 500 }" >> "$OUT/$1.yaml"
  grep -q "producer_properties: $3" "$OUT/$1.yaml" || { echo "producer_properties not set in $OUT/$1.yaml" >&2; exit 1; }
  "$VIGIL" create-topics --topology "$OUT/$1.yaml" --brokers "$BROKERS" >/dev/null
}

results="$OUT/results.txt"
: > "$results"
for round in $(seq 1 "$ROUNDS"); do
  # A new order each round: rotate the list by the round number.
  order=("${NAMES[@]:$((round % ${#NAMES[@]}))}" "${NAMES[@]:0:$((round % ${#NAMES[@]}))}")
  for name in "${order[@]}"; do
    p="r$round-$name"
    log "round $round, $name: ${SETTINGS[$name]}"
    topology "$p-lat" "$p-lat-in" "${SETTINGS[$name]}"
    "$VIGIL" run --topology "$OUT/$p-lat.yaml" --brokers "$BROKERS" --workers 2 --log-level warning \
      2> "$OUT/$p-lat-run.txt" &
    vigil_pid=$!
    sleep 5
    lat="$("$PB" latency --brokers "$BROKERS" --source "$p-lat-in" --output "$p-lat-alerts" --rate 10000 --seconds 20 \
      --input "$OUT/events.jsonl")"
    kill -INT "$vigil_pid"; wait "$vigil_pid" || true; vigil_pid=""
    engine_p99="$(sed -n 's/.*producer: p50 [0-9.]* ms, p99 \([0-9.]*\) ms.*/\1/p' "$OUT/$p-lat-run.txt" | tail -1)"
    topology "$p-bulk" backlog-in "${SETTINGS[$name]}"
    "$VIGIL" run --topology "$OUT/$p-bulk.yaml" --brokers "$BROKERS" --workers 2 --events "$N" --log-level warning \
      2> "$OUT/$p-bulk-run.txt"
    eps="$(grep -o 'then [0-9]* events/s' "$OUT/$p-bulk-run.txt" | grep -o '[0-9]*' || echo 0)"
    line="$name round=$round p50_ms=$(echo " $lat" | field p50_ms) p99_ms=$(echo " $lat" | field p99_ms) engine_p99_ms=${engine_p99:-?} full_eps=$eps"
    echo "  $line"
    echo "$line" >> "$results"
  done
  log "round $round, the pass-through relay"
  scripts/broker.sh topic "r$round-relay-in" 4 >/dev/null; scripts/broker.sh topic "r$round-relay-out" 4 >/dev/null
  "$PB" relay --brokers "$BROKERS" --source "r$round-relay-in" --output "r$round-relay-out" >/dev/null 2>&1 &
  relay_pid=$!
  sleep 3
  lat="$("$PB" latency --brokers "$BROKERS" --source "r$round-relay-in" --output "r$round-relay-out" --rate 10000 \
    --seconds 20 --input "$OUT/events.jsonl")"
  kill "$relay_pid"; relay_pid=""
  line="relay round=$round p50_ms=$(echo " $lat" | field p50_ms) p99_ms=$(echo " $lat" | field p99_ms)"
  echo "  $line"
  echo "$line" >> "$results"
done

median() {   # $1 name, $2 field: the median over the rounds
  { grep "^$1 " "$results" || true; } | { field "$2" || true; } | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "?"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "| setting (producer_properties) | p50 / p99 ms at 10k/s | engine p99 ms | full speed, events/s |"
echo "|---|---|---|---|"
for name in "${NAMES[@]}"; do
  echo "| \`${SETTINGS[$name]}\` | $(median "$name" p50_ms) / $(median "$name" p99_ms) | $(median "$name" engine_p99_ms) | $(median "$name" full_eps) |"
done
echo "| relay (linger.ms 5) | $(median relay p50_ms) / $(median relay p99_ms) | | |"
result="RESULT"
for name in "${NAMES[@]}"; do result+=" ${name}_p99_ms=$(median "$name" p99_ms) ${name}_eps=$(median "$name" full_eps)"; done
echo "$result relay_p99_ms=$(median relay p99_ms)"
