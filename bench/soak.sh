#!/usr/bin/env bash
# A soak: `vigil run` (release, 2 workers) on the card-payments topology for MINUTES at RATE
# events/s (with the stream's labels too when SOAK_LABELS=1), a checkpoint every 30 s (the topology's own interval) and a
# reload every minute (a tunable edit, target_alert_rate, applied through `vigil reload`). Every
# minute pipeline-bench reads out that minute's event→alert latency (send to arrival on the
# alerts topic, one process, monotonic clock) and the engine's RSS, open descriptors and threads
# from /proc. At the end the engine must still run and stop cleanly on SIGTERM.
#
#   bench/soak.sh [MINUTES] [RATE]     (defaults: 20 and 20000)
#
# SOAK_BROKER=mock runs it against librdkafka's mock cluster (bench/mock-broker.c) instead of the
# local Tansu broker; SOAK_BROKERS=host:port against a broker of your own (topics made already).
#
# Labels are off by default: on this 2-core machine the local broker (Tansu) then takes a whole
# core at 20k events/s plus 20k labels/s, and the stream falls behind (measured 2026-12-05).
#
# Ends with RESULT rss_slope_mb_per_h=… fd_slope=… p99_ms_first=… p99_ms_last=… (slopes per
# hour, least squares over the read-outs after the first two, while the state fills up).
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
MINUTES="${1:-20}"
RATE="${2:-20000}"
source "$(dirname "$0")/lib.sh"
bench_setup
VIGIL="$(bench_vigil)"
PB="$(bench_build pipeline-bench)"
OUT="$VIGIL_ROOT/bench/out/soak"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"
if [[ -n "${SOAK_BROKERS:-}" ]]; then
  pids=(); trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
  BROKERS="$SOAK_BROKERS"
elif [[ "${SOAK_BROKER:-}" == mock ]]; then
  # librdkafka's mock cluster as the broker (bench/mock-broker.c), built against the project's
  # librdkafka (or the system's, with VIGIL_RDKAFKA=system).
  pids=(); trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done' EXIT
  rdk=(-lrdkafka)
  [[ -d "$VIGIL_ROOT/.deps/librdkafka/lib" ]] &&
    rdk=(-I"$VIGIL_ROOT/.deps/librdkafka/include" -L"$VIGIL_ROOT/.deps/librdkafka/lib" -lrdkafka
      -Wl,-rpath,"$VIGIL_ROOT/.deps/librdkafka/lib")
  cc -O2 -o "$OUT/mock-broker" "$VIGIL_ROOT/bench/mock-broker.c" "${rdk[@]}" || die "bench/mock-broker.c did not build"
  "$OUT/mock-broker" 4 soak-in soak-labels soak-alerts soak-dlq soak-checkpoints soak-audit \
    > "$OUT/mock-address.txt" 2> "$OUT/mock-broker.txt" &
  pids+=("$!")
  for _ in $(seq 1 50); do [[ -s "$OUT/mock-address.txt" ]] && break; sleep 0.1; done
  BROKERS="$(head -1 "$OUT/mock-address.txt")"
  [[ -n "$BROKERS" ]] || die "the mock broker did not start ($OUT/mock-broker.txt)"
  log "broker: librdkafka's mock cluster at $BROKERS (bench/mock-broker.c)"
else
  bench_broker
fi

ADMIN_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export VIGIL_ADMIN_TOKEN="soak-$RANDOM$RANDOM"
sed -e "s/topics: \[payments\]/topics: [soak-in]/" -e "s/payments-labels/soak-labels/" -e "s/payments-alerts/soak-alerts/" \
  -e "s/payments-dlq/soak-dlq/" -e "s/group: vigil-card-payments/group: soak-group/" \
  -e "s/vigil-card-payments-checkpoints/soak-checkpoints/" -e "s/vigil-card-payments-audit/soak-audit/" \
  -e "s/listen: \"127.0.0.1:9464\"/listen: \"127.0.0.1:$ADMIN_PORT\"/" topologies/card-payments.yaml > "$OUT/soak.yaml"
# The mock cluster does not serve CreateTopics: its topics are made at its start.
[[ "${SOAK_BROKER:-}" == mock ]] && sed -i "s/create_topics: true/create_topics: false/" "$OUT/soak.yaml"
grep -q "topics: \[soak-in\]" "$OUT/soak.yaml" && grep -q "127.0.0.1:$ADMIN_PORT" "$OUT/soak.yaml" ||
  die "the soak topology was not written as expected"
[[ -n "${SOAK_BROKERS:-}${SOAK_BROKER:-}" ]] || "$VIGIL" create-topics --topology "$OUT/soak.yaml" --brokers "$BROKERS" >/dev/null

log "vigil run for $MINUTES min at $RATE events/s (checkpoints every 30 s, a reload every minute)"
"$VIGIL" run --topology "$OUT/soak.yaml" --brokers "$BROKERS" --workers 2 --no-watch --log-level info \
  2> "$OUT/run.txt" &
vigil_pid=$!
pids+=("$vigil_pid")
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$vigil_pid" 2>/dev/null || { tail -20 "$OUT/run.txt" >&2; die "vigil run exited at start"; }
  sleep 0.2
done

# A reload every minute: the target alert rate alternates between two values.
(
  k=0
  while sleep 60; do
    k=$((k + 1))
    if ((k % 2)); then rate=0.0055; else rate=0.005; fi
    sed -i -E "s/target_alert_rate: [0-9.]+/target_alert_rate: $rate/" "$OUT/soak.yaml"
    if "$VIGIL" reload --topology "$OUT/soak.yaml" >> "$OUT/reloads.txt" 2>&1; then echo applied >> "$OUT/reload-outcomes.txt"
    else echo "failed $?" >> "$OUT/reload-outcomes.txt"; fi
  done
) &
pids+=("$!")

labels=()
[[ "${SOAK_LABELS:-0}" == 1 ]] && labels=(--labels soak-labels)
"$PB" soak --brokers "$BROKERS" --source soak-in "${labels[@]}" --output soak-alerts --rate "$RATE" \
  --minutes "$MINUTES" --pid "$vigil_pid" | tee "$OUT/soak.txt" | sed 's/^/  /'
kill "${pids[-1]}" 2>/dev/null || true

kill -0 "$vigil_pid" 2>/dev/null || { tail -30 "$OUT/run.txt" >&2; die "vigil run died during the soak"; }
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" > "$OUT/metrics.txt" || true
kill -TERM "$vigil_pid"
status=0
wait "$vigil_pid" || status=$?
reloads="$(grep -c applied "$OUT/reload-outcomes.txt" 2>/dev/null || true)"
failed="$(grep -c failed "$OUT/reload-outcomes.txt" 2>/dev/null || true)"
checkpoints="$(grep -c 'Checkpoint written' "$OUT/run.txt" || true)"
echo "  engine: exit $status on SIGTERM; reloads applied ${reloads:-0}, failed ${failed:-0}; checkpoints logged: $checkpoints"
grep -E '^vigil_(events_total|alerts_total|labels_total) ' "$OUT/metrics.txt" | sed 's/^/  /' || true
[[ "$status" == 0 ]] || die "vigil run exited $status on SIGTERM (log: $OUT/run.txt)"

summary="$(grep '^soak summary' "$OUT/soak.txt")"
value() { grep -o " $1=[-0-9.a-z]*" <<<" $summary" | cut -d= -f2; }
echo "RESULT rss_slope_mb_per_h=$(value rss_slope_mb_per_h) fd_slope=$(value fd_slope) thread_slope=$(value thread_slope) p99_ms_first=$(value p99_ms_first) p99_ms_last=$(value p99_ms_last) rss_mb_last=$(value rss_mb_last) reloads=${reloads:-0} minutes=$MINUTES rate=$RATE"
