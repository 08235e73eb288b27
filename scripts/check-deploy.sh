#!/usr/bin/env bash
# Checks the operator kit under deploy/ offline (scripts/test.sh runs it):
# - the Prometheus rules load (`promtool check rules`) and their unit tests pass
#   (`promtool test rules`: each alert fires on its case and stays silent beside it);
# - the Grafana dashboard is valid JSON with unique panel ids, a data source and a query on every
#   panel, and every `vigil_*` metric that it and the rules name is one the engine exports
#   (Sources/VigilEngine/Admin/MetricsText.swift; histograms with their _bucket, _sum and _count).
set -euo pipefail
VIGIL_STEP=deploy
source "$(dirname "$0")/common.sh"
cd "$VIGIL_ROOT"
command -v promtool >/dev/null || die "promtool is missing: scripts/setup.sh testtools installs Debian's prometheus"

log "promtool check rules and test rules"
promtool check rules deploy/prometheus/vigil-rules.yaml
(cd deploy/prometheus && promtool test rules vigil-rules.test.yaml)

log "the Grafana dashboard and the metric names"
python3 - <<'PY'
import json, re, sys, pathlib

exported = set(re.findall(r'"(vigil_[a-z0-9_]+)"', pathlib.Path("Sources/VigilEngine/Admin/MetricsText.swift").read_text()))
histograms = {"vigil_score", "vigil_stage_seconds"}
known = exported | {h + s for h in histograms for s in ("_bucket", "_sum", "_count")}
problems = []

dashboard = json.loads(pathlib.Path("deploy/grafana/vigil.json").read_text())
ids = [p["id"] for p in dashboard["panels"]]
if len(ids) != len(set(ids)):
    problems.append("duplicate panel ids")
exprs = []
for p in dashboard["panels"]:
    if p["type"] == "row":
        continue
    if "datasource" not in p or not p.get("targets"):
        problems.append(f"panel {p['title']!r}: no data source or no query")
    for t in p.get("targets", []):
        exprs.append((f"dashboard panel {p['title']!r}", t["expr"]))
rules = pathlib.Path("deploy/prometheus/vigil-rules.yaml").read_text()
exprs.append(("deploy/prometheus/vigil-rules.yaml", rules))
for where, text in exprs:
    for name in re.findall(r"(?<![:a-z_])(vigil_[a-z0-9_]+)", text):
        if name not in known:
            problems.append(f"{where}: {name} is not a metric the engine exports")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"{len(exprs) - 1} dashboard queries and the rules name only exported metrics")
PY
