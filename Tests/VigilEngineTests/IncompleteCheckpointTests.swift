import Foundation
import Testing
import VigilEngine
import VigilKafka
import VigilTestKit

/// A checkpoint publishes its partition records first and the instance's own record last. An
/// instance killed between the two leaves partition records that no complete checkpoint covers:
/// their windows are ahead of the models a restore brings back. The restore must skip them.
@Suite(
    .ownThread, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct IncompleteCheckpointTests {
    @Test func aRestoreSkipsPartitionRecordsOfACheckpointThatWasNotCompleted() async throws {
        let n = 12_000
        let data = EngineIntegrationTests.generated(n, seed: 29)
        let reference = try OperationsSetup("incref", every: "1h", targetRate: "0.02")
        let stopped = try OperationsSetup("inc", source: reference.source, every: "1h", targetRate: "0.02")
        let half = n / 2
        try await offPool {
            try reference.produce(Array(data.events[..<half]), keys: Array(data.cards[..<half]))
        }
        // The first run reads the first half and stops with a checkpoint at its end.
        let first = try RunningVigil(OperationsTests.runArguments(stopped, ["--until-end"]))
        let firstStatus = try await offPool { first.waitExit(timeout: .seconds(300)) }
        try #require(firstStatus == 0, "\(first.stderr.suffix(3000))")
        let tp = TopicPartition(stopped.source, 0)
        let complete = try #require(try await offPool { try stopped.partitionStates()[tp] })
        #expect(complete.offset == Int64(half))

        // What a kill between the two publications leaves: this instance's partition record of a
        // later cut, 3,000 records further on, with no instance record after it.
        try await offPool {
            try reference.produce(Array(data.events[half...]), keys: Array(data.cards[half...]))
        }
        var orphan = complete
        orphan.offset = Int64(half + 3000)
        orphan.createdMs = Int64(Date().timeIntervalSince1970 * 1000)
        orphan.reason = "events"
        let forged = orphan
        try await offPool { try stopped.publishPartitionState(forged) }
        #expect(try await offPool { try stopped.partitionStates()[tp]?.offset } == Int64(half + 3000))

        let second = try RunningVigil(OperationsTests.runArguments(stopped, ["--until-end"]))
        let secondStatus = try await offPool { second.waitExit(timeout: .seconds(300)) }
        try #require(secondStatus == 0, "\(second.stderr.suffix(3000))")
        #expect(
            second.stderr.contains("Partition state of a checkpoint that was not completed: skipped"),
            "\(second.stderr.suffix(3000))")

        let uninterrupted = try RunningVigil(OperationsTests.runArguments(reference, ["--until-end"]))
        let referenceStatus = try await offPool { uninterrupted.waitExit(timeout: .seconds(300)) }
        try #require(referenceStatus == 0, "\(uninterrupted.stderr.suffix(3000))")

        let expected = try await offPool { try reference.alertIDs() }
        let got = try await offPool { try stopped.alertIDs() }
        #expect(expected.count > 10, "too few alerts to compare: \(expected.count)")
        #expect(
            Set(got) == Set(expected),
            "missing \(Set(expected).subtracting(got).count), extra \(Set(got).subtracting(expected).count)")
        try await OperationsTests.expectSameFinalState(reference, stopped, events: n, after: "the restore")
    }
}
