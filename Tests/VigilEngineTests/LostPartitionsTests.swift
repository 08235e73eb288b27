import Testing
import VigilKafka

@testable import VigilEngine

struct LostPartitionsTests {
    let a = TopicPartition("payments", 0)
    let b = TopicPartition("payments", 1)

    @Test func checkpointsWaitFromALossUntilTheNextAssignment() {
        let lost = LostPartitions()
        #expect(!lost.awaitingAssignment)
        lost.lost([a, b], next: [a: 120])
        #expect(lost.awaitingAssignment)
        // Any assignment ends the wait, even one without the lost partitions.
        #expect(lost.assigned([]).isEmpty)
        #expect(!lost.awaitingAssignment)
    }

    @Test func aLostPartitionComesBackOnceWithWhereTheInstanceStood() {
        let lost = LostPartitions()
        lost.lost([a, b], next: [a: 120])
        // b was never read here: nothing to resume from.
        #expect(lost.assigned([b]) == [:])
        // a went elsewhere first, and comes back later: still where this instance stood.
        #expect(lost.assigned([a, b]) == [a: 120])
        #expect(lost.assigned([a]) == [:], "forgotten once it came back")
    }
}
