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
        let models = RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "shadow")
        let setup = try RolloutSetup("pacing-\(kind)", models: models)
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
        // Everything is on the broker before the engine starts: it reads a backlog.
        let stream = config
        let sent = try await offPool { try setup.produceStream(stream, rate: 100_000) }
        let live = try LiveEngine(setup)
        #expect(await live.waitFor(events: sent.events, labels: sent.labels))
        try await live.stop()
        let summary = live.engine.summary()
        print(
            "[run] \(kind): \(summary.labelsJoined) of \(sent.labels) labels joined; received \(summary.labelsReceived), scored \(summary.scored), late \(summary.lateScored), dead \(summary.deadLetterTotal)"
        )
        #expect(summary.labelsJoined == sent.labels)
    }
}
