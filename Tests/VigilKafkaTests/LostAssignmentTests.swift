import Foundation
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

/// A consumer loses its partition to a stalled broker with records still in flight, and the group
/// gives the partition back where the consumer stood. Nothing more arrives, so the group's offset
/// must move up only through the records in flight from before the loss. ScaleOutTests failed on
/// this in the project's CI: a partition stayed committed 1,833 records behind its end for good.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(5)),
    .enabled(if: TestBroker.enabled, "needs tansu: run scripts/test.sh, which installs it"))
struct LostAssignmentTests {
    @Test func recordsInFlightAcrossALossAreCommittedWhenThePartitionComesBack() throws {
        // A broker of its own: this test freezes it.
        let broker = try PrivateBroker()
        defer { broker.stop() }
        let topic = TestBroker.unique("vigil-lost")
        let tp = TopicPartition(topic, 0)
        try broker.createTopic(topic, partitions: 1)
        let common = KafkaConfiguration(bootstrapServers: [broker.address], clientID: "vigil-lost")
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(common: common), logger: .quiet)
        for i in 0..<100 { try producer.send(topic: topic, key: nil, value: Array("r\(i)".utf8), partition: 0) }
        try producer.flush(timeout: .seconds(30))

        let group = TestBroker.unique("group-lost")
        let events = Mutex<[KafkaEvent]>([])
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(common: common, groupID: group), logger: .quiet,
            onEvent: { e in events.withLock { $0.append(e) } })
        defer { consumer.close() }
        // As the engine does: a partition lost here comes back where this consumer stood.
        let stood = Mutex<[TopicPartition: Int64]>([:])
        let read = Mutex<Int64>(0)
        consumer.setRebalanceHandler(
            RebalanceHandler(
                assigning: { partitions in stood.withLock { s in s.filter { partitions.contains($0.key) } } },
                revoking: { partitions, lost in
                    if lost { stood.withLock { s in for p in partitions { s[p] = read.withLock { $0 } } } }
                }))
        try consumer.subscribe(topics: [topic])

        var positions: [KafkaPosition] = []
        let clock = ContinuousClock()
        var deadline = clock.now.advanced(by: .seconds(60))
        while positions.count < 100, clock.now < deadline {
            for r in try consumer.poll(maxMessages: 1000, timeout: .milliseconds(100)) {
                positions.append(r.position)
                read.withLock { $0 = r.position.offset + 1 }
            }
        }
        try #require(positions.count == 100)
        // The first 40 are done and committed; the rest wait for their outputs.
        consumer.markDone(positions[..<40])
        #expect(consumer.commit() == [tp: 40])

        // Frozen for longer than the session timeout (6 s): librdkafka gives the assignment up.
        broker.pause()
        Thread.sleep(forTimeInterval: 10)
        broker.resume()
        func firstLoss() -> Int? { events.withLock { $0.firstIndex { if case .lost = $0 { true } else { false } } } }
        func lostAndBack() -> Bool {
            guard let loss = firstLoss() else { return false }
            return events.withLock {
                $0[loss...].contains { if case .assigned(let p) = $0 { p.contains(tp) } else { false } }
            }
        }
        var acknowledged = false
        deadline = clock.now.advanced(by: .seconds(60))
        while !lostAndBack(), clock.now < deadline {
            let batch = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
            #expect(batch.isEmpty, "nothing was produced after the first 100")
            if !acknowledged, firstLoss() != nil {
                consumer.markDone(positions[40..<70])  // while the partition is lost
                acknowledged = true
            }
        }
        try #require(lostAndBack(), "the stall did not lose the assignment, or it never came back")
        #expect(stood.withLock { $0 } == [tp: 100])
        consumer.markDone(positions[70...])  // after it came back

        var committed: Int64 = -1
        deadline = clock.now.advanced(by: .seconds(30))
        while committed != 100, clock.now < deadline {
            _ = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(100))
            consumer.commit()
            committed = try consumer.committedOffsets([tp])[tp] ?? -1
        }
        #expect(committed == 100, "the group's offset stayed behind the records read before the loss")
    }
}
