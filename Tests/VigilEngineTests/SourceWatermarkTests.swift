import Testing
import VigilKafka

@testable import VigilEngine

/// The event time labels are released up to in `vigil run`: held back by the slowest partition
/// still being read, and the newest of any once every partition is at its end.
@Suite struct SourceWatermarkTests {
    @Test func thePartitionsStillBehindHoldTheWatermarkBack() {
        var mark = SourceWatermark()
        let p0 = TopicPartition("events", 0)
        let p1 = TopicPartition("events", 1)
        let p2 = TopicPartition("events", 2)
        mark.setBehind([p0, p1, p2])
        let s0 = mark.slot(p0)
        let s1 = mark.slot(p1)
        let s2 = mark.slot(p2)
        #expect(mark.bound == .min)
        var rose: Bool

        // A backlog read a partition at a time: partition 0 runs hours ahead of the others.
        rose = mark.observe(slot: s0, time: 10_000)
        #expect(!rose)
        rose = mark.observe(slot: s0, time: 20_000)
        #expect(!rose)
        #expect(mark.bound == .min, "partitions 1 and 2 have not been read yet")
        rose = mark.observe(slot: s1, time: 1_000)
        #expect(!rose)
        rose = mark.observe(slot: s2, time: 2_000)
        #expect(rose)
        #expect(mark.bound == 1_000 && mark.newestAny == 20_000)
        rose = mark.observe(slot: s1, time: 900)
        #expect(!rose, "an older event moves nothing")
        rose = mark.observe(slot: s1, time: 5_000)
        #expect(rose)
        #expect(mark.bound == 2_000)

        // Partition 2 is read to its end: only the others bound the watermark.
        mark.setBehind([p0, p1])
        #expect(mark.bound == 5_000)
        rose = mark.observe(slot: s2, time: 30_000)
        #expect(!rose, "a partition at its end does not move it")
        #expect(mark.newestAny == 30_000)

        // A partition assigned later and not read yet holds it back again.
        let p3 = TopicPartition("events", 3)
        mark.setBehind([p0, p1, p3])
        #expect(mark.bound == .min)
        let s3 = mark.slot(p3)
        rose = mark.observe(slot: s3, time: 7_000)
        #expect(rose)
        #expect(mark.bound == 5_000)

        // Nothing behind: the newest event time of any partition.
        mark.setBehind([])
        #expect(mark.bound == 30_000)
        rose = mark.observe(slot: s1, time: 31_000)
        #expect(rose && mark.bound == 31_000)
    }
}
