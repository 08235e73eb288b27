import Testing
import VigilKafka
import VigilTestKit

@Suite(.ownThread) struct OffsetTrackerTests {
    let p0 = TopicPartition("t", 0)
    let p1 = TopicPartition("t", 1)

    @Test func commitsOnlyTheContiguousDonePrefix() {
        var t = OffsetTracker()
        for o in 0..<10 { t.fetched(p0, Int64(o)) }
        for o in [0, 1, 2, 5, 6, 7, 8, 9] { t.markDone(KafkaPosition(p0, Int64(o))) }
        #expect(t.pendingCommits() == [p0: 3], "3 and 4 are not done: commit stops at the first gap")
        t.markDone(KafkaPosition(p0, 4))
        #expect(t.pendingCommits() == [p0: 3])
        t.markDone(KafkaPosition(p0, 3))
        #expect(t.pendingCommits() == [p0: 10])
        #expect(t.inFlight == [p0: 0])
    }

    @Test func offsetGapsFromCompactionDoNotBlockCommits() {
        var t = OffsetTracker()
        for o in [10, 11, 15, 16, 40] { t.fetched(p0, Int64(o)) }
        for o in [10, 11, 15] { t.markDone(KafkaPosition(p0, Int64(o))) }
        #expect(t.pendingCommits() == [p0: 16])
        t.markDone(KafkaPosition(p0, 16))
        t.markDone(KafkaPosition(p0, 40))
        #expect(t.pendingCommits() == [p0: 41])
    }

    @Test func partitionsAreIndependentAndCommitsAreNotRepeated() {
        var t = OffsetTracker()
        t.fetched(p0, 0)
        t.fetched(p1, 7)
        t.markDone(KafkaPosition(p1, 7))
        #expect(t.pendingCommits() == [p1: 8])
        t.committed([p1: 8])
        #expect(t.pendingCommits().isEmpty)
        #expect(t.committedOffset(p1) == 8)
        #expect(t.pendingCommits([p0]).isEmpty)
    }

    @Test func aFailedAsynchronousCommitIsSentAgain() {
        var t = OffsetTracker()
        for o in 0..<4 { t.fetched(p0, Int64(o)) }
        for o in 0..<4 { t.markDone(KafkaPosition(p0, Int64(o))) }
        t.committed([p0: 4])  // sent
        #expect(t.pendingCommits().isEmpty, "not resent while in flight")
        t.commitFailed([p0: 4])
        #expect(t.pendingCommits() == [p0: 4], "pending again after the coordinator refused it")
        t.committed([p0: 4])
        t.commitFailed([p0: 3])  // an older failure does not undo a newer commit
        #expect(t.pendingCommits().isEmpty)
    }

    /// What failed ScaleOutTests in the project's CI: an instance read a partition to its end,
    /// lost it before a commit counted, got it back where it stood, and nothing more arrived. The
    /// group's offset stayed thousands of records behind for good.
    @Test func aPartitionLostAndGivenBackWhereItStoodCommitsItsRecords() {
        var t = OffsetTracker()
        for o in 0..<10 { t.fetched(p0, Int64(o)) }
        for o in 0..<6 { t.markDone(KafkaPosition(p0, Int64(o))) }
        t.committed([p0: 6])  // sent, but the coordinator had moved on: it never counted
        t.lose([p0])
        #expect(t.pendingCommits().isEmpty, "nothing of a lost partition is committed")
        #expect(t.inFlight.isEmpty)
        for o in 6..<9 { t.markDone(KafkaPosition(p0, Int64(o))) }  // outputs acknowledged meanwhile
        t.assigned([p0], starts: [p0: 10])
        #expect(t.pendingCommits() == [p0: 9], "what finished, lost or not; 9 is still in flight")
        #expect(t.inFlight == [p0: 1])
        t.markDone(KafkaPosition(p0, 9))
        #expect(t.pendingCommits() == [p0: 10], "to the end, with no record after the loss")
    }

    @Test func aPartitionThatStartsFromAStoredStateCommitsThatOffset() {
        var t = OffsetTracker()
        t.assigned([p0, p1], starts: [p0: 40])
        #expect(t.pendingCommits() == [p0: 40], "the state covers every record before 40")
        #expect(t.doneOffsets == [p0: 40])
        t.committed([p0: 40])
        t.fetched(p0, 40)
        t.fetched(p1, 3)
        t.markDone(KafkaPosition(p0, 40))
        t.markDone(KafkaPosition(p1, 3))
        #expect(t.pendingCommits() == [p0: 41, p1: 4])
    }

    @Test func aLostPartitionThatComesBackElsewhereInItsLogStartsAfresh() {
        var t = OffsetTracker()
        for o in 0..<5 { t.fetched(p0, Int64(o)) }
        for o in 0..<5 { t.fetched(p1, Int64(o)) }
        t.lose([p0, p1])
        // p0 comes back from a newer state another instance stored; p1 goes elsewhere.
        t.assigned([p0], starts: [p0: 20])
        #expect(t.pendingCommits() == [p0: 20])
        #expect(t.inFlight == [p0: 0], "the records in flight before the loss are not waited for")
        let beforeTheStart = t.markDone(KafkaPosition(p0, 4))
        let notGivenBack = t.markDone(KafkaPosition(p1, 4))
        #expect(!beforeTheStart)
        #expect(!notGivenBack, "a lost partition not given back is forgotten")
        t.assigned([p1], starts: [:])
        #expect(t.pendingCommits() == [p0: 20], "from the group's committed offset: nothing to send")
    }

    @Test func unknownPositionsAreIgnored() {
        var t = OffsetTracker()
        t.fetched(p0, 5)
        let otherPartition = t.markDone(KafkaPosition(p1, 5))
        let beforeFirst = t.markDone(KafkaPosition(p0, 4))
        let notFetched = t.markDone(KafkaPosition(p0, 6))
        let first = t.markDone(KafkaPosition(p0, 5))
        let again = t.markDone(KafkaPosition(p0, 5))
        #expect(!otherPartition, "partition never fetched")
        #expect(!beforeFirst, "before the first fetched offset")
        #expect(!notFetched, "not fetched yet")
        #expect(first)
        #expect(!again, "already done")
        t.remove([p0])
        t.fetched(p0, 9)
        #expect(t.pendingCommits().isEmpty, "state starts over after a partition is reassigned")
    }

    @Test func aSeekBackwardsStartsOverWithoutSkipping() {
        var t = OffsetTracker()
        for o in 0..<5 { t.fetched(p0, Int64(o)) }
        t.markDone(KafkaPosition(p0, 0))
        t.fetched(p0, 2)  // seek back to 2 while 1..4 were in flight
        t.markDone(KafkaPosition(p0, 2))
        #expect(t.pendingCommits() == [p0: 3])
    }

    /// A long stream with done marks in random order: the commit point is always the lowest
    /// offset not yet done, and memory follows what is in flight.
    @Test func randomOrderMatchesTheDefinition() {
        var t = OffsetTracker()
        var rng = SplitMix(seed: 3)
        let n = 50_000
        for o in 0..<n { t.fetched(p0, Int64(o * 2)) }  // every other offset: a gap everywhere
        var order = Array(0..<n)
        order.shuffle(using: &rng)
        var done = Set<Int>()
        var lowestNotDone = 0
        for (k, i) in order.enumerated() {
            t.markDone(KafkaPosition(p0, Int64(i * 2)))
            done.insert(i)
            while done.contains(lowestNotDone) { lowestNotDone += 1 }
            if k % 997 == 0 || k == n - 1 {
                let expected: Int64? = lowestNotDone == 0 ? nil : Int64((lowestNotDone - 1) * 2 + 1)
                #expect(t.pendingCommits()[p0] == expected)
            }
        }
        #expect(t.inFlight[p0] == 0)
    }
}

/// A small seeded generator for tests.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
