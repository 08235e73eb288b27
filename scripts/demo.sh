#!/usr/bin/env bash
# The README's first command: sets everything up on a fresh machine and runs Vigil as far as it
# goes today: builds it, starts the local broker, validates the shipped topologies, creates the
# card-payments topics, and sends events through librdkafka to the broker and reads them back.
# The broker is stopped at the end; VIGIL_KEEP_BROKER=1 leaves it running for further use.
set -euo pipefail
VIGIL_STEP=demo
source "$(dirname "$0")/common.sh"

"$VIGIL_ROOT/scripts/setup.sh"
vigil_env
cd "$VIGIL_ROOT"

log "building vigil (release)"
swift build -c release --product vigil
VIGIL="$VIGIL_ROOT/.build/release/vigil"

export VIGIL_BROKER_NAME=dev
if [[ "${VIGIL_KEEP_BROKER:-0}" != 1 ]]; then trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT; fi
port="$(scripts/broker.sh start)"
BROKERS="127.0.0.1:$port"

echo
log "vigil --version"
"$VIGIL" --version
echo
log "vigil validate topologies/*.yaml"
"$VIGIL" validate topologies/*.yaml
echo
log "vigil create-topics topologies/card-payments.yaml"
"$VIGIL" create-topics topologies/card-payments.yaml --brokers "$BROKERS"
echo
log "vigil doctor: 10 card payments to topic 'payments' and back, through librdkafka"
"$VIGIL" doctor --brokers "$BROKERS" --topic payments --count 10
echo
if [[ "${VIGIL_KEEP_BROKER:-0}" == 1 ]]; then
  log "broker left running at $BROKERS (stop: scripts/broker.sh stop)"
fi
log "done: Vigil is built and talks to Kafka. Next: scripts/test.sh runs every test."
