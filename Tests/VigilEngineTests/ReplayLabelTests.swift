import Testing
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
