import Testing
import VigilKafka

@testable import VigilEngine

/// The labels `vigil run` holds until the events reach their time: released in each partition's
/// order, with positions that never pass a held label.
@Suite struct LabelPacerTests {
    @Test func labelsGoOutWhenTheEventsReachTheirTimeAndPositionsStopAtTheFirstHeld() {
        var pacer = LabelPacer()
        let a = TopicPartition("labels", 0)
        let b = TopicPartition("labels", 1)
        func label(_ id: UInt64) -> LabelRecord { LabelRecord(idHash: id, isFraud: id.isMultiple(of: 2)) }
        pacer.hold(label(1), time: 100, at: KafkaPosition(a, 10))
        pacer.hold(label(2), time: 300, at: KafkaPosition(a, 11))
        pacer.hold(label(3), time: 200, at: KafkaPosition(a, 12))  // behind a later one: waits for it
        pacer.hold(label(4), time: nil, at: KafkaPosition(b, 5))  // no time: at once
        pacer.hold(label(5), time: 150, at: KafkaPosition(b, 6))
        #expect(pacer.count == 5 && pacer.holds(a) && pacer.holds(b))

        var out: [UInt64] = []
        var positions: [TopicPartition: Int64] = [:]
        func release(_ newest: Int64) {
            pacer.release(upTo: newest, into: { out.append($0.idHash) }, released: { positions[$0] = $1 })
        }
        release(99)
        #expect(out == [4] && positions == [b: 5])
        release(160)
        #expect(out == [4, 1, 5] && positions == [a: 10, b: 6])
        #expect(!pacer.holds(b) && pacer.count == 2)
        release(250)
        #expect(out == [4, 1, 5], "label 3 waits behind label 2 of its partition")
        release(300)
        #expect(out == [4, 1, 5, 2, 3] && positions[a] == 12 && pacer.count == 0)

        pacer.hold(label(6), time: 10_000, at: KafkaPosition(a, 13))
        pacer.releaseAll(into: { out.append($0.idHash) }, released: { positions[$0] = $1 })
        #expect(out.last == 6 && positions[a] == 13 && pacer.count == 0)
    }

    @Test func aLongQueueIsCompactedWithoutLosingItsOrder() {
        var pacer = LabelPacer()
        let tp = TopicPartition("labels", 0)
        for k in 0..<20_000 {
            pacer.hold(
                LabelRecord(idHash: UInt64(k + 1), isFraud: false), time: Int64(k), at: KafkaPosition(tp, Int64(k)))
        }
        var out: [UInt64] = []
        var last: Int64 = -1
        for newest in stride(from: Int64(4999), to: 20_000, by: 5000) {
            pacer.release(upTo: newest, into: { out.append($0.idHash) }, released: { last = $1 })
            #expect(last == newest && pacer.count == 19_999 - Int(newest))
        }
        #expect(out == (1...20_000).map(UInt64.init))
    }
}
