import Testing
import VigilCore
import VigilModels

@Suite struct EnsembleTests {
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
}
