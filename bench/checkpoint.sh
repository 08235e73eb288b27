#!/usr/bin/env bash
# Checkpoints at about a million entities, through the local broker:
#   1. `vigil run --until-end` over 3 × CARDS generated payments drawn from CARDS cards (about 95 %
#      of them become entities), with their labels, ending with a final checkpoint: its size, and the time to
#      capture, encode (LZ4) and publish it to the checkpoint topic;
#   2. a restart: the time to read the newest checkpoint back from the topic and load it;
#   3. the pause a checkpoint causes: `vigil run` restored at ~1M entities, fed at RATE events/s,
#      checkpointing every 5 s; p99 of the engine's own time (poll to outputs handed to the
#      producer) for chunks in flight while a checkpoint was captured, against all others;
#   4. SIGKILL during that run, then a restart: the time from starting the new process to its
#      first scored event (restore + consumer-group join + first poll).
#
#   bench/checkpoint.sh [CARDS] [RATE]     (defaults: 1000000 and 20000)
#
# Ends with RESULT ckpt_mb=… ckpt_write_s=… restore_s=… restart_to_first_s=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
CARDS="${1:-1000000}"
RATE="${2:-20000}"
source "$(dirname "$0")/lib.sh"
bench_setup
log "building vigil (release)"
swift build -c release --product vigil >/dev/null 2>&1 || swift build -c release --product vigil >&2
VIGIL="$VIGIL_ROOT/.build/release/vigil"
OUT="$VIGIL_ROOT/bench/out/checkpoint"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"

export VIGIL_BROKER_NAME=bench
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  scripts/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
BROKERS="127.0.0.1:$(scripts/broker.sh start)"

# card-payments on bench topics; no admin endpoint; checkpoints every $1.
topology() {
  sed -e "s/topics: \[payments\]/topics: [ck-in]/" -e "s/payments-labels/ck-labels/" -e "s/payments-alerts/ck-alerts/" \
      -e "s/payments-dlq/ck-dlq/" -e "s/group: vigil-card-payments/group: ck-group/" \
      -e "s/vigil-card-payments-checkpoints, every: 30s/ck-checkpoints, every: $1/" \
      -e "s/vigil-card-payments-audit/ck-audit/" -e "/^admin:/d" topologies/card-payments.yaml > "$OUT/ck.yaml"
}
topology 1h
"$VIGIL" create-topics --topology "$OUT/ck.yaml" --brokers "$BROKERS" >/dev/null
events=$((3 * CARDS))
log "producing $events events over $CARDS cards to ck-in (4 partitions)"
"$VIGIL" generate --brokers "$BROKERS" --topic ck-in --labels-topic ck-labels --events "$events" --cards "$CARDS" --seed 8 \
  2>&1 | sed 's/^/  /'

ms_of() { grep "$1" "$2" | tail -1 | grep -o " $3=[0-9.]*" | cut -d= -f2; }

# --- 1. write ---------------------------------------------------------------------------------------
log "vigil run --until-end: all events, then the final checkpoint"
"$VIGIL" run --topology "$OUT/ck.yaml" --brokers "$BROKERS" --workers 2 --until-end --no-watch 2> "$OUT/run1.txt" >/dev/null
grep -E "Checkpoint written|^run of|entities [0-9]" "$OUT/run1.txt" | sed 's/offsets=[^]]*] //; s/^/  /'
bytes="$(ms_of 'reason=shutdown' "$OUT/run1.txt" bytes)"
entities="$(ms_of 'reason=shutdown' "$OUT/run1.txt" entities)"
capture_ms="$(ms_of 'reason=shutdown' "$OUT/run1.txt" pause_ms)"
write_ms="$(ms_of 'reason=shutdown' "$OUT/run1.txt" write_ms)"
ckpt_mb="$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
ckpt_write_s="$(awk -v a="$capture_ms" -v b="$write_ms" 'BEGIN { printf "%.2f", (a + b) / 1000 }')"

# --- 2. restore -------------------------------------------------------------------------------------
log "vigil run --until-end again: restore only (nothing new to read)"
"$VIGIL" run --topology "$OUT/ck.yaml" --brokers "$BROKERS" --workers 2 --until-end --no-watch 2> "$OUT/run2.txt" >/dev/null
grep "Restored checkpoint" "$OUT/run2.txt" | sed 's/entities=/\n    entities=/; s/^/  /' | cut -c1-220
read_ms="$(ms_of 'Restored checkpoint' "$OUT/run2.txt" read_ms)"
load_ms="$(ms_of 'Restored checkpoint' "$OUT/run2.txt" load_ms)"
restore_s="$(awk -v a="$read_ms" -v b="$load_ms" 'BEGIN { printf "%.2f", (a + b) / 1000 }')"

# --- 3. pause ---------------------------------------------------------------------------------------
topology 5s
log "vigil run restored at $entities entities, fed at $RATE events/s for 40 s, checkpointing every 5 s"
"$VIGIL" generate --brokers "$BROKERS" --topic ck-in --labels-topic ck-labels --events "$((RATE * 40))" --cards "$CARDS" \
  --seed 9 --rate "$RATE" --label-delay 10-300 \
  > "$OUT/gen.txt" 2>&1 &
pids+=($!)
"$VIGIL" run --topology "$OUT/ck.yaml" --brokers "$BROKERS" --workers 2 --duration 40 --no-watch 2> "$OUT/run3.txt" >/dev/null
grep -E "Checkpoint written" "$OUT/run3.txt" | sed 's/.*bytes=/bytes=/; s/offsets=[^]]*] //; s/^/  /'
grep -E "engine time|p99 of that time" "$OUT/run3.txt" | sed 's/^/  /'
split_line="$(grep 'p99 of that time' "$OUT/run3.txt" || true)"
p99_outside="$(echo "$split_line" | grep -o '[0-9.]* ms outside' | grep -o '^[0-9.]*' || echo -)"
p99_during="$(echo "$split_line" | grep -o '[0-9.]* ms while' | grep -o '^[0-9.]*' || echo -)"
pause_max="$(grep 'Checkpoint written' "$OUT/run3.txt" | grep 'reason=interval' | grep -o 'pause_ms=[0-9.]*' | cut -d= -f2 | sort -n | tail -1)"

# --- 4. SIGKILL and restart -------------------------------------------------------------------------
log "SIGKILL under load, then a restart: time to the first scored event"
"$VIGIL" generate --brokers "$BROKERS" --topic ck-in --labels-topic ck-labels --events "$((RATE * 60))" --cards "$CARDS" \
  --seed 10 --rate "$((RATE / 2))" --label-delay 10-300 \
  > "$OUT/gen2.txt" 2>&1 &
pids+=($!)
"$VIGIL" run --topology "$OUT/ck.yaml" --brokers "$BROKERS" --workers 2 --no-watch 2> "$OUT/run4.txt" >/dev/null &
victim=$!; pids+=($victim)
for _ in $(seq 1 600); do grep -q "reason=interval" "$OUT/run4.txt" && break; sleep 0.1; done
sleep 1
kill -9 "$victim"; wait "$victim" 2>/dev/null || true
start="$(date +%s.%N)"
"$VIGIL" run --topology "$OUT/ck.yaml" --brokers "$BROKERS" --workers 2 --no-watch 2> "$OUT/run5.txt" >/dev/null &
restarted=$!; pids+=($restarted)
until grep -q "First event scored" "$OUT/run5.txt"; do sleep 0.01; done
end="$(date +%s.%N)"
restart_to_first_s="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
grep -E "Restored checkpoint|Partitions assigned|First event scored" "$OUT/run5.txt" | grep -o '\(read_ms\|load_ms\|since_start_ms\)=[0-9.]*\|Partitions assigned' | tr '\n' ' ' | sed 's/^/  /'; echo
kill -TERM "$restarted"; wait "$restarted" 2>/dev/null || true

echo
echo "| measure | value |"
echo "|---|---|"
echo "| entities in the checkpoint | $entities |"
echo "| checkpoint size (LZ4) | $ckpt_mb MB |"
echo "| write: capture $capture_ms ms + encode and publish $write_ms ms | $ckpt_write_s s |"
echo "| restore: read from the topic $read_ms ms + decode and load $load_ms ms | $restore_s s |"
echo "| p99 engine time at $RATE events/s, outside / during checkpoints | $p99_outside / $p99_during ms (longest capture $pause_max ms) |"
echo "| SIGKILL restart to the first scored event | $restart_to_first_s s |"
echo "RESULT ckpt_mb=$ckpt_mb ckpt_write_s=$ckpt_write_s restore_s=$restore_s restart_to_first_s=$restart_to_first_s"
