import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The ensemble's weights learned from labels (stacking): a small logistic regression over the
/// models' percentiles, trained online from the joined labels after each event was scored, whose
/// non-negative coefficients become the weights of the percentile mean. Kept on the percentile
/// scale, the final score keeps its meaning for `min_score` and the threshold; a model the
/// labels show to be worth nothing gets weight 0 instead of pulling a good one down.
public struct LearnedWeights: Sendable, Equatable {
    /// The topology's weights: the combination until the labels say otherwise.
    public private(set) var prior: [Double]
    /// The regression's coefficient of each model's centred percentile.
    public private(set) var coefficients: [Double]
    public private(set) var intercept = 0.0
    /// AdaGrad's sums of squared gradients.
    private var squares: [Double]
    private var interceptSquares = 0.0
    /// Labels learned from, and how many of them were fraud.
    public private(set) var labels = 0
    public private(set) var positives = 0
    /// The prior, blended into the learned weights as fraud labels come.
    public private(set) var mix: [Double]
    /// Whether the mix or one model alone scores the events (`CombinationChoice`).
    public private(set) var choice: CombinationChoice
    /// The weights in force: the mix, or all of the prior's total on the one model chosen.
    public private(set) var current: [Double]

    /// Learning rate of AdaGrad (its per-coordinate steps shrink as gradients add up).
    static let rate = 0.5
    /// Pull of each coefficient towards 0, per label.
    static let l2 = 1e-4
    /// Fraud labels after which the learned weights take over entirely from the prior.
    public static let positivesToTrust = 50

    public init(prior: [Double]) {
        precondition(!prior.isEmpty && prior.allSatisfy { $0 >= 0 })
        self.prior = prior
        coefficients = prior.map { _ in 0 }
        squares = prior.map { _ in 0 }
        mix = prior
        current = prior
        choice = CombinationChoice(models: prior.count)
    }

    /// New topology weights (a reload): the learned coefficients stay; a model with weight 0
    /// (a shadow) stays out of the combination.
    public mutating func apply(prior newPrior: [Double]) {
        precondition(newPrior.count == prior.count && newPrior.allSatisfy { $0 >= 0 })
        prior = newPrior
        refresh()
    }

    /// The regression's probability for one event's percentiles (NaN: the model had none, which
    /// counts as the median).
    public func probability(_ percentiles: [Double]) -> Double {
        var u = intercept
        for k in prior.indices where prior[k] > 0 && !percentiles[k].isNaN {
            u += coefficients[k] * (percentiles[k] - 0.5)
        }
        return 1 / (1 + exp(-u))
    }

    /// Learns one labelled event from the percentiles its models' scores have now.
    public mutating func learn(_ percentiles: [Double], fraud: Bool) {
        precondition(percentiles.count == prior.count)
        // The mix's score of the event as it was combined (before this label moves the mix).
        var sum = 0.0
        var weight = 0.0
        for k in prior.indices where mix[k] > 0 && !percentiles[k].isNaN {
            sum += mix[k] * percentiles[k]
            weight += mix[k]
        }
        let prior = self.prior
        choice.learn(
            combined: weight > 0 ? sum / weight : .nan, percentiles: percentiles, eligible: { prior[$0] > 0 },
            fraud: fraud)
        let g = probability(percentiles) - (fraud ? 1 : 0)
        for k in prior.indices where prior[k] > 0 && !percentiles[k].isNaN {
            let grad = g * (percentiles[k] - 0.5) + Self.l2 * coefficients[k]
            squares[k] += grad * grad
            coefficients[k] -= Self.rate * grad / (squares[k].squareRoot() + 1e-9)
        }
        interceptSquares += g * g
        intercept -= Self.rate * g / (interceptSquares.squareRoot() + 1e-9)
        labels += 1
        if fraud { positives += 1 }
        refresh()
    }

    /// A model started afresh (drift): its coefficient is learned again.
    public mutating func forget(model k: Int) {
        coefficients[k] = 0
        squares[k] = 0
        choice.forget(model: k)
        refresh()
    }

    /// Recomputes `current`: the prior and the learned weights (the positive coefficients,
    /// scaled to the prior's total), mixed by how many fraud labels were seen.
    private mutating func refresh() {
        // In place, without temporaries: it runs once per joined label, on the worker's thread.
        var priorTotal = 0.0
        var learnedTotal = 0.0
        for k in prior.indices {
            priorTotal += prior[k]
            if prior[k] > 0 { learnedTotal += Swift.max(0, coefficients[k]) }
        }
        if priorTotal > 0, learnedTotal > 0 {
            let trust = Swift.min(1, Double(positives) / Double(Self.positivesToTrust))
            let scale = priorTotal / learnedTotal
            for k in prior.indices {
                let learned = prior[k] > 0 ? Swift.max(0, coefficients[k]) * scale : 0
                mix[k] = (1 - trust) * prior[k] + trust * learned
            }
        } else {
            for k in prior.indices { mix[k] = prior[k] }
        }
        let alone = choice.chosen - 1
        for k in prior.indices {
            current[k] = alone >= 0 && prior[alone] > 0 ? (k == alone ? priorTotal : 0) : mix[k]
        }
    }
}

extension LearnedWeights {
    /// Appends the learned state of the models named `names` (in model order).
    public func encode(names: [String], into out: inout BinaryWriter) {
        out.write(UInt8(2))  // body version
        out.write(names.count)
        for (k, name) in names.enumerated() {
            out.write(name)
            out.write(coefficients[k])
            out.write(squares[k])
        }
        out.write(intercept)
        out.write(interceptSquares)
        out.write(labels)
        out.write(positives)
        choice.encode(into: &out)
    }

    /// Restores what `encode` wrote for the models named `names` now: a model the bytes do not
    /// name starts from coefficient 0. Throws, changing nothing, when the bytes do not decode.
    public mutating func restore(names: [String], from input: inout BinaryReader) throws(CheckpointError) {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version <= 2 else { throw CheckpointError(.newerVersion, "learned weights body version \(version)") }
        let count = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...10_000, "models") }
        var stored: [String: (Double, Double)] = [:]
        var storedNames: [String] = []
        for _ in 0..<count {
            let (name, c, s) = try input.checkpoint { r throws(VigilError) in
                (try r.string(), try r.double(), try r.double())
            }
            stored[name] = (c, s)
            storedNames.append(name)
        }
        let (b, bs, l, p) = try input.checkpoint { r throws(VigilError) in
            (
                try r.double(), try r.double(), try r.int(in: 0...Int.max, "labels"),
                try r.int(in: 0...Int.max, "positives")
            )
        }
        // The choice's counts are per model in order: kept only for the same models.
        var restoredChoice = CombinationChoice(models: names.count)
        if version == 2 {
            var read = CombinationChoice(models: storedNames.count)
            try input.checkpoint { r throws(VigilError) in try read.decode(from: &r) }
            if storedNames == names { restoredChoice = read }
        }
        choice = restoredChoice
        for (k, name) in names.enumerated() {
            let (c, s) = stored[name] ?? (0, 0)
            coefficients[k] = c
            squares[k] = s
        }
        intercept = b
        interceptSquares = bs
        labels = l
        positives = p
        refresh()
    }
}
