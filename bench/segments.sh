#!/usr/bin/env bash
# What the live fairness figures cost the workers: `vigil replay` of N generated card payments
# with their labels, through topologies/card-payments.yaml (segments: [channel, country]) and
# through the same topology without `segments:`, alternating, REPS times each. Both must give
# identical scores. Two workers.
#
#   bench/segments.sh [N] [REPS]     (default 1000000 3)
#
# Ends with RESULT without_eps=… with_eps=… cpu_ns_per_event=… cost=… (medians; events/s from wall
# time, the added CPU per event and the relative cost from CPU time)
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"
REPS="${2:-3}"

source "$(dirname "$0")/lib.sh"
bench_setup
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/segments"
mkdir -p "$OUT"

echo "$(machine_line); $(versions_line)"
log "generating $N events with labels"
"$VIGIL" generate --events "$N" --seed 21 --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" 2>/dev/null
cp topologies/card-payments.yaml "$OUT/with.yaml"
grep -v '^segments:' topologies/card-payments.yaml > "$OUT/without.yaml"
grep -q '^segments:' "$OUT/with.yaml"

declare -A wall cpu
TIMEFORMAT='%R %U %S'
for rep in $(seq "$REPS"); do
  for t in without with; do
    # Wall and CPU seconds (user + system): CPU time is steadier on a shared machine.
    read -r r u s < <({ time "$VIGIL" replay --topology "$OUT/$t.yaml" --input "$OUT/events.jsonl" \
      --labels "$OUT/labels.jsonl" --workers 2 --scores "$OUT/$t-scores.jsonl" 2>/dev/null; } 2>&1)
    c="$(awk -v u="$u" -v s="$s" 'BEGIN { printf "%.2f", u + s }')"
    wall[$t]="${wall[$t]:-} $r"
    cpu[$t]="${cpu[$t]:-} $c"
    echo "  $t segments, run $rep: $r s wall, $c s CPU"
  done
done
cmp -s "$OUT/without-scores.jsonl" "$OUT/with-scores.jsonl" || die "the scores differ with segments"
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wa="$(echo "${wall[without]}" | median)"
wb="$(echo "${wall[with]}" | median)"
ca="$(echo "${cpu[without]}" | median)"
cb="$(echo "${cpu[with]}" | median)"
awk -v n="$N" -v wa="$wa" -v wb="$wb" -v ca="$ca" -v cb="$cb" 'BEGIN {
  printf "RESULT without_eps=%.0f with_eps=%.0f cpu_ns_per_event=%.0f cost=%.3f\n", n / wa, n / wb, (cb - ca) * 1e9 / n, cb / ca - 1 }'
