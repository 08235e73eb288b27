import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct ModelSpecTests {
    func decode(_ list: [ConfigNode], features: [String] = ["a", "b"]) -> ([ModelSpec], [String]) {
        let d = ConfigDiagnostics()
        let items = list.enumerated().map { (node: $1, path: ConfigPath.root.key("models").index($0)) }
        return (ModelSpec.decodeList(items, features: features, d), d.issues.map(\.description))
    }

    @Test func decodesBothKindsWithDefaults() {
        let (models, issues) = decode([
            ["name": "f", "kind": "isolation_forest"],
            [
                "name": "lr", "kind": "logistic_regression", "role": "canary", "share": 0.2, "features": ["b"],
                "labels": ["topic": "lab"],
            ],
        ])
        #expect(issues == [])
        #expect(models[0] == ModelSpec(name: "f", kind: .isolationForest(IsolationForestSpec())))
        #expect(models[0].kind == .isolationForest(IsolationForestSpec(trees: 100, sample: 256, windowEvents: 2560)))
        #expect(models[1].role == .canary && models[1].canaryShare == 0.2 && models[1].features == ["b"])
        #expect(models[1].kind.labels == LabelSource(topic: "lab", key: "id", field: "label", expire: .seconds(3600)))
    }

    @Test func theCountingForestIsAKindOfItsOwnWithTheForestsKeys() {
        let (models, issues) = decode([
            ["name": "c", "kind": "counting_isolation_forest", "trees": 50, "sample": 128, "window_events": 4096]
        ])
        #expect(issues == [])
        #expect(
            models.first?.kind
                == .countingIsolationForest(IsolationForestSpec(trees: 50, sample: 128, windowEvents: 4096)))
        #expect(models.first?.kind.tag.rawValue == "counting_isolation_forest")
    }

    @Test func reportsKindsRangesRolesAndReferences() {
        let (models, issues) = decode([
            ["name": "f", "kind": "isolation_forrest"],
            ["name": "f", "kind": "isolation_forest", "trees": 0, "sample": 64, "window_events": 32, "share": 0.5],
            ["name": "c", "kind": "isolation_forest", "role": "canary", "features": ["a", "zz"]],
            [
                "name": "lr", "kind": "logistic_regression", "learning_rate": 0, "labels": ["topic": "bad topic"],
                "trees": 3,
            ],
        ])
        #expect(models.isEmpty)
        #expect(
            issues == [
                "models[0].kind: unknown model kind 'isolation_forrest'; did you mean 'isolation_forest'?",
                "models[1].name: duplicate model name 'f'",
                "models[1].share: applies only to role canary",
                "models[1].trees: must be between 1 and 1000, got 0",
                "models[1].window_events: must be ≥ sample (64), got 32",
                "models[2].share: required key is missing",
                "models[2].features[1]: unknown feature 'zz'; expected a declared feature: a, b",
                "models[3].learning_rate: must be > 0 and ≤ 10, got 0",
                "models[3].labels.topic: 'bad topic' is not a legal Kafka topic name: use 1 to 249 of A-Z a-z 0-9 . _ -",
                "models[3].trees: unknown key for kind logistic_regression; expected one of: name, role, weight, share, features, seed, init, replaces, group, kind, optimizer, learning_rate, l1, l2, positive_weight, labels",
            ])
    }

    @Test func thresholdModesRequireTheirKeys() {
        let d = ConfigDiagnostics()
        let node: ConfigNode = [
            "mode": "precision", "score": 0.5, "min_score": 0.9, "max_score": 0.5, "suppress": "10m",
        ]
        let o = ConfigObject(node, at: ConfigPath.root.key("threshold"), diagnostics: d)!
        let spec = ThresholdSpec.decode(o, hasLabels: false)
        #expect(spec.suppress == .seconds(600))
        #expect(
            d.issues.map(\.description) == [
                "threshold.target_precision: required key is missing",
                "threshold.mode: mode precision needs a model that learns from labels",
                "threshold.score: applies only to mode fixed",
                "threshold.max_score: must be ≥ min_score (0.9), got 0.5",
            ])
    }

    @Test func thresholdDefaults() {
        let d = ConfigDiagnostics()
        let spec = ThresholdSpec.decode(ConfigObject([:], at: .root, diagnostics: d)!, hasLabels: false)
        #expect(d.isEmpty)
        #expect(spec == ThresholdSpec())
        #expect(spec.mode == .quantile && spec.targetAlertRate == 0.01 && spec.protect)
    }
}
