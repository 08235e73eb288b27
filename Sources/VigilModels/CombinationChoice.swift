import VigilCore

/// Chooses, from the labels, between the learned combination of the models and each model alone:
/// whichever ranks the labelled events best (ROC-AUC over decayed histograms of their scores)
/// scores the events. So the ensemble does not rank worse than its best member where one model
/// alone beats every mix of them, and it keeps the mix where the mix is better.
public struct CombinationChoice: Sendable, Equatable {
    /// Candidate 0 is the learned combination; candidate k + 1 is model k alone.
    public private(set) var chosen = 0
    /// Per candidate: decayed counts of the scores of fraud and of normal events, in `bins` bins.
    private var fraud: [[Double]]
    private var normal: [[Double]]
    private var positives = 0.0
    private var negatives = 0.0

    static let bins = 64
    /// Per label, every count is multiplied by this (a half-life of about 7,000 labels), so the
    /// choice follows a model that improves or drifts.
    static let decay = 0.9999
    /// Fraud labels before any model alone may be chosen (the mix until then).
    public static let positivesToChoose = 20.0
    /// How much better a candidate must rank than the chosen one to replace it.
    static let margin = 0.002

    public init(models: Int) {
        fraud = Array(repeating: Array(repeating: 0, count: Self.bins), count: models + 1)
        normal = fraud
    }

    /// Records one labelled event: the combination's score and each model's percentile (NaN:
    /// none, left out), and chooses again. `eligible` marks the models that may score alone.
    public mutating func learn(combined: Double, percentiles: [Double], eligible: (Int) -> Bool, fraud isFraud: Bool) {
        precondition(percentiles.count + 1 == fraud.count)
        for c in fraud.indices {
            for b in 0..<Self.bins {
                fraud[c][b] *= Self.decay
                normal[c][b] *= Self.decay
            }
        }
        positives *= Self.decay
        negatives *= Self.decay
        if isFraud { positives += 1 } else { negatives += 1 }
        for c in fraud.indices {
            let s = c == 0 ? combined : percentiles[c - 1]
            if s.isNaN { continue }
            let b = Swift.min(Self.bins - 1, Swift.max(0, Int(s * Double(Self.bins))))
            if isFraud { fraud[c][b] += 1 } else { normal[c][b] += 1 }
        }
        guard positives >= Self.positivesToChoose * Self.decay, negatives > 0 else {
            chosen = 0
            return
        }
        var best = chosen
        var bestAUC = auc(chosen) + Self.margin
        for c in fraud.indices where c == 0 || eligible(c - 1) {
            let a = auc(c)
            if a > bestAUC {
                best = c
                bestAUC = a + Self.margin
            }
        }
        if chosen != 0, !eligible(chosen - 1) { best = 0 }
        chosen = best
    }

    /// Candidate `c`'s ROC-AUC over the decayed counts (ties count half).
    func auc(_ c: Int) -> Double {
        var below = 0.0
        var sum = 0.0
        var p = 0.0
        var n = 0.0
        for b in 0..<Self.bins {
            sum += fraud[c][b] * (below + 0.5 * normal[c][b])
            below += normal[c][b]
            p += fraud[c][b]
            n += normal[c][b]
        }
        return p > 0 && n > 0 ? sum / (p * n) : 0.5
    }

    /// The candidates' ROC-AUC, the combination's first: what the choice was made on.
    public var figures: [Double] { fraud.indices.map(auc) }

    /// A model started afresh: its history as a candidate is forgotten.
    public mutating func forget(model k: Int) {
        for b in 0..<Self.bins {
            fraud[k + 1][b] = 0
            normal[k + 1][b] = 0
        }
        if chosen == k + 1 { chosen = 0 }
    }
}

extension CombinationChoice {
    /// Appends the counts and the choice.
    func encode(into out: inout BinaryWriter) {
        out.write(chosen)
        out.write(positives)
        out.write(negatives)
        for c in fraud.indices {
            for b in 0..<Self.bins {
                out.write(fraud[c][b])
                out.write(normal[c][b])
            }
        }
    }

    /// Reads what `encode` wrote for as many models.
    mutating func decode(from r: inout BinaryReader) throws(VigilError) {
        var copy = self
        copy.chosen = try r.int(in: 0...(fraud.count - 1), "chosen combination")
        copy.positives = try r.double()
        copy.negatives = try r.double()
        for c in fraud.indices {
            for b in 0..<Self.bins {
                copy.fraud[c][b] = try r.double()
                copy.normal[c][b] = try r.double()
            }
        }
        self = copy
    }
}
