#!/usr/bin/env bash
# The README's second command: installs what is missing (scripts/setup.sh), builds, starts a
# private test broker, and runs every test, integration tests against that broker included.
# Under CI=true a broker that does not start fails the run; by hand, the integration tests are
# then skipped with a message. Extra arguments go to `swift test` (e.g. --filter Kafka).
set -euo pipefail
VIGIL_STEP=test
source "$(dirname "$0")/common.sh"

"$VIGIL_ROOT/scripts/setup.sh"
"$VIGIL_ROOT/scripts/setup.sh" testtools
vigil_env
cd "$VIGIL_ROOT"

log "building Vigil and its tests (debug)"
swift build --build-tests
# The operator kit: Prometheus rules (promtool) and the Grafana dashboard's metric names.
scripts/check-deploy.sh

export VIGIL_BROKER_NAME=test
export VIGIL_PYTHON="$DEPS_VENV/bin/python"   # prometheus_client, fairlearn, scikit-learn, pillow
export VIGIL_TANSU="$DEPS_BIN/tansu"   # tests that restart a broker run their own,
export VIGIL_TEST_PIDS="$DEPS/run/test-private-brokers.pids"   # listed here for clean-up
mkdir -p "$DEPS/run"; rm -f "$VIGIL_TEST_PIDS"
cleanup() {
  scripts/broker.sh stop >/dev/null 2>&1 || true
  # Brokers a crashed test could not stop itself.
  if [[ -f "$VIGIL_TEST_PIDS" ]]; then
    while read -r pid; do [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true; done < "$VIGIL_TEST_PIDS"
  fi
}
trap cleanup EXIT
if port="$(scripts/broker.sh start)"; then
  export KAFKA_BOOTSTRAP="127.0.0.1:$port"
  log "integration tests use the broker at $KAFKA_BOOTSTRAP"
elif [[ "${CI:-}" == true ]]; then
  die "the test broker did not start, and under CI that is a failure (log: .deps/run/test/tansu.log)"
else
  log "WARNING: the test broker did not start; integration tests will be skipped"
fi

log "running the tests"
# A bound well inside CI's 90 minutes, so a hung test fails the run with a message instead of
# using up the whole budget. Every suite runs each test on a thread of its own (VigilTestKit's
# .ownThread), so blocking work never starves the two threads of Swift's cooperative pool.
# The tests (and the vigil processes and private brokers they start) run at a lower CPU
# priority than the shared test broker: starved on two cores by the parallel suites, the broker
# stalled for 10-20 s (requests timed out, sessions lost, topics not created in time), and tests
# failed for that alone.
nice_tests=(nice -n 10)
if (($# == 0)); then
  # Seven runs, so that the integration tests have the two cores to themselves: the unit tests'
  # long computations first, then the integration suites, then the label-join suites (engines
  # reading backlogs at full speed, which starved the Kafka sessions of the rest), the scale-out
  # test (five vigil processes at once), the federation test (three engines, 450,000 events), the
  # durable-broker test, and the other fault suites (each on brokers of its own), one by one.
  # Beside the integration suites, the fault suites' brokers starved the shared one, and the
  # durable broker (Tansu reading its batches back from a Python S3 server) read fewer than 5,000
  # records in 120 s, where alone it reads 20,000 in a few seconds (CI, 2026-12-05).
  # The evaluation suites need no broker but load both cores (replays, Python, Chromium): they
  # run with the unit tests, away from the integration suites' Kafka sessions.
  unit='VigilCoreTests|VigilFeaturesTests|VigilModelsTests|VigilSyntheticTests|EvaluateTests|SklearnImportTests|QualityGateTests|LiveSegmentsTests|LabelPacerTests|ReplayLabelTests'
  if ! "${nice_tests[@]}" timeout --kill-after=30 "${VIGIL_TEST_TIMEOUT:-1800}" swift test --skip-build --filter "$unit"; then
    die "unit tests failed (or did not finish within ${VIGIL_TEST_TIMEOUT:-1800} s)"
  fi
  log "running the integration tests"
  apart='LiveFairnessTests|RunLabelJoinTests'
  faults='DurableBrokerTests|ProxyFaultTests|UnwritableAlertsTests|CheckpointFaultTests|HostileInputTests'
  if ! "${nice_tests[@]}" timeout --kill-after=30 "${VIGIL_TEST_TIMEOUT:-1800}" swift test --skip-build \
      --skip "$unit|$apart|ScaleOutTests|FederationTests|$faults"; then
    die "integration tests failed (or did not finish within ${VIGIL_TEST_TIMEOUT:-1800} s)"
  fi
  for alone in "$apart" ScaleOutTests FederationTests DurableBrokerTests \
      'ProxyFaultTests|UnwritableAlertsTests|CheckpointFaultTests|HostileInputTests'; do
    log "running $alone on its own"
    if ! "${nice_tests[@]}" timeout --kill-after=30 900 swift test --skip-build --filter "$alone"; then
      die "$alone failed (or did not finish within 900 s)"
    fi
  done
elif ! "${nice_tests[@]}" timeout --kill-after=30 "${VIGIL_TEST_TIMEOUT:-1800}" swift test --skip-build "$@"; then
  die "tests failed (or did not finish within ${VIGIL_TEST_TIMEOUT:-1800} s)"
fi

# The lock-free and hand-synchronised code runs again under the thread sanitizer, in its own build
# folder: the shard rings' producer/consumer test, and a replay through the whole pipeline
# (chunks written by several workers, finished by the last one, reordered by the writer).
# VIGIL_TSAN=0 skips it, e.g. with a --filter.
if [[ "${VIGIL_TSAN:-1}" != 0 ]]; then
  log "running the shard-ring and pipeline tests under the thread sanitizer"
  swift build --build-tests --sanitize=thread --scratch-path .build-tsan
  if ! TSAN_OPTIONS="halt_on_error=1" timeout --kill-after=30 900 \
      swift test --skip-build --sanitize=thread --scratch-path .build-tsan --filter 'ShardRingTests|ReplayTests/everyLineGetsExactlyOneOutcomeInInputOrder'; then
    die "the shard-ring or pipeline test failed under the thread sanitizer"
  fi
fi
log "all tests passed"
