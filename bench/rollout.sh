#!/usr/bin/env bash
# What model rollout costs, on this machine:
#   1. a shadow: `vigil replay` of EVENTS generated payments (with labels) through card-payments
#      as shipped (forest + regression), with a shadow copy of its forest added (another seed), and
#      with the forest removed. Events/s of each, three runs each, best kept; the shadow's cost per
#      event set against the forest's own (what removing it saves).
#   2. promote and rollback: `vigil run --print-alerts` fed at RATE events/s through the local
#      broker; `vigil models promote iforest_v2`, later `vigil models rollback`: milliseconds from
#      the command's start to the first alert printed whose active model is the new one.
#
#   bench/rollout.sh [EVENTS] [RATE]     (defaults: 300000 and 5000)
#
# Ends with RESULT shadow_overhead=… shadow_us=… forest_us=… promote_ms=… rollback_ms=…
# (shadow_overhead: the share by which the shadow lowers events/s). No peer runs models side by
# side on the same events (docs/models.md), so there is no peer column here.
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-300000}"
RATE="${2:-5000}"
source "$(dirname "$0")/lib.sh"
bench_setup
log "building vigil (release)"
swift build -c release --product vigil >/dev/null 2>&1 || swift build -c release --product vigil >&2
VIGIL="$VIGIL_ROOT/.build/release/vigil"
PY="$VIGIL_ROOT/.deps/venv/bin/python"
OUT="$VIGIL_ROOT/bench/out/rollout"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"

# --- 1. the cost of a shadow ----------------------------------------------------------------------
"$VIGIL" generate --events "$EVENTS" --seed 12 --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" >/dev/null
"$PY" - "$OUT" <<'PYEOF'
import re, sys
out = sys.argv[1]
text = open("topologies/card-payments.yaml").read()
text = re.sub(r"\nadmin:.*", "", text)
forest = text[text.index("  - name: iforest"):text.index("  - name: fraud_lr")]
shadow = forest.replace("name: iforest", "name: iforest_v2").replace("role: active", "role: shadow").replace("seed: 7", "seed: 8")
open(f"{out}/base.yaml", "w").write(text)
open(f"{out}/shadow.yaml", "w").write(text.replace(forest, forest + shadow))
open(f"{out}/noforest.yaml", "w").write(text.replace(forest, ""))
PYEOF
best_rate() {  # best events/s of three replays of topology $1
  local best=0 r
  for _ in 1 2 3; do
    r="$("$VIGIL" replay --topology "$OUT/$1.yaml" --input "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" \
      --workers 2 2>&1 >/dev/null | grep -o '([0-9]* events/s)' | tr -dc 0-9)"
    (( r > best )) && best=$r
  done
  echo "$best"
}
log "vigil replay, $EVENTS events, three runs of each topology"
base="$(best_rate base)"; shadow="$(best_rate shadow)"; noforest="$(best_rate noforest)"
echo "  card-payments:                 $base events/s"
echo "  with a shadow forest:          $shadow events/s"
echo "  without its forest:            $noforest events/s"
read -r shadow_overhead shadow_us forest_us < <("$PY" -c "
b, s, n = $base, $shadow, $noforest
print(f'{1 - s / b:.3f} {(1e6 / s - 1e6 / b):.2f} {(1e6 / b - 1e6 / n):.2f}')")
echo "  the shadow costs ${shadow_us} µs per event; the active forest costs ${forest_us} µs"

# --- 2. promote and rollback through the broker ----------------------------------------------------
export VIGIL_BROKER_NAME=bench
pids=()
cleanup() {
  pkill -f "vigil run --topology $OUT/promote.yaml" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  scripts/broker.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true
BROKERS="127.0.0.1:$(scripts/broker.sh start)"
PORT=19464
export VIGIL_ADMIN_TOKEN=bench-token
"$PY" - "$OUT" "$PORT" <<'PYEOF'
import sys
out, port = sys.argv[1], sys.argv[2]
text = open(f"{out}/shadow.yaml").read()
text = text.replace("role: shadow", "role: shadow\n    replaces: [iforest]")
for old, new in [("topics: [payments]", "topics: [ro-in]"), ("payments-labels", "ro-labels"),
                 ("payments-alerts", "ro-alerts"), ("payments-dlq", "ro-dlq"),
                 ("group: vigil-card-payments", "group: ro-group"),
                 ("vigil-card-payments-checkpoints", "ro-checkpoints"), ("vigil-card-payments-audit", "ro-audit")]:
    text = text.replace(old, new)
text += f'admin: {{ listen: "127.0.0.1:{port}" }}\n'
open(f"{out}/promote.yaml", "w").write(text)
PYEOF
"$VIGIL" create-topics --topology "$OUT/promote.yaml" --brokers "$BROKERS" >/dev/null
"$VIGIL" run --topology "$OUT/promote.yaml" --brokers "$BROKERS" --workers 2 --no-watch --print-alerts 2> "$OUT/run.txt" |
  while IFS= read -r line; do printf '%s %s\n' "$(date +%s%3N)" "$line"; done > "$OUT/alerts.txt" &
pids+=($!)
"$VIGIL" generate --brokers "$BROKERS" --topic ro-in --labels-topic ro-labels --events $((RATE * 120)) --rate "$RATE" \
  --seed 5 >/dev/null 2>&1 &
pids+=($!)
status_events() { curl -s "http://127.0.0.1:$PORT/status" | "$PY" -c "import json,sys; print(json.load(sys.stdin).get('events', 0))" 2>/dev/null || echo 0; }
log "vigil run at $RATE events/s: waiting for 30 s of events"
for _ in $(seq 1 120); do (( $(status_events) >= RATE * 30 )) && break; sleep 1; done
# `first_alert MODEL SINCE`: ms of the first alert printed after SINCE that MODEL decided
# (`--print-alerts` names the active models: by=…).
first_alert() {
  for _ in $(seq 1 300); do
    local t
    t="$(awk -v since="$2" -v pat="by=([^ ]*,)?$1(,| )" '$1 >= since && $0 ~ pat { print $1; exit }' "$OUT/alerts.txt")"
    if [[ -n "$t" ]]; then echo $((t - $2)); return; fi
    sleep 0.1
  done
  echo "none"
}
t0="$(date +%s%3N)"
"$VIGIL" models promote iforest_v2 --topology "$OUT/promote.yaml" --by bench --reason "rollout bench" >/dev/null
promote_ms="$(first_alert iforest_v2 "$t0")"
sleep 5
t1="$(date +%s%3N)"
"$VIGIL" models rollback --topology "$OUT/promote.yaml" --by bench --reason "rollout bench" >/dev/null
rollback_ms="$(first_alert iforest "$t1")"
echo "  promote → first alert by iforest_v2: $promote_ms ms; rollback → first alert by iforest: $rollback_ms ms"
echo "  (each includes the checkpoint that makes the change durable, and waiting for the next alert at ~$((RATE / 200)) alerts/s)"
echo "RESULT shadow_overhead=$shadow_overhead shadow_us=$shadow_us forest_us=$forest_us promote_ms=$promote_ms rollback_ms=$rollback_ms"
