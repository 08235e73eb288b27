import Foundation
import Testing
import VigilCore
import VigilModels
import VigilSynthetic
import VigilTestKit

@testable import VigilEngine

/// The pipeline driven from files: outcomes, determinism, alerts and the label join. Serialized:
/// each test keeps a thread of the test pool busy for seconds while its own workers run; on two
/// cores, several at once slow the time-limited tests of other suites.
@Suite(.ownThread, .serialized) struct ReplayTests {
    static let topology: Topology = {
        try! TopologyLoader.load(path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path)
    }()

    /// A temporary folder with `events` generated events (and their labels), with `bad` broken
    /// lines spread through the events.
    final class Files {
        let dir: URL
        var events: String { dir.appendingPathComponent("events.jsonl").path }
        var labels: String { dir.appendingPathComponent("labels.jsonl").path }
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

        init(
            events: Int, seed: UInt64 = 3, bad: [String] = [], meanGapMs: Double = 10,
            labelDelayMs: ClosedRange<Int64> = 300_000...7_200_000
        ) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-replay-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            var config = TransactionStream.Config()
            config.events = events
            config.seed = seed
            config.cards = 2000
            config.meanGapMs = meanGapMs
            config.labelDelayMs = labelDelayMs
            var eventText: [UInt8] = []
            var labelText: [UInt8] = []
            var n = 0
            for record in SyntheticEvents(config) {
                switch record {
                case .event(_, _, let json):
                    eventText += json + [0x0A]
                    n += 1
                    if !bad.isEmpty, n % 997 == 0 {
                        let line = bad[(n / 997) % bad.count]
                        eventText += Array(line.utf8) + [0x0A]
                    }
                case .label(_, let json): labelText += json + [0x0A]
                }
            }
            try Data(eventText).write(to: URL(fileURLWithPath: self.events))
            try Data(labelText).write(to: URL(fileURLWithPath: labels))
        }

        deinit { try? FileManager.default.removeItem(at: dir) }

        func lines(_ name: String) throws -> [String] {
            try String(contentsOfFile: path(name), encoding: .utf8).split(separator: "\n").map(String.init)
        }
    }

    static let broken = [
        "{not json",
        #"{"txn_id":"x1","card_id":"c","ts":1767225600000,"amount":"ten","merchant_id":"m","merchant_category":"g","country":"C"}"#,
        #"{"txn_id":"x2","ts":1767225600000,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#, "[]",
    ]

    func replay(
        _ files: Files, scores: String, alerts: String? = nil, labels: Bool = false, chunk: Int = 4096, workers: Int = 2
    )
        throws -> Pipeline.Summary
    {
        var r = Replay(topology: Self.topology, input: files.events)
        r.scores = files.path(scores)
        r.alerts = alerts.map(files.path)
        r.labels = labels ? files.labels : nil
        r.deadLetters = files.path("dead-\(scores)")
        r.chunkLines = chunk
        r.workers = workers
        return try r.run()
    }

    @Test func everyLineGetsExactlyOneOutcomeInInputOrder() throws {
        let files = try Files(events: 20_000, bad: Self.broken)
        let summary = try replay(files, scores: "scores.jsonl", alerts: "alerts.jsonl")
        let input = try files.lines("events.jsonl")
        let scores = try files.lines("scores.jsonl")
        #expect(scores.count == input.count)
        #expect(summary.events == input.count)
        #expect(summary.scored + summary.deadLetterTotal == input.count)
        var deadLetters = 0
        for (line, score) in zip(input, scores) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(score.utf8)) as? [String: Any])
            if let reason = object["dead_letter"] as? String {
                deadLetters += 1
                #expect(DeadLetterReason.Code.all.map(\.rawValue).contains(reason))
            } else {
                let event = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["id"] as? String == event["txn_id"] as? String)
                #expect((object["score"] as? NSNumber).map { (0...1.000001).contains($0.doubleValue) } == true)
                #expect((object["models"] as? [String: Double])?.count == 2)
            }
        }
        #expect(deadLetters == 20_000 / 997)
        #expect(summary.deadLetters[.malformedJSON] == 5 && summary.deadLetters[.notAnObject] == 5)
        #expect(summary.deadLetters[.wrongType] == 5 && summary.deadLetters[.missingKey] == 5)
        let dead = try files.lines("dead-scores.jsonl")
        #expect(dead.count == deadLetters)
        for line in dead {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(Self.broken.contains(object["raw"] as? String ?? ""), "the raw record is kept exactly")
            #expect((object["detail"] as? String)?.isEmpty == false)
        }
        #expect(try files.lines("alerts.jsonl").count == summary.alerts)
    }

    /// With labels too: labels arrive between the rows of a chunk, and the forest's batch scores
    /// must still equal its one-row scores (chunks of 7 rows leave it spans of at most 7).
    @Test(arguments: [false, true]) func resultsDoNotDependOnHowTheInputIsChunked(labels: Bool) throws {
        // Labels 1 s to 1 min after their events, so that most arrive within the 5-minute stream.
        let files = try Files(events: 30_000, bad: Self.broken, labelDelayMs: 1_000...60_000)
        let summary = try replay(files, scores: "a.jsonl", alerts: "alerts-a.jsonl", labels: labels, chunk: 20_000)
        if labels { #expect(summary.labelsJoined > 20_000) }
        _ = try replay(files, scores: "b.jsonl", alerts: "alerts-b.jsonl", labels: labels, chunk: labels ? 7 : 97)
        let a = try files.lines("a.jsonl")
        let b = try files.lines("b.jsonl")
        #expect(a.count == b.count)
        #expect(a == b)
        #expect(try files.lines("alerts-a.jsonl") == files.lines("alerts-b.jsonl"))
        #expect(try files.lines("alerts-a.jsonl").count > 0)
    }

    @Test func alertsCarryTheDocumentedFieldsAndDeterministicIds() throws {
        let files = try Files(events: 30_000)
        let summary = try replay(files, scores: "s.jsonl", alerts: "alerts.jsonl")
        let alerts = try files.lines("alerts.jsonl")
        #expect(alerts.count == summary.alerts && alerts.count > 0)
        var ids = Set<String>()
        for line in alerts {
            let a = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for key in [
                "alert_id", "topology", "event_id", "entity", "event_time", "score", "threshold", "models", "features",
                "source",
            ] {
                #expect(a[key] != nil, "alert lacks \(key)")
            }
            let source = try #require(a["source"] as? [String: Any])
            let position = SourcePosition(
                topic: source["topic"] as! String, partition: Int32(source["partition"] as! Int),
                offset: Int64(source["offset"] as! Int))
            let versions = (a["models"] as! [String: [String: Any]]).values.map { $0["version"] as! String }
            let expected = try Pipeline.modelVersions(of: Self.topology)
            #expect(Set(versions) == Set(expected))
            #expect(a["alert_id"] as? String == AlertWriter.alertID(position, versions: expected))
            #expect((a["features"] as? [[String: Any]])?.count == Self.topology.alerts.explain)
            #expect((a["score"] as! Double) >= (a["threshold"] as! Double))
            #expect(a["topology_hash"] as? String == Self.topology.configHash, "alerts name the configuration")
            ids.insert(a["alert_id"] as! String)
        }
        #expect(ids.count == alerts.count, "alert ids are unique per record")
        // Explanations are in the event's units: `amount` (log1p in the model) shows the amount.
        var amounts: [String: Double] = [:]
        for line in try files.lines("events.jsonl") {
            let e = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            amounts[e["txn_id"] as! String] = (e["amount"] as! NSNumber).doubleValue
        }
        var explained = 0
        for line in alerts {
            let a = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let features = a["features"] as! [[String: Any]]
            guard let amount = features.first(where: { $0["name"] as? String == "amount" }) else { continue }
            let shown = (amount["value"] as! NSNumber).doubleValue
            let actual = try #require(amounts[a["event_id"] as! String])
            #expect(abs(shown - actual) <= 1e-9 * max(1, actual), "amount \(shown) for an event of \(actual)")
            explained += 1
        }
        #expect(explained > 0)
    }

    @Test func labelsJoinTheirEventsAndTheModelsBeatChance() throws {
        let files = try Files(events: 60_000)
        let summary = try replay(files, scores: "s.jsonl", labels: true)
        #expect(summary.labelsReceived == 60_000)
        // 60,000 events span 10 minutes of event time, inside the 1 h labels.expire: every label
        // finds its event (LabelJoin's own test covers expiry).
        #expect(summary.labelsJoined == 60_000)
        let q = summary.quality
        #expect(q.events == summary.labelsJoined)
        #expect((q.rocAUC ?? 0) > 0.75)
    }

    @Test func aLabelJoinForgetsEventsPastTheirExpiryAndBeyondItsCapacity() throws {
        let matrix = { () -> FeatureMatrix in
            var m = FeatureMatrix(names: ["a", "b"])
            m.reset(rows: 1)
            m.values = [1, 2]
            return m
        }()
        let join = LabelJoin(expireMs: 1000, capacity: 3, earlyCapacity: 2, columns: 2, categoryColumns: 0, models: 2)
        func add(_ id: UInt64, _ time: Int64) {
            // Each event keeps both models' own scores and which of them flagged it.
            let scores = [Double(id), -Double(id)]
            scores.withUnsafeBufferPointer {
                join.add(
                    idHash: id, time: time, score: 0.5, alerted: false, modelScores: $0.baseAddress!, flags: id & 3,
                    segmentCodes: [], matrix: matrix, row: 0)
            }
        }
        for (id, t) in [(UInt64(1), Int64(0)), (2, 500), (3, 900)] { add(id, t) }
        #expect(join.waiting == 3)
        add(4, 1200)  // expires 1
        #expect(join.take(1) == nil)
        add(5, 1300)  // full: drops 2
        #expect(join.take(2) == nil)
        let slot = try #require(join.take(3))
        #expect(join.modelScore(slot, 0) == 3 && join.modelScore(slot, 1) == -3 && join.flags(slot) == 3)
        #expect(join.take(3) == nil, "a label is used once")
        join.holdEarly(LabelRecord(idHash: 9, isFraud: true))
        join.holdEarly(LabelRecord(idHash: 10, isFraud: false))
        join.holdEarly(LabelRecord(idHash: 11, isFraud: true))  // the same slot as 9 (capacity 2): replaces it
        #expect(join.takeEarly(9) == nil)
        #expect(join.takeEarly(10) == false)
        #expect(join.takeEarly(11) == true)
        #expect(join.takeEarly(11) == nil, "an early label is used once")
    }

    /// With `late: dead_letter`, an event later than the allowed lateness behind its entity's
    /// newest event is dead-lettered by its worker with reason `late`; with `score_only` it is
    /// scored.
    @Test(arguments: ["dead_letter", "score_only"]) func lateEventsFollowTheTopology(policy: String) throws {
        let text = try String(
            contentsOfFile: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path,
            encoding: .utf8)
        let topology = try TopologyLoader.parse(
            text.replacingOccurrences(of: "late: score_only", with: "late: \(policy)"))
        func event(_ id: String, _ ts: Int64) -> String {
            #"{"txn_id":"\#(id)","card_id":"c1","ts":\#(ts),"amount":10,"merchant_id":"m1","merchant_category":"g","country":"DE"}"#
        }
        let t0: Int64 = 1_767_225_600_000
        // b is 50 minutes after a: within `max_future` (1 h) of a, so it is not taken for a
        // poisoned time, while c trails it by far more than the allowed lateness.
        let lines = [
            event("a", t0), event("b", t0 + 3_000_000), event("c", t0 + 60_000), event("d", t0 + 3_000_000 - 10_000),
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-late-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("events.jsonl").path
        try lines.joined(separator: "\n").write(toFile: input, atomically: true, encoding: .utf8)
        var replay = Replay(topology: topology, input: input)
        replay.scores = dir.appendingPathComponent("scores.jsonl").path
        replay.deadLetters = dir.appendingPathComponent("dead.jsonl").path
        let summary = try replay.run()
        let scores = try String(contentsOfFile: replay.scores!, encoding: .utf8).split(separator: "\n")
        #expect(scores.count == 4)
        if policy == "dead_letter" {
            #expect(summary.deadLetters[.late] == 1 && summary.scored == 3)
            #expect(scores[2] == #"{"id":"c","dead_letter":"late"}"#)
            let dead = try String(contentsOfFile: replay.deadLetters!, encoding: .utf8)
            #expect(dead.contains(#""reason":"late""#) && dead.contains(#""offset":2"#))
        } else {
            #expect(summary.deadLetterTotal == 0 && summary.scored == 4 && summary.lateScored == 1)
        }
    }

    @Test func alertTimesAreWrittenInRFC3339() {
        #expect(JSONText.rfc3339(milliseconds: 1_767_225_600_123) == "2026-01-01T00:00:00.123Z")
        #expect(JSONText.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(JSONText.rfc3339(milliseconds: 1_709_210_096_789) == "2024-02-29T12:34:56.789Z")
        #expect(JSONText.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
    }
}
