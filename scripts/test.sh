#!/usr/bin/env bash
# The README's second command: installs what is missing (scripts/setup.sh), builds, starts a
# private test broker, and runs every test, integration tests against that broker included.
# Under CI=true a broker that does not start fails the run; by hand, the integration tests are
# then skipped with a message. Extra arguments go to `swift test` (e.g. --filter Kafka).
set -euo pipefail
VIGIL_STEP=test
source "$(dirname "$0")/common.sh"

"$VIGIL_ROOT/scripts/setup.sh"
vigil_env
cd "$VIGIL_ROOT"

log "building Vigil and its tests (debug)"
swift build --build-tests

export VIGIL_BROKER_NAME=test
export VIGIL_TANSU="$DEPS_BIN/tansu"   # tests that restart a broker run their own
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
if port="$(scripts/broker.sh start)"; then
  export KAFKA_BOOTSTRAP="127.0.0.1:$port"
  log "integration tests use the broker at $KAFKA_BOOTSTRAP"
elif [[ "${CI:-}" == true ]]; then
  die "the test broker did not start, and under CI that is a failure (log: .deps/run/test/tansu.log)"
else
  log "WARNING: the test broker did not start; integration tests will be skipped"
fi

log "running the tests"
swift test --skip-build "$@"
log "all tests passed"
