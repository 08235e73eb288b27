import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct EnsembleTests {
    /// Two models on very different scales: after normalisation, an event extreme for either
    /// ranks high, and weights decide which one counts more.
    @Test func scoresOnDifferentScalesCombineByPercentile() {
        var rng = SeededRandom(seed: 1)
        var ensemble = Ensemble(weights: [1, 3])
        for _ in 0..<20_000 { _ = ensemble.combine([0.4 + 0.05 * rng.gaussian(), 0.001 * rng.unit()]) }
        let typical = ensemble.combine([0.4, 0.0005])
        let forestExtreme = ensemble.combine([0.7, 0.0005])
        let regressionExtreme = ensemble.combine([0.4, 0.01])
        #expect(abs(typical - 0.5) < 0.05)
        #expect(forestExtreme > typical && regressionExtreme > forestExtreme)
        #expect(abs(regressionExtreme - (1 * 0.5 + 3 * 1.0) / 4) < 0.05)
        ensemble.apply(weights: [1, 0])
        #expect(abs(ensemble.combine([0.4, 0.01]) - 0.5) < 0.05)  // weight 0: not counted
    }

    /// A model counts only once it has contributed `minimumScores` scores; before any does, the
    /// combined score is NaN (the engine then neither alerts nor feeds the threshold).
    @Test func modelsCountOnlyAfterTheirMinimumOfScores() {
        var ensemble = Ensemble(weights: [1, 1], minimumScores: 3)
        #expect(ensemble.combine([0.2, .nan]).isNaN)
        #expect(ensemble.combine([0.3, .nan]).isNaN)
        #expect(ensemble.combine([0.4, 0.9]).isNaN)
        let first = ensemble.combine([0.5, 0.1])  // the forest has 3 scores now, the other 1
        #expect(first == 1.0, "0.5 is above all three earlier scores")
        #expect(!ensemble.combine([0.1, 0.2]).isNaN)
    }

    /// Before its minimum of scores, an event's combination is NaN (no alert, no threshold), but
    /// its provisional score ranks it among the scores seen so far, where a constant would tie
    /// every early event; it is shrunk towards the median as much as the memory is short.
    @Test func earlyEventsGetAProvisionalScoreThatKeepsTheirRank() {
        var ensemble = Ensemble(weights: [1, 1], minimumScores: 1000)
        var rng = SeededRandom(seed: 4)
        #expect(ensemble.combine([0.5, 0.5]).isNaN)
        #expect(ensemble.provisional.isNaN, "no score before the first")
        for _ in 0..<300 { _ = ensemble.combine([rng.unit(), rng.unit()]) }
        #expect(ensemble.combine([0.9, 0.9]).isNaN)
        let high = ensemble.provisional
        #expect(ensemble.combine([0.1, 0.1]).isNaN)
        let low = ensemble.provisional
        // About 0.9 and 0.1 among 301 scores, shrunk by 301/1000 (the second with 302).
        #expect(abs(high - (0.5 + 0.4 * 0.301)) < 0.03, "high \(high)")
        #expect(abs(low - (0.5 - 0.4 * 0.302)) < 0.03, "low \(low)")
    }
}
