import Foundation
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilSynthetic
import VigilTestKit

/// `vigil run`'s engine against the real local broker that scripts/test.sh starts
/// (KAFKA_BOOTSTRAP): generated payments with labelled fraud and broken records go in through
/// Kafka, and alerts and dead letters come out through Kafka.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct EngineIntegrationTests {
    /// Fresh topics and group for one test, and the card-payments topology pointing at them.
    struct Setup {
        let source: String, labels: String, alerts: String, deadLetters: String
        let topology: Topology
        let brokers: String

        /// - Parameter brokers: another broker than the shared test broker.
        init(partitions: Int, brokers: String? = nil) throws {
            self.brokers = try brokers ?? TestBroker.address()
            let id = TestBroker.unique("engine")
            source = "\(id)-payments"
            labels = "\(id)-labels"
            alerts = "\(id)-alerts"
            deadLetters = "\(id)-dlq"
            var text = try String(
                contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
            for (old, new) in [
                ("topics: [payments]", "topics: [\(source)]"), ("payments-labels", labels), ("payments-alerts", alerts),
                ("payments-dlq", deadLetters), ("group: vigil-card-payments", "group: \(id)-group"),
                ("vigil-card-payments-checkpoints", "\(id)-checkpoints"),
                ("partitions: 4", "partitions: \(partitions)"),
            ] {
                #expect(text.contains(old), "card-payments.yaml no longer contains '\(old)'")
                text = text.replacingOccurrences(of: old, with: new)
            }
            topology = try TopologyLoader.parse(text)
            let admin = try KafkaAdmin(
                configuration: KafkaConfiguration(bootstrapServers: [self.brokers], clientID: "vigil-tests"),
                logger: .quiet)
            _ = try admin.ensureTopics(topology.topics, partitions: partitions)
        }

        /// Produces every record and waits for the acknowledgements. Event `i` is keyed `keys[i]`
        /// when given (the card, so one card's events share a partition), else spread over 97 keys.
        func produce(
            _ events: [[UInt8]], labels labelRecords: [[UInt8]] = [], partition: Int32? = nil, keys: [String]? = nil
        ) throws {
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(common: KafkaConfiguration(bootstrapServers: [brokers])),
                logger: .quiet)
            let eventsTopic = producer.topic(source)
            let labelsTopic = producer.topic(labels)
            for (i, e) in events.enumerated() {
                let key = Array((keys?[i] ?? "k\(i % 97)").utf8)
                try key.withUnsafeBytes { k in
                    try e.withUnsafeBytes { v in
                        try producer.send(to: eventsTopic, key: k, value: e.isEmpty ? nil : v, partition: partition)
                    }
                }
            }
            for l in labelRecords { try l.withUnsafeBytes { try producer.send(to: labelsTopic, key: nil, value: $0) } }
            try producer.close(deadline: .seconds(30))
            #expect(producer.failedCount == 0)
        }

        /// Runs the engine until it has processed `count` source records; returns it (with its
        /// summary) and every finished chunk; records an issue if that takes longer than `within`.
        func run(count: Int, workers: Int = 2, within: Duration = .seconds(180)) throws -> (KafkaEngine, [InputChunk]) {
            let chunks = Mutex<[InputChunk]>([])
            let engine = try KafkaEngine(
                topology: topology, brokers: [brokers], workers: workers, logger: .quiet, stopAfterEvents: count,
                onChunk: { chunk in chunks.withLock { $0.append(chunk) } })
            let failure = Mutex<String?>(nil)
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                do { try engine.run() } catch { failure.withLock { $0 = "\(error)" } }
                done.signal()
            }
            thread.start()
            if done.wait(timeout: .now() + .seconds(Int(within.components.seconds))) == .timedOut {
                engine.stop()
                _ = done.wait(timeout: .now() + 60)
                Issue.record("the engine did not process \(count) records within \(within)")
            }
            if let message = failure.withLock({ $0 }) { Issue.record("engine failed: \(message)") }
            return (engine, chunks.withLock { $0 })
        }

        /// Every record of `topic`, read from the start by a fresh group until `count` arrived (or `within` passed).
        func readAll(_ topic: String, count: Int, within: Duration = .seconds(60)) throws -> [KafkaMessage] {
            var config = KafkaConsumerConfiguration(
                common: KafkaConfiguration(bootstrapServers: [brokers]), groupID: TestBroker.unique("reader"))
            config.startFrom = .earliest
            let consumer = try KafkaConsumer(configuration: config, logger: .quiet)
            try consumer.subscribe(topics: [topic])
            defer { consumer.close() }
            var out: [KafkaMessage] = []
            let deadline = ContinuousClock.now.advanced(by: within)
            while out.count < count, ContinuousClock.now < deadline {
                out += try consumer.poll(maxMessages: 5000, timeout: .milliseconds(100)).messages
            }
            return out
        }
    }

    static func generated(_ n: Int, seed: UInt64) -> (events: [[UInt8]], labels: [[UInt8]], cards: [String]) {
        var config = TransactionStream.Config()
        config.events = n
        config.seed = seed
        config.cards = 3000
        var events: [[UInt8]] = []
        var labels: [[UInt8]] = []
        var cards: [String] = []
        for record in SyntheticEvents(config) {
            switch record {
            case .event(_, let card, let json):
                events.append(json)
                cards.append(card)
            case .label(_, let json): labels.append(json)
            }
        }
        return (events, labels, cards)
    }

    /// Broken records and the reason each must be dead-lettered with.
    static let broken: [(String, String)] = [
        ("{\"txn_id\":\"b1\",\"card_id\":", "malformed_json"),
        (
            #"{"txn_id":"b2","card_id":"c1","ts":1767225600000,"amount":"lots","merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "wrong_type"
        ),
        (
            #"{"txn_id":"b3","ts":1767225600000,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_key"
        ),
        (
            #"{"txn_id":"b4","card_id":"c1","amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_time"
        ),
        (
            #"{"txn_id":"b5","card_id":"c1","ts":1767225600000,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C","pad":""#
                + String(repeating: "x", count: 70_000) + #""}"#, "oversized"
        ),
        ("", "empty_event"),
        ("[1,2,3]", "not_an_object"),
        // Two days ahead of the broker timestamp the producer gives it (now): `max_future` is 1 h.
        (
            #"{"txn_id":"b6","card_id":"c1","ts":\#(Int64(Date().timeIntervalSince1970 * 1000) + 2 * 86_400_000),"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "future_time"
        ),
    ]

    @Test func everyEventHasExactlyOneOutcomeAndBrokenOnesAreDeadLettered() throws {
        let setup = try Setup(partitions: 4)
        var (events, labels, _) = Self.generated(40_000, seed: 21)
        var expectedDead: [String: String] = [:]  // raw text → reason
        for (k, (raw, reason)) in Self.broken.enumerated() {
            events.insert(Array(raw.utf8), at: 1000 + k * 5000)
            expectedDead[raw] = reason
        }
        try setup.produce(events, labels: labels)
        let (engine, chunks) = try setup.run(count: events.count)
        let summary = engine.summary()

        // Exactly one outcome per source record, none pending.
        var outcomes: [String: EventOutcome] = [:]
        var duplicates = 0
        for chunk in chunks {
            for i in 0..<chunk.count {
                let p = chunk.position(i)
                if outcomes.updateValue(chunk.outcome(i), forKey: "\(p.partition)/\(p.offset)") != nil {
                    duplicates += 1
                }
                #expect(chunk.outcome(i) != .pending)
            }
        }
        #expect(duplicates == 0)
        #expect(outcomes.count == events.count)
        #expect(summary.scored + summary.deadLetterTotal == events.count)
        #expect(summary.deadLetterTotal == Self.broken.count)

        // The dead letters, as another consumer reads them: raw bytes, reason, source position.
        let dead = try setup.readAll(setup.deadLetters, count: Self.broken.count)
        #expect(dead.count == Self.broken.count)
        for record in dead {
            let raw = String(decoding: record.value ?? [], as: UTF8.self)
            let header = { (name: String) in
                record.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
            }
            #expect(
                header("vigil.reason") == expectedDead[raw],
                "dead letter \(raw.prefix(40)): \(header("vigil.reason") ?? "no reason")")
            #expect(header("vigil.source.topic") == setup.source)
            #expect(header("vigil.detail")?.isEmpty == false)
            #expect(header("vigil.source.offset").flatMap { Int64($0) } != nil)
        }

        // Every alert is in the alerts topic, with the documented fields.
        let alerts = try setup.readAll(setup.alerts, count: summary.alerts)
        #expect(alerts.count == summary.alerts)
        #expect(engine.published.alerts == summary.alerts && engine.published.deadLetters == Self.broken.count)
        for a in alerts.prefix(50) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(a.value ?? [])) as? [String: Any])
            #expect(object["alert_id"] is String && object["models"] is [String: Any])
        }

        // Quality at the configured alert rate (0.5 %), over the joined labels. 40,000 events are
        // under 7 minutes of event time, while the windows fill (1 h and 1 d): measured here
        // ROC-AUC 0.78–0.79, precision 0.05–0.2, recall 0.04–0.05 (the interleaving of the 4
        // partitions varies). Floors below those; 200,000 events reach ROC-AUC 0.89.
        let q = summary.quality
        #expect(summary.labelsJoined > 30_000)
        #expect((q.rocAUC ?? 0) > 0.72, "ROC-AUC \(q.rocAUC ?? 0)")
        #expect((q.precision ?? 0) > 0.025, "precision \(q.precision ?? 0)")
        #expect((q.recall ?? 0) > 0.02, "recall \(q.recall ?? 0)")
        print(
            "engine quality: ROC-AUC \(q.rocAUC ?? 0), AP \(q.averagePrecision ?? 0), precision \(q.precision ?? 0), recall \(q.recall ?? 0), alerts \(summary.alerts)"
        )
    }

    @Test func replayGivesTheScoresRunGaveOnOnePartition() throws {
        let setup = try Setup(partitions: 1)
        var (events, _, _) = Self.generated(25_000, seed: 33)
        events.insert(Array("{broken".utf8), at: 500)
        try setup.produce(events, partition: 0)
        let (_, chunks) = try setup.run(count: events.count)

        // The same records, as a file, through replay.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("events.jsonl").path
        try Data(events.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: input))
        var topology = setup.topology
        topology.source.kafka.topics = [setup.source]
        var replay = Replay(topology: topology, input: input)
        replay.scores = dir.appendingPathComponent("scores.jsonl").path
        replay.alerts = dir.appendingPathComponent("alerts.jsonl").path
        replay.workers = 2
        _ = try replay.run()

        var runScores = [Double](repeating: .nan, count: events.count)
        var runAlerts = Set<String>()
        for chunk in chunks {
            for i in 0..<chunk.count {
                runScores[Int(chunk.position(i).offset)] = chunk.score(i)
            }
            for a in chunk.allAlerts { runAlerts.insert(a.id) }
        }
        let lines = try String(contentsOfFile: replay.scores!, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == events.count)
        var same = 0
        var firstDifference: Int?
        for (offset, line) in lines.enumerated() {
            defer { if firstDifference == nil, same != offset + 1 { firstDifference = offset } }
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if object["score"] != nil {
                // Foundation's JSON parser may round the last bit on Linux: read the text exactly.
                let text = line.split(separator: "\"score\":")[1].prefix { $0 != "," }
                let score = try #require(Double(String(text)))
                if score == runScores[offset] { same += 1 }
            } else {
                #expect(object["dead_letter"] as? String == "malformed_json")
                if runScores[offset].isNaN { same += 1 }
            }
        }
        #expect(
            same == events.count,
            "\(events.count - same) scores differ between replay and run (first at offset \(firstDifference ?? -1))")
        #expect(chunks.map(\.count).reduce(0, +) == events.count, "records delivered more than once")
        let replayAlerts = try String(contentsOfFile: replay.alerts!, encoding: .utf8).split(separator: "\n").map {
            line in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["alert_id"] as? String ?? ""
        }
        #expect(Set(replayAlerts) == runAlerts && !runAlerts.isEmpty)
    }

    /// With several partitions, `run` interleaves them as they arrive, so its models learn the
    /// events in another order than `replay` of the produced sequence: scores differ. Per card
    /// the order is the same (events keyed by card), so windows agree; the alerts and their
    /// quality stay close. Measured and bounded here, and reported in docs/alerts.md.
    @Test func withFourPartitionsRunAndReplayRaiseCloseAlerts() throws {
        let setup = try Setup(partitions: 4)
        let (events, labels, cards) = Self.generated(60_000, seed: 44)
        var truth: [String: Bool] = [:]
        for l in labels {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(l)) as? [String: Any])
            truth[o["txn_id"] as! String] = o["is_fraud"] as? Bool
        }
        try setup.produce(events, keys: cards)
        let (_, chunks) = try setup.run(count: events.count)
        var runAlerts = Set<String>()
        var runScores: [String: Double] = [:]
        for chunk in chunks {
            for a in chunk.allAlerts { runAlerts.insert(chunk.idText(a.index) ?? "") }
            for i in 0..<chunk.count { if let id = chunk.idText(i) { runScores[id] = chunk.score(i) } }
        }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("events.jsonl").path
        try Data(events.flatMap { $0 + [0x0A] }).write(to: URL(fileURLWithPath: input))
        var replay = Replay(topology: setup.topology, input: input)
        replay.alerts = dir.appendingPathComponent("alerts.jsonl").path
        replay.scores = dir.appendingPathComponent("scores.jsonl").path
        replay.workers = 2
        _ = try replay.run()
        let replayAlerts = Set(
            try String(contentsOfFile: replay.alerts!, encoding: .utf8).split(separator: "\n").compactMap { line in
                (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["event_id"] as? String
            })
        var diffs: [Double] = []
        var runList: [Double] = []
        var replayList: [Double] = []
        var labelList: [Bool] = []
        for line in try String(contentsOfFile: replay.scores!, encoding: .utf8).split(separator: "\n") {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            if let id = o["id"] as? String, let s = (o["score"] as? NSNumber)?.doubleValue, let r = runScores[id] {
                diffs.append(abs(s - r))
                runList.append(r)
                replayList.append(s)
                labelList.append(truth[id] ?? false)
            }
        }
        let runAUC = RankingMetrics.rocAUC(scores: runList, labels: labelList) ?? 0
        let replayAUC = RankingMetrics.rocAUC(scores: replayList, labels: labelList) ?? 0
        diffs.sort()
        let overlap =
            Double(runAlerts.intersection(replayAlerts).count) / Double(max(1, runAlerts.union(replayAlerts).count))
        let median = diffs[diffs.count / 2]
        let p90 = diffs[diffs.count * 9 / 10]
        print(
            "4 partitions, run vs replay: alerts \(runAlerts.count) vs \(replayAlerts.count), Jaccard \(overlap); |score difference| median \(median), p90 \(p90); ROC-AUC against the generator's truth \(runAUC) vs \(replayAUC)"
        )
        // Every event scored by both; the alert sets differ (measured: Jaccard about 0.1, run
        // alerting up to twice as often, docs/alerts.md), but both rank fraud alike. The run's
        // AUC depends on how the four partitions interleave: measured 0.774 to 0.797 on a
        // loaded 2-core machine against the replay's 0.827 (2026-12-03), so the bound is 0.08.
        #expect(diffs.count == events.count)
        #expect(runAUC > 0.75 && replayAUC > 0.75)
        #expect(abs(runAUC - replayAUC) < 0.08)
        #expect((1...5 * max(1, replayAlerts.count)).contains(runAlerts.count))
    }
}
