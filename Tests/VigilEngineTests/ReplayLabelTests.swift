import Foundation
import Testing
import VigilCore
import VigilTestKit

@testable import VigilEngine

/// Replay's label delivery by event time (issue 17). Apart from `ReplayTests`: it needs no broker
/// and runs with the unit tests, away from the integration suites' Kafka sessions.
@Suite(.ownThread, .serialized) struct ReplayLabelTests {
    /// A label is delivered at the record whose time reached it, not after a whole chunk: on a
    /// sparse stream (an event every 10 s, so a 4,096-line chunk spans 11 hours) and a denser one
    /// (every second, labels up to 50 minutes late), with `labels.expire` 1 h, every label joins,
    /// and the scores do not depend on the chunk size although the regression learns from them.
    @Test(arguments: ["sparse", "dense"]) func everyLabelWithinItsExpiryJoinsWhateverTheChunkSpans(stream: String)
        throws
    {
        let files =
            stream == "sparse"
            ? try ReplayTests.Files(events: 6000, meanGapMs: 10_000, labelDelayMs: 60_000...60_000)
            : try ReplayTests.Files(events: 12_000, meanGapMs: 1000, labelDelayMs: 300_000...3_000_000)
        let big = try ReplayTests().replay(files, scores: "a.jsonl", labels: true, chunk: 4096)
        let small = try ReplayTests().replay(files, scores: "b.jsonl", labels: true, chunk: 61)
        let labels = try files.lines("labels.jsonl").count
        print(
            "[replay] \(stream): \(big.labelsJoined) of \(labels) labels joined (chunks of 4096), \(small.labelsJoined) (of 61)"
        )
        #expect(big.labelsReceived == labels && small.labelsReceived == labels)
        #expect(big.labelsJoined == labels)
        #expect(small.labelsJoined == labels)
        #expect(try files.lines("a.jsonl") == files.lines("b.jsonl"))
    }
}

/// Event-time poisoning (issue 19): one event stamped far ahead must not move the clocks that
/// label expiry and lateness go by.
@Suite(.ownThread, .serialized) struct FutureEventTimeTests {
    /// The generated stream with one copy of an event stamped `aheadDays` ahead inserted in the
    /// middle, under the id `poison`.
    static func poisoned(aheadDays: Int64) throws -> ReplayTests.Files {
        let files = try ReplayTests.Files(events: 5000, meanGapMs: 1000, labelDelayMs: 600_000...1_800_000)
        var lines = try files.lines("events.jsonl")
        let middle = lines[2500]
        let object = try JSONSerialization.jsonObject(with: Data(middle.utf8)) as! [String: Any]
        var poison = object
        poison["txn_id"] = "poison"
        poison["ts"] = (object["ts"] as! NSNumber).int64Value + aheadDays * 86_400_000
        let text = String(decoding: try JSONSerialization.data(withJSONObject: poison), as: UTF8.self)
        lines.insert(text, at: 2500)
        try (lines.joined(separator: "\n") + "\n").write(toFile: files.events, atomically: true, encoding: .utf8)
        return files
    }

    func replay(_ files: ReplayTests.Files, _ edit: (inout EventTimeSpec) -> Void) throws -> Pipeline.Summary {
        var topology = ReplayTests.topology
        edit(&topology.source.time!)
        var r = Replay(topology: topology, input: files.events)
        r.labels = files.labels
        r.scores = files.path("scores.jsonl")
        return try r.run()
    }

    @Test func oneEventAYearAheadIsDeadLetteredOrRetimedAndEveryLabelStillJoins() throws {
        let files = try Self.poisoned(aheadDays: 300)
        let labels = try files.lines("labels.jsonl").count
        #expect(labels == 5000)

        // The default: at most 1 h ahead, or the dead letters.
        let bounded = try replay(files) { _ in }
        #expect(bounded.deadLetters[.futureTime] == 1)
        #expect(bounded.scored == 5000)
        #expect(bounded.labelsJoined == labels, "\(bounded.labelsJoined) of \(labels) labels joined")
        let scores = try files.lines("scores.jsonl")
        #expect(scores.count == 5001 && scores[2500].contains("\"future_time\""), "the poison's line")

        // `future: arrival_time`: scored, timed by the reference instead.
        let retimed = try replay(files) { $0.future = .arrivalTime }
        #expect(retimed.deadLetterTotal == 0)
        #expect(retimed.scored == 5001)
        #expect(retimed.labelsJoined == labels, "\(retimed.labelsJoined) of \(labels) labels joined")

        // Without the bound the poison expires the events still waiting for their labels: what
        // the bound is for.
        let unbounded = try replay(files) { $0.maxFuture = .seconds(365 * 86_400) }
        #expect(unbounded.deadLetterTotal == 0)
        #expect(unbounded.labelsJoined < labels - 10, "\(unbounded.labelsJoined) of \(labels) labels joined")
        print(
            "[future] labels joined: bounded \(bounded.labelsJoined), retimed \(retimed.labelsJoined), unbounded \(unbounded.labelsJoined) of \(labels)"
        )
    }

    /// A stream that really jumps ahead (a gap longer than `max_future` in a replayed file) loses
    /// only its first event after the jump to the dead letters: the second moves the reference.
    @Test func aRealJumpCostsOneEventInReplay() throws {
        let files = try ReplayTests.Files(events: 3000, meanGapMs: 1000, labelDelayMs: 60_000...60_000)
        var lines = try files.lines("events.jsonl")
        for k in 1500..<lines.count {
            var o = try JSONSerialization.jsonObject(with: Data(lines[k].utf8)) as! [String: Any]
            o["ts"] = (o["ts"] as! NSNumber).int64Value + 2 * 3_600_000
            lines[k] = String(decoding: try JSONSerialization.data(withJSONObject: o), as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: files.events, atomically: true, encoding: .utf8)
        let summary = try replay(files) { _ in }
        #expect(summary.deadLetters[.futureTime] == 1)
        #expect(summary.scored == 2999)
    }

    /// With a broker timestamp the bound is against it, whatever came before.
    @Test func theBoundIsAgainstTheRecordsTimestamp() throws {
        var topology = ReplayTests.topology
        topology.source.time!.maxFuture = .seconds(60)
        var decoder = EventDecoder(source: topology.source, schema: topology.schema)
        var batch = EventBatch(layout: decoder.layout, capacity: 4)
        let at: Int64 = 1_767_225_600_000
        func event(_ ts: Int64) -> [UInt8] {
            Array(
                #"{"txn_id":"t1","card_id":"c1","ts":\#(ts),"amount":12.5,"merchant_id":"m1","merchant_category":"grocery","country":"C1","channel":"online"}"#
                    .utf8)
        }
        func decode(_ ts: Int64, reference: Int64?) -> Result<EventDecoder.Decoded, DeadLetterReason> {
            event(ts).withUnsafeBytes { decoder.decode($0, arrivalMs: 0, referenceMs: reference, into: &batch) }
        }
        #expect(try decode(at + 60_000, reference: at).get().time == at + 60_000, "at the bound is fine")
        #expect(throws: DeadLetterReason.self) { try decode(at + 60_001, reference: at).get() }
        #expect(try decode(at - 86_400_000, reference: at).get().time == at - 86_400_000, "the past is not bounded")
        // Without timestamps, against the second newest time read, this one included.
        decoder = EventDecoder(source: topology.source, schema: topology.schema)
        #expect(try decode(at, reference: nil).get().time == at, "the first event has nothing to be ahead of")
        #expect(throws: DeadLetterReason.self) { try decode(at + 86_400_000, reference: nil).get() }
        #expect(try decode(at + 1000, reference: nil).get().time == at + 1000)
        #expect(
            try decode(at + 86_400_005, reference: nil).get().time == at + 86_400_005,
            "a second event as far ahead moves it")
        topology.source.time!.future = .arrivalTime
        decoder = EventDecoder(source: topology.source, schema: topology.schema)
        #expect(try decode(at + 86_400_000, reference: at).get().time == at, "re-timed to the record's timestamp")
    }
}
