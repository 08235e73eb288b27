import Foundation
import PropertyBased
import Testing
import VigilCore
import VigilTestKit

@testable import VigilFeatures

/// Runs `events` (in arrival order) through a fresh extractor, one event per batch position, and
/// returns each event's features by id with its outcome.
func run(
    _ events: [TestEvent], _ extractor: FeatureExtractor, batchSize: Int = 7
) -> [Int: (features: [String: Double], outcome: FeatureExtractor.Outcome)] {
    var result: [Int: (features: [String: Double], outcome: FeatureExtractor.Outcome)] = [:]
    var matrix = extractor.makeMatrix()
    var outcomes: [FeatureExtractor.Outcome] = []
    var start = 0
    while start < events.count {
        let chunk = Array(events[start..<min(events.count, start + batchSize)])
        extractor.process(TestTopology.batch(chunk), into: &matrix, outcomes: &outcomes)
        for (i, e) in chunk.enumerated() {
            var features: [String: Double] = [:]
            for (c, name) in matrix.names.enumerated() { features[name] = matrix.values[i * matrix.names.count + c] }
            result[e.id] = (features, outcomes[i])
        }
        start += batchSize
    }
    return result
}

/// Equal as features: both NaN, or within a relative 1e-9 (1e-4 for spreads, whose square root
/// magnifies rounding near zero).
func same(_ a: Double, _ b: Double, name: String) -> Bool {
    if a.isNaN || b.isNaN { return a.isNaN && b.isNaN }
    let tolerance = name.contains("std") || name.contains("variance") || name == "z" ? 1e-4 : 1e-9
    return abs(a - b) <= tolerance * max(1, abs(a), abs(b))
}

@Suite(.ownThread) struct FeatureExtractorTests {
    static let words = Gen.uint64(in: 0 ... .max).array(of: 1...150)

    /// Feeds `events` (arrival order) to an extractor and to the brute-force reference, and
    /// records every outcome or feature on which they differ.
    static func checkAgainstReference(_ events: [TestEvent], reorder: Int, panes: Int = 8, scoreLate: Bool = true) {
        let extractor = try! TestTopology.extractor(
            lateness: .seconds(60), reorder: reorder, scoreLate: scoreLate, panes: panes)
        let got = run(events, extractor)
        var reference = FeatureReference(latenessMs: 60_000, reorder: reorder, panes: panes)
        for (arrival, e) in events.enumerated() {
            let (expected, accepted) = reference.process(e, arrival: arrival, scoreLate: scoreLate)
            let actual = got[e.id]!
            #expect(actual.outcome == (accepted ? .accepted : scoreLate ? .lateScored : .lateRejected), "\(e)")
            guard let expected else { continue }  // rejected: no features to compare
            for (name, value) in expected where !same(actual.features[name]!, value, name: name) {
                Issue.record("\(name) of \(e): got \(actual.features[name]!), reference \(value)")
            }
        }
    }

    /// Every aggregation against the brute-force reference, on random streams up to 90 s out of
    /// order with an allowed lateness of 60 s: some events are late, most are not.
    @Test(.timeLimit(.minutes(10))) func everyAggregationMatchesBruteForceOnOutOfOrderStreams() async throws {
        await propertyCheck(count: 150, input: Self.words) { words in
            Self.checkAgainstReference(TestEvent.stream(words, maxDelay: 90_000), reorder: 64)
        }
    }

    /// Found by the test above (whose shrinking of it ran for minutes, which looked like a hang):
    /// five distinct merchants among the unfolded events of one window. The distinct count
    /// compared the fifth with every unfolded event, itself included, and never counted it.
    @Test func aDistinctCountOverMoreThanFourUnfoldedValuesCountsEveryValue() {
        let words: [UInt64] = [
            18_446_744_073_709_551_615, 10_973_317_991_423_698_461, 8_158_001_696_278_907_298, 0,
            3_862_555_831_420_531_743, 14_806_560_414_001_465_864, 927,
        ]
        Self.checkAgainstReference(TestEvent.stream(words, maxDelay: 90_000), reorder: 64)
    }

    /// The same with a reorder buffer of 2: bursts fold early, so fewer late events are exact and
    /// more are late; the reference applies the same documented rule.
    @Test(.timeLimit(.minutes(10))) func smallReorderBufferFollowsTheDocumentedRule() async throws {
        await propertyCheck(count: 150, input: Self.words) { words in
            Self.checkAgainstReference(TestEvent.stream(words, maxDelay: 90_000, maxGap: 30_000), reorder: 2)
        }
    }

    /// Four panes, no reorder buffer, late events rejected for the dead letters.
    @Test(.timeLimit(.minutes(10))) func compactStateAndRejectedLateEventsMatchTheReference() async throws {
        await propertyCheck(count: 150, input: Self.words) { words in
            Self.checkAgainstReference(
                TestEvent.stream(words, maxDelay: 90_000, maxGap: 60_000), reorder: 0, panes: 4, scoreLate: false)
        }
    }

    /// Out of order within the lateness: an event whose time-order predecessors have all arrived
    /// gets exactly the features it gets when every event arrives sorted by time, however late it
    /// is itself, and later events never leak into it. (An event overtaken by an earlier one still
    /// in flight cannot see that one; no stream processor can without waiting.)
    @Test(.timeLimit(.minutes(10))) func outOfOrderWithinLatenessEqualsInOrder() async throws {
        await propertyCheck(count: 150, input: Self.words) { words in
            let shuffled = TestEvent.stream(words, maxDelay: 59_000)
            let arrival = Dictionary(uniqueKeysWithValues: shuffled.enumerated().map { ($0.element.id, $0.offset) })
            let sorted = shuffled.sorted { ($0.time, arrival[$0.id]!) < ($1.time, arrival[$1.id]!) }
            let a = run(shuffled, try! TestTopology.extractor(lateness: .seconds(60), reorder: 64))
            let b = run(sorted, try! TestTopology.extractor(lateness: .seconds(60), reorder: 64), batchSize: 5)
            var latestArrivalBefore: [Int: Int] = [:]  // per entity, over the sorted prefix
            for e in sorted {
                let complete = (latestArrivalBefore[e.entity] ?? -1) < arrival[e.id]!
                latestArrivalBefore[e.entity] = max(latestArrivalBefore[e.entity] ?? -1, arrival[e.id]!)
                #expect(a[e.id]!.outcome == .accepted)
                guard complete else { continue }
                for (name, value) in b[e.id]!.features where !same(a[e.id]!.features[name]!, value, name: name) {
                    Issue.record("\(name) of \(e): out of order \(a[e.id]!.features[name]!), in order \(value)")
                }
            }
        }
    }

    /// With `late: dead_letter`, a too-late event gets no features and leaves state untouched.
    @Test func lateEventsCanBeRejected() throws {
        let extractor = try TestTopology.extractor(lateness: .seconds(10), reorder: 2, scoreLate: false)
        let base = TestEvent.start
        let events = [
            TestEvent(id: 0, entity: 0, time: base, amount: 5, merchant: 0, country: 0),
            TestEvent(id: 1, entity: 0, time: base + 60_000, amount: 7, merchant: 1, country: 0),
            TestEvent(id: 2, entity: 0, time: base + 30_000, amount: 9, merchant: 2, country: 1),  // 30 s late
            TestEvent(id: 3, entity: 0, time: base + 61_000, amount: 1, merchant: 1, country: 0),
        ]
        let got = run(events, extractor, batchSize: 4)
        #expect(got[2]!.outcome == .lateRejected)
        #expect(got[2]!.features["count_10m"]!.isNaN)
        #expect(got[3]!.features["count_10m"] == 3)  // the rejected event is not counted
        #expect(got[3]!.features["since_last"] == 1)
        #expect(extractor.counters.lateRejected == 1)
        #expect(extractor.counters.accepted == 3)
    }

    /// Distinct counts stop at the number of values remembered; novelty forgets the least
    /// recently used value beyond it. Both are documented limits, checked here.
    @Test func distinctAndNoveltyMemoriesAreBounded() throws {
        let extractor = try TestTopology.extractor(lateness: .zero, reorder: 0)
        let schema = TestTopology.layout
        var batch = EventBatch(layout: schema)
        let key = StableHash.hash("card-a")
        for i in 0..<20 {
            batch.append(
                key: key, time: TestEvent.start + Int64(i), numbers: [1],
                categories: [key, StableHash.category("m\(i)"), StableHash.category("c\(i)")])
        }
        // Country c0 again, after 19 others: forgotten, so novel again.
        batch.append(
            key: key, time: TestEvent.start + 20, numbers: [1],
            categories: [key, StableHash.category("m0"), StableHash.category("c0")])
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        extractor.process(batch, into: &matrix, outcomes: &outcomes)
        let distinct = (0..<21).map { matrix.value(row: $0, "merchants_10m")! }
        #expect(distinct[0] == 1)
        #expect(distinct[7] == 8)
        #expect(distinct[19] == Double(FeaturePlan.valuesRemembered + 1))  // 8 remembered + this event
        #expect(matrix.value(row: 20, "new_country") == 1)
    }

    /// Idle entities are forgotten after the TTL, in event time, and counted.
    @Test func idleEntitiesExpire() throws {
        let plan = try FeaturePlan(features: TestTopology.features, layout: TestTopology.layout)
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: .seconds(1), idleTTL: .seconds(3600), maxEntities: 100)
        var batch = EventBatch(layout: TestTopology.layout)
        for i in 0..<50 {
            let key = StableHash.hash("k\(i)")
            batch.append(key: key, time: TestEvent.start, numbers: [1], categories: [key, 1, 1])
        }
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        extractor.process(batch, into: &matrix, outcomes: &outcomes)
        #expect(extractor.entityCount == 50)
        batch.removeAll()
        let later = StableHash.hash("later")
        // The background sweep looks at one row per 16 accepted events (it passed over 3 rows while
        // the first 50 came): 64 × 16 events two hours later take it around all 51 rows, in
        // batches of any size.
        let n = 64 * 16
        for i in 0..<n {
            batch.append(
                key: later, time: TestEvent.start + 7_200_000 + Int64(i), numbers: [1], categories: [later, 1, 1])
        }
        for part in [0..<100, 100..<101, 101..<n] {
            var slice = EventBatch(layout: TestTopology.layout)
            for r in part {
                slice.append(key: later, time: batch.times[r], numbers: [1], categories: [later, 1, 1])
            }
            extractor.process(slice, into: &matrix, outcomes: &outcomes)
        }
        #expect(extractor.entityCount == 1)
        #expect(extractor.counters.evictedIdle == 50)
    }

    /// Ten million distinct keys through a store limited to 50,000 entities: the store never
    /// grows past its limit, its memory stays what the limit allows, and every eviction counts.
    @Test(.timeLimit(.minutes(10))) func memoryStaysBoundedUnderTenMillionKeys() throws {
        let features: [FeatureSpec] = [
            .init(name: "count_10m", kind: .window(key: "card", length: .seconds(600), aggregate: .count, of: nil)),
            .init(name: "since_last", kind: .timeSinceLast(key: "card")),
        ]
        let plan = try FeaturePlan(features: features, layout: TestTopology.layout)
        let limit = 50_000
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: .seconds(30), idleTTL: .seconds(30 * 86_400), maxEntities: limit)
        var batch = EventBatch(layout: TestTopology.layout, capacity: 10_000)
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        let total = 10_000_000
        var maxBytes = 0
        for chunk in 0..<(total / 10_000) {
            batch.removeAll()
            for i in 0..<10_000 {
                // Distinct keys without hashing ten million strings: the fingerprint is the counter.
                let key = UInt64(chunk * 10_000 + i) &* 0x9E37_79B9_7F4A_7C15
                batch.append(key: key, time: TestEvent.start + Int64(chunk), numbers: [1], categories: [key, 1, 1])
            }
            extractor.process(batch, into: &matrix, outcomes: &outcomes)
            #expect(extractor.entityCount <= limit)
            maxBytes = max(maxBytes, extractor.stateBytes)
        }
        #expect(extractor.entityCount == limit)
        #expect(extractor.counters.entitiesCreated == total)
        #expect(extractor.counters.evictedForCapacity == total - limit)
        // Rows for the limit plus a table at most 80% full, nothing more.
        let bound = limit * plan.bytesPerEntityRow + 131_072 * 8
        #expect(maxBytes <= bound, "state grew to \(maxBytes) bytes, bound \(bound)")
    }
}

@Suite(.ownThread) struct FeatureEdgeCaseTests {
    /// Two events at one instant, a newer one, then a late one at that instant: the late event's
    /// z-score history weighs exactly 2, and the implementation (which subtracts the newer event
    /// from sums kept as of the newest) must agree with the reference on which side of 2 it is.
    @Test func historyOfExactlyTwoEventsAgreesWithTheReference() {
        let t = TestEvent.start
        for offset in stride(from: Int64(1), through: 59_000, by: 997) {  // rounding differs by offset
            let events = [
                TestEvent(id: 0, entity: 0, time: t, amount: 10, merchant: 0, country: 0),
                TestEvent(id: 1, entity: 0, time: t, amount: 30, merchant: 1, country: 0),
                TestEvent(id: 2, entity: 0, time: t + offset, amount: 50, merchant: 2, country: 0),
                TestEvent(id: 3, entity: 0, time: t, amount: 25, merchant: 3, country: 0),
            ]
            FeatureExtractorTests.checkAgainstReference(events, reorder: 64)
        }
    }
}
