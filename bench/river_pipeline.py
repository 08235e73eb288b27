"""The pipeline benchmark's peer: what a Python team would run instead of `vigil replay` on the
same JSON-lines events: json.loads per event, the card features of bench/river_features.py
(River's Agg with TimeRolling, plus dicts where River has no windowed distinct or novelty), a
River HalfSpaceTrees behind a MinMaxScaler scoring and learning every event, a River
LogisticRegression behind a StandardScaler scoring every event and learning each label once the
stream has passed its time (as vigil replay delivers labels), and a threshold on the mean score.
After the timed loop, it reports each model's prequential ROC-AUC over the labelled events.

  python bench/river_pipeline.py EVENTS.jsonl LABELS.jsonl N     (first N events, timed whole)

Prints one line of key=value results.
"""
import datetime as dt
import json
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from river import anomaly, linear_model, optim, preprocessing  # noqa: E402
from river_features import Features  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning)


def main():
    events_path, labels_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(events_path, "rb") as f:
        lines = [next(f) for _ in range(n)]
    labels = []
    with open(labels_path) as f:
        for line in f:
            o = json.loads(line)
            labels.append((o["ts"], o["txn_id"], bool(o["is_fraud"])))
    labels.sort()
    epoch = dt.datetime(1970, 1, 1)
    features = Features()
    forest = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    lr = preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
    waiting = {}
    next_label = 0
    alerts = 0
    scores_lr, scores_hst, ids = [], [], []
    start = time.perf_counter_ns()
    for line in lines:
        e = json.loads(line)
        t = epoch + dt.timedelta(milliseconds=e["ts"])
        x = features.one({"card_id": e["card_id"], "amount": float(e["amount"]), "merchant_id": e["merchant_id"],
                          "country": e["country"], "one": 1.0}, t)
        x = {k: (0.0 if v != v else v) for k, v in x.items()}  # NaN (no previous event) as 0
        s_forest = forest.score_one(x)
        forest.learn_one(x)
        s_lr = lr.predict_proba_one(x).get(True, 0.0)
        scores_lr.append(s_lr)
        scores_hst.append(s_forest)
        ids.append(e["txn_id"])
        if (s_forest + s_lr) / 2 > 0.9:
            alerts += 1
        waiting[e["txn_id"]] = x
        while next_label < len(labels) and labels[next_label][0] <= e["ts"]:
            _, txn, y = labels[next_label]
            next_label += 1
            row = waiting.pop(txn, None)
            if row is not None:
                lr.learn_one(row, y)
    elapsed = time.perf_counter_ns() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    truth = {txn: y for _, txn, y in labels}
    known = [i for i, txn in enumerate(ids) if txn in truth]
    y = [truth[ids[i]] for i in known]
    quality = ""
    if any(y) and not all(y):
        from sklearn.metrics import roc_auc_score
        quality = (f" auc_lr={roc_auc_score(y, [scores_lr[i] for i in known]):.4f}"
                   f" auc_hst={roc_auc_score(y, [scores_hst[i] for i in known]):.4f}")
    print(f"river events={n} seconds={elapsed / 1e9:.2f} events_per_s={n / (elapsed / 1e9):.0f} "
          f"ns_per_event={elapsed / n:.0f} alerts={alerts} peak_rss_mib={rss}{quality}")


if __name__ == "__main__":
    main()
