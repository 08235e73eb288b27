/// What the evaluation report draws for one topology: ROC and precision-recall curves, and the
/// score histograms of fraud and legitimate events. Curves keep at most `maxPoints` points.
public struct ScoreCurves: Codable, Sendable, Equatable {
    /// (false positive rate, true positive rate), from (0, 0) to (1, 1).
    public var roc: [[Double]] = []
    /// (recall, precision), from the highest score down.
    public var precisionRecall: [[Double]] = []
    /// The histograms' range and bin counts of each class.
    public var histogramLow = 0.0
    public var histogramHigh = 1.0
    public var fraudCounts: [Int] = []
    public var legitimateCounts: [Int] = []

    static let maxPoints = 400
    static let bins = 40

    static func of(_ data: EvaluatedEvents) -> ScoreCurves {
        var pairs: [(score: Double, label: Bool)] = []
        for i in 0..<data.count where data.isLabelled(i) { pairs.append((data.scores[i], data.labels[i] == 1)) }
        var c = ScoreCurves()
        guard !pairs.isEmpty else { return c }
        let positives = pairs.filter(\.label).count
        let negatives = pairs.count - positives
        pairs.sort { $0.score > $1.score }
        var tp = 0
        var fp = 0
        var roc: [[Double]] = [[0, 0]]
        var pr: [[Double]] = []
        var i = 0
        while i < pairs.count {
            // A group of tied scores moves the curve at once.
            var j = i
            while j < pairs.count, pairs[j].score == pairs[i].score {
                if pairs[j].label { tp += 1 } else { fp += 1 }
                j += 1
            }
            if positives > 0, negatives > 0 {
                roc.append([Double(fp) / Double(negatives), Double(tp) / Double(positives)])
            }
            if positives > 0 { pr.append([Double(tp) / Double(positives), Double(tp) / Double(tp + fp)]) }
            i = j
        }
        c.roc = thinned(roc)
        c.precisionRecall = thinned(pr)
        c.histogramLow = pairs.last!.score
        c.histogramHigh = max(pairs.first!.score, c.histogramLow + 1e-9)
        c.fraudCounts = [Int](repeating: 0, count: bins)
        c.legitimateCounts = [Int](repeating: 0, count: bins)
        let width = (c.histogramHigh - c.histogramLow) / Double(bins)
        for p in pairs {
            let b = min(bins - 1, Int((p.score - c.histogramLow) / width))
            if p.label { c.fraudCounts[b] += 1 } else { c.legitimateCounts[b] += 1 }
        }
        return c
    }

    /// Every k-th point, keeping the first and the last.
    private static func thinned(_ points: [[Double]]) -> [[Double]] {
        guard points.count > maxPoints else { return points }
        let step = Double(points.count - 1) / Double(maxPoints - 1)
        return (0..<maxPoints).map { points[Int((Double($0) * step).rounded())] }
    }
}
