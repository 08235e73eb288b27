import VigilCore

/// How the ensemble combines the models (`ensemble:`): with weights learned from the labels, or
/// with the topology's `weight`s as written, for a team that wants the combination fixed.
public struct EnsembleSpec: Sendable, Hashable {
    /// Where the ensemble's weights come from.
    public enum Weights: String, Sendable, Hashable, CaseIterable {
        /// Learned from the joined labels (with labels and two models or more; docs/models.md).
        case learned
        /// The models' `weight`s, always.
        case fixed
    }

    /// Key `weights` (default `learned`).
    public var weights: Weights = .learned

    public init(weights: Weights = .learned) {
        self.weights = weights
    }

    static func decode(_ o: ConfigObject) -> EnsembleSpec {
        var spec = EnsembleSpec()
        if let w = o.choice("weights", as: Weights.self, noun: "ensemble weights") { spec.weights = w }
        o.finish()
        return spec
    }
}
