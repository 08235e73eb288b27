import VigilCore

extension ModelSpec {
    /// Everything that changes what the model computes, as a `CanonicalEncoder` encoding. Role,
    /// weight and canary share are left out: they change how a model's scores are used, not the
    /// model, so a promotion keeps its version.
    public var canonicalEncoding: [UInt8] { canonical.bytes }

    private var canonical: CanonicalEncoder {
        var e = CanonicalEncoder(kind: "vigil.model", version: 1)
        e.field("name", name)
        e.field("features", features)
        e.field("seed", seed)
        e.field("kind", kind.tag.rawValue)
        switch kind {
        case .isolationForest(let f), .countingIsolationForest(let f):
            e.field("trees", f.trees)
            e.field("sample", f.sample)
            e.field("window_events", f.windowEvents)
        case .logisticRegression(let lr):
            e.field("optimizer", lr.optimizer.rawValue)
            e.field("learning_rate", lr.learningRate)
            e.field("l1", lr.l1)
            e.field("l2", lr.l2)
            e.field("positive_weight", lr.positiveWeight)
            e.field("labels.topic", lr.labels.topic)
            e.field("labels.key", lr.labels.key)
            e.field("labels.field", lr.labels.field)
            e.field("labels.expire", lr.labels.expire)
        }
        // Only when present, so the versions of models without one are unchanged.
        if let initial { e.field("init", initial.digest) }
        return e
    }

    /// The model's version, `name@` and 8 hex digits: the hash of its canonical encoding and
    /// the signature of the feature plan it reads. A changed model, or the same model reading
    /// changed features, gets a new version (and new alert ids); a renamed Swift property or a
    /// new toolchain does not.
    public func version(planSignature: UInt64) -> String {
        var e = canonical
        e.field("plan", planSignature)
        return name + "@" + StableHash.hex(e.hash).prefix(8)
    }
}
