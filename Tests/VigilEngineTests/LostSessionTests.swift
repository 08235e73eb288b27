import Foundation
import Testing
import VigilTestKit

/// A session lost to a stalled broker: the instance keeps its windows and models, and when the
/// group gives the partition back it resumes where it stood, so its alerts and final state are
/// those of a run that never lost it (docs/scaling.md, "A lost partition").
@Suite(
    .ownThread, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct LostSessionTests {
    @Test func aPartitionLostToAStalledBrokerResumesWhereTheInstanceStood() async throws {
        // A broker of its own: this test freezes it.
        let broker = try PrivateBroker()
        let n = 30_000
        let data = EngineIntegrationTests.generated(n, seed: 23)
        // A checkpoint every 15,000 events, and the first 20,000 arrive in two parts: the newest
        // stored state covers the first part only when the session is lost, thousands of
        // records behind where the instance stands.
        let reference = try OperationsSetup("lostref", every: "1h", everyEvents: 15_000, brokers: broker.address)
        let stalled = try OperationsSetup(
            "lost", source: reference.source, every: "1h", everyEvents: 15_000, admin: true, brokers: broker.address)
        let port = try #require(stalled.adminPort)
        let run = try RunningVigil(OperationsTests.runArguments(stalled))
        for part in [0..<16_000, 16_000..<20_000] {
            try await offPool { try reference.produce(Array(data.events[part]), keys: Array(data.cards[part])) }
            let read = await run.waitForStatus(port: port, timeout: .seconds(180)) {
                ($0.number("events") ?? 0) >= Double(part.upperBound)
                    && ($0.number("checkpoints_written") ?? 0) >= 1
            }
            #expect(read != nil, "\(run.stderr.suffix(3000))")
        }
        #expect(
            !run.stderr.contains("offsets=[\"\(reference.source)[0]@20000\"]"), "the premise: no state stored at 20,000"
        )
        // Frozen for longer than the session timeout (6 s): librdkafka gives the assignment up
        // as lost, and rejoins once the broker answers again.
        broker.pause()
        try await Task.sleep(for: .seconds(10))
        broker.resume()
        let end = ContinuousClock.now.advanced(by: .seconds(120))
        while !run.stderr.contains("kept here since the loss"), ContinuousClock.now < end {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(
            run.stderr.contains("Partitions lost"), "the stall did not lose the session:\n\(run.stderr.suffix(3000))")
        #expect(
            run.stderr.contains("kept here since the loss"),
            "the partition did not resume where the instance stood:\n\(run.stderr.suffix(3000))")
        // Nothing more has arrived, yet every record read before the loss is committed
        // (LostAssignmentTests holds records in flight across the loss on purpose).
        let committed = await stalled.waitForCommitted(atLeast: 20_000, timeout: .seconds(60))
        #expect(committed == 20_000, "the group's offset stayed behind the records read before the loss")

        try await offPool { try reference.produce(Array(data.events[20_000...]), keys: Array(data.cards[20_000...])) }
        let all = await run.waitForStatus(port: port, timeout: .seconds(180)) {
            ($0.number("events") ?? 0) >= Double(n)
        }
        #expect(all != nil, "\(run.stderr.suffix(3000))")
        run.signal(SIGTERM)
        let status = try await offPool { run.waitExit(timeout: .seconds(60)) }
        #expect(status == 0, "\(run.stderr.suffix(3000))")

        let uninterrupted = try RunningVigil(OperationsTests.runArguments(reference, ["--until-end"]))
        let referenceStatus = try await offPool { uninterrupted.waitExit(timeout: .seconds(300)) }
        #expect(referenceStatus == 0, "\(uninterrupted.stderr.suffix(3000))")

        let expected = try await offPool { try reference.alertIDs() }
        let got = try await offPool { try stalled.alertIDs() }
        #expect(expected.count > 10, "too few alerts to compare: \(expected.count)")
        #expect(
            Set(got) == Set(expected),
            "missing \(Set(expected).subtracting(got).count), extra \(Set(got).subtracting(expected).count)")
        print("[lost] \(n) events: \(expected.count) alerts uninterrupted; \(got.count) published across the loss")
        try await OperationsTests.expectSameFinalState(reference, stalled, events: n, after: "the loss")
    }
}
