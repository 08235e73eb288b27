import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct DriftAndMetricsTests {
    @Test func pageHinkleyIsQuietOnNoiseAndCatchesAShiftQuickly() {
        var rng = SeededRandom(seed: 1)
        var ph = PageHinkley()
        var falseAlarms = 0
        for _ in 0..<200_000 where ph.add(0.3 + 0.05 * rng.gaussian()) != nil { falseAlarms += 1 }
        #expect(falseAlarms == 0)
        var delay: Int?
        for i in 0..<50_000 {
            if ph.add(0.35 + 0.05 * rng.gaussian()) == .increase {
                delay = i
                break
            }
        }
        #expect(delay != nil && delay! < 5_000, "detected after \(String(describing: delay)) values")
        var down = PageHinkley()
        for _ in 0..<5_000 { _ = down.add(0.5 + 0.05 * rng.gaussian()) }
        var change: PageHinkley.Change?
        for _ in 0..<10_000 where change == nil { change = down.add(0.4 + 0.05 * rng.gaussian()) }
        #expect(change == .decrease)
    }

    @Test func psiIsNearZeroForTheSameDistributionAndLargeForAShift() {
        var rng = SeededRandom(seed: 2)
        var drift = FeatureDrift(features: 2, referenceSize: 20_000, window: 20_000)
        for _ in 0..<40_000 { drift.add([rng.gaussian(), rng.unit()]) }
        let stable = drift.psi()!
        #expect(stable.allSatisfy { $0 < 0.01 }, "\(stable)")
        for _ in 0..<20_000 { drift.add([rng.gaussian() + 0.8, rng.unit()]) }
        let shifted = drift.psi()!
        #expect(shifted[0] > 0.25, "\(shifted)")
        #expect(shifted[1] < 0.01)
    }

    @Test func prequentialMetricsOverTheWindow() {
        var m = PrequentialMetrics(window: 4)
        #expect(m.report().rocAUC == nil)
        m.add(score: 0.99, label: true, alerted: true)  // falls out of the window below
        for (s, l, a) in [(0.1, false, false), (0.4, false, true), (0.35, true, false), (0.8, true, true)] {
            m.add(score: s, label: l, alerted: a)
        }
        let r = m.report()
        #expect(r.events == 4 && r.positives == 2 && m.total == 5)
        #expect(r.rocAUC == 0.75)
        #expect(abs(r.averagePrecision! - 0.8333333333333333) < 1e-12)
        #expect(r.precision == 0.5 && r.recall == 0.5 && r.f1 == 0.5)
    }
}
