import VigilCore

/// An A/B experiment (`experiment:`): entities are split by a hash of their key into arms, and
/// in each arm only that arm's models count in the ensemble (models in no arm count in all).
/// Each alert names its arm, and the figures are kept per arm.
public struct ExperimentSpec: Sendable, Hashable {
    /// One arm.
    public struct Arm: Sendable, Hashable {
        /// Key `name` (required, unique).
        public var name: String
        /// Active models that count only for this arm's entities. Key `models` (required).
        public var models: [String]
        /// Share of entities. Key `share` (required, 0 < x ≤ 1; the shares add up to 1).
        public var share: Double
    }

    /// Key `name` (required): alerts and metrics carry it.
    public var name: String
    /// Key `arms` (required, at least two).
    public var arms: [Arm]

    /// Mixed into every entity key's hash: the experiment's name, so the split is independent of
    /// the canary split and of other experiments. Computed once per worker, not per event.
    public var salt: UInt64 { StableHash.hash(name) }

    /// The arm of an entity key (`salt` is this experiment's).
    public func arm(of key: UInt64, salt: UInt64) -> Int {
        let mixed = (key ^ salt) &* 0x9E37_79B9_7F4A_7C15
        let u = Double(mixed >> 11) * 0x1p-53
        var edge = 0.0
        for (i, a) in arms.enumerated() {
            edge += a.share
            if u < edge { return i }
        }
        return arms.count - 1
    }

    static func decode(_ o: ConfigObject, active: [String]) -> ExperimentSpec? {
        let name = o.string("name", required: true)
        var arms: [Arm] = []
        var used: Set<String> = []
        for (node, path) in o.list("arms", required: true) ?? [] {
            guard let a = ConfigObject(node, at: path, diagnostics: o.diagnostics) else { continue }
            let armName = a.string("name", required: true)
            let models = a.strings("models", required: true) ?? []
            let share = a.double("share", in: NumberRange(0, 1, lowerOpen: true), required: true)
            for m in models {
                if !active.contains(m) { a.report("models", "'\(m)' is not a model with role active") }
                if !used.insert(m).inserted { a.report("models", "'\(m)' is in two arms") }
            }
            if models.isEmpty { a.report("models", "an arm needs at least one model") }
            if let armName, arms.contains(where: { $0.name == armName }) {
                a.report("name", "duplicate arm name '\(armName)'")
            }
            a.finish()
            if let armName, let share { arms.append(Arm(name: armName, models: models, share: share)) }
        }
        if arms.count < 2 { o.report("arms", "an experiment needs at least two arms") }
        let total = arms.map(\.share).reduce(0, +)
        if arms.count >= 2, abs(total - 1) > 1e-9 { o.report("arms", "the shares add up to \(total), not 1") }
        o.finish()
        guard let name else { return nil }
        return ExperimentSpec(name: name, arms: arms)
    }
}
