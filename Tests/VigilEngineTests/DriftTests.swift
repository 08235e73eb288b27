import Foundation
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilSynthetic
import VigilTestKit

/// Drift that acts: the generator's `driftAt` raises drift records, a stationary stream none.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(10)))
struct DriftTests {
    /// Collects drift records (and counts chunks).
    final class DriftSink: PipelineSink {
        let records = Mutex<[[String: any Sendable]]>([])
        func complete(_ chunk: InputChunk) {}
        func drift(_ record: [UInt8], topic: String) {
            let o = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any] ?? [:]
            records.withLock { $0.append(o.mapValues { "\($0)" }) }
        }
    }

    static func topology(drift: String) throws -> Topology {
        var text = StateAndReloadTests.text
        text = text.replacingOccurrences(of: "audit: { topic: vigil-card-payments-audit }", with: drift)
        return try TopologyLoader.parse(text)
    }

    /// The settings both tests use: the PSI bound of a moving feature (0.1, below the default
    /// 0.25) over short windows, so the generator's modest drift shows within a few thousand
    /// events; Page-Hinkley at its defaults.
    static let settings = "window_events: 2000, warmup_events: 5000, psi_threshold: 0.1"

    /// One million events of a stream that does not change: the detectors stay silent. Run
    /// through the pipeline without Kafka (the detectors sit in the workers).
    /// Async, with the work on a thread of its own: a minute of blocking on one of the two
    /// cooperative threads starved the other suites' tests past their time limits.
    @Test func aStationaryStreamRaisesNoDriftOverAMillionEvents() async throws {
        let topology = try Self.topology(drift: "drift: { topic: payments-drift, \(Self.settings) }")
        let (offset, records) = try await offPool { try Self.runStationary(topology) }
        #expect(offset == 1_000_000)
        #expect(records.isEmpty, "\(records.prefix(5))")
    }

    /// Runs a million stationary events through `topology`; returns the events submitted and the
    /// drift records.
    static func runStationary(_ topology: Topology) throws -> (Int, [[String: String]]) {
        let sink = DriftSink()
        let pipeline = try Pipeline(topology: topology, workers: 2, sink: sink)
        pipeline.start()
        var config = TransactionStream.Config()
        config.events = 1_000_000
        config.seed = 31
        config.driftAt = nil
        var batch: [[UInt8]] = []
        var offset = 0
        func flush() {
            let start = offset
            pipeline.submit(
                count: batch.count, topics: ["payments"], raw: StateAndReloadTests.Lines(lines: batch),
                position: { (0, 0, Int64(start + $0), nil) }, arrivalMs: 0)
            offset += batch.count
            batch.removeAll(keepingCapacity: true)
        }
        for record in SyntheticEvents(config) {
            guard case .event(_, _, let json) = record else { continue }
            batch.append(json)
            if batch.count == 5000 { flush() }
        }
        if !batch.isEmpty { flush() }
        pipeline.finish()
        return (offset, sink.records.withLock { $0 }.map { $0.mapValues { "\($0)" } })
    }

    @Test(.enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh"))
    func theGeneratorsDriftRaisesARecordSoonAfterAndRetrainsTheShadow() async throws {
        let models =
            RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "shadow") + "\n"
            + RolloutSetup.forest("fresh", role: "shadow", trees: 30, seed: 5)
        let id = TestBroker.unique("drift")
        let setup = try RolloutSetup(
            "drift", models: models,
            extra: """
                drift: { topic: \(id)-drift, \(Self.settings), action: retrain, models: [fresh] }
                """)
        let n = 60_000
        var config = TransactionStream.Config()
        config.events = n
        config.seed = 23
        config.cards = 3000
        config.driftAt = 0.5
        config.labelDelayMs = 1000...20_000
        let stream = config
        let live = try LiveEngine(setup)
        let sent = try await offPool { try setup.produceStream(stream, rate: 20_000) }
        #expect(await live.waitFor(events: sent.events, labels: sent.labels))
        let quality = await live.engine.rollout.quality()
        let metrics = MetricsText.render(live.engine, models: quality)
        let chunks = live.chunks.withLock { $0 }
        try await live.stop()

        // The event time at which the stream drifted: that of event n/2.
        var times: [Int64: Int64] = [:]  // offset → event time
        for c in chunks { for i in 0..<c.count { times[c.position(i).offset] = c.eventTime(i) } }
        let driftTime = try #require(times[Int64(n / 2)])
        let records = try TopicReader.readAll(brokers: setup.brokers, topic: "\(id)-drift").compactMap { m in
            m.value.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        }
        for r in records.prefix(6) {
            print(
                "[drift] \(r["detector"] ?? "") \(r["subject"] ?? "") \(r["value"] ?? "") since \(r["since"] ?? "") at \(r["detected_at"] ?? "")"
            )
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func ms(_ s: Any?) -> Int64? {
            (s as? String).flatMap { formatter.date(from: $0) }.map { Int64($0.timeIntervalSince1970 * 1000) }
        }
        let detected = records.compactMap { ms($0["detected_at"]) }
        #expect(!records.isEmpty, "no drift record")
        #expect(detected.allSatisfy { $0 >= driftTime }, "no record before the drift")
        // Within 5,000 events (of both workers) of the drift.
        let bound = try #require(times[Int64(n / 2 + 5000)])
        #expect(detected.min().map { $0 <= bound } == true, "first detection at \(detected.min() ?? 0), bound \(bound)")
        #expect(records.allSatisfy { $0["kind"] as? String == "drift" && $0["action"] as? String == "retrain" })
        #expect(records.allSatisfy { ($0["models"] as? [String])?.first?.hasPrefix("fresh@") == true })
        // The action: the shadow started afresh at the drift, so it has decided fewer events
        // than the forest that kept going.
        let fresh = try #require(quality.first { $0.name == "fresh" })
        let forest = try #require(quality.first { $0.name == "iforest" })
        #expect(fresh.decided < forest.decided - n / 4, "fresh \(fresh.decided), iforest \(forest.decided)")
        #expect(metrics.contains("vigil_drift_detections_total{"))
    }
}
