/// Combines the active models' scores into one. Each score is first put on a common scale:
/// its percentile among that model's recent scores. A forest's 0.62 and a regression's 0.004
/// then mean the same thing ("higher than 99 % of recent events"). The percentiles are then
/// averaged with the models' weights.
public struct Ensemble: Sendable {
    /// Weight of each model (topology `weight`); a model with weight 0 is scored but not counted.
    public private(set) var weights: [Double]
    private var recent: [DecayedHistogram]

    /// - Parameter halfLifeEvents: how long a model's score distribution is remembered.
    public init(weights: [Double], halfLifeEvents: Double = 50_000) {
        precondition(!weights.isEmpty && weights.allSatisfy { $0 >= 0 })
        self.weights = weights
        recent = weights.map { _ in DecayedHistogram(halfLifeEvents: halfLifeEvents) }
    }

    /// New weights from a reload (same models).
    public mutating func apply(weights newWeights: [Double]) {
        precondition(newWeights.count == weights.count && newWeights.allSatisfy { $0 >= 0 })
        weights = newWeights
    }

    /// The combined score of one event from its models' scores (in model order), in [0, 1];
    /// the scores are then remembered for later normalisation. NaN scores are left out.
    public mutating func combine(_ scores: [Double]) -> Double {
        precondition(scores.count == weights.count)
        var sum = 0.0, weight = 0.0
        for (i, s) in scores.enumerated() where !s.isNaN {
            if weights[i] > 0 {
                sum += weights[i] * recent[i].fractionBelow(s)
                weight += weights[i]
            }
            recent[i].add(s)
        }
        return weight > 0 ? sum / weight : 0
    }
}
