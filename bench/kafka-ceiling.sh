#!/usr/bin/env bash
# librdkafka's own throughput ceiling against the local broker: the number Vigil's Kafka layer is
# compared with. Starts a private broker ("bench"), produces N 150-byte messages with
# rdkafka_performance (uncompressed and lz4, acks=all, linger.ms=5), then reads each topic back as
# a consumer group, and prints a table. Usage: bench/kafka-ceiling.sh [N]   (default 1000000)
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"

source "$(dirname "$0")/lib.sh"
bench_setup
export VIGIL_BROKER_NAME=bench
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
scripts/broker.sh stop >/dev/null 2>&1 || true   # a fresh, empty broker for every run
BROKERS="127.0.0.1:$(scripts/broker.sh start 2>/dev/null)"
PERF="$DEPS_BIN/rdkafka_performance"
COMMON=(-X acks=all -X linger.ms=5 -X batch.size=1000000)

rows=()
for codec in none lz4; do
  topic="ceiling-$codec-$$"
  scripts/broker.sh topic "$topic" 4 2>/dev/null
  out="$("$PERF" -P -t "$topic" -b "$BROKERS" -s 150 -c "$N" -z "$codec" "${COMMON[@]}" 2>&1)"
  p="$(grep -E '^% [0-9]+ messages produced' <<<"$out" | tail -1)"
  # "% 1000000 messages produced (150000000 bytes), 1000000 delivered (...), 0 failed in 512ms: 1951533 msgs/s and 292.73 MB/s, ..."
  p_rate="$(sed -E 's/.* ([0-9]+) msgs\/s and ([0-9.]+) MB\/s.*/\1 msg\/s (\2 MB\/s)/' <<<"$p")"
  out="$("$PERF" -G "ceiling-grp-$codec-$$" -t "$topic" -b "$BROKERS" -c "$N" -X auto.offset.reset=earliest \
         -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X fetch.queue.backoff.ms=10 2>&1)"
  c="$(grep -E 'messages consumed|consumed in' <<<"$out" | tail -1)"
  # "% 1000000 messages (150000000 bytes) consumed in 460ms: 2170737 msgs/s (325.61 MB/s)"
  c_rate="$(sed -E 's/.* ([0-9]+) msgs\/s \(([0-9.]+) MB\/s\).*/\1 msg\/s (\2 MB\/s)/' <<<"$c")"
  rows+=("| $codec | $N | $p_rate | $c_rate |")
done

tansu_rss_kb="$(ps -o rss= -p "$(cat "$DEPS/run/bench/tansu.pid")" | tr -d ' ')"
echo
echo "rdkafka_performance alone: $(versions_line), 4 partitions, 150-byte messages, acks=all, linger.ms=5"
machine_line
echo
echo "| compression | messages | produce | consume (group, consumer_poll) |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "broker RSS after the run: $((tansu_rss_kb / 1024)) MiB"
