#!/usr/bin/env bash
# VigilModels against the peers a user would pick instead, in one run, on the same rows:
# - the isolation forest next to River's HalfSpaceTrees (online) and scikit-learn's
#   IsolationForest (batch, fit on all rows: the upper bound), and the second variant (the
#   counting forest), on Statlog Shuttle (River's bundled
#   ODDS version, 49,097 rows, 7 % anomalies) and on the synthetic card-payment stream after
#   Vigil's feature stage;
# - the logistic regression next to River's LogisticRegression, on Phishing (River's bundled
#   dataset, 1,250 rows) and on the synthetic stream;
# - ns/event of score and learn, model memory, checkpoint encode/decode MB/s.
# Quality is prequential (score each row, then learn it) in file order.
#
#   bench/models-vs-peers.sh [SYNTHETIC_EVENTS]      (default 200000)
#
# Ends with RESULT forest_score_ns=… forest_learn_ns=… lr_ns=… vs_river=… auc=… auc_sklearn=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-200000}"

source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
MB="$(bench_build model-bench)"
OUT="$VIGIL_ROOT/bench/out"
mkdir -p "$OUT"

"$PY" bench/models_peers.py export "$OUT" >&2
SPEED="$("$MB" speed --events "$EVENTS" --csv-out "$OUT/synthetic.csv")"
log "vigil speed: $SPEED"
pick() { printf '%s\n' "${LINES[@]}" | grep "^$1 " | grep "model=$2 " | field "$3"; }
declare -a LINES
for data in shuttle synthetic; do
  LINES+=("$data $("$MB" quality "$OUT/$data.csv" --model forest)")
  LINES+=("$data $("$MB" quality "$OUT/$data.csv" --model counting)")
  while read -r line; do LINES+=("$data $line"); done < <("$PY" bench/models_peers.py forest "$OUT/$data.csv")
done
for data in phishing synthetic; do
  LINES+=("$data $("$MB" quality "$OUT/$data.csv" --model lr)")
  while read -r line; do LINES+=("$data $line"); done < <("$PY" bench/models_peers.py lr "$OUT/$data.csv")
done

echo
echo "$(machine_line)"
echo "Quality (prequential, file order; sklearn_iforest_batch is fit on all rows first):"
printf '%-10s %-22s %8s %8s %8s %12s %12s\n' data model events auc ap score_ns learn_ns
for l in "${LINES[@]}"; do
  set -- $l
  data="$1"; shift
  line=" $*"
  printf '%-10s %-22s %8s %8s %8s %12s %12s\n' "$data" "$(echo "$line" | grep -o 'model=[a-z_]*' | cut -d= -f2)" \
    "$(echo "$line" | field events)" "$(echo "$line" | field auc)" "$(echo "$line" | field ap)" \
    "$(echo "$line" | field score_ns)" "$(echo "$line" | field learn_ns)"
done
FS="$(echo " $SPEED" | field forest_score_ns)"; FL="$(echo " $SPEED" | field forest_learn_ns)"
LS="$(echo " $SPEED" | field lr_score_ns)"; LL="$(echo " $SPEED" | field lr_learn_ns)"
HS="$(pick synthetic river_hst score_ns)"; HL="$(pick synthetic river_hst learn_ns)"
echo
echo "Speed at default sizes on the synthetic features ($EVENTS events, one thread; Vigil batch-scores):"
echo "  forest (default, trees rebuilt in rotation): score $FS ns/event, learn $FL ns/event, $(echo " $SPEED" | field forest_bytes) bytes"
echo "  counting forest (variant): score $(echo " $SPEED" | field counting_score_ns) ns/event, learn $(echo " $SPEED" | field counting_learn_ns) ns/event, $(echo " $SPEED" | field counting_bytes) bytes"
echo "  logistic regression: score $LS ns/event, learn $LL ns/event"
echo "  River HalfSpaceTrees: score $HS ns/event, learn $HL ns/event"
echo "  checkpoint of the forest: $(echo " $SPEED" | field body_bytes) bytes of body, $(echo " $SPEED" | field checkpoint_bytes) stored;" \
  "encode $(echo " $SPEED" | field checkpoint_encode_mb_s) MB/s, decode $(echo " $SPEED" | field checkpoint_decode_mb_s) MB/s"
VS="$(awk -v a="$HS" -v b="$HL" -v c="$FS" -v d="$FL" 'BEGIN {printf "%.0f", (a + b) / (c + d)}')"
echo "RESULT forest_score_ns=$FS forest_learn_ns=$FL lr_ns=$(awk -v a="$LS" -v b="$LL" 'BEGIN {printf "%.1f", a + b}') vs_river=$VS auc=$(pick shuttle vigil_forest auc) auc_sklearn=$(pick shuttle sklearn_iforest_batch auc)"
