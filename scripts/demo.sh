#!/usr/bin/env bash
# The README's first command: sets everything up on a fresh machine and runs the whole Vigil
# pipeline live. It builds Vigil, starts a local broker, creates the card-payments topics, starts
# the generator (card payments with labelled fraud, at VIGIL_DEMO_RATE events/s; each label goes
# to the labels topic 10 s to 5 min of event time after its payment, about 0.5 to 15 s of wall
# time at the default rate), and runs the engine on topologies/card-payments.yaml.
# Alerts are printed as the broker acknowledges them; at the end (after VIGIL_DEMO_SECONDS, or
# Ctrl-C) the engine drains, commits and prints a summary with precision and recall against the
# generator's labels. Half-way through it reads the engine's /metrics endpoint once; at the end it
# lists the checkpoints the run wrote. The broker is stopped at the end; VIGIL_KEEP_BROKER=1
# leaves it running.
set -euo pipefail
VIGIL_STEP=demo
source "$(dirname "$0")/common.sh"

"$VIGIL_ROOT/scripts/setup.sh"
vigil_env
cd "$VIGIL_ROOT"

SECONDS_TO_RUN="${VIGIL_DEMO_SECONDS:-60}"
RATE="${VIGIL_DEMO_RATE:-2000}"

log "building vigil (release)"
swift build -c release --product vigil
VIGIL="$VIGIL_ROOT/.build/release/vigil"

export VIGIL_BROKER_NAME=dev
generator=""
finish() {
  [[ -n "$generator" ]] && kill "$generator" 2>/dev/null || true
  if [[ "${VIGIL_KEEP_BROKER:-0}" != 1 ]]; then scripts/broker.sh stop >/dev/null 2>&1 || true; fi
}
trap finish EXIT
port="$(scripts/broker.sh start)"
BROKERS="127.0.0.1:$port"

log "vigil validate --topology … (every shipped topology)"
validate_args=()
for t in topologies/*.yaml; do validate_args+=(--topology "$t"); done
"$VIGIL" validate "${validate_args[@]}"
log "vigil create-topics --topology topologies/card-payments.yaml"
"$VIGIL" create-topics --topology topologies/card-payments.yaml --brokers "$BROKERS"

events=$(( RATE * (SECONDS_TO_RUN + 30) ))
log "vigil generate: $RATE card payments/s to 'payments', labels to 'payments-labels' (in the background)"
"$VIGIL" generate --brokers "$BROKERS" --topic payments --labels-topic payments-labels --rate "$RATE" \
  --events "$events" --seed "${VIGIL_DEMO_SEED:-1}" --label-delay 10-300 &
generator=$!

# The admin endpoint's token (topologies/card-payments.yaml: admin on 127.0.0.1:9464).
export VIGIL_ADMIN_TOKEN="${VIGIL_ADMIN_TOKEN:-demo-token}"
(
  sleep $(( SECONDS_TO_RUN / 2 ))
  python3 - <<'PY' || true
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:9464/metrics", timeout=5).read().decode()
wanted = ("vigil_events_total", "vigil_alerts_total", "vigil_threshold", "vigil_active_entities", "vigil_checkpoints_total")
lines = [l for l in text.splitlines() if l.startswith(wanted)]
print("[vigil demo] GET http://127.0.0.1:9464/metrics (excerpt):\n  " + "\n  ".join(lines), flush=True)
PY
) &
log "vigil run topologies/card-payments.yaml for ${SECONDS_TO_RUN}s (Ctrl-C ends it cleanly); alerts as they are published:"
log "  while it runs: edit the threshold in topologies/card-payments.yaml and it reloads; metrics on http://127.0.0.1:9464/metrics"
"$VIGIL" run --topology topologies/card-payments.yaml --brokers "$BROKERS" --duration "$SECONDS_TO_RUN" \
  --print-alerts --log-level warning
log "vigil checkpoints list topologies/card-payments.yaml (state + offsets; the next run restores the newest)"
"$VIGIL" checkpoints list --topology topologies/card-payments.yaml --brokers "$BROKERS" | head -12
if [[ "${VIGIL_KEEP_BROKER:-0}" == 1 ]]; then
  log "broker left running at $BROKERS (stop: scripts/broker.sh stop)"
fi
log "done. Next: scripts/test.sh runs every test; docs/alerts.md describes the alert records, docs/operations.md checkpoints, reload and the admin endpoint."
