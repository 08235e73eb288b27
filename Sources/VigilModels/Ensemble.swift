import VigilCore

/// Combines the active models' scores into one. Each score is first put on a common scale:
/// its percentile among that model's recent scores. A forest's 0.62 and a regression's 0.004
/// then mean the same thing ("higher than 99 % of recent events"). The percentiles are then
/// averaged with the models' weights: the topology's, or, when labels come, weights learned from
/// them (`LearnedWeights`).
public struct Ensemble: Sendable {
    /// Weight of each model (topology `weight`); a model with weight 0 is scored but not counted.
    public private(set) var weights: [Double]
    /// Weights learned from the joined labels (nil: the topology's weights are used as they are).
    public private(set) var learned: LearnedWeights?
    /// The weights the combination uses now: the learned ones, or the topology's.
    public var effectiveWeights: [Double] { learned?.current ?? weights }
    private var recent: [DecayedHistogram]
    /// Scores each model has contributed so far.
    private var seen: [Int]
    /// Scores a model must have contributed before its percentiles count: the percentile of a
    /// score among a handful of others is 0 or 1, and a threshold fed with those early extremes
    /// sits too high for tens of thousands of events.
    public let minimumScores: Int
    /// After a `combine` that returned NaN because no counted model had `minimumScores` yet: the
    /// combination of the percentiles among the scores seen so far (NaN when there were none).
    /// A provisional score that ranks the event, where a constant would lose its rank; the
    /// threshold is not fed with it.
    public private(set) var provisional = Double.nan
    /// `learn`'s percentiles, kept between labels.
    private var labelPercentiles: [Double]

    /// - Parameters:
    ///   - halfLifeEvents: how long a model's score distribution is remembered.
    ///   - minimumScores: scores a model needs before its percentiles count.
    ///   - learnsWeights: whether labels will come to learn the weights from (`learn`).
    public init(weights: [Double], halfLifeEvents: Double = 50_000, minimumScores: Int = 0, learnsWeights: Bool = false)
    {
        precondition(!weights.isEmpty && weights.allSatisfy { $0 >= 0 })
        self.weights = weights
        learned = learnsWeights ? LearnedWeights(prior: weights) : nil
        labelPercentiles = weights.map { _ in .nan }
        self.minimumScores = minimumScores
        recent = weights.map { _ in DecayedHistogram(halfLifeEvents: halfLifeEvents) }
        seen = weights.map { _ in 0 }
    }

    /// New weights from a reload (same models).
    public mutating func apply(weights newWeights: [Double]) {
        precondition(newWeights.count == weights.count && newWeights.allSatisfy { $0 >= 0 })
        weights = newWeights
        learned?.apply(prior: newWeights)
    }

    /// Learns the weights from one labelled event, given its models' raw scores as they were
    /// scored (NaN: none): each is put on today's percentile scale (no score is remembered),
    /// provisional or not, so that the weights are learned from the first labels on.
    public mutating func learn(scores: (Int) -> Double, fraud: Bool) {
        guard learned != nil else { return }
        // Into a kept buffer: this runs once per joined label, on the worker's thread.
        for k in weights.indices {
            let s = scores(k)
            labelPercentiles[k] = s.isNaN || seen[k] == 0 ? Double.nan : recent[k].fractionBelow(s)
        }
        learned!.learn(labelPercentiles, fraud: fraud)
    }

    /// The combined score of one event from its models' scores (in model order), in [0, 1];
    /// the scores are then remembered for later normalisation. NaN scores are left out. NaN
    /// when no model with a weight has `minimumScores` yet.
    public mutating func combine(_ scores: [Double]) -> Double {
        precondition(scores.count == weights.count)
        var percentiles = scores
        return combine(scores, counted: scores.map { _ in true }, percentiles: &percentiles)
    }

    /// `combine` for an event where only the models marked in `counted` take part (a canary
    /// outside its share), also giving each model's own percentile of its score in
    /// `percentiles`: what that model alone would score, whatever its weight. Every non-NaN
    /// score is remembered, counted or not, so each model's percentiles follow all its scores.
    /// A percentile is NaN for a NaN score or a model with fewer than `minimumScores` scores.
    public mutating func combine(_ scores: [Double], counted: [Bool], percentiles: inout [Double]) -> Double {
        precondition(scores.count == weights.count && counted.count == weights.count)
        precondition(percentiles.count == weights.count)
        let effective = effectiveWeights
        var sum = 0.0
        var weight = 0.0
        // With the topology's weights too: the counted models may all have learned weight 0.
        var priorSum = 0.0
        var priorWeight = 0.0
        // Models still short of `minimumScores`, for the provisional score: with the weights in
        // force, or the topology's where those are all 0.
        var earlySum = 0.0
        var earlyWeight = 0.0
        var earlyPriorSum = 0.0
        var earlyPriorWeight = 0.0
        for (i, s) in scores.enumerated() {
            guard !s.isNaN else {
                percentiles[i] = .nan
                continue
            }
            if seen[i] >= minimumScores {
                let p = recent[i].fractionBelow(s)
                percentiles[i] = p
                if counted[i], weights[i] > 0 {
                    sum += effective[i] * p
                    weight += effective[i]
                    priorSum += weights[i] * p
                    priorWeight += weights[i]
                }
            } else {
                percentiles[i] = .nan
                if counted[i], weights[i] > 0, seen[i] > 0 {
                    // Shrunk towards the median as much as the memory is short: a percentile among
                    // a few scores is often 0 or 1, and would otherwise top every later ranking.
                    let confidence = Double(seen[i]) / Double(minimumScores)
                    let p = 0.5 + (recent[i].fractionBelow(s) - 0.5) * confidence
                    earlySum += effective[i] * p
                    earlyWeight += effective[i]
                    earlyPriorSum += weights[i] * p
                    earlyPriorWeight += weights[i]
                }
            }
            recent[i].add(s)
            seen[i] += 1
        }
        if weight > 0 { return sum / weight }
        if priorWeight > 0 { return priorSum / priorWeight }
        provisional =
            earlyWeight > 0
            ? earlySum / earlyWeight : earlyPriorWeight > 0 ? earlyPriorSum / earlyPriorWeight : .nan
        return .nan
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
        learned?.forget(model: i)
        seen[i] = 0
        recent[i] = DecayedHistogram(halfLifeEvents: recent[i].halfLifeEvents)
    }

    /// Gives model `i` the score memory a checkpoint held for it.
    public mutating func restore(model i: Int, _ memory: ModelMemory) {
        seen[i] = memory.seen
        recent[i] = memory.recent
    }
}

extension Ensemble {
    /// Appends the learned weights (nil without them), for the models named `names`.
    public func encodeLearned(names: [String]) -> [UInt8]? {
        guard let learned else { return nil }
        var out = BinaryWriter()
        learned.encode(names: names, into: &out)
        return out.bytes
    }

    /// The learned weights `encodeLearned` wrote, over this ensemble's (nil without learning),
    /// for `restoreLearned`.
    public func decodeLearned(names: [String], _ bytes: [UInt8]) throws(CheckpointError) -> LearnedWeights? {
        guard var copy = learned else { return nil }
        var input = BinaryReader(bytes)
        try copy.restore(names: names, from: &input)
        return copy
    }

    /// Takes the learned weights `decodeLearned` read.
    public mutating func restoreLearned(_ decoded: LearnedWeights) {
        guard learned != nil else { return }
        learned = decoded
    }
}
