#!/usr/bin/env bash
# The whole pipeline, measured in one run on this machine:
#   1. `vigil replay` (2 workers) on N generated card payments with their labels, next to a River
#      pipeline (json.loads, comparable card features, HalfSpaceTrees, LogisticRegression) on
#      the first RIVER_N of the same events (River is ~100 µs/event; its rate is per event);
#   2. peak RSS of `vigil replay` near 1M entities (3 × N events drawn from 1M cards reach ~95 %
#      of them);
#   3. JSON decode ns/event: Vigil's decoder against Foundation's JSONDecoder and JSONSerialization;
#   4. `vigil run` end to end through the local broker (N events on 4 partitions, from the first
#      record to the last outcome) next to rdkafka_performance's raw consume rate on the same topic;
#   5. event-to-output latency at 10k events/s: `vigil run` (events to alerts; card-payments set
#      to alert on 5 % of events, so there are enough samples) next to a pass-through relay
#      (consume, re-produce at once), measured the same way by one process (monotonic clock from
#      send to arrival); and, as a control, the relay forwarding one event in 20, an output as
#      sparse as the alerts (the reader of a sparse topic waits out more fetches). Each latency
#      line also splits its slowest 1 % at the output record's timestamp (set when the output's
#      producer was handed the record): tail_to_output_ms (send → handed over) and
#      tail_after_output_ms (handed over → read), the medians of the two parts.
#
#   bench/pipeline-vs-peers.sh [N] [RIVER_N]     (defaults: 1000000 and 100000)
#
# Ends with RESULT replay_eps=… vs_river=… kafka_ratio=… p99_ms=… relay_p99_ms=… rss_mb=…
#   engine_p50_backlog_ms=… (engine time, poll → outputs handed over, while `vigil run` catches up
#   on the N-record backlog of step 4)
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"
RIVER_N="${2:-100000}"

source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
log "building vigil (release)"
swift build -c release --product vigil >/dev/null 2>&1 || swift build -c release --product vigil >&2
VIGIL="$VIGIL_ROOT/.build/release/vigil"
PB="$(bench_build pipeline-bench)"
PERF="$DEPS_BIN/rdkafka_performance"
OUT="$VIGIL_ROOT/bench/out/pipeline"
mkdir -p "$OUT"

echo "$(machine_line); $(versions_line); River $RIVER_VERSION"
log "generating $N events (10,000 cards) with labels, and $((3 * N)) events over 1,000,000 cards"
"$VIGIL" generate --events "$N" --seed 7 --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" 2>/dev/null
"$VIGIL" generate --events "$((3 * N))" --seed 8 --cards 1000000 --output "$OUT/events-1m-cards.jsonl" 2>/dev/null

# --- 1. replay vs River -------------------------------------------------------------------------
log "vigil replay, 2 workers"
/usr/bin/time -f "rss_kb=%M" "$VIGIL" replay --topology topologies/card-payments.yaml --input "$OUT/events.jsonl" \
  --labels "$OUT/labels.jsonl" --workers 2 2> "$OUT/replay.txt" >/dev/null
cat "$OUT/replay.txt" | sed 's/^/  /'
replay_eps="$(grep -o '([0-9]* events/s)' "$OUT/replay.txt" | grep -o '[0-9]*' | head -1)"
log "River pipeline on the first $RIVER_N events"
river="$("$PY" bench/river_pipeline.py "$OUT/events.jsonl" "$OUT/labels.jsonl" "$RIVER_N")"
echo "  $river"
river_eps="$(echo " $river" | field events_per_s)"
vs_river="$(awk -v a="$replay_eps" -v b="$river_eps" 'BEGIN { printf "%.1f", a / b }')"

# --- 2. RSS at 1M entities ------------------------------------------------------------------------
log "vigil replay over 1,000,000 cards (peak RSS)"
/usr/bin/time -f "rss_kb=%M" "$VIGIL" replay --topology topologies/card-payments.yaml \
  --input "$OUT/events-1m-cards.jsonl" --workers 2 2> "$OUT/replay-1m.txt" >/dev/null
sed 's/^/  /' "$OUT/replay-1m.txt"
rss_mb="$(grep -o 'rss_kb=[0-9]*' "$OUT/replay-1m.txt" | cut -d= -f2 | awk '{ printf "%.0f", $1 / 1024 }')"
entities="$(grep -o 'entities [0-9]*' "$OUT/replay-1m.txt" | grep -o '[0-9]*')"

# --- 3. JSON decode --------------------------------------------------------------------------------
log "JSON decode"
decode="$("$PB" decode --topology topologies/card-payments.yaml --input "$OUT/events.jsonl")"
echo "  $decode"

# --- 4. run through the broker vs rdkafka_performance ------------------------------------------------
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
topology() {   # $1 name prefix, $2 a threshold block to use instead; writes a card-payments topology on bench topics
  sed -e "s/topics: \[payments\]/topics: [$1-in]/" -e "s/payments-labels/$1-labels/" -e "s/payments-alerts/$1-alerts/" \
      -e "s/payments-dlq/$1-dlq/" -e "s/group: vigil-card-payments/group: $1-group/" \
      -e "s/vigil-card-payments-checkpoints/$1-checkpoints/" ${2:+-e "/^threshold:/,/^\$/d"} topologies/card-payments.yaml > "$OUT/$1.yaml"
  [[ -z "${2:-}" ]] || printf '%s\n' "$2" >> "$OUT/$1.yaml"
  "$VIGIL" create-topics --topology "$OUT/$1.yaml" --brokers "$BROKERS" >/dev/null
}
topology kafka
log "producing $N events to kafka-in (4 partitions)"
"$VIGIL" generate --brokers "$BROKERS" --topic kafka-in --events "$N" --seed 7 2>&1 | sed 's/^/  /'
log "rdkafka_performance consume"
perf_eps="$("$PERF" -G "perf-$RANDOM" -t kafka-in -b "$BROKERS" -c "$N" -X auto.offset.reset=earliest \
  -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X fetch.queue.backoff.ms=10 -X fetch.wait.max.ms=10 2>&1 |
  grep -E 'consumed in' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/')"
echo "  rdkafka_performance: $perf_eps msgs/s"
log "vigil run --events $N"
"$VIGIL" run --topology "$OUT/kafka.yaml" --brokers "$BROKERS" --workers 2 --events "$N" --log-level warning 2> "$OUT/run.txt"
sed 's/^/  /' "$OUT/run.txt"
run_eps="$(grep -o 'then [0-9]* events/s' "$OUT/run.txt" | grep -o '[0-9]*')"
kafka_ratio="$(awk -v a="$run_eps" -v b="$perf_eps" 'BEGIN { printf "%.2f", a / b }')"
# Engine time while catching up on the backlog of N records: poll → outputs handed over, per chunk.
backlog_ms="$(grep -o 'producer: p50 [0-9.]* ms' "$OUT/run.txt" | grep -o '[0-9.]* ms' | grep -o '[0-9.]*' || true)"

# --- 5. latency at 10k events/s ------------------------------------------------------------------------
topology lat "threshold: { target_alert_rate: 0.05, min_score: 0.5, warmup_events: 500 }"
"$VIGIL" run --topology "$OUT/lat.yaml" --brokers "$BROKERS" --workers 2 --log-level warning 2> "$OUT/lat-run.txt" &
vigil_pid=$!
sleep 5
log "latency through vigil run at 10k events/s (alerts on 5 % of events)"
vigil_lat="$("$PB" latency --brokers "$BROKERS" --source lat-in --output lat-alerts --rate 10000 --seconds 20 --input "$OUT/events.jsonl")"
echo "  vigil: $vigil_lat"
kill -INT "$vigil_pid"; wait "$vigil_pid" || true; vigil_pid=""
engine_ms="$(grep -o 'producer: p50 [0-9.]* ms, p99 [0-9.]* ms' "$OUT/lat-run.txt" | sed 's/producer: //')"
echo "  of which Vigil itself, from poll to alert handed to the producer: $engine_ms"
relay_latency() {   # $1 topic prefix, $2 forward one record in $2; prints the latency line
  scripts/broker.sh topic "$1-in" 4 >/dev/null; scripts/broker.sh topic "$1-out" 4 >/dev/null
  "$PB" relay --brokers "$BROKERS" --source "$1-in" --output "$1-out" --every "$2" >/dev/null 2>&1 &
  relay_pid=$!
  sleep 5
  "$PB" latency --brokers "$BROKERS" --source "$1-in" --output "$1-out" --rate 10000 --seconds 20 --input "$OUT/events.jsonl"
  kill "$relay_pid"; relay_pid=""
}
log "latency through the pass-through relay at 10k events/s"
relay_lat="$(relay_latency relay 1)"
echo "  relay: $relay_lat"
log "latency through the relay forwarding one event in 20"
sparse_lat="$(relay_latency sparse 20)"
echo "  sparse relay: $sparse_lat"

p99="$(echo " $vigil_lat" | field p99_ms)"
relay_p99="$(echo " $relay_lat" | field p99_ms)"
echo
echo "| measure | Vigil | peer |"
echo "|---|---|---|"
echo "| replay, $N events, 2 workers | $replay_eps events/s | River pipeline: $river_eps events/s ($vs_river×) |"
echo "| run through the broker, $N events | $run_eps events/s | rdkafka_performance consume: $perf_eps msgs/s ($kafka_ratio×) |"
echo "| event → output latency at 10k/s, p50 / p99 | $(echo " $vigil_lat" | field p50_ms) / $p99 ms | relay: $(echo " $relay_lat" | field p50_ms) / $relay_p99 ms; relay of 1 in 20: $(echo " $sparse_lat" | field p50_ms) / $(echo " $sparse_lat" | field p99_ms) ms |"
echo "| Vigil's own share: poll → alert handed to the producer | $engine_ms | |"
echo "| engine time while catching up on the $N-record backlog, p50 | ${backlog_ms:-?} ms | |"
echo "| peak RSS of replay at $entities entities | $rss_mb MB | |"
echo "| JSON decode | $(echo " $decode" | field vigil_ns) ns/event | JSONDecoder $(echo " $decode" | field jsondecoder_ns) ns, JSONSerialization $(echo " $decode" | field jsonserialization_ns) ns |"
echo
echo "RESULT replay_eps=$replay_eps vs_river=$vs_river kafka_ratio=$kafka_ratio p99_ms=$p99 relay_p99_ms=$relay_p99 rss_mb=$rss_mb engine_p50_backlog_ms=${backlog_ms:-?}"
