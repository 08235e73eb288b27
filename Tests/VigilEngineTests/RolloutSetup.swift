import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilSynthetic
import VigilTestKit

/// Fresh topics, group and topology file for one rollout test: card-payments' fields and
/// features, the models given, a labels topic, checkpoints, audit, and an admin endpoint.
struct RolloutSetup {
    let id: String
    let brokers: String
    let source: String
    let labels: String
    let alerts: String
    let audit: String
    let checkpoints: String
    let file: String
    let adminPort: Int
    /// Partitions of the topics: events go by key when there are several, labels in turn.
    let partitions: Int
    var topology: Topology { get throws { try TopologyLoader.load(path: file) } }

    /// The regression that reads the labels topic (every topology here has one: labels reach
    /// the models' live quality only through a model that learns from them).
    static func regression(role: String, extra: String = "") -> String {
        """
          - name: lr
            kind: logistic_regression
            role: \(role)
            positive_weight: 50
            labels: { topic: LABELS, key: txn_id, field: is_fraud, expire: 1h }
        \(extra)
        """
    }

    static func forest(
        _ name: String, role: String, trees: Int = 50, sample: Int = 256, seed: Int = 7, extra: String = ""
    )
        -> String
    {
        """
          - name: \(name)
            kind: isolation_forest
            role: \(role)
            trees: \(trees)
            sample: \(sample)
            seed: \(seed)
            features: [amount, txn_count_10m, amount_sum_1h, amount_z, merchants_1h, new_country, since_last, amount_vs_day]
        \(extra)
        """
    }

    init(
        _ name: String, source: String? = nil, labels: String? = nil, models: String, extra: String = "",
        partitions: Int = 1
    ) throws {
        self.partitions = partitions
        brokers = try TestBroker.address()
        id = TestBroker.unique(name)
        self.source = source ?? "\(id)-payments"
        self.labels = labels ?? "\(id)-labels"
        alerts = "\(id)-alerts"
        audit = "\(id)-audit"
        checkpoints = "\(id)-checkpoints"
        adminPort = try PrivateBroker.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        file = directory.appendingPathComponent("topology.yaml").path
        let cardPayments = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        let fields = cardPayments[
            cardPayments.range(of: "\nfields:")!.lowerBound..<cardPayments.range(of: "\nmodels:")!.lowerBound]
        let text = """
            name: rollout-test
            source:
              kafka:
                brokers: \(brokers)
                topics: [\(self.source)]
                group: \(id)-group
                start_from: earliest
                partitions: \(partitions)
              format: json
              key: card_id
              id: txn_id
              time: { field: ts, format: unix_ms, allowed_lateness: 30s, late: score_only, missing: dead_letter }
            \(fields)
            models:
            \(models.replacingOccurrences(of: "LABELS", with: self.labels))
            threshold:
              mode: quantile
              target_alert_rate: 0.01
              min_score: 0.5
              suppress: 0s
              protect: false
              warmup_events: 1000
            alerts: { topic: \(alerts), explain: 2 }
            dead_letter: { topic: \(id)-dlq }
            checkpoints: { topic: \(checkpoints), every: 1h, keep: 5 }
            audit: { topic: \(audit) }
            admin: { listen: "127.0.0.1:\(adminPort)", token_env: VIGIL_TEST_ADMIN_TOKEN }
            \(extra)

            """
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let admin = try KafkaAdmin(
            configuration: KafkaConfiguration(bootstrapServers: [brokers], clientID: "vigil-tests"), logger: .quiet)
        _ = try self.topology.createMissingTopics(admin)
    }

    /// Produces events (partition 0, keyed by card) and then labels, waiting for the acks; with
    /// `labelRate`, the labels at about that many a second.
    func produce(_ events: [[UInt8]], keys: [String], labels labelRecords: [[UInt8]] = [], labelRate: Int? = nil)
        throws
    {
        let producer = try KafkaProducer(
            configuration: Self.inputProducer(brokers),
            logger: .quiet)
        let topic = producer.topic(source)
        for (e, key) in zip(events, keys) {
            try Array(key.utf8).withUnsafeBytes { k in
                try e.withUnsafeBytes { try producer.send(to: topic, key: k, value: $0, partition: 0) }
            }
        }
        let labelsTopic = producer.topic(labels)
        let start = ContinuousClock.now
        for (i, l) in labelRecords.enumerated() {
            if let labelRate, i % 100 == 0 {
                let due = start.advanced(by: .milliseconds(i * 1000 / labelRate))
                if due > .now { Thread.sleep(forTimeInterval: Double((due - .now).components.attoseconds) * 1e-18) }
            }
            try l.withUnsafeBytes { try producer.send(to: labelsTopic, key: nil, value: $0, partition: 0) }
        }
        try producer.close(deadline: .seconds(30))
        if producer.failedCount > 0 { throw SetupFailure(description: "\(producer.failedCount) records not delivered") }
    }

    /// The test input's producer: records wait up to 5 minutes for the broker, which three
    /// engines, the producer and the broker sharing two cores can keep busy for tens of seconds.
    static func inputProducer(_ brokers: String) -> KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(common: KafkaConfiguration(bootstrapServers: [brokers]))
        configuration.messageTimeout = .seconds(300)
        return configuration
    }

    /// Produces a generated stream in its own order, labels among the events as they become
    /// known, at about `rate` records a second; returns the events and labels sent.
    @discardableResult
    func produceStream(_ config: TransactionStream.Config, rate: Int) throws -> (events: Int, labels: Int) {
        let producer = try KafkaProducer(
            configuration: Self.inputProducer(brokers),
            logger: .quiet)
        let start = ContinuousClock.now
        let sent = try forEachRecord(of: config) { i, topic, key, value, partition in
            if i % 100 == 0 {
                let due = start.advanced(by: .milliseconds(i * 1000 / rate))
                if due > .now { Thread.sleep(forTimeInterval: Double((due - .now).components.attoseconds) * 1e-18) }
            }
            try producer.send(topic: topic, key: key, value: value, partition: partition)
        }
        try producer.close(deadline: .seconds(300))
        if producer.failedCount > 0 { throw SetupFailure(description: "\(producer.failedCount) records not delivered") }
        return sent
    }

    /// Produces a generated stream, events and labels, in one transaction (as fast as the broker
    /// takes it): every partition written to ends with the transaction's commit marker.
    @discardableResult
    func produceStreamInATransaction(_ config: TransactionStream.Config) throws -> (events: Int, labels: Int) {
        let producer = try TransactionalProducer(brokers: brokers, id: TestBroker.unique("txn"))
        let sent = try forEachRecord(of: config) { _, topic, key, value, partition in
            try producer.send(value, key: key, to: topic, partition: partition)
        }
        try producer.commit()
        return sent
    }

    /// Calls `send` with each record of the generated stream in its order: its index, topic,
    /// key, value and partition (events by their card's hash, labels round-robin); returns the
    /// events and labels sent.
    private func forEachRecord(
        of config: TransactionStream.Config,
        _ send: (Int, String, [UInt8]?, [UInt8], Int32) throws -> Void
    ) throws -> (events: Int, labels: Int) {
        var sent = (events: 0, labels: 0)
        for (i, record) in SyntheticEvents(config).enumerated() {
            switch record {
            case .event(_, let card, let json):
                try send(i, source, Array(card.utf8), json, Int32(StableHash.hash(card) % UInt64(partitions)))
                sent.events += 1
            case .label(_, let json):
                try send(i, labels, nil, json, Int32(sent.labels % partitions))
                sent.labels += 1
            }
        }
        return sent
    }

    /// The records of the audit topic of kind `rollout`, parsed.
    func rolloutRecords() throws -> [[String: Any]] {
        try TopicReader.readAll(brokers: brokers, topic: audit).compactMap { m in
            guard let v = m.value, let o = try JSONSerialization.jsonObject(with: Data(v)) as? [String: Any],
                o["kind"] as? String == "rollout"
            else { return nil }
            return o
        }
    }
}

/// A `KafkaEngine` running on a thread of its own in the test process, its chunks collected.
final class LiveEngine: Sendable {
    let engine: KafkaEngine
    private let collected = Collected()
    private let done = DispatchSemaphore(value: 0)
    private let failure = Collected.Failure()

    /// The finished chunks so far.
    var chunks: Collected { collected }

    final class Collected: Sendable {
        private let list = Mutex<[InputChunk]>([])
        func append(_ c: InputChunk) { list.withLock { $0.append(c) } }
        func withLock<T>(_ body: ([InputChunk]) -> T) -> T { list.withLock { body($0) } }

        final class Failure: Sendable {
            let message = Mutex<String?>(nil)
        }
    }

    init(_ setup: RolloutSetup, workers: Int = 2, stopAfterEvents: Int? = nil, instance: String? = nil) throws {
        let collected = collected
        engine = try KafkaEngine(
            topology: try setup.topology, topologyFile: setup.file, brokers: [setup.brokers], instance: instance,
            workers: workers, logger: .quiet, stopAfterEvents: stopAfterEvents, onChunk: { collected.append($0) })
        let (engine, done, failure) = (engine, done, failure)
        Thread {
            do { try engine.run() } catch { failure.message.withLock { $0 = "\(error)" } }
            done.signal()
        }.start()
    }

    /// Waits until the engine has scored `events` and read `labels` label records.
    func waitFor(events: Int, labels: Int = 0, timeout: Duration = .seconds(180)) async -> Bool {
        await engine.stats.waitUntil(timeout: timeout) {
            $0.eventsScored >= events && $0.labelsRead >= labels
        }
    }

    /// Stops the engine and waits for it; records a failure it reported.
    func stop() async throws {
        engine.stop()
        let done = done
        _ = try await offPool { done.wait(timeout: .now() + 120) }
        if let message = failure.message.withLock({ $0 }) { Issue.record("engine failed: \(message)") }
    }
}
