import Foundation
import Logging
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilTestKit

/// Fresh topics, group and topology file for one operations test: card-payments' fields and
/// features, an isolation forest only (no labels, so a run is a function of the source records
/// alone), checkpoints, audit, and optionally the admin endpoint.
struct OperationsSetup {
    let id: String
    let brokers: String
    let source: String
    let alerts: String
    let deadLetters: String
    let checkpoints: String
    let audit: String
    let group: String
    let directory: URL
    let file: String
    let adminPort: Int?
    let every: String
    let everyEvents: Int?
    let fileCopies: Bool
    /// `source.kafka.properties` (TLS), and the environment their `${…}` references read.
    let properties: [String: String]
    /// `source.kafka.consumer_properties`: the source consumer's own settings.
    let consumerProperties: [String: String]
    let environment: [String: String]
    /// Partitions of the topics (the source is produced to by key when there are several).
    let partitions: Int
    var topology: Topology { get throws { try TopologyLoader.load(path: file) } }
    /// The clients the engine makes from the topology; the set-up's own clients use the same.
    var clients: KafkaClients { get throws { try KafkaClients(topology: try topology, environment: environment) } }

    /// - Parameters:
    ///   - source: read this topic instead of a new one (runs compared on the same input).
    ///   - every: the checkpoint interval.
    ///   - fileCopies: also write checkpoints to a directory.
    ///   - brokers: another broker than the shared test broker.
    ///   - properties: the topology's `source.kafka.properties`; `environment` resolves them.
    ///   - consumerProperties: the topology's `source.kafka.consumer_properties`.
    init(
        _ name: String, source: String? = nil, every: String = "1s", everyEvents: Int? = nil, fileCopies: Bool = false,
        admin: Bool = false, targetRate: String = "0.005", brokers: String? = nil, properties: [String: String] = [:],
        consumerProperties: [String: String] = [:], environment: [String: String] = [:], partitions: Int = 1
    ) throws {
        self.partitions = partitions
        self.brokers = try brokers ?? TestBroker.address()
        self.properties = properties
        self.consumerProperties = consumerProperties
        self.environment = environment
        id = TestBroker.unique(name)
        self.source = source ?? "\(id)-payments"
        alerts = "\(id)-alerts"
        deadLetters = "\(id)-dlq"
        checkpoints = "\(id)-checkpoints"
        audit = "\(id)-audit"
        group = "\(id)-group"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        adminPort = admin ? try PrivateBroker.freePort() : nil
        self.every = every
        self.everyEvents = everyEvents
        self.fileCopies = fileCopies
        file = directory.appendingPathComponent("topology.yaml").path
        try write(targetRate: targetRate)
        _ = try self.topology.createMissingTopics(try clients.admin(logger: .quiet))
    }

    /// (Re)writes the topology file; `group` overrides the consumer group (a restart-only change).
    func write(targetRate: String = "0.005", group: String? = nil) throws {
        let cardPayments = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        let fields = cardPayments[
            cardPayments.range(of: "\nfields:")!.lowerBound..<cardPayments.range(of: "\nmodels:")!.lowerBound]
        var text = """
            name: ops-test
            source:
              kafka:
                brokers: \(brokers)
                topics: [\(source)]
                group: \(group ?? self.group)
                start_from: earliest
                partitions: \(partitions)
                properties: { \(properties.sorted { $0.key < $1.key }.map { "\($0.key): \"\($0.value)\"" }.joined(separator: ", ")) }
                consumer_properties: { \(consumerProperties.sorted { $0.key < $1.key }.map { "\($0.key): \"\($0.value)\"" }.joined(separator: ", ")) }
              format: json
              key: card_id
              id: txn_id
              time: { field: ts, format: unix_ms, allowed_lateness: 30s, late: score_only, missing: dead_letter }
            \(fields)
            models:
              - name: iforest
                kind: isolation_forest
                trees: 50
                sample: 256
                seed: 7
                features: [amount, txn_count_10m, amount_sum_1h, amount_z, merchants_1h, new_country, since_last, amount_vs_day]
            threshold:
              mode: quantile
              target_alert_rate: \(targetRate)
              min_score: 0.5
              hysteresis: 0.002
              suppress: 0s
              warmup_events: 2000
            alerts: { topic: \(alerts), explain: 3 }
            dead_letter: { topic: \(deadLetters) }
            checkpoints: { topic: \(checkpoints), every: \(every), keep: 5\(everyEvents.map { ", every_events: \($0)" } ?? "")\(fileCopies ? ", directory: \(directory.path)/checkpoints" : "") }
            audit: { topic: \(audit) }

            """
        if let adminPort {
            text += "admin: { listen: \"127.0.0.1:\(adminPort)\", token_env: VIGIL_TEST_ADMIN_TOKEN }\n"
        }
        // Written to a new file that replaces the old one, as editors do.
        let temporary = file + ".new"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        _ = rename(temporary, file)
    }

    /// The source partition of entity `key`: a fixed function of the key, as a keyed producer's
    /// partitioner is, so each entity is delivered by one partition.
    func partition(of key: String) -> Int32 { Int32(StableHash.hash(key) % UInt64(partitions)) }

    /// Produces `events` to the source (partition 0, or by key when there are several), keyed
    /// by `keys`, and waits for the acks; with `rate`, at about that many events a second.
    func produce(_ events: [[UInt8]], keys: [String], rate: Int? = nil) throws {
        let producer = try KafkaProducer(configuration: try clients.producer("tests"), logger: .quiet)
        let topic = producer.topic(source)
        let start = ContinuousClock.now
        for (i, (e, key)) in zip(events, keys).enumerated() {
            if let rate, i % 200 == 0 {
                let due = start.advanced(by: .milliseconds(i * 1000 / rate))
                if due > .now { Thread.sleep(forTimeInterval: Double((due - .now).components.attoseconds) * 1e-18) }
            }
            try Array(key.utf8).withUnsafeBytes { k in
                try e.withUnsafeBytes {
                    try producer.send(to: topic, key: k, value: $0, partition: partitions > 1 ? partition(of: key) : 0)
                }
            }
        }
        try producer.close(deadline: .seconds(30))
        if producer.failedCount > 0 {
            throw SetupFailure(description: "\(producer.failedCount) events not delivered to \(source)")
        }
    }

    /// The checkpoints kept, newest first.
    func storedCheckpoints() throws -> CheckpointStore.Scan {
        try checkpointStore().scan()
    }

    /// A store of this setup's checkpoint topic, as the engine's default instance.
    func checkpointStore() throws -> CheckpointStore {
        CheckpointStore(
            spec: try topology.checkpoints!, clients: try clients, instance: KafkaEngine.defaultInstance,
            logger: Logger.quiet)
    }

    /// Publishes `state` as a partition record of this setup's checkpoint topic.
    func publishPartitionState(_ state: PartitionState) throws {
        let store = try checkpointStore()
        defer { store.close() }
        try store.publish(
            partition: state.encode(topology: store.topology), of: TopicPartition(state.topic, state.partition),
            sequence: UInt64(Date().timeIntervalSince1970 * 1_000_000))
    }

    /// The newest state stored for each source partition (the one covering the most records),
    /// whoever wrote it.
    func partitionStates() throws -> [TopicPartition: PartitionState] {
        let tps = Set((0..<partitions).map { TopicPartition(source, Int32($0)) })
        let store = try checkpointStore()
        defer { store.close() }
        var out: [TopicPartition: PartitionState] = [:]
        for (tp, stored) in try store.partitionRecords(for: tps) {
            for s in stored {
                let state = try PartitionState.decode(s.bytes, topology: "ops-test")
                if state.offset > out[tp]?.offset ?? -1 { out[tp] = state }
            }
        }
        return out
    }

    /// Every record of `topic` from its start to its current end.
    /// - Parameter idle: read on past the partitions' reported ends until no record has come for
    ///   this long (for a broker whose reported ends lag, as Tansu's S3 storage does).
    func readAll(_ topic: String, idle: Duration? = nil) throws -> [KafkaMessage] {
        try TopicReader.readAll(clients.common("tests"), topic: topic, idle: idle)
    }

    /// The group's committed offset on the source's partition 0 (-1 when none).
    func committed() throws -> Int64 {
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(common: try clients.common("tests"), groupID: group),
            logger: .quiet)
        defer { consumer.close() }
        return try consumer.committedOffsets([TopicPartition(source, 0)])[TopicPartition(source, 0)] ?? -1
    }

    /// Polls the committed offset until it reaches `atLeast`; returns the last one read.
    func waitForCommitted(atLeast: Int64, timeout: Duration) async -> Int64 {
        let end = ContinuousClock.now.advanced(by: timeout)
        var last: Int64 = -1
        while ContinuousClock.now < end {
            last = (try? await offPool { try committed() }) ?? last
            if last >= atLeast { return last }
            try? await Task.sleep(for: .seconds(1))
        }
        return last
    }

    /// The `alert_id` of every record of the alerts topic (duplicates kept).
    func alertIDs(idle: Duration? = nil) throws -> [String] {
        try readAll(alerts, idle: idle).compactMap { m in
            guard let v = m.value, let o = try JSONSerialization.jsonObject(with: Data(v)) as? [String: Any] else {
                return nil
            }
            return o["alert_id"] as? String
        }
    }
}

/// A faulted run's alerts against an uninterrupted run's on the same input: ids the faulted run
/// missed, raised extra, and published more than once.
struct AlertComparison {
    var expected: Int
    var missing: Int
    var extra: Int
    var repeated: Int

    /// Runs `reference` uninterrupted (`vigil run` with `arguments`; its exit must be 0), then
    /// compares its alert ids with those `faulted` published.
    /// - Parameter idle: read past the reported ends (see `OperationsSetup.readAll`).
    static func uninterrupted(
        _ reference: OperationsSetup, against faulted: OperationsSetup, arguments: [String] = ["--until-end"],
        idle: Duration? = nil
    ) async throws -> AlertComparison {
        let run = try RunningVigil(OperationsTests.runArguments(reference, arguments))
        let exit = try await offPool { run.waitExit(timeout: .seconds(300)) }
        #expect(exit == 0, "the uninterrupted run: \(run.stderr.suffix(3000))")
        let expected = try await offPool { try reference.alertIDs(idle: idle) }
        let got = try await offPool { try faulted.alertIDs(idle: idle) }
        return AlertComparison(
            expected: expected.count, missing: Set(expected).subtracting(got).count,
            extra: Set(got).subtracting(expected).count, repeated: got.count - Set(got).count)
    }
}

/// Reads a topic from its start to its end without a consumer group.
enum TopicReader {
    static func readAll(brokers: String, topic: String, timeout: Duration = .seconds(60)) throws -> [KafkaMessage] {
        try readAll(
            KafkaConfiguration(bootstrapServers: [brokers], clientID: "vigil-tests"), topic: topic, timeout: timeout)
    }

    /// The same, with the clients' settings (TLS).
    /// - Parameter idle: also read past the reported ends until no record has come for this long.
    static func readAll(
        _ common: KafkaConfiguration, topic: String, timeout: Duration = .seconds(60), idle: Duration? = nil
    ) throws -> [KafkaMessage] {
        let partitions =
            try KafkaAdmin(configuration: common, logger: .quiet).metadata(timeout: .seconds(10)).topics[topic] ?? 0
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(common: common, groupID: TestBroker.unique("reader")),
            logger: Logger.quiet)
        defer { consumer.close() }
        var remaining: [TopicPartition: Int64] = [:]
        for p in 0..<partitions {
            let tp = TopicPartition(topic, Int32(p))
            let marks = try consumer.watermarks(tp)
            if marks.high > marks.low || idle != nil { remaining[tp] = marks.high }
        }
        guard !remaining.isEmpty else { return [] }
        try consumer.assign(remaining.mapValues { _ in KafkaConsumer.beginning })
        var out: [KafkaMessage] = []
        let end = ContinuousClock.now.advanced(by: timeout)
        var lastRecord = ContinuousClock.now
        while !remaining.isEmpty || idle.map({ lastRecord.advanced(by: $0) > .now }) == true, ContinuousClock.now < end
        {
            for m in try consumer.poll(maxMessages: 5000, timeout: .milliseconds(100)).messages {
                lastRecord = .now
                out.append(m)
                let tp = TopicPartition(m.topic, m.partition)
                if let last = remaining[tp], m.offset + 1 >= last { remaining[tp] = nil }
            }
        }
        if !remaining.isEmpty { throw SetupFailure(description: "\(topic) not read to its end within \(timeout)") }
        return out
    }
}

/// Why a test's set-up or read-back failed (thrown, since these run off the test's task).
struct SetupFailure: Error, CustomStringConvertible {
    var description: String
}
