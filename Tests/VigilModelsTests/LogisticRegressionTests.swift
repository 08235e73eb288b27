import Foundation
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct LogisticRegressionTests {
    static func make(_ optimizer: LogisticRegressionSpec.Optimizer, positiveWeight: Double = 20) -> LogisticRegression {
        var p = LogisticRegression.Parameters()
        p.optimizer = optimizer
        p.learningRate = optimizer == .ftrl ? 0.1 : 0.05
        p.positiveWeight = positiveWeight
        return LogisticRegression(
            features: ModelFixture.numericFeatures, categories: [("channel", 8)], parameters: p)
    }

    @Test(arguments: LogisticRegressionSpec.Optimizer.allCases)
    func passesTheConformanceSuite(optimizer: LogisticRegressionSpec.Optimizer) {
        ModelConformance.check({ _ in Self.make(optimizer) }, minimumAUC: 0.85)
    }

    /// Replicas trained on different halves and merged score better than chance, between them.
    @Test func mergedReplicasAverageTheirWeights() {
        let data = ModelFixture.shared
        var left = Self.make(.ftrl)
        var right = Self.make(.ftrl)
        let half = data.matrix.rows / 2
        _ = ModelConformance.prequential(&left, data, rows: 0..<half)
        _ = ModelConformance.prequential(&right, data, rows: half..<data.matrix.rows)
        var merged = left
        merged.merge(right, weight: 0.5)
        var mergedBack = right
        mergedBack.merge(left, weight: 0.5)
        for r in stride(from: 0, to: 1000, by: 50) {
            #expect(abs(merged.score(data.matrix, row: r) - mergedBack.score(data.matrix, row: r)) < 1e-12)
        }
        #expect(merged.labelled == left.labelled + right.labelled)
    }

    /// A replica that adopts a federated average keeps what it learned since the copy the
    /// average was made from, and its own counts; with nothing learned since, it scores as the
    /// average does.
    @Test func adoptingAnAverageKeepsWhatWasLearnedSinceTheSnapshot() {
        let data = ModelFixture.shared
        var mine = Self.make(.ftrl)
        var peer = Self.make(.ftrl)
        _ = ModelConformance.prequential(&mine, data, rows: 0..<4_000)
        _ = ModelConformance.prequential(&peer, data, rows: 4_000..<8_000)
        let snapshot = mine
        var average = snapshot
        average.merge(peer, weight: 0.5)

        var idle = mine
        idle.adopt(average, since: snapshot)
        for r in stride(from: 10_000, to: 11_000, by: 50) {
            #expect(abs(idle.score(data.matrix, row: r) - average.score(data.matrix, row: r)) < 1e-12)
        }
        #expect(idle.labelled == mine.labelled, "the counts stay the replica's own")

        // Learning after the snapshot survives the adoption: the adopted model differs from the
        // plain average exactly by those updates.
        _ = ModelConformance.prequential(&mine, data, rows: 8_000..<9_000)
        var busy = mine
        busy.adopt(average, since: snapshot)
        var rebuilt = average
        rebuilt.adopt(average, since: average)  // the average itself, unchanged
        var differs = false
        for r in stride(from: 10_000, to: 11_000, by: 50) {
            differs = differs || abs(busy.score(data.matrix, row: r) - rebuilt.score(data.matrix, row: r)) > 1e-9
        }
        #expect(differs, "the updates learned since the snapshot are kept")
        #expect(busy.labelled == mine.labelled)
    }

    /// Weighting positives keeps their gradient from vanishing; the correction keeps the mean
    /// predicted probability near the real fraud rate instead of inflated by the weight.
    @Test func positiveWeightIsCorrectedOutOfTheProbabilities() {
        let data = ModelFixture.shared
        var model = Self.make(.ftrl, positiveWeight: 50)
        let scores = ModelConformance.prequential(&model, data)
        let tail = scores.suffix(10_000)
        let meanScore = tail.reduce(0, +) / Double(tail.count)
        let rate = Double(data.labels.suffix(10_000).filter { $0 }.count) / 10_000
        #expect(meanScore < 4 * rate && meanScore > rate / 4, "mean score \(meanScore), fraud rate \(rate)")
    }

    /// L1 under FTRL gives true zeros, more of them the stronger it is.
    @Test func l1MakesWeightsExactlyZero() {
        let data = ModelFixture.shared
        func zeros(l1: Double) -> Int {
            var p = LogisticRegression.Parameters()
            p.l1 = l1
            var model = LogisticRegression(
                features: ModelFixture.numericFeatures, categories: [("channel", 8)], parameters: p)
            _ = ModelConformance.prequential(&model, data, rows: 0..<5_000)
            return model.explain(data.matrix, row: 4_999, top: 100).filter { $0.weight == 0 }.count
        }
        let none = zeros(l1: 0)
        let some = zeros(l1: 5)
        let most = zeros(l1: 50)
        #expect(none <= 1)
        #expect(some > none)
        #expect(most >= ModelFixture.numericFeatures.count / 2, "\(most) zero weights")
    }

    /// Explanations name features and sum (with the bias) to the model's logit.
    @Test func explanationsAreTheTermsOfTheScore() {
        let data = ModelFixture.shared
        var model = Self.make(.ftrl, positiveWeight: 1)
        _ = ModelConformance.prequential(&model, data, rows: 0..<10_000)
        let fraudRow = (10_000..<data.matrix.rows).first { data.labels[$0] }!
        let top = model.explain(data.matrix, row: fraudRow, top: 3)
        #expect(top.count == 3)
        #expect(zip(top, top.dropFirst()).allSatisfy { abs($0.weight) >= abs($1.weight) })
        let all = model.explain(data.matrix, row: fraudRow, top: 1000)
        let p = model.score(data.matrix, row: fraudRow)
        let logit = log(p / (1 - p))
        let bias = logit - all.map(\.weight).reduce(0, +)
        // The bias is the same for every row: check it on another one.
        let other = fraudRow + 1
        let q = model.score(data.matrix, row: other)
        let otherBias = log(q / (1 - q)) - model.explain(data.matrix, row: other, top: 1000).map(\.weight).reduce(0, +)
        #expect(abs(bias - otherBias) < 1e-9)
    }
}
