#!/usr/bin/env bash
# Checks the operator kit under deploy/ offline (scripts/test.sh runs it):
# - the Prometheus rules load (`promtool check rules`) and their unit tests pass
#   (`promtool test rules`: each alert fires on its case and stays silent beside it);
# - the Grafana dashboard is valid JSON with unique panel ids, a data source and a query on every
#   panel, and every `vigil_*` metric that it and the rules name is one the engine exports
#   (Sources/VigilEngine/Admin/MetricsText.swift and EngineMetrics.swift; histograms with their
#   _bucket, _sum and _count);
# - the Kubernetes manifests validate against Kubernetes' schemas (kubernetes-validate, strict), the
#   ServiceMonitor and the KEDA ScaledObject (custom resources, without a schema there) have their
#   required fields, every file a kustomization names exists, the mounted topology validates
#   (`vigil validate`), and the manifests avoid the traps docs/deploy.md lists: an admin endpoint
#   on loopback, probes on another port, a grace period under the shutdown deadline.
set -euo pipefail
VIGIL_STEP=deploy
source "$(dirname "$0")/common.sh"
cd "$VIGIL_ROOT"
PY="$DEPS_VENV/bin/python"
"$PY" -c "import kubernetes_validate, yaml" 2>/dev/null || die "kubernetes-validate is missing: scripts/setup.sh testtools installs it"
command -v promtool >/dev/null || die "promtool is missing: scripts/setup.sh testtools installs Debian's prometheus"

log "promtool check rules and test rules"
promtool check rules deploy/prometheus/vigil-rules.yaml
(cd deploy/prometheus && promtool test rules vigil-rules.test.yaml)

log "the Grafana dashboard and the metric names"
python3 - <<'PY'
import json, re, sys, pathlib

exported = set()
for source in ("MetricsText.swift", "EngineMetrics.swift"):
    text = pathlib.Path("Sources/VigilEngine/Admin", source).read_text()
    exported |= set(re.findall(r'"(vigil_[a-z0-9_]+)"', text))
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

log "the Kubernetes manifests"
K=deploy/kubernetes
[[ -x .build/debug/vigil ]] || swift build --product vigil
.build/debug/vigil validate --topology "$K/base/topology.yaml"
"$DEPS_VENV/bin/kubernetes-validate" --strict --quiet \
  "$K/base/statefulset.yaml" "$K/base/service.yaml" "$K/base/poddisruptionbudget.yaml" "$K/base/secret.yaml"
"$PY" - "$K" <<'PY'
import pathlib, re, sys, yaml

root = pathlib.Path(sys.argv[1])
problems = []
def load(path):
    return yaml.safe_load((root / path).read_text())

# Every resource and generated file a kustomization names exists.
for k in sorted(root.rglob("kustomization.yaml")):
    doc = yaml.safe_load(k.read_text())
    for r in doc.get("resources", []):
        if not (k.parent / r).exists():
            problems.append(f"{k}: resource {r} does not exist")
    for g in doc.get("configMapGenerator", []):
        for f in g.get("files", []):
            if not (k.parent / f.split("=")[-1]).exists():
                problems.append(f"{k}: file {f} does not exist")

# Custom resources: the fields their operators need.
monitor = load("base/servicemonitor.yaml")
if monitor.get("apiVersion") != "monitoring.coreos.com/v1" or not monitor["spec"].get("endpoints"):
    problems.append("servicemonitor.yaml: not a monitoring.coreos.com/v1 ServiceMonitor with endpoints")
scaled = load("overlays/keda/scaledobject.yaml")
trigger = scaled["spec"]["triggers"][0]
if scaled.get("apiVersion") != "keda.sh/v1alpha1" or scaled["spec"]["scaleTargetRef"].get("name") != "vigil":
    problems.append("scaledobject.yaml: not a keda.sh/v1alpha1 ScaledObject of the vigil StatefulSet")
for key in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
    if key not in trigger.get("metadata", {}):
        problems.append(f"scaledobject.yaml: the kafka trigger has no {key}")

# The traps: the probes and Prometheus must reach the admin endpoint, and the kubelet must wait
# out the engine's shutdown deadline.
topology = load("base/topology.yaml")
listen = topology["admin"]["listen"]
host, port = listen.rsplit(":", 1)
if host in ("127.0.0.1", "localhost", "::1"):
    problems.append(f"topology.yaml: admin listens on {listen}, out of the kubelet's and Prometheus' reach")
if scaled["spec"]["triggers"][0]["metadata"]["consumerGroup"] != topology["source"]["kafka"]["group"]:
    problems.append("scaledobject.yaml: consumerGroup is not the topology's source.kafka.group")
sts = load("base/statefulset.yaml")
pod = sts["spec"]["template"]["spec"]
container = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
if ports.get("admin") != int(port):
    problems.append(f"statefulset.yaml: the admin port {ports.get('admin')} is not the topology's {port}")
for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
    if container[probe]["httpGet"]["port"] not in ("admin", int(port)):
        problems.append(f"statefulset.yaml: {probe} is not on the admin port")
args = container["args"]
def seconds(text):
    """A duration as `vigil run` reads it: 500ms, 30s, 10m, 2h, 7d, or a bare number of seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)):
        if text.endswith(suffix) and text[: -len(suffix)].isdigit():
            return int(text[: -len(suffix)]) * scale
    return float(text)
deadline = seconds(str(args[args.index("--shutdown-deadline") + 1])) if "--shutdown-deadline" in args else 60
if pod.get("terminationGracePeriodSeconds", 30) <= deadline:
    problems.append(f"statefulset.yaml: terminationGracePeriodSeconds is not above the shutdown deadline {deadline} s")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print("the manifests validate and avoid the known traps")
PY
