#!/usr/bin/env bash
# VigilKafka against librdkafka's own rdkafka_performance (built from the same source), in one
# run, against a private local broker: produce and consume rates for ~150-byte JSON records on 4
# partitions, then VigilKafka's end-to-end latency at 10k msg/s. The stock rdkafka_performance
# re-sends one static buffer without copying it; VigilKafka copies every record (its callers reuse
# their buffers), so a second rdkafka_performance built with RD_KAFKA_MSG_F_COPY is shown too.
#
#   bench/kafka-vs-librdkafka.sh [N] [REPS]     (defaults: 1000000 records, 3 repetitions)
#   CODEC=lz4 bench/kafka-vs-librdkafka.sh      (compression for both producers; default none)
#
# Every produce measurement starts on an empty broker; consumers alternate which goes first; the
# table shows medians. Ends with
#   RESULT consume_ratio=… produce_ratio=… p99_ms=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"
REPS="${2:-3}"
CODEC="${CODEC:-none}"

source "$(dirname "$0")/lib.sh"
bench_setup
KB="$(bench_build kafka-bench)"
PERF="$DEPS_BIN/rdkafka_performance"

export VIGIL_BROKER_NAME=bench
trap 'scripts/broker.sh stop >/dev/null 2>&1 || true' EXIT
BROKERS=""
topic() { scripts/broker.sh topic "$1" 4 2>/dev/null; }

# Group settings both consumers share (fast joins on this broker, no fetch stalls).
GROUP_PROPS=(-X auto.offset.reset=earliest -X session.timeout.ms=6000 -X heartbeat.interval.ms=1000
             -X fetch.queue.backoff.ms=10 -X fetch.wait.max.ms=10)
perf_produce() {   # $1 topic, $2 binary (default: stock); prints msgs/s
  "${2:-$PERF}" -P -t "$1" -b "$BROKERS" -s 150 -c "$N" -z "$CODEC" -X acks=all -X linger.ms=5 -X batch.size=1000000 2>&1 |
    grep -E '^% [0-9]+ messages produced' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/'
}
perf_consume() {   # $1 topic, $2 extra flags; prints msgs/s
  "$PERF" -G "perf-$RANDOM$RANDOM" -t "$1" -b "$BROKERS" -c "$N" ${2:-} "${GROUP_PROPS[@]}" 2>&1 |
    grep -E 'consumed in' | tail -1 | sed -E 's/.* ([0-9]+) msgs\/s.*/\1/'
}
vigil_rate() { sed -E 's/.*msgs_per_s=([0-9]+).*/\1/'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Tansu keeps every record in memory and gets slower as it fills, which favours whoever
# measures first; so every produce measurement gets a freshly started, empty broker.
fresh_broker() {
  scripts/broker.sh stop >/dev/null 2>&1 || true
  BROKERS="127.0.0.1:$(scripts/broker.sh start 2>/dev/null)"
}

vp=() pp=() ppc=() vc=() pc=() pcb=() vrss=()
for r in $(seq 1 "$REPS"); do
  fresh_broker; t_perf="perf-$r-$$"; topic "$t_perf"
  pp+=("$(perf_produce "$t_perf")")
  fresh_broker; t_perf="perfcopy-$r-$$"; topic "$t_perf"
  ppc+=("$(perf_produce "$t_perf" "$DEPS_BIN/rdkafka_performance_copy")")
  fresh_broker; t_vigil="vigil-$r-$$"; topic "$t_vigil"
  out="$("$KB" produce --brokers "$BROKERS" --topic "$t_vigil" --messages "$N" --codec "$CODEC" 2>/dev/null)"
  vp+=("$(vigil_rate <<<"$out")")
  # Both consumers read the same records, the JSON ones VigilKafka just produced; the side that
  # goes first alternates.
  if (( r % 2 )); then
    pc+=("$(perf_consume "$t_vigil")")
    out="$("$KB" consume --brokers "$BROKERS" --topic "$t_vigil" --messages "$N" 2>/dev/null)"; vc+=("$(vigil_rate <<<"$out")")
  else
    out="$("$KB" consume --brokers "$BROKERS" --topic "$t_vigil" --messages "$N" 2>/dev/null)"; vc+=("$(vigil_rate <<<"$out")")
    pc+=("$(perf_consume "$t_vigil")")
  fi
  vrss+=("$(sed -E 's/.*peak_rss_mib=([0-9]+).*/\1/' <<<"$out")")
  pcb+=("$(perf_consume "$t_vigil" "-B 10000")")
  log "repetition $r: produce vigil ${vp[-1]} / perf ${pp[-1]} / perf copy ${ppc[-1]}; consume vigil ${vc[-1]} / perf ${pc[-1]} (batch ${pcb[-1]})"
done

fresh_broker
t_lat="latency-$$"; topic "$t_lat"
lat="$("$KB" latency --brokers "$BROKERS" --topic "$t_lat" --rate 10000 --seconds 10 --codec "$CODEC" 2>/dev/null)"
p50="$(sed -E 's/.*p50_ms=([0-9.]+).*/\1/' <<<"$lat")"; p99="$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$lat")"
pmax="$(sed -E 's/.*max_ms=([0-9.]+).*/\1/' <<<"$lat")"; lrss="$(sed -E 's/.*peak_rss_mib=([0-9]+).*/\1/' <<<"$lat")"

m_vp="$(echo "${vp[*]}" | median)" m_pp="$(echo "${pp[*]}" | median)" m_ppc="$(echo "${ppc[*]}" | median)"
m_vc="$(echo "${vc[*]}" | median)" m_pc="$(echo "${pc[*]}" | median)" m_pcb="$(echo "${pcb[*]}" | median)"
mb() { awk -v r="$1" 'BEGIN {printf "%.0f", r * 150 / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

echo
echo "VigilKafka vs rdkafka_performance: $(versions_line), $N records of 150 bytes, 4 partitions, compression $CODEC, acks=all, linger.ms=5"
echo "$(machine_line); medians of $REPS repetitions"
echo
echo "| path | VigilKafka msg/s (MB/s) | rdkafka_performance msg/s (MB/s) | ratio |"
echo "|---|---|---|---|"
echo "| produce | $m_vp ($(mb "$m_vp")) | $m_pp ($(mb "$m_pp")) stock: one static buffer, never copied | $(ratio "$m_vp" "$m_pp") |"
echo "| produce | | $m_ppc ($(mb "$m_ppc")) with RD_KAFKA_MSG_F_COPY, as VigilKafka | $(ratio "$m_vp" "$m_ppc") |"
echo "| consume (group) | $m_vc ($(mb "$m_vc")) | $m_pc ($(mb "$m_pc")) consumer_poll | $(ratio "$m_vc" "$m_pc") |"
echo "| consume (group) | | $m_pcb ($(mb "$m_pcb")) -B 10000 batch | $(ratio "$m_vc" "$m_pcb") |"
echo
echo "runs: produce vigil ${vp[*]} / perf ${pp[*]} / perf copy ${ppc[*]}; consume vigil ${vc[*]} / perf ${pc[*]} / perf batch ${pcb[*]}"
echo "VigilKafka end-to-end latency at 10k msg/s for 10 s: p50 ${p50} ms, p99 ${p99} ms, max ${pmax} ms; peak RSS: consumer ${vrss[-1]} MiB, latency run ${lrss} MiB"
echo "RESULT consume_ratio=$(ratio "$m_vc" "$m_pc") produce_ratio=$(ratio "$m_vp" "$m_pp") p99_ms=$p99"
