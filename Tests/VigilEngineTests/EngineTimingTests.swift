import Foundation
import Logging
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

@testable import VigilEngine

/// The engine's timers on a manual clock, the whole engine running against librdkafka's
/// in-process mock cluster: the checkpoint interval, the run-time bound and the shutdown
/// deadline fire when the test moves the clock, never because wall time passed.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(10)))
struct EngineTimingTests {
    let cluster: KafkaMockCluster
    let clock = ManualClock()

    init() throws {
        cluster = try KafkaMockCluster(brokers: 1, logger: .silent)
        for (topic, partitions) in [("payments", 1), ("alerts", 1), ("dlq", 1), ("checkpoints", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
    }

    /// The operations topology (a forest, no labels) against the mock brokers, checkpoints
    /// every 10 s of the engine's clock.
    var topology: Topology {
        get throws {
            try Self.topology(
                name: "timing", cluster: cluster, extra: "checkpoints: { topic: checkpoints, every: 10s }")
        }
    }

    /// A topology with card-payments' fields and features and a small forest, reading `payments`
    /// from the mock cluster, writing `alerts` and `dlq`, plus `extra` lines.
    static func topology(name: String, cluster: KafkaMockCluster, extra: String = "") throws -> Topology {
        let fields = try cardPaymentFields()
        return try TopologyLoader.parse(
            """
            name: \(name)
            source:
              kafka: { brokers: "\(cluster.bootstrapServers.joined(separator: ","))", topics: [payments], group: \(name), start_from: earliest }
              format: json
              key: card_id
              id: txn_id
              time: { field: ts, format: unix_ms }
            \(fields)
            models:
              - { name: iforest, kind: isolation_forest, trees: 20, sample: 64, seed: 7 }
            threshold: { target_alert_rate: 0.01, warmup_events: 500 }
            alerts: { topic: alerts }
            dead_letter: { topic: dlq }
            \(extra)

            """)
    }

    /// The `fields:` and `features:` blocks of the shipped card-payments topology.
    static func cardPaymentFields() throws -> Substring {
        let cardPayments = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        return cardPayments[
            cardPayments.range(of: "\nfields:")!.lowerBound..<cardPayments.range(of: "\nmodels:")!.lowerBound]
    }

    func produce(_ n: Int, seed: UInt64) throws {
        let data = EngineIntegrationTests.generated(n, seed: seed)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                common: KafkaConfiguration(bootstrapServers: cluster.bootstrapServers)),
            logger: .silent)
        for (event, card) in zip(data.events, data.cards) {
            try producer.send(topic: "payments", key: Array(card.utf8), value: event, partition: 0)
        }
        try producer.close(deadline: .seconds(30))
    }

    @Test func checkpointsFollowTheEngineClock() async throws {
        let engine = try KafkaEngine(topology: try topology, workers: 1, logger: .silent, clock: EngineClock(clock))
        let running = Task { try await offPool { try engine.run() } }
        await engine.waitFor(.running)
        try produce(3000, seed: 3)
        #expect(await engine.stats.waitUntil(timeout: .seconds(60)) { $0.eventsScored >= 3000 })
        #expect(engine.stats.checkpoints == 0, "no time has passed on the engine's clock")
        clock.advance(by: .seconds(10))
        #expect(await engine.stats.waitUntil(timeout: .seconds(60)) { $0.checkpoints >= 1 })
        #expect(engine.lastCheckpointSequence == 1)
        engine.stop()
        try await running.value
        #expect(engine.phase == .stopped)
        #expect(engine.stats.checkpoints == 1, "nothing was read after the cut: no final checkpoint")
        let store = CheckpointStore(
            spec: try topology.checkpoints!,
            clients: try KafkaClients(brokers: cluster.bootstrapServers, name: "timing"),
            instance: KafkaEngine.defaultInstance, logger: .silent)
        let stored = try store.scan().stored.first
        #expect(stored?.sequence == 1)
        let checkpoint = try EngineCheckpoint.decode(try #require(stored).bytes, topology: "timing")
        #expect(checkpoint.reason == "interval")
        #expect(checkpoint.offsets == [SourceOffset(topic: "payments", partition: 0, offset: 3000)])
    }

    @Test func theRunTimerStopsTheEngineWhenItsTimeIsUp() async throws {
        let engine = try KafkaEngine(topology: try topology, workers: 1, logger: .silent, clock: EngineClock(clock))
        let running = Task { try await offPool { try engine.run() } }
        await engine.waitFor(.running)
        let timer = Task { try await RunTimer(engine: engine, duration: .seconds(60), clock: EngineClock(clock)).run() }
        await clock.waitForSleeps(1)
        clock.advance(by: .seconds(59))
        #expect(engine.phase == .running)
        clock.advance(by: .seconds(1))
        try await timer.value
        try await running.value
        #expect(engine.phase == .stopped)
    }

    @Test func theWatchdogFiresOnlyWhenAStopOutlastsItsDeadline() async throws {
        let engine = try KafkaEngine(topology: try topology, workers: 1, logger: .silent)
        let expired = Mutex<EnginePhase?>(nil)
        let watchdog = ShutdownWatchdog(engine: engine, deadline: .seconds(30), clock: EngineClock(clock)) { phase in
            expired.withLock { $0 = phase }
        }
        let watching = Task { try await watchdog.run() }
        defer { watching.cancel() }
        // Phases are driven by hand here: a stop that hangs while flushing.
        engine.phases.advance(to: .restoring)
        engine.phases.advance(to: .running)
        engine.phases.advance(to: .draining)
        engine.phases.advance(to: .flushing)
        await clock.waitForSleeps(1)
        clock.advance(by: .seconds(29))
        #expect(expired.withLock { $0 } == nil)
        clock.advance(by: .seconds(1))
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while expired.withLock({ $0 }) == nil, ContinuousClock.now < deadline { await Task.yield() }
        #expect(expired.withLock { $0 } == .flushing)
    }

    @Test func theWatchdogStaysQuietWhenTheStopFinishesInTime() async throws {
        let engine = try KafkaEngine(topology: try topology, workers: 1, logger: .silent)
        let expired = Mutex<EnginePhase?>(nil)
        let watchdog = ShutdownWatchdog(engine: engine, deadline: .seconds(30), clock: EngineClock(clock)) { phase in
            expired.withLock { $0 = phase }
        }
        let watching = Task { try await watchdog.run() }
        engine.phases.advance(to: .draining)
        await clock.waitForSleeps(1)
        engine.phases.advance(to: .stopped)
        clock.advance(by: .seconds(60))
        watching.cancel()
        _ = try? await watching.value
        #expect(expired.withLock { $0 } == nil)
    }
}
