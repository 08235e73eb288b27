#!/usr/bin/env bash
# `vigil evaluate` measured on this machine, in one run:
#   1. two separate `vigil replay` runs (candidate, baseline) on N generated card payments with
#      labels, writing their score lines — what a team does before computing metrics itself;
#   2. the peer: scikit-learn computing ROC-AUC, average precision, precision, recall and F1 of
#      both from those score lines and the labels (pandas-free: json + numpy + sklearn.metrics);
#   3. `vigil evaluate` of the same pair in one command, with two segments and --report, which
#      prints how long its replays, its figures and its report took.
# The candidate is the shipped topology with its forest reading the amount, new_country and
# since_last only; the baseline is topologies/card-payments.yaml. Two workers throughout.
#
#   bench/evaluate.sh [N]     (default 1000000)
#
# Ends with RESULT evaluate_eps=… replays_eps=… overhead=… figures_s=… report_s=… sklearn_s=…
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
N="${1:-1000000}"

source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/evaluate"
mkdir -p "$OUT"

echo "$(machine_line); $(versions_line); scikit-learn $SKLEARN_VERSION"
log "generating $N events with labels"
"$VIGIL" generate --events "$N" --seed 21 --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" 2>/dev/null
BASE=topologies/card-payments.yaml
CAND="$OUT/candidate.yaml"
sed 's/features: \[amount, txn_count_10m, amount_sum_1h, amount_z, merchants_1h, new_country, since_last, amount_vs_day\]/features: [amount, new_country, since_last]/' \
  "$BASE" > "$CAND"
grep -q 'features: \[amount, new_country, since_last\]' "$CAND"

now() { date +%s.%N; }
log "two separate replays"
t0="$(now)"
"$VIGIL" replay --topology "$CAND" --input "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" --workers 2 \
  --scores "$OUT/candidate-scores.jsonl" 2>/dev/null
t1="$(now)"
"$VIGIL" replay --topology "$BASE" --input "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" --workers 2 \
  --scores "$OUT/baseline-scores.jsonl" 2>/dev/null
t2="$(now)"
replays_s="$(awk -v a="$t0" -v b="$t2" 'BEGIN { printf "%.2f", b - a }')"
echo "  candidate $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s, baseline $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2f", b - a }') s"

log "scikit-learn: the same figures from the score lines"
sk="$("$PY" - "$OUT/labels.jsonl" "$OUT/candidate-scores.jsonl" "$OUT/baseline-scores.jsonl" <<'PYEOF'
import json, sys, time
import numpy as np
from sklearn.metrics import roc_auc_score, average_precision_score, precision_recall_fscore_support
t = time.perf_counter()
truth = {}
for line in open(sys.argv[1]):
    l = json.loads(line)
    truth[l["txn_id"]] = l["is_fraud"]
out = []
for path in sys.argv[2:]:
    y, s, a = [], [], []
    for line in open(path):
        r = json.loads(line)
        if "dead_letter" in r or r["id"] not in truth:
            continue
        y.append(truth[r["id"]]); s.append(r["score"]); a.append(r["alert"])
    y, s, a = np.array(y), np.array(s), np.array(a)
    p, rc, f, _ = precision_recall_fscore_support(y, a, average="binary", zero_division=0)
    out.append(f"auc={roc_auc_score(y, s):.4f} ap={average_precision_score(y, s):.4f} f1={f:.4f}")
print(" | ".join(out), f"sklearn_s={time.perf_counter() - t:.2f}")
PYEOF
)"
echo "  $sk"
sklearn_s="$(echo " $sk" | field sklearn_s)"

log "vigil evaluate, both topologies, two segments, with the report"
t3="$(now)"
"$VIGIL" evaluate --topology "$CAND" --baseline "$BASE" --input "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" \
  --segment channel --segment country --workers 2 --json "$OUT/result.json" --report "$OUT/report.html" \
  > "$OUT/evaluate.txt" 2> "$OUT/evaluate.err"
t4="$(now)"
evaluate_s="$(awk -v a="$t3" -v b="$t4" 'BEGIN { printf "%.2f", b - a }')"
sed -n '1,22p' "$OUT/evaluate.txt" | sed 's/^/  /'
sed 's/^/  /' "$OUT/evaluate.err"
figures_s="$(grep -o 'figures [0-9.]*' "$OUT/evaluate.err" | grep -o '[0-9.]*$')"
report_s="$(grep -o 'report [0-9.]*' "$OUT/evaluate.err" | grep -o '[0-9.]*$')"
echo "  evaluate wall time $evaluate_s s against $replays_s s for the two replays (report $(du -k "$OUT/report.html" | cut -f1) KB)"

awk -v n="$N" -v e="$evaluate_s" -v r="$replays_s" -v f="$figures_s" -v rep="$report_s" -v sk="$sklearn_s" 'BEGIN {
  printf "RESULT evaluate_eps=%.0f replays_eps=%.0f overhead=%.3f figures_s=%s report_s=%s sklearn_s=%s\n",
    2 * n / e, 2 * n / r, e / r - 1, f, rep, sk }'
