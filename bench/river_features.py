"""The feature benchmark's peer: the same 8 features as bench/topologies/features-8.yaml, computed
per card with River (https://riverml.xyz), the online-learning library a Python team would use.

  python bench/river_features.py EVENTS.csv WARM      (CSV written by feature-bench --csv)

The first WARM rows create the entities (untimed, like feature-bench's warm-up); the rest are
timed. River has no windowed distinct count or novelty, so those two use plain Python dicts, as a
River user would write them. Prints one line of key=value results.
"""
import csv
import datetime as dt
import math
import resource
import sys
import time
import warnings
from collections import defaultdict, deque

from river import feature_extraction as fx
from river import stats, utils

warnings.filterwarnings("ignore", category=DeprecationWarning)


class Features:
    def __init__(self):
        ten_min, hour = dt.timedelta(minutes=10), dt.timedelta(hours=1)
        self.count_10m = fx.Agg(on="one", by="card_id", how=utils.TimeRolling(stats.Sum, period=ten_min))
        self.sum_1h = fx.Agg(on="amount", by="card_id", how=utils.TimeRolling(stats.Sum, period=hour))
        self.mean_1h = fx.Agg(on="amount", by="card_id", how=utils.TimeRolling(stats.Mean, period=hour))
        # River's exponentially weighted statistics fade per event rather than per unit of time.
        self.ew_mean = fx.Agg(on="amount", by="card_id", how=stats.EWMean(fading_factor=0.05))
        self.ew_var = fx.Agg(on="amount", by="card_id", how=stats.EWVar(fading_factor=0.05))
        self.merchants = defaultdict(deque)  # card -> (time, merchant) within the last hour
        self.countries = defaultdict(set)
        self.last_seen = {}
        self.hour = hour

    def one(self, x, t):
        card = x["card_id"]
        mean = self.ew_mean.transform_one(x)["amount_ewm_0.05_by_card_id"]
        var = self.ew_var.transform_one(x)["amount_ewv_0.05_by_card_id"]
        for agg in (self.count_10m, self.sum_1h, self.mean_1h):
            agg.learn_one(x, t=t)
        self.ew_mean.learn_one(x)
        self.ew_var.learn_one(x)
        seen = self.merchants[card]
        seen.append((t, x["merchant_id"]))
        while seen and seen[0][0] <= t - self.hour:
            seen.popleft()
        countries = self.countries[card]
        new_country = x["country"] not in countries
        countries.add(x["country"])
        previous = self.last_seen.get(card)
        self.last_seen[card] = t
        return {
            "amount": math.log1p(min(max(x["amount"], 0.0), 100000.0)),
            **self.count_10m.transform_one(x),
            **self.sum_1h.transform_one(x),
            **self.mean_1h.transform_one(x),
            "amount_z": (x["amount"] - mean) / math.sqrt(var) if var > 0 else 0.0,
            "merchants_1h": len({m for _, m in seen}),
            "new_country": 1.0 if new_country else 0.0,
            "since_last": (t - previous).total_seconds() if previous else float("nan"),
        }


def main():
    path, warm = sys.argv[1], int(sys.argv[2])
    rows = []
    epoch = dt.datetime(1970, 1, 1)
    with open(path) as f:
        for r in csv.DictReader(f):
            rows.append((
                {"card_id": r["key"], "amount": float(r["amount"]), "merchant_id": r["merchant_id"],
                 "country": r["country"], "one": 1.0},
                epoch + dt.timedelta(milliseconds=int(r["ts"])),
            ))
    features = Features()
    for x, t in rows[:warm]:
        features.one(x, t)
    timed = rows[warm:]
    start = time.perf_counter_ns()
    checksum = 0.0
    for x, t in timed:
        checksum += features.one(x, t)["amount"]
    elapsed = time.perf_counter_ns() - start
    ns = elapsed / max(1, len(timed))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"river entities={len(features.last_seen)} events={len(timed)} ns_per_event={ns:.1f} "
          f"events_per_s={1e9 / ns:.0f} peak_rss_mib={rss} checksum={checksum:.1f}")


if __name__ == "__main__":
    main()
