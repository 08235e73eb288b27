"""ROC-AUC and average precision of the final score and of each model's own score, from a
`vigil replay --scores` file and its labels (JSON lines with the id and the label field).

    ensemble_auc.py SCORES LABELS [ID_FIELD] [LABEL_FIELD]

Prints one line: final_auc=… final_ap=… <model>_auc=… <model>_ap=… best_member=… best_member_auc=…
Events without a label, and dead-lettered events, are left out.
"""
import json
import sys

from sklearn.metrics import average_precision_score, roc_auc_score


def main():
    scores_path, labels_path = sys.argv[1], sys.argv[2]
    id_field = sys.argv[3] if len(sys.argv) > 3 else "txn_id"
    label_field = sys.argv[4] if len(sys.argv) > 4 else "is_fraud"
    labels = {}
    with open(labels_path) as f:
        for line in f:
            o = json.loads(line)
            labels[str(o[id_field])] = bool(o[label_field])
    y, final, models = [], [], {}
    with open(scores_path) as f:
        for line in f:
            o = json.loads(line)
            if o.get("id") not in labels or "score" not in o:
                continue
            y.append(labels[o["id"]])
            final.append(o["score"])
            for name, s in (o.get("models") or {}).items():
                models.setdefault(name, []).append(s if s is not None else 0.0)
    out = {"final_auc": roc_auc_score(y, final), "final_ap": average_precision_score(y, final)}
    best, best_auc = None, -1.0
    for name, s in models.items():
        auc = roc_auc_score(y, s)
        out[f"{name}_auc"] = auc
        out[f"{name}_ap"] = average_precision_score(y, s)
        if auc > best_auc:
            best, best_auc = name, auc
    print(" ".join(f"{k}={v:.4f}" for k, v in out.items()) + f" best_member={best} best_member_auc={best_auc:.4f}")


if __name__ == "__main__":
    main()
