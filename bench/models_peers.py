"""The model benchmark's peers, on the same rows as Vigil's model-bench, in the same run.

  python bench/models_peers.py export OUTDIR
      Writes River's bundled labelled datasets as plain CSV (features..., label):
      shuttle.csv (Statlog Shuttle, ODDS anomaly version: 49,097 rows, 7 % anomalies) and
      phishing.csv (1,250 web pages, 45 % phishing).
  python bench/models_peers.py forest CSV
      Anomaly detectors, prequential (score, then learn) in file order:
      River HalfSpaceTrees behind a MinMaxScaler, as River's documentation pairs them; then
      scikit-learn's IsolationForest fit on all rows (batch, it sees the future: the upper bound).
  python bench/models_peers.py lr CSV
      River's LogisticRegression behind a StandardScaler, prequential.

Each prints lines of key=value: model, auc, ap, score_ns, learn_ns, events.
"""
import csv
import gzip
import os
import sys
import time

import numpy as np
from river import anomaly, linear_model, optim, preprocessing
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score


def read(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    names = header[:-1]
    xs = [{n: float(v) for n, v in zip(names, r[:-1])} for r in rows]
    ys = [r[-1] in ("1", "1.0", "true", "True") for r in rows]
    return names, xs, ys


def export(outdir):
    import river.datasets as d

    base = os.path.dirname(d.__file__)
    os.makedirs(outdir, exist_ok=True)
    for name, label in (("shuttle", "anomaly"), ("phishing", "is_phishing")):
        with gzip.open(os.path.join(base, f"{name}.csv.gz"), "rt") as f:
            rows = list(csv.DictReader(f))
        features = [k for k in rows[0] if k != label]
        with open(os.path.join(outdir, f"{name}.csv"), "w", newline="") as out:
            w = csv.writer(out)
            w.writerow(features + ["label"])
            for r in rows:
                w.writerow([r[k] for k in features] + [1 if r[label] in ("1", "True", "true") else 0])
        print(f"exported {name}: {len(rows)} rows, {len(features)} features")


def report(model, ys, scores, score_ns, learn_ns):
    print(f"model={model} events={len(ys)} auc={roc_auc_score(ys, scores):.4f} "
          f"ap={average_precision_score(ys, scores):.4f} score_ns={score_ns:.0f} learn_ns={learn_ns:.0f}")


def forest(path):
    names, xs, ys = read(path)
    model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42)
    scores, score_t, learn_t = [], 0, 0
    for x in xs:
        t0 = time.perf_counter_ns()
        scores.append(model.score_one(x))
        t1 = time.perf_counter_ns()
        model.learn_one(x)
        learn_t += time.perf_counter_ns() - t1
        score_t += t1 - t0
    report("river_hst", ys, scores, score_t / len(xs), learn_t / len(xs))

    X = np.array([[x[n] for n in names] for x in xs])
    t0 = time.perf_counter_ns()
    iforest = IsolationForest(n_estimators=100, max_samples=256, random_state=42).fit(X)
    t1 = time.perf_counter_ns()
    s = -iforest.score_samples(X)  # higher = more anomalous
    t2 = time.perf_counter_ns()
    report("sklearn_iforest_batch", ys, list(s), (t2 - t1) / len(xs), (t1 - t0) / len(xs))


def lr(path):
    names, xs, ys = read(path)
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(0.05))
    scores, score_t, learn_t = [], 0, 0
    for x, y in zip(xs, ys):
        t0 = time.perf_counter_ns()
        scores.append(model.predict_proba_one(x).get(True, 0.0))
        t1 = time.perf_counter_ns()
        model.learn_one(x, y)
        learn_t += time.perf_counter_ns() - t1
        score_t += t1 - t0
    report("river_lr", ys, scores, score_t / len(xs), learn_t / len(xs))


if __name__ == "__main__":
    command, arg = sys.argv[1], sys.argv[2]
    {"export": export, "forest": forest, "lr": lr}[command](arg)
