#!/usr/bin/env bash
# Detection quality of the ensemble against its own members and the peers, on several data
# sets, measured in one run:
# - Phishing (River's bundled set, 1,250 rows) and Shuttle (ODDS, 49,097 rows), prequential in
#   file order, labels at once: model-bench's forest and regression and the engine's ensemble of
#   both, with the topology's equal weights and with weights learned from the labels, next to
#   River's LogisticRegression and HalfSpaceTrees (bench/models_peers.py) on the same rows;
# - the generated card stream through the whole engine: `vigil replay` of
#   topologies/card-payments.yaml with its labels, the final score against each model's own
#   score (bench/ensemble_auc.py), next to River's pipeline (bench/river_pipeline.py) on the
#   same events;
# - the same stream with compromised merchants (`vigil generate --merchant-fraud-rate 0.0002`),
#   scored by topologies/card-payments.yaml and by topologies/card-payments-merchants.yaml (with
#   features of the merchant), next to River's pipeline; and the merchant topology on the plain
#   stream, where merchants carry no fraud signal; likewise with device rings
#   (`--device-ring-rate 0.0002`), and with campaigns in one merchant category
#   (`--category-campaign-rate 0.00005`);
# - one-model topologies: each model's final score (its percentile) against its own score, on
#   Phishing and Shuttle (model-bench) and on the generated stream (card-payments.yaml without
#   its regression), and what the warm-up costs (bench/warmup_ranks.py);
# - the cost of merchant-keyed features in ns/event (bench/Sources/keyed-bench): the keyed stage
#   in front of the workers, two hops, and striped shared state.
#
#   bench/quality.sh [EVENTS] [SEED]      (generated events, default 100000; seed default 11)
#
# Ends with RESULT ensemble_auc=… best_member_auc=… river_auc=… (the generated stream's), the
# same for each data set, and stage_ns=… two_hop_ns=… striped_ns=….
set -euo pipefail
VIGIL_STEP=bench
source "$(dirname "$0")/../scripts/common.sh"
EVENTS="${1:-100000}"
SEED="${2:-11}"

source "$(dirname "$0")/lib.sh"
bench_setup
PY="$(bench_python)"
MB="$(bench_build model-bench)"
VIGIL="$(bench_vigil)"
OUT="$VIGIL_ROOT/bench/out/quality"
mkdir -p "$OUT"
"$PY" bench/models_peers.py export "$OUT" >&2

pick() { grep -o " $1=[0-9.,]*" | head -1 | cut -d= -f2; }
# One table row of an engine run (bench/ensemble_auc.py's output) beside River's (or none).
engine_row() {
  local lr=- hst=-
  if [[ -n "${3:-}" ]]; then lr="$(echo "$3" | pick auc_lr)" hst="$(echo "$3" | pick auc_hst)"; fi
  printf '%-10s %8s %8s %8s %8s %8s %9s %9s\n' "$1" "$(echo "$2" | pick iforest_auc)" \
    "$(echo "$2" | pick fraud_lr_auc)" - "$(echo "$2" | pick final_auc)" "$(echo "$2" | pick best_member_auc)" "$lr" "$hst"
}
declare -a RESULT ONE
printf '%-10s %8s %8s %8s %8s %8s %9s %9s\n' data forest lr mean learned best river_lr river_hst
for data in phishing shuttle; do
  ours=" $("$MB" ensemble "$OUT/$data.csv" --scores-out "$OUT/$data-rows.csv")"
  river_lr=" $("$PY" bench/models_peers.py lr "$OUT/$data.csv")"
  river_hst=" $("$PY" bench/models_peers.py forest "$OUT/$data.csv" | grep model=river_hst)"
  printf '%-10s %8s %8s %8s %8s %8s %9s %9s\n' "$data" "$(echo "$ours" | pick forest_auc)" \
    "$(echo "$ours" | pick lr_auc)" "$(echo "$ours" | pick mean_auc)" "$(echo "$ours" | pick learned_auc)" \
    "$(echo "$ours" | pick best_member_auc)" "$(echo "$river_lr" | pick auc)" "$(echo "$river_hst" | pick auc)"
  log "$data: $ours"
  ONE+=("$data: forest $(echo "$ours" | pick forest_auc) final $(echo "$ours" | pick one_model_forest_auc);"
    "lr $(echo "$ours" | pick lr_auc) final $(echo "$ours" | pick one_model_lr_auc);")
  # What the one-model final loses, and where: the warm-up rows mapped by later percentiles.
  log "$data warm-up: $("$PY" bench/warmup_ranks.py "$OUT/$data-rows.csv" | tr '\n' ' ')"
  RESULT+=("${data}_ensemble_auc=$(echo "$ours" | pick learned_auc)"
    "${data}_best_member_auc=$(echo "$ours" | pick best_member_auc)"
    "${data}_river_auc=$(echo "$river_lr" | pick auc)")
done

log "generating $EVENTS events (seed $SEED)"
"$VIGIL" generate --events "$EVENTS" --seed "$SEED" --cards $((EVENTS / 10)) \
  --output "$OUT/events.jsonl" --labels "$OUT/labels.jsonl" >&2
"$VIGIL" replay --topology topologies/card-payments.yaml --input "$OUT/events.jsonl" \
  --labels "$OUT/labels.jsonl" --workers 2 --scores "$OUT/scores.jsonl" >/dev/null
engine=" $("$PY" bench/ensemble_auc.py "$OUT/scores.jsonl" "$OUT/labels.jsonl")"
river=" $("$PY" bench/river_pipeline.py "$OUT/events.jsonl" "$OUT/labels.jsonl" "$EVENTS")"
log "generated: $engine"
log "river: $river"
engine_row generated "$engine" "$river"

# The same stream with compromised merchants, scored with the card topology and with the one
# that adds features of the merchant (topologies/card-payments-merchants.yaml).
log "generating $EVENTS events with compromised merchants (seed $SEED)"
"$VIGIL" generate --events "$EVENTS" --seed "$SEED" --cards $((EVENTS / 10)) --merchant-fraud-rate 0.0002 \
  --output "$OUT/merchants.jsonl" --labels "$OUT/merchant-labels.jsonl" >&2
for topology in card-payments card-payments-merchants; do
  "$VIGIL" replay --topology "topologies/$topology.yaml" --input "$OUT/merchants.jsonl" \
    --labels "$OUT/merchant-labels.jsonl" --workers 2 --scores "$OUT/scores-$topology.jsonl" >/dev/null
  "$VIGIL" replay --topology "topologies/$topology.yaml" --input "$OUT/events.jsonl" \
    --labels "$OUT/labels.jsonl" --workers 2 --scores "$OUT/plain-$topology.jsonl" >/dev/null
done
log "generating $EVENTS events with device rings (seed $SEED)"
"$VIGIL" generate --events "$EVENTS" --seed "$SEED" --cards $((EVENTS / 10)) --device-ring-rate 0.0002 \
  --output "$OUT/devices.jsonl" --labels "$OUT/device-labels.jsonl" >&2
for topology in card-payments card-payments-merchants; do
  "$VIGIL" replay --topology "topologies/$topology.yaml" --input "$OUT/devices.jsonl" \
    --labels "$OUT/device-labels.jsonl" --workers 2 --scores "$OUT/devices-$topology.jsonl" >/dev/null
done
dev_cards=" $("$PY" bench/ensemble_auc.py "$OUT/devices-card-payments.jsonl" "$OUT/device-labels.jsonl")"
dev_merchants=" $("$PY" bench/ensemble_auc.py "$OUT/devices-card-payments-merchants.jsonl" "$OUT/device-labels.jsonl")"
river_d=" $("$PY" bench/river_pipeline.py "$OUT/devices.jsonl" "$OUT/device-labels.jsonl" "$EVENTS")"
log "device stream, card topology: $dev_cards"
log "device stream, merchant topology: $dev_merchants"
log "device stream, river: $river_d"
cards=" $("$PY" bench/ensemble_auc.py "$OUT/scores-card-payments.jsonl" "$OUT/merchant-labels.jsonl")"
merchants=" $("$PY" bench/ensemble_auc.py "$OUT/scores-card-payments-merchants.jsonl" "$OUT/merchant-labels.jsonl")"
plain=" $("$PY" bench/ensemble_auc.py "$OUT/plain-card-payments-merchants.jsonl" "$OUT/labels.jsonl")"
river_m=" $("$PY" bench/river_pipeline.py "$OUT/merchants.jsonl" "$OUT/merchant-labels.jsonl" "$EVENTS")"
log "merchant stream, card topology: $cards"
log "merchant stream, merchant topology: $merchants"
log "plain stream, merchant topology: $plain"
log "merchant stream, river: $river_m"
engine_row merch-card "$cards" "$river_m"
engine_row merch-mer "$merchants"
engine_row plain-mer "$plain"

# Campaigns in one merchant category: only the category's share of the stream sees them.
log "generating $EVENTS events with category campaigns (seed $SEED)"
"$VIGIL" generate --events "$EVENTS" --seed "$SEED" --cards $((EVENTS / 10)) --category-campaign-rate 0.00005 \
  --output "$OUT/campaigns.jsonl" --labels "$OUT/campaign-labels.jsonl" >&2
for topology in card-payments card-payments-merchants; do
  "$VIGIL" replay --topology "topologies/$topology.yaml" --input "$OUT/campaigns.jsonl" \
    --labels "$OUT/campaign-labels.jsonl" --workers 2 --scores "$OUT/campaigns-$topology.jsonl" >/dev/null
done
camp_cards=" $("$PY" bench/ensemble_auc.py "$OUT/campaigns-card-payments.jsonl" "$OUT/campaign-labels.jsonl")"
camp_merchants=" $("$PY" bench/ensemble_auc.py "$OUT/campaigns-card-payments-merchants.jsonl" "$OUT/campaign-labels.jsonl")"
river_c=" $("$PY" bench/river_pipeline.py "$OUT/campaigns.jsonl" "$OUT/campaign-labels.jsonl" "$EVENTS")"
log "campaign stream, card topology: $camp_cards"
log "campaign stream, merchant topology: $camp_merchants"
log "campaign stream, river: $river_c"
engine_row camp-card "$camp_cards" "$river_c"
engine_row camp-mer "$camp_merchants"
RESULT+=("campaign_stream_card_auc=$(echo "$camp_cards" | pick final_auc)"
  "campaign_stream_merchant_auc=$(echo "$camp_merchants" | pick final_auc)"
  "campaign_stream_river_auc=$(echo "$river_c" | pick auc_lr)")

# One model alone: the final score is the model's percentile among its recent scores.
sed '/^  - name: fraud_lr/,/^$/d' topologies/card-payments.yaml >"$OUT/forest-only.yaml"
"$VIGIL" replay --topology "$OUT/forest-only.yaml" --input "$OUT/events.jsonl" --workers 2 \
  --scores "$OUT/forest-only.jsonl" >/dev/null
one=" $("$PY" bench/ensemble_auc.py "$OUT/forest-only.jsonl" "$OUT/labels.jsonl")"
log "generated, forest alone: $one"
ONE+=("generated: forest $(echo "$one" | pick iforest_auc) final $(echo "$one" | pick final_auc)")
echo "one model, its own ROC-AUC and its final score's: ${ONE[*]}"
RESULT+=("one_model_generated_auc=$(echo "$one" | pick iforest_auc)"
  "one_model_generated_final_auc=$(echo "$one" | pick final_auc)")
# The cost of features keyed by the merchant: the stage in front, two hops, striped state.
KB="$(bench_build keyed-bench)"
keyed=" $("$KB" --events 1000000 | tail -1)"
log "keyed features: $keyed"
RESULT+=("stage_ns=$(echo "$keyed" | pick stage_ns)" "two_hop_ns=$(echo "$keyed" | pick two_hop_ns)"
  "striped_ns=$(echo "$keyed" | pick striped_ns)")
engine_row dev-card "$dev_cards" "$river_d"
engine_row dev-mer "$dev_merchants"
RESULT+=("device_stream_card_auc=$(echo "$dev_cards" | pick final_auc)"
  "device_stream_merchant_auc=$(echo "$dev_merchants" | pick final_auc)"
  "device_stream_river_auc=$(echo "$river_d" | pick auc_lr)")
RESULT+=("merchant_stream_card_auc=$(echo "$cards" | pick final_auc)"
  "merchant_stream_merchant_auc=$(echo "$merchants" | pick final_auc)"
  "merchant_stream_river_auc=$(echo "$river_m" | pick auc_lr)"
  "plain_stream_merchant_auc=$(echo "$plain" | pick final_auc)")
echo
echo "$(machine_line)"
echo "RESULT ensemble_auc=$(echo "$engine" | pick final_auc) best_member_auc=$(echo "$engine" | pick best_member_auc)" \
  "river_auc=$(echo "$river" | pick auc_lr) ${RESULT[*]}"
