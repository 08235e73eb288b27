import VigilCore

/// Combines the active models' scores into one. Each score is first put on a common scale:
/// its percentile among that model's recent scores. A forest's 0.62 and a regression's 0.004
/// then mean the same thing ("higher than 99 % of recent events"). The percentiles are then
/// averaged with the models' weights.
public struct Ensemble: Sendable {
    /// Weight of each model (topology `weight`); a model with weight 0 is scored but not counted.
    public private(set) var weights: [Double]
    private var recent: [DecayedHistogram]
    /// Scores each model has contributed so far.
    private var seen: [Int]
    /// Scores a model must have contributed before its percentiles count: the percentile of a
    /// score among a handful of others is 0 or 1, and a threshold fed with those early extremes
    /// sits too high for tens of thousands of events.
    public let minimumScores: Int

    /// - Parameters:
    ///   - halfLifeEvents: how long a model's score distribution is remembered.
    ///   - minimumScores: scores a model needs before its percentiles count.
    public init(weights: [Double], halfLifeEvents: Double = 50_000, minimumScores: Int = 0) {
        precondition(!weights.isEmpty && weights.allSatisfy { $0 >= 0 })
        self.weights = weights
        self.minimumScores = minimumScores
        recent = weights.map { _ in DecayedHistogram(halfLifeEvents: halfLifeEvents) }
        seen = weights.map { _ in 0 }
    }

    /// New weights from a reload (same models).
    public mutating func apply(weights newWeights: [Double]) {
        precondition(newWeights.count == weights.count && newWeights.allSatisfy { $0 >= 0 })
        weights = newWeights
    }

    /// The combined score of one event from its models' scores (in model order), in [0, 1];
    /// the scores are then remembered for later normalisation. NaN scores are left out. NaN
    /// when no model with a weight has `minimumScores` yet.
    public mutating func combine(_ scores: [Double]) -> Double {
        precondition(scores.count == weights.count)
        var sum = 0.0
        var weight = 0.0
        for (i, s) in scores.enumerated() where !s.isNaN {
            if weights[i] > 0, seen[i] >= minimumScores {
                sum += weights[i] * recent[i].fractionBelow(s)
                weight += weights[i]
            }
            recent[i].add(s)
            seen[i] += 1
        }
        return weight > 0 ? sum / weight : .nan
    }

    /// `combine` for an event where only the models marked in `counted` take part (a canary
    /// outside its share), also giving each model's own percentile of its score in
    /// `percentiles`: what that model alone would score, whatever its weight. Every non-NaN
    /// score is remembered, counted or not, so each model's percentiles follow all its scores.
    /// A percentile is NaN for a NaN score or a model with fewer than `minimumScores` scores.
    public mutating func combine(_ scores: [Double], counted: [Bool], percentiles: inout [Double]) -> Double {
        precondition(scores.count == weights.count && counted.count == weights.count)
        precondition(percentiles.count == weights.count)
        var sum = 0.0
        var weight = 0.0
        for (i, s) in scores.enumerated() {
            guard !s.isNaN else {
                percentiles[i] = .nan
                continue
            }
            if seen[i] >= minimumScores {
                let p = recent[i].fractionBelow(s)
                percentiles[i] = p
                if counted[i], weights[i] > 0 {
                    sum += weights[i] * p
                    weight += weights[i]
                }
            } else {
                percentiles[i] = .nan
            }
            recent[i].add(s)
            seen[i] += 1
        }
        return weight > 0 ? sum / weight : .nan
    }
}

extension Ensemble {
    /// Appends what the ensemble has learned, per model: its score memory and how many scores it
    /// has seen (the weights come from the topology).
    public func encode(model i: Int, into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(seen[i])
        recent[i].encode(into: &out)
    }

    /// What `encode(model:into:)` wrote, to be given to `restore(model:_:)`.
    public struct ModelMemory: Sendable {
        fileprivate var seen: Int
        fileprivate var recent: DecayedHistogram

        /// Reads one model's memory.
        public init(decoding input: inout BinaryReader) throws(CheckpointError) {
            let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
            guard version == 1 else { throw CheckpointError(.newerVersion, "ensemble body version \(version)") }
            seen = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "scores seen") }
            recent = try DecayedHistogram(decoding: &input)
        }
    }

    /// Forgets model `i`'s scores (the model started afresh).
    public mutating func forget(model i: Int) {
        seen[i] = 0
        recent[i] = DecayedHistogram(halfLifeEvents: recent[i].halfLifeEvents)
    }

    /// Gives model `i` the score memory a checkpoint held for it.
    public mutating func restore(model i: Int, _ memory: ModelMemory) {
        seen[i] = memory.seen
        recent[i] = memory.recent
    }
}
