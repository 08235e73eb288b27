import VigilCore

extension ModelSpec {
    /// The version that checkpoints of format 1 (releases up to December 2026) give this model:
    /// the hash of the model's description as Swift printed it, then `|` and the plan
    /// signature. Kept, frozen, only so that those checkpoints restore warm after an upgrade;
    /// nil for kinds that did not exist then.
    ///
    /// The text is rebuilt here field by field instead of asking Swift to print the spec, so a
    /// later change to `ModelSpec` cannot change it.
    public func legacyVersion(planSignature: UInt64) -> String? {
        let kindText: String
        switch kind {
        case .isolationForest(let f):
            kindText =
                "VigilModels.ModelSpec.Kind.isolationForest(VigilModels.IsolationForestSpec(trees: \(f.trees), sample: \(f.sample), windowEvents: \(f.windowEvents)))"
        case .countingIsolationForest:
            return nil
        case .logisticRegression(let lr):
            let labels =
                "VigilModels.LabelSource(topic: \(lr.labels.topic.debugDescription), key: \(lr.labels.key.debugDescription), field: \(lr.labels.field.debugDescription), expire: \(lr.labels.expire))"
            kindText =
                "VigilModels.ModelSpec.Kind.logisticRegression(VigilModels.LogisticRegressionSpec(optimizer: VigilModels.LogisticRegressionSpec.Optimizer.\(lr.optimizer.rawValue), learningRate: \(lr.learningRate), l1: \(lr.l1), l2: \(lr.l2), positiveWeight: \(lr.positiveWeight), labels: \(labels)))"
        }
        let featuresText = features.map { "Optional([\($0.map(\.debugDescription).joined(separator: ", "))])" } ?? "nil"
        let text =
            "ModelSpec(name: \(name.debugDescription), role: VigilModels.ModelSpec.Role.active, weight: 1.0, canaryShare: nil, features: \(featuresText), seed: \(seed), kind: \(kindText))"
        return name + "@" + StableHash.hex(StableHash.hash("\(text)|\(planSignature)")).prefix(8)
    }
}
