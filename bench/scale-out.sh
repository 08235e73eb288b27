#!/usr/bin/env bash
# Several `vigil run` instances in one consumer group, through the local broker, on a 6-partition
# topic (card-payments, release build, --workers 1 per instance):
#   1. throughput with 1, 2 and 3 instances over a backlog of EVENTS generated payments: events
#      divided by the time from the first to the last record finished, over all instances (each
#      run a fresh group; this machine has 2 cores, which the instances and the broker share);
#   2. a single instance fed live at RATE events/s for DURATION seconds, with labels 1–20 s after
#      their events: the ROC-AUC of its final scores against the generator's truth;
#   3. the same feed into three instances with `federation:` (every 5 s): a fourth joins after a
#      third of the feed, and one of the first three is SIGKILLed after two thirds, or once the
#      fourth holds partitions and no assignment has changed for 5 s if that is later (so the
#      two rebalances do not overlap).
#      - rebalance pause: for each partition that moved to the joining instance, the longest gap
#        between two finished records around the join (the feed keeps every partition busy),
#        the largest over those partitions;
#      - handoff: from the SIGKILL to the first record finished, by another instance, of each
#        partition the killed one held, the largest over those partitions (the session timeout,
#        6 s, is most of it);
#      - the ROC-AUC of the group's final scores (each event's first scoring), and its gap to
#        the single instance's.
#
#   bench/scale-out.sh [EVENTS] [RATE] [DURATION]     (defaults: 600000, 4000 and 60)
#
# Ends with RESULT instances_1_eps=… instances_2_eps=… instances_3_eps=… rebalance_pause_ms=…
#   handoff_s=… fedavg_auc_gap=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-600000}"
RATE="${2:-4000}"
DURATION="${3:-60}"
source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/scale-out"
rm -rf "$OUT"; mkdir -p "$OUT"
echo "$(machine_line); $(versions_line)"
bench_broker
now_ms() { date +%s%3N; }

# card-payments on the run's own topics (prefix $1), 6 partitions, checkpoints every 2 s, no
# admin endpoint; federation every 5 s when $2 is "fed".
topology() {
  local p="$1" file="$OUT/$1.yaml"
  sed -e "s/topics: \[payments\]/topics: [$p-in]/" -e "s/payments-labels/$p-labels/" -e "s/payments-alerts/$p-alerts/" \
      -e "s/payments-dlq/$p-dlq/" -e "s/group: vigil-card-payments/group: $p-group/" -e "s/partitions: 4/partitions: 6/" \
      -e "s/vigil-card-payments-checkpoints, every: 30s/$p-checkpoints, every: 2s/" \
      -e "s/vigil-card-payments-audit/$p-audit/" -e "/^admin:/d" topologies/card-payments.yaml > "$file"
  if [[ "${2:-}" == fed ]]; then echo "federation: { topic: $p-models, every: 5s }" >> "$file"; fi
  "$VIGIL" create-topics "$file" --brokers "$BROKERS" >/dev/null
  echo "$file"
}

# `start RUN NAME`: one instance of run RUN in the background (its pid in $LAST); outcomes in
# $OUT/RUN-NAME.tsv, log in $OUT/RUN-NAME.log.
start() {
  "$VIGIL" run --topology "$OUT/$1.yaml" --brokers "$BROKERS" --workers 1 --instance "$2" --no-watch \
    --record-outcomes "$OUT/$1-$2.tsv" 2> "$OUT/$1-$2.log" >/dev/null &
  LAST=$!
  pids+=("$LAST")
}

# `finished RUN`: distinct records with an outcome so far, over the run's instances.
finished() { cat "$OUT/$1"-*.tsv 2>/dev/null | awk -F'\t' '$4 != "pending" { print $2 " " $3 }' | sort -u | wc -l; }

# `wait_for RUN N TIMEOUT_S`: until N records of RUN have an outcome.
wait_for() {
  local end=$((SECONDS + $3))
  while (($(finished "$1") < $2)); do
    if ((SECONDS > end)); then log "timed out: $(finished "$1") of $2 records of $1 finished"; return 1; fi
    sleep 1
  done
}

stop_all() {
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# --- 1. throughput ---------------------------------------------------------------------------------
topology tp >/dev/null
log "producing $EVENTS events over 100000 cards to tp-in (6 partitions)"
"$VIGIL" generate --brokers "$BROKERS" --topic tp-in --labels-topic tp-labels --events "$EVENTS" --cards 100000 \
  --seed 8 --label-delay 1-20 2>&1 | sed 's/^/  /'
declare -A eps
for k in 1 2 3; do
  run="tp$k"
  sed -e "s/group: tp-group/group: $run-group/" -e "s/tp-checkpoints/$run-checkpoints/" "$OUT/tp.yaml" > "$OUT/$run.yaml"
  "$VIGIL" create-topics --topology "$OUT/$run.yaml" --brokers "$BROKERS" >/dev/null
  log "$k instance(s) of one group read the backlog"
  started=()
  for j in $(seq 1 "$k"); do start "$run" "i$j"; started+=("$LAST"); done
  wait_for "$run" "$EVENTS" 900
  stop_all "${started[@]}"
  eps[$k]="$(cat "$OUT/$run"-*.tsv | awk -F'\t' -v n="$EVENTS" '
    $4 != "pending" { if (first == "" || $6 < first) first = $6; if ($6 > last) last = $6 }
    END { printf "%.0f", n / ((last - first) / 1000) }')"
  echo "  $k instance(s): ${eps[$k]} events/s"
done

# --- 2 and 3. live -------------------------------------------------------------------------------
live_events=$((RATE * DURATION))
"$VIGIL" generate --output "$OUT/truth-events.jsonl" --labels "$OUT/truth-labels.jsonl" --events "$live_events" \
  --cards 20000 --seed 9 --label-delay 1-20 >/dev/null 2>&1

# `feed RUN`: the live stream, in the background (its pid in $LAST).
feed() {
  "$VIGIL" generate --brokers "$BROKERS" --topic "$1-in" --labels-topic "$1-labels" --events "$live_events" \
    --cards 20000 --seed 9 --label-delay 1-20 --rate "$RATE" > "$OUT/$1-generate.log" 2>&1 &
  LAST=$!
  pids+=("$LAST")
}

# `holds RUN NAME`: until instance NAME of RUN holds at least one partition.
holds() {
  local end=$((SECONDS + 120))
  until grep -q 'partitions=\[[^]]' <(grep "Partitions assigned" "$OUT/$1-$2.log" 2>/dev/null); do
    if ((SECONDS > end)); then log "timed out waiting for $2 of $1 to hold partitions"; return 1; fi
    sleep 0.5
  done
}

# `settled RUN`: until no instance of RUN has logged an assignment change for 5 s. Tansu runs a
# cooperative rebalance in several rounds, and a kill during them measures the rounds (the
# killed member's session is waited out), not the handoff.
settled() {
  local end=$((SECONDS + 120)) last
  while :; do
    last="$(grep -h -E "Partitions (assigned|revoked|lost)" "$OUT/$1"-*.log 2>/dev/null | awk '{ print $1 }' | sort | tail -1)"
    if [[ -n "$last" ]] && (($(date +%s) - $(date -d "$last" +%s) >= 5)); then return 0; fi
    if ((SECONDS > end)); then log "timed out waiting for the group of $1 to settle"; return 1; fi
    sleep 0.5
  done
}

# `members RUN N`: until N instances of RUN hold partitions.
members() {
  local end=$((SECONDS + 120))
  while (($(grep -l "Partitions assigned" "$OUT/$1"-*.log 2>/dev/null | wc -l) < $2)); do
    if ((SECONDS > end)); then log "timed out waiting for $2 members of $1"; return 1; fi
    sleep 0.5
  done
}

topology one >/dev/null
log "one instance, fed at $RATE events/s for $DURATION s"
start one a; a=$LAST
members one 1
feed one; f=$LAST
wait "$f"
wait_for one "$live_events" 300
stop_all "$a"

topology fed fed >/dev/null
log "three instances with federation, fed at $RATE events/s; d joins at $((DURATION / 3)) s, b is killed at $((2 * DURATION / 3)) s or once the group has settled after the join"
start fed a; a=$LAST
start fed b; b=$LAST
start fed c; c=$LAST
members fed 3
feed fed; f=$LAST
fed_start=$SECONDS
sleep $((DURATION / 3))
t_join="$(now_ms)"
start fed d; d=$LAST
# The kill waits until d holds partitions and the group has settled: in earlier runs a later
# cooperative round overlapped the kill (it waited out the killed member's session) or had
# already taken b's partitions away.
holds fed d
settled fed
rest=$((fed_start + 2 * DURATION / 3 - SECONDS))
sleep $((rest > 0 ? rest : 0))
t_kill="$(now_ms)"
kill -9 "$b"
wait "$f"
wait_for fed "$live_events" 300
stop_all "$a" "$c" "$d"
wait "$b" 2>/dev/null || true

"$PY" - "$OUT" "$t_join" "$t_kill" <<'EOF'
import collections, glob, json, os, sys
from sklearn.metrics import roc_auc_score

out, t_join, t_kill = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
truth = {}
for line in open(os.path.join(out, "truth-labels.jsonl")):
    o = json.loads(line)
    truth[o["txn_id"]] = bool(o["is_fraud"])

def read(run):
    rows = []  # (instance, partition, offset, outcome, score, ms, id)
    for path in sorted(glob.glob(os.path.join(out, f"{run}-*.tsv"))):
        name = os.path.basename(path)[len(run) + 1:-4]
        for line in open(path):
            f = line.rstrip("\n").split("\t")
            if len(f) != 8 or f[3] == "pending":
                continue
            rows.append((name, int(f[1]), int(f[2]), f[3], f[4], int(f[5]), f[6]))
    return rows

def auc(rows):
    first = {}
    for r in sorted(rows, key=lambda r: r[5]):
        if r[4] != "-" and r[6] in truth and r[6] not in first:
            first[r[6]] = float(r[4])
    ids = list(first)
    return roc_auc_score([truth[i] for i in ids], [first[i] for i in ids]), len(ids)

one, fed = read("one"), read("fed")
auc_one, n_one = auc(one)
auc_fed, n_fed = auc(fed)

# Partitions that moved to d at the join (before the kill), and the longest gap between finished
# records of each from the join to the kill.
moved = sorted({r[1] for r in fed if r[0] == "d" and r[5] < t_kill})
pauses = {}
for p in moved:
    times = sorted(r[5] for r in fed if r[1] == p and t_join - 2000 <= r[5] < t_kill)
    pauses[p] = max((b - a for a, b in zip(times, times[1:])), default=0)
typical = sorted(b - a for p in range(6)
                 for times in [sorted(r[5] for r in fed if r[1] == p and r[5] < t_join)]
                 for a, b in zip(times, times[1:]))
# Partitions b held when it was killed, and the first record another instance finished after.
held = sorted({r[1] for r in fed if r[0] == "b" and t_kill - 3000 <= r[5] <= t_kill})
handoffs = {}
for p in held:
    after = [r[5] for r in fed if r[1] == p and r[0] != "b" and r[5] > t_kill]
    handoffs[p] = (min(after) - t_kill) / 1000 if after else float("nan")

print(f"  one instance: ROC-AUC {auc_one:.4f} over {n_one} events")
print(f"  three instances, federated, one joined and one killed: ROC-AUC {auc_fed:.4f} over {n_fed} events")
print(f"  partitions moved to d at the join: {moved}; longest gap per partition (ms): {pauses}; "
      f"median gap before: {typical[len(typical) // 2] if typical else 0} ms")
print(f"  partitions b held at the kill: {held}; first record on another instance after (s): {handoffs}")
with open(os.path.join(out, "live.txt"), "w") as f:
    f.write(f"{max(pauses.values(), default=0)} {max(handoffs.values(), default=float('nan')):.2f} "
            f"{auc_one - auc_fed:.4f}\n")
EOF
read -r pause handoff gap < "$OUT/live.txt"
grep -h "Federation round failed" "$OUT"/fed-*.log | head -3 || true
echo "RESULT instances_1_eps=${eps[1]} instances_2_eps=${eps[2]} instances_3_eps=${eps[3]} rebalance_pause_ms=$pause handoff_s=$handoff fedavg_auc_gap=$gap"
