import Foundation
import PropertyBased
import Testing
import VigilCore
import VigilTestKit

@testable import VigilFeatures

/// Features keyed by another field than the source key: the keyed stage in front of the workers,
/// and the primary plan that reads its outputs.
@Suite(.ownThread) struct KeyedFeaturesTests {
    static let words = Gen.uint64(in: 0 ... .max).array(of: 1...150)

    /// The aggregation tests' features, every keyed one moved from the card to `key`.
    static func features(keyedBy key: String) -> [FeatureSpec] {
        TestTopology.features.map { f in
            var f = f
            switch f.kind {
            case .window(_, let length, let aggregate, let of):
                f.kind = .window(key: key, length: length, aggregate: aggregate, of: of)
            case .decayed(_, let halflife, let aggregate, let of):
                f.kind = .decayed(key: key, halflife: halflife, aggregate: aggregate, of: of)
            case .zscore(_, let of, let halflife): f.kind = .zscore(key: key, of: of, halflife: halflife)
            case .timeSinceLast: f.kind = .timeSinceLast(key: key)
            case .novelty(_, let of): f.kind = .novelty(key: key, of: of)
            case .share(_, let of, let halflife): f.kind = .share(key: key, of: of, halflife: halflife)
            case .value, .category, .ratio, .calendar: break
            }
            return f
        }
    }

    /// `events` as a batch of `layout` (the schema's columns, then the keyed outputs, missing).
    static func batch(_ events: [TestEvent], layout: EventLayout, merchantMissing: (TestEvent) -> Bool = { _ in false })
        -> EventBatch
    {
        var batch = EventBatch(layout: layout, capacity: events.count)
        let extra = layout.numbers.count - 1
        for e in events {
            batch.append(
                key: StableHash.hash(TestEvent.entityKeys[e.entity]), time: e.time,
                numbers: [e.amount] + Array(repeating: .nan, count: extra),
                categories: [
                    StableHash.category(TestEvent.entityKeys[e.entity]),
                    merchantMissing(e) ? 0 : StableHash.category("m\(e.merchant)"),
                    StableHash.category("c\(e.country)"),
                ])
        }
        return batch
    }

    /// Runs `events` through the keyed stages and then the workers' plan (one extractor, keyed
    /// by card), `batchSize` events at a time; each event's features by id.
    static func run(
        _ events: [TestEvent], _ keyed: KeyedFeatures, batchSize: Int = 7, missing: (TestEvent) -> Bool = { _ in false }
    )
        -> [Int: [String: Double]]
    {
        let stages = keyed.stages.map {
            KeyedFeatureStage(
                $0, layout: keyed.layout, allowedLateness: .seconds(60), idleTTL: .seconds(30 * 86_400),
                maxEntities: 1000)
        }
        let workers = FeatureExtractor(
            plan: keyed.primary, allowedLateness: .seconds(60), idleTTL: .seconds(30 * 86_400), maxEntities: 1000)
        var matrix = workers.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        var result: [Int: [String: Double]] = [:]
        var start = 0
        while start < events.count {
            let chunk = Array(events[start..<min(events.count, start + batchSize)])
            var batch = Self.batch(chunk, layout: keyed.layout, merchantMissing: missing)
            for stage in stages { stage.apply(to: &batch) }
            workers.process(batch, into: &matrix, outcomes: &outcomes)
            for (i, e) in chunk.enumerated() {
                var features: [String: Double] = [:]
                for (c, name) in matrix.names.enumerated() {
                    features[name] = matrix.values[i * matrix.names.count + c]
                }
                result[e.id] = features
            }
            start += batchSize
        }
        return result
    }

    static func state(reorder: Int = 64) -> StateSpec {
        var state = StateSpec()
        state.reorderBuffer = reorder
        return state
    }

    /// Every aggregation keyed by the merchant, on random streams up to 90 s out of order: each
    /// event gets exactly the features the brute-force reference computes with the merchant as
    /// the entity. The ratio, computed by the workers from two keyed outputs, too.
    @Test(.timeLimit(.minutes(10))) func merchantKeyedAggregationsMatchBruteForce() async throws {
        let keyed = try KeyedFeatures(
            features: Self.features(keyedBy: "merchant"), schema: TestTopology.fields, sourceKey: "card",
            state: Self.state())
        #expect(keyed.stages.map(\.key) == ["merchant"])
        await propertyCheck(count: 100, input: Self.words) { words in
            let events = TestEvent.stream(words, maxDelay: 90_000)
            let got = Self.run(events, keyed)
            var reference = FeatureReference(latenessMs: 60_000, reorder: 64)
            for (arrival, e) in events.enumerated() {
                var byMerchant = e
                byMerchant.entity = e.merchant
                let expected = reference.process(byMerchant, arrival: arrival, scoreLate: true).features!
                for (name, value) in expected where !same(got[e.id]![name]!, value, name: name) {
                    Issue.record("\(name) of \(e): got \(got[e.id]![name]!), reference \(value)")
                }
            }
        }
    }

    /// `global` aggregates over every event, as if the whole stream were one entity; and the
    /// result does not depend on how the events were batched.
    @Test(.timeLimit(.minutes(10))) func globalAggregationsSeeEveryEventWhateverTheBatches() async throws {
        let keyed = try KeyedFeatures(
            features: Self.features(keyedBy: FeatureSpec.globalKey), schema: TestTopology.fields, sourceKey: "card",
            state: Self.state())
        #expect(keyed.stages.map(\.key) == ["global"] && keyed.stages[0].keyColumn == nil)
        await propertyCheck(count: 60, input: Self.words) { words in
            let events = TestEvent.stream(words, maxDelay: 90_000)
            let got = Self.run(events, keyed)
            let one = Self.run(events, keyed, batchSize: 1)
            var reference = FeatureReference(latenessMs: 60_000, reorder: 64)
            for (arrival, e) in events.enumerated() {
                var all = e
                all.entity = 0
                let expected = reference.process(all, arrival: arrival, scoreLate: true).features!
                for (name, value) in expected where !same(got[e.id]![name]!, value, name: name) {
                    Issue.record("\(name) of \(e): got \(got[e.id]![name]!), reference \(value)")
                }
                for (name, value) in got[e.id]! where !same(one[e.id]![name]!, value, name: name) {
                    Issue.record("\(name) of \(e): \(value) in batches of 7, \(one[e.id]![name]!) one by one")
                }
            }
        }
    }

    /// An event without the key gets missing values for that key's features and leaves its
    /// state alone; the card's own features are unaffected.
    @Test func anEventWithoutTheKeyGetsMissingValuesAndCountsNowhere() throws {
        var features = Self.features(keyedBy: "merchant")
        features.append(
            .init(name: "card_count", kind: .window(key: "card", length: .seconds(600), aggregate: .count, of: nil)))
        let keyed = try KeyedFeatures(
            features: features, schema: TestTopology.fields, sourceKey: "card", state: Self.state())
        let events = (0..<6).map {
            TestEvent(id: $0, entity: 0, time: TestEvent.start + Int64($0) * 1000, amount: 10, merchant: 1, country: 0)
        }
        let got = Self.run(events, keyed, batchSize: 4) { $0.id % 2 == 1 }
        for e in events {
            let f = got[e.id]!
            #expect(f["card_count"] == Double(e.id + 1), "the card sees every event")
            if e.id % 2 == 1 {
                #expect(f["count_10m"]!.isNaN && f["z"]!.isNaN, "no merchant: missing")
            } else {
                #expect(f["count_10m"] == Double(e.id / 2 + 1), "the merchant counts only its own events")
            }
        }
    }

    /// Keyed features change the workers' plan signature (a checkpoint of other stages is not
    /// restored into it), while a topology without them keeps the plan it always had.
    @Test func thePlanSignatureCoversTheKeyedStages() throws {
        let plain = try FeaturePlan(features: TestTopology.features, layout: TestTopology.layout, state: Self.state())
        let unkeyed = try KeyedFeatures(
            features: TestTopology.features, schema: TestTopology.fields, sourceKey: "card", state: Self.state())
        #expect(unkeyed.stages.isEmpty && unkeyed.layout == TestTopology.layout)
        #expect(unkeyed.primary.signature == plain.signature)
        let merchant = try KeyedFeatures(
            features: Self.features(keyedBy: "merchant"), schema: TestTopology.fields, sourceKey: "card",
            state: Self.state())
        let country = try KeyedFeatures(
            features: Self.features(keyedBy: "country"), schema: TestTopology.fields, sourceKey: "card",
            state: Self.state())
        #expect(merchant.primary.names == plain.names)
        #expect(merchant.primary.signature != country.primary.signature)
        #expect(merchant.primary.signature != plain.signature)
    }
}
