#!/usr/bin/env python3
"""Exports a fitted scikit-learn model to the JSON a Vigil model entry starts from (`init: FILE`).

    python scripts/export_sklearn.py MODEL.joblib --columns amount,since_last -o model.json

MODEL is a joblib or pickle file of a fitted
  - sklearn.ensemble.IsolationForest, or
  - sklearn.linear_model.LogisticRegression (binary), or a Pipeline of a StandardScaler and one.
The columns name, in the model's input order, the topology features each input column is; by
default the model's `feature_names_in_` (when it was fitted on a DataFrame). The format is
documented in docs/models.md ("Starting from scikit-learn"). Only the fitted parameters are
written, never training data.
"""
import argparse
import json
import pickle
import sys

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def load(path):
    try:
        import joblib
        return joblib.load(path)
    except Exception:
        with open(path, "rb") as f:
            return pickle.load(f)


def forest(model):
    trees = []
    for tree, features in zip(model.estimators_, model.estimators_features_):
        t = tree.tree_
        # A tree of a forest with max_features < 1 sees a subset of the columns: map them back.
        feature = [int(features[f]) if f >= 0 else -1 for f in t.feature]
        trees.append({
            "feature": feature,
            "threshold": [float(x) for x in t.threshold],
            "left": [int(x) for x in t.children_left],
            "right": [int(x) for x in t.children_right],
            "samples": [int(x) for x in t.n_node_samples],
        })
    return {"max_samples": int(model.max_samples_), "trees": trees}


def regression(model, scaler):
    if model.coef_.shape[0] != 1:
        sys.exit("export_sklearn: only a binary LogisticRegression can be exported")
    weight = 1.0
    cw = model.class_weight
    if isinstance(cw, dict):
        weight = float(cw.get(1, cw.get(True, 1.0))) / float(cw.get(0, cw.get(False, 1.0)))
    elif cw is not None:
        sys.exit("export_sklearn: class_weight='balanced' cannot be exported; give the weights as a dict")
    out = {"coefficients": [float(x) for x in model.coef_[0]], "intercept": float(model.intercept_[0]),
           "positive_weight": weight}
    if scaler is not None:
        if not (scaler.with_mean and scaler.with_std):
            sys.exit("export_sklearn: the StandardScaler must centre and scale")
        out["scaler"] = {"mean": [float(x) for x in scaler.mean_], "variance": [float(x) for x in scaler.var_],
                         "samples": int(np.max(scaler.n_samples_seen_))}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--columns", help="comma-separated feature names, in the model's input order")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    model = load(args.model)
    scaler = None
    if isinstance(model, Pipeline):
        steps = [s for _, s in model.steps if s != "passthrough" and s is not None]
        if len(steps) == 2 and isinstance(steps[0], StandardScaler) and isinstance(steps[1], LogisticRegression):
            scaler, model = steps
        elif len(steps) == 1:
            model = steps[0]
        else:
            sys.exit("export_sklearn: a Pipeline must be a StandardScaler then a LogisticRegression")
    names = args.columns.split(",") if args.columns else list(getattr(model, "feature_names_in_", []) or
                                                               getattr(scaler, "feature_names_in_", []))
    if not names:
        sys.exit("export_sklearn: give --columns (the model was not fitted on named columns)")
    if len(names) != model.n_features_in_:
        sys.exit(f"export_sklearn: {len(names)} column names for a model of {model.n_features_in_} inputs")
    doc = {"format": "vigil.sklearn", "version": 1, "sklearn_version": sklearn.__version__, "columns": names}
    if isinstance(model, IsolationForest):
        doc["kind"] = "isolation_forest"
        doc["isolation_forest"] = forest(model)
    elif isinstance(model, LogisticRegression):
        doc["kind"] = "logistic_regression"
        doc["logistic_regression"] = regression(model, scaler)
    else:
        sys.exit(f"export_sklearn: cannot export a {type(model).__name__}")
    with open(args.output, "w") as f:
        json.dump(doc, f)


if __name__ == "__main__":
    main()
