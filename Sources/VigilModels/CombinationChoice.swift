import VigilCore

/// Chooses, from the labels, between the learned combination of the models and each model alone:
/// whichever ranks the labelled events best (ROC-AUC over decayed histograms of their scores)
/// scores the events. So the ensemble does not rank worse than its best member where one model
/// alone beats every mix of them, and it keeps the mix where the mix is better.
public struct CombinationChoice: Sendable {
    /// Candidate 0 is the learned combination; candidate k + 1 is model k alone.
    public private(set) var chosen = 0
    /// Per candidate (`bins` in a row): decayed counts of the scores of fraud and of normal
    /// events, and of all positives and negatives, each held multiplied by `unit`. Decaying all
    /// counts is then one multiplication of `unit` per label instead of one per count (the decay
    /// of every count was 8 % of a labelled replay's CPU; bench/RESULTS.md).
    private var fraud: [Double]
    private var normal: [Double]
    private var positives = 0.0
    private var negatives = 0.0
    /// What one label adds to the held counts: `1 / decay^labels` since the last rescaling.
    private var unit = 1.0
    private let candidates: Int

    static let bins = 64
    /// Per label, every count is multiplied by this (a half-life of about 7,000 labels), so the
    /// choice follows a model that improves or drifts.
    static let decay = 0.9999
    /// Fraud labels before any model alone may be chosen (the mix until then).
    public static let positivesToChoose = 20.0
    /// How much better a candidate must rank than the chosen one to replace it.
    static let margin = 0.002
    /// Once `unit` passes this, the held counts are divided by it (every ~1.4M labels).
    static let rescaleAt = 1e60

    public init(models: Int) {
        candidates = models + 1
        fraud = Array(repeating: 0, count: candidates * Self.bins)
        normal = fraud
    }

    /// Records one labelled event: the combination's score and each model's percentile (NaN:
    /// none, left out), and chooses again. `eligible` marks the models that may score alone.
    public mutating func learn(combined: Double, percentiles: [Double], eligible: (Int) -> Bool, fraud isFraud: Bool) {
        precondition(percentiles.count + 1 == candidates)
        unit /= Self.decay
        if unit > Self.rescaleAt { rescale() }
        if isFraud { positives += unit } else { negatives += unit }
        for c in 0..<candidates {
            let s = c == 0 ? combined : percentiles[c - 1]
            if s.isNaN { continue }
            let b = c * Self.bins + Swift.min(Self.bins - 1, Swift.max(0, Int(s * Double(Self.bins))))
            if isFraud { fraud[b] += unit } else { normal[b] += unit }
        }
        guard positives / unit >= Self.positivesToChoose * Self.decay, negatives > 0 else {
            chosen = 0
            return
        }
        var best = chosen
        var bestAUC = auc(chosen) + Self.margin
        for c in 0..<candidates where c == 0 || eligible(c - 1) {
            let a = auc(c)
            if a > bestAUC {
                best = c
                bestAUC = a + Self.margin
            }
        }
        if chosen != 0, !eligible(chosen - 1) { best = 0 }
        chosen = best
    }

    /// Divides the held counts by `unit`, which becomes 1.
    private mutating func rescale() {
        let by = unit
        for i in fraud.indices {
            fraud[i] /= by
            normal[i] /= by
        }
        positives /= by
        negatives /= by
        unit = 1
    }

    /// Candidate `c`'s ROC-AUC over the decayed counts (ties count half). The counts' common
    /// scale cancels out.
    func auc(_ c: Int) -> Double {
        var below = 0.0
        var sum = 0.0
        var p = 0.0
        var n = 0.0
        fraud.withUnsafeBufferPointer { fraud in
            normal.withUnsafeBufferPointer { normal in
                for b in c * Self.bins..<(c + 1) * Self.bins {
                    sum += fraud[b] * (below + 0.5 * normal[b])
                    below += normal[b]
                    p += fraud[b]
                    n += normal[b]
                }
            }
        }
        return p > 0 && n > 0 ? sum / (p * n) : 0.5
    }

    /// The candidates' ROC-AUC, the combination's first: what the choice was made on.
    public var figures: [Double] { (0..<candidates).map(auc) }

    /// A model started afresh: its history as a candidate is forgotten.
    public mutating func forget(model k: Int) {
        for b in (k + 1) * Self.bins..<(k + 2) * Self.bins {
            fraud[b] = 0
            normal[b] = 0
        }
        if chosen == k + 1 { chosen = 0 }
    }
}

extension CombinationChoice: Equatable {
    /// Equal choices and equal decayed counts, whatever scale each holds them at.
    public static func == (a: Self, b: Self) -> Bool {
        a.chosen == b.chosen && a.candidates == b.candidates && a.positives / a.unit == b.positives / b.unit
            && a.negatives / a.unit == b.negatives / b.unit
            && a.fraud.indices.allSatisfy {
                a.fraud[$0] / a.unit == b.fraud[$0] / b.unit && a.normal[$0] / a.unit == b.normal[$0] / b.unit
            }
    }
}

extension CombinationChoice {
    /// Appends the choice and the decayed counts (at scale 1).
    func encode(into out: inout BinaryWriter) {
        out.write(chosen)
        out.write(positives / unit)
        out.write(negatives / unit)
        for b in fraud.indices {
            out.write(fraud[b] / unit)
            out.write(normal[b] / unit)
        }
    }

    /// Reads what `encode` wrote for as many models.
    mutating func decode(from r: inout BinaryReader) throws(VigilError) {
        var copy = self
        copy.chosen = try r.int(in: 0...(candidates - 1), "chosen combination")
        copy.positives = try r.double()
        copy.negatives = try r.double()
        for b in fraud.indices {
            copy.fraud[b] = try r.double()
            copy.normal[b] = try r.double()
        }
        copy.unit = 1
        self = copy
    }
}
