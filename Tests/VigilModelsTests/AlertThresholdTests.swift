import Foundation
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct AlertThresholdTests {
    /// Scores with a long right tail, like an anomaly model's: most near 0.3, few near 1.
    static func score(_ rng: inout SeededRandom, shift: Double = 0) -> Double {
        min(1, max(0, 0.3 + shift + 0.08 * rng.gaussian() + (rng.chance(0.05) ? 0.3 * rng.unit() : 0)))
    }

    static func spec(rate: Double = 0.01) -> ThresholdSpec {
        ThresholdSpec(targetAlertRate: rate, minScore: 0, hysteresis: 0, protect: true, warmupEvents: 5_000)
    }

    /// Share of `n` events flagged, with `shift` added to every score.
    static func flaggedRate(_ t: inout AlertThreshold, _ rng: inout SeededRandom, _ n: Int, shift: Double = 0) -> Double
    {
        var flagged = 0
        for i in 0..<n where t.decide(score: score(&rng, shift: shift), entity: UInt64(i), time: Int64(i)).flagged {
            flagged += 1
        }
        return Double(flagged) / Double(n)
    }

    @Test(arguments: [0.001, 0.01, 0.05])
    func holdsTheTargetAlertRateOnAStationaryStream(rate: Double) {
        var rng = SeededRandom(seed: 1)
        var t = AlertThreshold(Self.spec(rate: rate))
        _ = Self.flaggedRate(&t, &rng, 20_000)  // warm-up and a first estimate
        let measured = Self.flaggedRate(&t, &rng, 400_000)
        #expect(abs(measured - rate) <= 0.1 * rate, "alert rate \(measured) for target \(rate)")
    }

    /// After the scores shift up, the alert rate jumps, then returns to the target as the
    /// sketch forgets the old scores.
    @Test func adaptsAfterADrift() {
        var rng = SeededRandom(seed: 2)
        var t = AlertThreshold(Self.spec(rate: 0.01))
        _ = Self.flaggedRate(&t, &rng, 50_000)
        let rightAfter = Self.flaggedRate(&t, &rng, 2_000, shift: 0.1)
        _ = Self.flaggedRate(&t, &rng, 60_000, shift: 0.1)
        let later = Self.flaggedRate(&t, &rng, 200_000, shift: 0.1)
        #expect(rightAfter > 0.03, "the shift should first raise the alert rate (\(rightAfter))")
        #expect(abs(later - 0.01) <= 0.001, "alert rate after the drift \(later)")
    }

    @Test func floorCeilingAndWarmUp() {
        var rng = SeededRandom(seed: 3)
        var floor = AlertThreshold(ThresholdSpec(targetAlertRate: 0.01, minScore: 0.9, warmupEvents: 100))
        #expect(Self.flaggedRate(&floor, &rng, 50_000) < 0.001)  // the quantile (~0.55) is below the floor
        #expect(floor.current == 0.9)
        var ceiling = AlertThreshold(
            ThresholdSpec(targetAlertRate: 0.0001, minScore: 0, maxScore: 0.4, warmupEvents: 100))
        #expect(Self.flaggedRate(&ceiling, &rng, 50_000) > 0.1)  // capped at 0.4: about 13 % of scores lie above
        var warming = AlertThreshold(ThresholdSpec(targetAlertRate: 0.5, minScore: 0, warmupEvents: 1_000))
        #expect(Self.flaggedRate(&warming, &rng, 999) == 0)
    }

    @Test func hysteresisKeepsTheThresholdStill() {
        func changes(hysteresis: Double) -> Int {
            var rng = SeededRandom(seed: 4)
            var t = AlertThreshold(
                ThresholdSpec(targetAlertRate: 0.01, minScore: 0, hysteresis: hysteresis, warmupEvents: 1_000))
            var last = t.current
            var n = 0
            for i in 0..<100_000 {
                _ = t.decide(score: Self.score(&rng), entity: UInt64(i), time: Int64(i))
                if t.current != last {
                    n += 1
                    last = t.current
                }
            }
            return n
        }
        let free = changes(hysteresis: 0)
        let steady = changes(hysteresis: 0.02)
        #expect(steady < free / 10, "\(steady) changes with hysteresis, \(free) without")
    }

    @Test func suppressionAlertsOncePerEntityPerInterval() {
        var t = AlertThreshold(
            ThresholdSpec(mode: .fixed, fixedScore: 0.5, minScore: 0, suppress: .seconds(600), warmupEvents: 0))
        let first = t.decide(score: 0.9, entity: 7, time: 0)
        let again = t.decide(score: 0.9, entity: 7, time: 300_000)
        let other = t.decide(score: 0.9, entity: 8, time: 300_000)
        let later = t.decide(score: 0.9, entity: 7, time: 600_001)
        #expect(first.alert && !again.alert && again.flagged && again.suppressed && other.alert && later.alert)
    }

    @Test func protectKeepsFlaggedEventsOutOfLearning() {
        var protected = AlertThreshold(ThresholdSpec(mode: .fixed, fixedScore: 0.5, warmupEvents: 0))
        #expect(!protected.decide(score: 0.9, entity: 1, time: 0).learn)
        #expect(protected.decide(score: 0.1, entity: 1, time: 0).learn)
        var open = AlertThreshold(ThresholdSpec(mode: .fixed, fixedScore: 0.5, protect: false, warmupEvents: 0))
        #expect(open.decide(score: 0.9, entity: 1, time: 0).learn)
    }

    /// With labels, mode precision finds the threshold whose alerts are right as often as asked.
    @Test func precisionModeHoldsTheTargetPrecision() {
        var rng = SeededRandom(seed: 5)
        var t = AlertThreshold(
            ThresholdSpec(
                mode: .precision, targetAlertRate: 0.02, targetPrecision: 0.8, minScore: 0, warmupEvents: 1_000))
        var alerts = 0
        var correct = 0
        for i in 0..<200_000 {
            let s = pow(rng.unit(), 3)  // mostly low scores
            let fraud = rng.chance(s)  // the higher the score, the likelier fraud
            let d = t.decide(score: s, entity: UInt64(i), time: Int64(i))
            t.observe(score: s, label: fraud)
            if i > 50_000, d.alert {
                alerts += 1
                if fraud { correct += 1 }
            }
        }
        let precision = Double(correct) / Double(max(1, alerts))
        #expect(alerts > 100)
        #expect(precision >= 0.75, "precision \(precision) over \(alerts) alerts")
    }

    /// A reloaded target takes effect at once.
    @Test func aReloadedTargetAppliesImmediately() {
        var rng = SeededRandom(seed: 6)
        var t = AlertThreshold(Self.spec(rate: 0.01))
        _ = Self.flaggedRate(&t, &rng, 50_000)
        t.apply(Self.spec(rate: 0.05))
        let after = Self.flaggedRate(&t, &rng, 20_000)
        #expect(abs(after - 0.05) < 0.01, "alert rate right after the reload \(after)")
    }
}

@Suite(.ownThread) struct AlertThresholdCheckpointTests {
    /// A restored threshold makes exactly the decisions the original makes from then on.
    @Test func roundTripContinuesIdentically() throws {
        var rng = SeededRandom(seed: 9)
        let spec = ThresholdSpec(
            mode: .precision, targetAlertRate: 0.02, targetPrecision: 0.7, minScore: 0, suppress: .seconds(60),
            warmupEvents: 1_000)
        var original = AlertThreshold(spec)
        for i in 0..<30_000 {
            let s = pow(rng.unit(), 3)
            _ = original.decide(score: s, entity: UInt64(i % 500), time: Int64(i) * 100)
            original.observe(score: s, label: rng.chance(s))
        }
        var writer = BinaryWriter()
        original.encode(into: &writer)
        var reader = BinaryReader(writer.bytes)
        var restored = try AlertThreshold(spec, decoding: &reader)
        #expect(reader.isAtEnd)
        #expect(restored.current == original.current && restored.events == original.events)
        for i in 30_000..<40_000 {
            let s = pow(rng.unit(), 3)
            let label = rng.chance(s)
            let a = original.decide(score: s, entity: UInt64(i % 500), time: Int64(i) * 100)
            let b = restored.decide(score: s, entity: UInt64(i % 500), time: Int64(i) * 100)
            #expect(a == b)
            original.observe(score: s, label: label)
            restored.observe(score: s, label: label)
        }
        for cut in stride(from: 0, to: writer.bytes.count, by: max(1, writer.bytes.count / 50)) {
            var truncated = BinaryReader(Array(writer.bytes[..<cut]))
            #expect(throws: CheckpointError.self) { try AlertThreshold(spec, decoding: &truncated) }
        }
    }
}
