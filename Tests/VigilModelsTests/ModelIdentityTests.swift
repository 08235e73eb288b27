import Testing
import VigilCore
import VigilModels
import VigilTestKit

/// Model versions are part of every alert id and name every model in a checkpoint: they must
/// change when the model changes and never otherwise.
@Suite(.ownThread) struct ModelIdentityTests {
    static let forest = ModelSpec(
        name: "iforest", seed: 7, kind: .isolationForest(IsolationForestSpec(trees: 100, sample: 256)))
    static let regression = ModelSpec(
        name: "fraud_lr",
        kind: .logisticRegression(
            LogisticRegressionSpec(
                learningRate: 0.2, l1: 0.0001, l2: 0.001, positiveWeight: 50,
                labels: LabelSource(topic: "payments-labels", key: "txn_id", field: "is_fraud"))))
    static let plan: UInt64 = 0x0123_4567_89AB_CDEF

    /// Golden: a change here changes every alert id of every deployment. Only a deliberate
    /// format change may update it, together with a migration of the old versions.
    @Test func versionsArePinned() {
        #expect(Self.forest.version(planSignature: Self.plan) == "iforest@e4f3907f")
        #expect(Self.regression.version(planSignature: Self.plan) == "fraud_lr@a8b3dc69")
    }

    @Test func roleWeightAndShareDoNotChangeTheVersion() {
        var promoted = Self.forest
        promoted.role = .canary
        promoted.canaryShare = 0.1
        promoted.weight = 3
        #expect(promoted.version(planSignature: Self.plan) == Self.forest.version(planSignature: Self.plan))
        var shadow = Self.regression
        shadow.role = .shadow
        #expect(shadow.version(planSignature: Self.plan) == Self.regression.version(planSignature: Self.plan))
    }

    @Test(arguments: 0..<13)
    func everythingElseChangesTheVersion(change: Int) {
        var forest = Self.forest
        var regression = Self.regression
        var plan = Self.plan
        var f = IsolationForestSpec(trees: 100, sample: 256)
        var lr = LogisticRegressionSpec(
            learningRate: 0.2, l1: 0.0001, l2: 0.001, positiveWeight: 50,
            labels: LabelSource(topic: "payments-labels", key: "txn_id", field: "is_fraud"))
        switch change {
        case 0: forest.name = "iforest2"
        case 1: forest.seed = 8
        case 2: forest.features = ["amount"]
        case 3: f.trees = 99
        case 4: f.sample = 128
        case 5: f.windowEvents = 5000
        case 6: forest.kind = .countingIsolationForest(f)
        case 7: plan += 1
        case 8: lr.optimizer = .adagrad
        case 9: lr.learningRate = 0.1
        case 10: lr.positiveWeight = 10
        case 11: lr.labels.field = "label"
        default: lr.labels.expire = .seconds(7200)
        }
        if (3...5).contains(change) { forest.kind = .isolationForest(f) }
        if change >= 8 { regression.kind = .logisticRegression(lr) }
        let before = [Self.forest.version(planSignature: Self.plan), Self.regression.version(planSignature: Self.plan)]
        let after = [forest.version(planSignature: plan), regression.version(planSignature: plan)]
        #expect(before != after, "change \(change) kept both versions")
        #expect(after.allSatisfy { $0.hasPrefix("iforest") || $0.hasPrefix("fraud_lr") })
    }

    @Test func theCanonicalEncodingNamesEveryField() {
        let text = String(
            decoding: Self.regression.canonicalEncoding.filter { (0x20..<0x7F).contains($0) }, as: UTF8.self)
        for field in [
            "vigil.model", "name", "features", "seed", "kind", "logistic_regression", "optimizer", "learning_rate",
            "l1",
            "l2", "positive_weight", "labels.topic", "labels.key", "labels.field", "labels.expire",
        ] {
            #expect(text.contains(field), "\(field) is not in the encoding")
        }
    }

    /// The legacy versions reproduce what format-1 checkpoints recorded (the fixture's values,
    /// also checked against the fixture file itself in VigilEngineTests).
    @Test func legacyVersionsAreThoseOfTheReleaseBefore() {
        #expect(Self.forest.legacyVersion(planSignature: Self.plan) == "iforest@2d6b6b4c")
        #expect(Self.regression.legacyVersion(planSignature: Self.plan) == "fraud_lr@e20111bb")
        var counting = Self.forest
        counting.kind = .countingIsolationForest(IsolationForestSpec())
        #expect(counting.legacyVersion(planSignature: Self.plan) == nil)
    }
}
