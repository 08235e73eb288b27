import Foundation
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

@testable import VigilEngine

/// The ingest loop's bound on records in flight: a backlog is read batch by batch, never with
/// more than `IngestBounds.inFlightRecords` records between poll and outputs, and the wait that
/// enforces it lets go once the workers hand chunks on.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(10)))
struct IngestBoundsTests {
    @Test func aWaitReturnsOnceEnoughRecordsAreDone() async throws {
        let records = InFlightRecords()
        records.add(10_000)
        records.add(4_000)
        #expect(records.current == 14_000 && records.peak == 14_000)
        final class Flag: Sendable {
            let raised = Atomic<Bool>(false)
            var isRaised: Bool { raised.load(ordering: .acquiring) }
        }
        let waited = Flag()
        let waiter = Thread {
            records.wait(atMost: 5_000)
            waited.raised.store(true, ordering: .releasing)
        }
        waiter.start()
        try await Task.sleep(for: .milliseconds(50))
        #expect(!waited.isRaised, "14,000 in flight is above 5,000")
        records.done(10_000)
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while !waited.isRaised, ContinuousClock.now < deadline { await Task.yield() }
        #expect(waited.isRaised)
        #expect(records.current == 4_000 && records.peak == 14_000 && records.limitWaits == 1)
    }

    /// 40,000 events wait on the broker (librdkafka's mock cluster) before the engine starts: it
    /// reads them all, and the engine never holds more than the bound.
    @Test func aBacklogIsReadWithinTheBound() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, logger: .silent)
        for topic in ["payments", "alerts", "dlq"] { try cluster.createTopic(topic, partitions: 2) }
        let data = EngineIntegrationTests.generated(40_000, seed: 5)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                common: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)),
            logger: .silent)
        for (event, card) in zip(data.events, data.cards) {
            try producer.send(topic: "payments", key: Array(card.utf8), value: event)
        }
        try producer.close(deadline: .seconds(30))
        let topology = try EngineTimingTests.topology(name: "bounds", cluster: cluster)
        let engine = try KafkaEngine(topology: topology, workers: 2, logger: .silent)
        let running = Task { try await offPool { try engine.run() } }
        #expect(await engine.stats.waitUntil(timeout: .seconds(120)) { $0.eventsScored >= 40_000 })
        engine.stop()
        try await running.value
        let inFlight = engine.ingest.pipeline.inFlight
        #expect(inFlight.peak <= IngestBounds.inFlightRecords, "peak \(inFlight.peak)")
        #expect(inFlight.peak > 0)
        #expect(inFlight.current == 0, "every chunk was handed on")
    }
}
