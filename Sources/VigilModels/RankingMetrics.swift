/// Exact ranking metrics over a set of scored, labelled events: what the prequential metrics
/// report over their window, and what tests and benchmarks compare models with.
public enum RankingMetrics {
    /// Area under the ROC curve: the probability that a random positive outscores a random
    /// negative (ties count half). nil without both classes.
    public static func rocAUC(scores: [Double], labels: [Bool]) -> Double? {
        precondition(scores.count == labels.count)
        let positives = labels.filter { $0 }.count
        let negatives = labels.count - positives
        guard positives > 0, negatives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        // Sum of the positives' ranks, ties sharing their average rank.
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] { rankSum += averageRank }
            i = j + 1
        }
        let p = Double(positives)
        return (rankSum - p * (p + 1) / 2) / (p * Double(negatives))
    }

    /// Average precision: the mean of the precision at each positive, ranking by score (ties
    /// broken pessimistically, negatives first, as scikit-learn's step-wise definition does over
    /// tied groups). nil without positives.
    public static func averagePrecision(scores: [Double], labels: [Bool]) -> Double? {
        precondition(scores.count == labels.count)
        let positives = labels.filter { $0 }.count
        guard positives > 0 else { return nil }
        let order = scores.indices.sorted { scores[$0] > scores[$1] }
        var truePositives = 0
        var seen = 0
        var sum = 0.0
        var i = 0
        while i < order.count {
            // A group of tied scores enters the ranking at once.
            var j = i
            while j + 1 < order.count, scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let groupPositives = (i...j).filter { labels[order[$0]] }.count
            seen += j - i + 1
            truePositives += groupPositives
            sum += Double(groupPositives) * Double(truePositives) / Double(seen)
            i = j + 1
        }
        return sum / Double(positives)
    }

    /// Spearman's rank correlation of two score series (ties share their average rank): how
    /// alike two models order the same events, whatever their scales. nil for fewer than two
    /// pairs or a constant series.
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double? {
        precondition(a.count == b.count)
        guard a.count >= 2 else { return nil }
        let ra = ranks(a)
        let rb = ranks(b)
        let n = Double(a.count)
        let mean = (n + 1) / 2
        var cov = 0.0
        var va = 0.0
        var vb = 0.0
        for i in 0..<a.count {
            let x = ra[i] - mean
            let y = rb[i] - mean
            cov += x * y
            va += x * x
            vb += y * y
        }
        guard va > 0, vb > 0 else { return nil }
        return cov / (va * vb).squareRoot()
    }

    /// 1-based ranks, ties sharing their average rank.
    static func ranks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var out = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count, values[order[j + 1]] == values[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j { out[order[k]] = averageRank }
            i = j + 1
        }
        return out
    }
}
