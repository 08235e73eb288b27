import Foundation
import Testing
import VigilCore
import VigilFeatures
import VigilModels
import VigilTestKit

@testable import VigilEngine

/// The keyed feature stages in the pipeline: their state goes through checkpoints, and it does not
/// depend on the number of workers.
@Suite(.ownThread) struct KeyedStagesTests {
    /// The shipped card topology with features of the merchant, the merchant category and the
    /// whole stream.
    static let topology = try! TopologyLoader.parse(text)
    static let text =
        StateAndReloadTests.text.replacingOccurrences(
            of: "  - { name: mcc,",
            with: """
                  - { name: merchant_count_1h, kind: window, key: merchant_id, window: 1h, agg: count }
                  - { name: merchant_cards_1d, kind: window, key: merchant_id, window: 1d, agg: distinct, of: card_id }
                  - { name: mcc_amount_z, kind: zscore, key: merchant_category, of: amount, halflife: 7d }
                  - { name: global_amount_z, kind: zscore, key: global, of: amount, halflife: 1d }
                  - { name: mcc,
                """)

    static func submit(_ pipeline: Pipeline, _ events: ArraySlice<[UInt8]>) {
        for start in stride(from: events.startIndex, to: events.endIndex, by: 4000) {
            let part = Array(events[start..<min(events.endIndex, start + 4000)])
            pipeline.submit(
                count: part.count, topics: ["payments"], raw: StateAndReloadTests.Lines(lines: part),
                position: { (0, 0, Int64(start + $0), nil) }, arrivalMs: 0)
        }
    }

    static func keyedSection(_ states: [WorkerState]) throws -> [UInt8] {
        try #require(states[0].section(Pipeline.keyedSection))
    }

    /// Stopped at 12,000 events, checkpointed, restored into a new pipeline and continued: the
    /// keyed state and every worker's windows end as an uninterrupted run's, byte for byte.
    @Test func aRestoredPipelineContinuesTheKeyedStagesExactly() throws {
        let events = EngineIntegrationTests.generated(24_000, seed: 4).events
        #expect(Self.topology.features.count == 14)

        let whole = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        whole.start()
        Self.submit(whole, events[...])
        whole.finish()
        let uninterrupted = whole.captureStopped()
        #expect(whole.summary().scored == 24_000)

        let first = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        first.start()
        Self.submit(first, events[..<12_000])
        first.finish()
        let stored = StateAndReloadTests.checkpoint(first, states: first.captureStopped()).encode()
        let checkpoint = try EngineCheckpoint.decode(stored, topology: Self.topology.name)

        let second = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        let report = try second.restore(checkpoint)
        #expect(report.restored.contains("keyed windows") && report.cold.isEmpty, "\(report)")
        second.start()
        Self.submit(second, events[12_000...])
        second.finish()
        let continued = second.captureStopped()
        #expect(try Self.keyedSection(continued) == Self.keyedSection(uninterrupted))
        for w in 0..<2 {
            #expect(continued[w].section("features") == uninterrupted[w].section("features"), "worker \(w)")
        }
        // Merchants, categories and the one global entity are all held.
        let stages = whole.builder.keyedStages
        #expect(stages.map(\.stage.key) == ["merchant_id", "merchant_category", "global"])
        #expect(stages[0].extractor.entityCount > 100 && stages[2].extractor.entityCount == 1)
    }

    /// The keyed stages see the events in the order they were read, whatever the number of
    /// workers: one worker and three hold the same keyed state.
    @Test func theKeyedStateDoesNotDependOnTheWorkers() throws {
        let events = EngineIntegrationTests.generated(10_000, seed: 9).events
        var sections: [[UInt8]] = []
        for workers in [1, 3] {
            let pipeline = try Pipeline(topology: Self.topology, workers: workers, sink: StateAndReloadTests.Counting())
            pipeline.start()
            Self.submit(pipeline, events[...])
            pipeline.finish()
            sections.append(try Self.keyedSection(pipeline.captureStopped()))
        }
        #expect(sections[0] == sections[1])
    }

    /// A damaged keyed section fails the restore with its reason (the engine then tries the
    /// previous checkpoint), and a checkpoint of a topology without these stages starts them cold.
    @Test func aDamagedKeyedSectionIsRefusedAndAnotherPlanStartsCold() throws {
        let first = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        first.start()
        Self.submit(first, EngineIntegrationTests.generated(3000, seed: 2).events[...])
        first.finish()
        var states = first.captureStopped()
        let k = try #require(states[0].sections.firstIndex { $0.name == Pipeline.keyedSection })
        states[0].sections[k].bytes.removeLast(9)
        let damaged = StateAndReloadTests.checkpoint(first, states: states)
        let target = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        #expect(throws: CheckpointError.self) { try target.restore(damaged) }

        let plain = try StateAndReloadTests.warmPipeline(3000)
        plain.finish()
        let other = StateAndReloadTests.checkpoint(plain, states: plain.captureStopped())
        let fresh = try Pipeline(topology: Self.topology, workers: 2, sink: StateAndReloadTests.Counting())
        #expect(try fresh.restore(other).cold.contains("keyed windows"))
    }

    /// Each stage reports, per key, the entities it holds and those it evicted (what `/metrics`
    /// shows as `vigil_keyed_entities` and `vigil_keyed_evictions_total`): at most
    /// `state.max_entities` merchants, and a capacity eviction for every merchant beyond them.
    @Test func theStagesReportTheirEntitiesAndEvictionsPerKey() throws {
        let topology = try TopologyLoader.parse(
            Self.text + "\nstate: { max_entities: 1000 }\n")
        let events = EngineIntegrationTests.generated(6_000, seed: 5).events
        var merchants = Set<String>()
        var categories = Set<String>()
        for e in events {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(e)) as? [String: Any])
            merchants.insert(try #require(o["merchant_id"] as? String))
            categories.insert(try #require(o["merchant_category"] as? String))
        }
        #expect(merchants.count > 2_000)
        let pipeline = try Pipeline(topology: topology, workers: 2, sink: StateAndReloadTests.Counting())
        pipeline.start()
        Self.submit(pipeline, events[...])
        pipeline.finish()
        let figures = pipeline.keyedGauges.map(\.snapshot)
        #expect(figures.map(\.key) == ["merchant_id", "merchant_category", "global"])
        let merchant = figures[0]
        #expect(merchant.entities == 1000)
        #expect(merchant.evictedForCapacity >= merchants.count - 1000)
        #expect(merchant.evictedIdle == 0)
        #expect(figures[1].entities == categories.count && figures[1].evictedForCapacity == 0)
        #expect(figures[2].entities == 1 && figures[2].evictedForCapacity == 0)
    }
}
