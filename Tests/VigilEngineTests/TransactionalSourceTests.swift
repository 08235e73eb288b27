import Foundation
import Testing
import VigilEngine
import VigilKafka
import VigilSynthetic
import VigilTestKit

/// A source written by a transactional producer (Kafka Streams' exactly-once output, for one):
/// each partition ends with a commit marker that no record reports, one offset short of the
/// high watermark. Reading must count such a partition as read to its end (docs/kafka.md).
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct TransactionalSourceTests {
    @Test func runUntilEndStopsAtPartitionsThatEndInACommitMarker() async throws {
        let n = 3000
        let data = EngineIntegrationTests.generated(n, seed: 41)
        let setup = try OperationsSetup("txn-end", partitions: 2)
        try await offPool {
            let producer = try TransactionalProducer(brokers: setup.brokers, id: TestBroker.unique("txn-end"))
            for (event, card) in zip(data.events, data.cards) {
                try producer.send(event, key: Array(card.utf8), to: setup.source, partition: setup.partition(of: card))
            }
            try producer.commit()
        }
        let outcomes = setup.directory.appendingPathComponent("outcomes.tsv")
        let run = try RunningVigil(
            OperationsTests.runArguments(setup, ["--until-end", "--record-outcomes", outcomes.path]))
        let status = try await offPool { run.waitExit(timeout: .seconds(120)) }
        if status == nil { run.signal(SIGKILL) }
        #expect(status == 0, "\(run.stderr.suffix(2000))")
        // Every record has its outcome, each once.
        let lines = ((try? String(contentsOf: outcomes, encoding: .utf8)) ?? "").split(separator: "\n")
        let decided = lines.map { $0.split(separator: "\t") }.filter { $0.count == 8 && $0[3] != "pending" }
        #expect(Set(decided.map { "\($0[1])/\($0[2])" }).count == n)
    }

    /// Labels are held until the source's events reach their time, and all handed over once the
    /// source is read to its end. With the partitions' ends judged by the records read, the
    /// source never counted as read to its end here, and the labels newer than the oldest of the
    /// partitions' newest events stayed held while the source was idle.
    @Test func heldLabelsAreHandedOverOnceATransactionalSourceIsReadToItsEnd() async throws {
        var config = TransactionStream.Config()
        config.seed = 43
        config.cards = 500
        config.events = 6000
        config.meanGapMs = 1000
        config.labelDelayMs = 60_000...600_000
        // The same stream written plainly and in a transaction: the same labels join.
        let plain = try await RunLabelJoinTests.readBacklog(config, name: "txn-plain", partitions: 2)
        let written = try await RunLabelJoinTests.readBacklog(
            config, name: "txn-written", partitions: 2, transactional: true)
        #expect(plain.held == 0 && written.held == 0, "labels still held 30 s after the whole source was read")
        #expect(plain.summary.labelsJoined == plain.labels)
        #expect(written.summary.labelsJoined == plain.summary.labelsJoined)
        #expect(written.summary.scored == config.events && written.summary.labelsReceived == written.labels)
    }
}
