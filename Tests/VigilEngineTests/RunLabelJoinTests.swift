import Foundation
import Testing
import VigilEngine
import VigilSynthetic
import VigilTestKit

/// `vigil run` against the local broker: an event within `labels.expire` of its label always
/// joins, when the engine reads a backlog in polls that span far more than the expiry.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct RunLabelJoinTests {
    @Test(arguments: ["sparse", "dense"]) func everyLabelJoinsWhenTheEngineReadsABacklog(kind: String) async throws {
        var config = TransactionStream.Config()
        config.seed = 29
        config.cards = 500
        if kind == "sparse" {
            // An event every 10 s: a poll of 10,000 events spans a day, the expiry is 1 h.
            config.events = 6000
            config.meanGapMs = 10_000
            config.labelDelayMs = 60_000...60_000
        } else {
            config.events = 12_000
            config.meanGapMs = 1000
            config.labelDelayMs = 300_000...3_000_000
        }
        let (summary, labels, _) = try await Self.readBacklog(config, name: kind, partitions: 1)
        #expect(summary.labelsJoined == labels)
    }

    /// A backlog over four partitions: a poll holds thousands of records of one or two of them,
    /// far ahead in event time of the others. Labels go out only once every partition still
    /// being read has reached their time, so none reaches its worker before its event (where a
    /// busy stream's labels overwrite each other in the small table of early labels).
    @Test func noLabelOvertakesItsEventWhenPartitionsAreReadUnevenly() async throws {
        var config = TransactionStream.Config()
        config.seed = 31
        config.cards = 2000
        // 40,000 events 100 ms apart: a partition's fetch of ~1 MB spans half an hour and more,
        // against labels 1 to 5 minutes late.
        config.events = 40_000
        config.meanGapMs = 100
        config.labelDelayMs = 60_000...300_000
        let (summary, labels, _) = try await Self.readBacklog(config, name: "partitions", partitions: 4)
        #expect(summary.labelsJoined == labels)
        #expect(summary.labelsJoinedEarly == 0)
    }

    /// Puts the stream's events and labels on the broker (in one transaction if asked), then has
    /// an engine read them as a backlog, and waits (30 s at most) for the labels it holds to be
    /// handed over; returns its summary, the labels sent and the labels still held then.
    static func readBacklog(
        _ config: TransactionStream.Config, name: String, partitions: Int, transactional: Bool = false
    ) async throws -> (summary: Pipeline.Summary, labels: Int, held: Int) {
        let models = RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "shadow")
        let setup = try RolloutSetup("pacing-\(name)", models: models, partitions: partitions)
        let sent = try await offPool {
            transactional
                ? try setup.produceStreamInATransaction(config) : try setup.produceStream(config, rate: 200_000)
        }
        let live = try LiveEngine(setup)
        #expect(await live.waitFor(events: sent.events, labels: sent.labels))
        let end = ContinuousClock.now.advanced(by: .seconds(30))
        while live.engine.labelsHeld > 0, ContinuousClock.now < end { try await Task.sleep(for: .milliseconds(100)) }
        let held = live.engine.labelsHeld
        try await live.stop()
        let summary = live.engine.summary()
        print(
            "[run] \(name): \(summary.labelsJoined) of \(sent.labels) labels joined (\(summary.labelsJoinedEarly) read before their event, \(held) still held after reading); received \(summary.labelsReceived), scored \(summary.scored), late \(summary.lateScored), dead \(summary.deadLetterTotal)"
        )
        return (summary, sent.labels, held)
    }
}
