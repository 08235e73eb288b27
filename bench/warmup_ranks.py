"""Where a one-model final score loses rank against the model's own score: ROC-AUC of each
model's own score, of its final score (its percentile, from `model-bench ensemble --scores-out`),
of the final score with the warm-up rows mapped by the percentiles of the rows after the
warm-up instead (which no online engine can know), and of both scores after the warm-up only.

    warmup_ranks.py SCORES_CSV [WARMUP_ROWS]

Prints one line per model: model=… own_auc=… final_auc=… final_auc_later_map=…
own_auc_after_warmup=… final_auc_after_warmup=…
"""
import sys

import numpy as np
from sklearn.metrics import roc_auc_score


def main():
    rows = np.genfromtxt(sys.argv[1], delimiter=",", names=True)
    warmup = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    y = rows["label"]
    warmup = min(warmup, len(y) - 1)
    for model in ("forest", "lr"):
        own, final = rows[model], rows[model + "_final"]
        later = np.sort(own[warmup:])
        mapped = final.copy()
        mapped[:warmup] = np.searchsorted(later, own[:warmup]) / len(later)
        print(
            f"model={model} own_auc={roc_auc_score(y, own):.4f} final_auc={roc_auc_score(y, final):.4f}"
            f" final_auc_later_map={roc_auc_score(y, mapped):.4f}"
            f" own_auc_after_warmup={roc_auc_score(y[warmup:], own[warmup:]):.4f}"
            f" final_auc_after_warmup={roc_auc_score(y[warmup:], final[warmup:]):.4f}"
        )


if __name__ == "__main__":
    main()
