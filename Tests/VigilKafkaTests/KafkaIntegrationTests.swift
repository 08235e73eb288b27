import Foundation
import Logging
import MetricsTestKit
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

/// Against the real local broker that scripts/test.sh starts (KAFKA_BOOTSTRAP).
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct KafkaIntegrationTests {
    func common() throws -> KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: [try TestBroker.address()], clientID: "vigil-tests")
    }

    func newTopic(_ prefix: String, partitions: Int) throws -> String {
        let topic = TestBroker.unique(prefix)
        try KafkaAdmin(configuration: try common(), logger: .quiet).createTopic(topic, partitions: partitions)
        return topic
    }

    func consumer(
        _ topic: String, group: String? = nil, configure: (inout KafkaConsumerConfiguration) -> Void = { _ in },
        onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws -> KafkaConsumer {
        var config = KafkaConsumerConfiguration(common: try common(), groupID: group ?? TestBroker.unique("group"))
        config.startFrom = .earliest
        configure(&config)
        let consumer = try KafkaConsumer(configuration: config, logger: .quiet, onEvent: onEvent)
        try consumer.subscribe(topics: [topic])
        return consumer
    }

    /// Produces `values` (key i % keys; to partition i % roundRobin when given) and waits for
    /// every acknowledgement.
    func produce(_ topic: String, _ values: [String], keys: Int = 64, roundRobin: Int? = nil) throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(common: try common()), logger: .quiet)
        let handle = producer.topic(topic)
        for (i, v) in values.enumerated() {
            let key = Array("key-\(i % keys)".utf8)
            let value = Array(v.utf8)
            try key.withUnsafeBytes { k in
                try value.withUnsafeBytes { v in
                    try producer.send(
                        to: handle, key: k, value: v, partition: roundRobin.map { Int32(i % $0) }, token: UInt64(i + 1))
                }
            }
        }
        try producer.close(deadline: .seconds(30))
        #expect(producer.deliveredCount == values.count && producer.failedCount == 0)
    }

    /// Polls on this thread until `enough` says so or `timeout` passes.
    func pollUntil(
        _ consumers: [KafkaConsumer], timeout: Duration = .seconds(60), _ body: (Int, KafkaBatch) -> Void,
        enough: () -> Bool
    ) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !enough(), clock.now < deadline {
            for (i, c) in consumers.enumerated() { body(i, try c.poll(maxMessages: 5000, timeout: .milliseconds(50))) }
        }
    }

    @Test func topicsAreCreatedOnceAndShowInMetadata() throws {
        let admin = try KafkaAdmin(configuration: try common(), logger: .quiet)
        let topic = TestBroker.unique("vigil-admin")
        #expect(try admin.createTopic(topic, partitions: 3) == true)
        #expect(try admin.createTopic(topic, partitions: 3) == false)
        let other = TestBroker.unique("vigil-admin2")
        #expect(try admin.ensureTopics([topic, other], partitions: 2) == [other])
        let metadata = try admin.metadata(timeout: .seconds(10))
        #expect(metadata.topics[topic] == 3 && metadata.topics[other] == 2)
        #expect(metadata.brokers.count == 1)
    }

    /// 100k records through a consumer running on its own thread: none lost, none repeated,
    /// order kept per partition, and every offset committed once marked done.
    @Test func hundredThousandRecordsRoundTripOnAPollThread() throws {
        let n = 100_000
        let topic = try newTopic("vigil-100k", partitions: 4)
        try produce(topic, (0..<n).map { "\($0 % 64):\($0)" })

        let consumer = try consumer(topic)
        let received = Mutex<[KafkaMessage]>([])
        let finished = Atomic<Bool>(false)
        let thread = Thread {
            try? consumer.run(maxBatch: 10_000) { batch in
                received.withLock { $0 += batch.messages }
                consumer.markDone(batch)
                if received.withLock({ $0.count }) >= n { consumer.stop() }
            }
            finished.store(true, ordering: .releasing)
        }
        thread.start()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(90))
        while !finished.load(ordering: .acquiring), clock.now < deadline { usleep(20_000) }
        consumer.stop()
        while !finished.load(ordering: .acquiring) { usleep(10_000) }

        let got = received.withLock { $0 }
        #expect(got.count == n)
        let values = got.map { String(decoding: $0.value ?? [], as: UTF8.self) }
        #expect(Set(values).count == n, "no duplicates")
        var lastSeq: [Substring: Int] = [:]
        var lastOffset: [Int32: Int64] = [:]
        var perPartition: [Int32: Int64] = [:]
        for (m, v) in zip(got, values) {
            let parts = v.split(separator: ":")
            let seq = Int(parts[1])!
            #expect(seq > lastSeq[parts[0], default: -1], "per-key order")
            lastSeq[parts[0]] = seq
            #expect(m.offset > lastOffset[m.partition, default: -1], "per-partition order")
            lastOffset[m.partition] = m.offset
            perPartition[m.partition, default: 0] += 1
        }
        #expect(perPartition.count == 4)
        // Whatever the periodic commit had not sent yet; a commit that a loaded broker does not
        // take in time (it happened under CI) is sent again, as an application would.
        var offsets: [TopicPartition: Int64] = [:]
        let commitDeadline = ContinuousClock.now.advanced(by: .seconds(60))
        repeat {
            _ = consumer.commit()
            offsets = try consumer.committedOffsets((0..<4).map { TopicPartition(topic, $0) })
            if (0..<Int32(4)).allSatisfy({ offsets[TopicPartition(topic, $0)] == perPartition[$0] }) { break }
            usleep(500_000)
        } while ContinuousClock.now < commitDeadline
        for p in 0..<Int32(4) {
            #expect(offsets[TopicPartition(topic, p)] == perPartition[p], "partition \(p) committed to its end")
        }
        consumer.close()
    }

    @Test func tombstonesNullKeysAndHeadersRoundTrip() throws {
        let topic = try newTopic("vigil-shapes", partitions: 1)
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(common: try common()), logger: .quiet)
        let headers = [
            KafkaHeader(name: "trace", value: Array("abc".utf8)), KafkaHeader(name: "empty", value: nil),
            KafkaHeader(name: "bytes", value: [0, 255, 10]),
        ]
        try producer.send(topic: topic, key: Array("card-1".utf8), value: nil)  // tombstone
        try producer.send(topic: topic, key: nil, value: Array("no key".utf8), headers: headers)
        try producer.send(topic: topic, key: [], value: [])  // empty, not null
        try producer.close()

        let consumer = try consumer(topic)
        defer { consumer.close() }
        var got: [KafkaRecord] = []
        try pollUntil([consumer], { _, batch in got += batch }, enough: { got.count >= 3 })
        try #require(got.count == 3)
        #expect(got[0].key.map(Array.init) == Array("card-1".utf8) && got[0].value == nil)
        got[0].withValueBytes { #expect($0 == nil) }
        #expect(got[1].key == nil && got[1].value.map(Array.init) == Array("no key".utf8))
        #expect(got[1].headers == headers)
        got[1].withValueBytes { #expect($0.map { Array($0) } == Array("no key".utf8)) }
        #expect(got[2].headers.isEmpty && got[2].key?.isEmpty == true && got[2].value?.isEmpty == true)
        #expect(got.allSatisfy { $0.timestampMilliseconds != nil })
    }

    /// A consumer marks records 0..<50 and 60..<100 done: only 50 is committed, and a new
    /// member of the group resumes exactly there.
    @Test func aRestartResumesFromTheFirstGap() throws {
        let topic = try newTopic("vigil-resume", partitions: 1)
        try produce(topic, (0..<100).map { "r\($0)" })
        let group = TestBroker.unique("group-resume")
        let tp = TopicPartition(topic, 0)

        let first = try consumer(topic, group: group)
        var got: [KafkaRecord] = []
        try pollUntil([first], { _, batch in got += batch }, enough: { got.count >= 100 })
        try #require(got.count == 100)
        first.markDone(got.filter { $0.offset < 50 || $0.offset >= 60 }.map(\.position))
        #expect(first.commit() == [tp: 50])
        #expect(first.inFlight == [tp: 50])
        first.close()

        let second = try consumer(topic, group: group)
        defer { second.close() }
        var again: [KafkaRecord] = []
        try pollUntil([second], { _, batch in again += batch }, enough: { again.count >= 50 })
        #expect(again.first?.offset == 50)
        #expect(again.count == 50)
        #expect(try second.committedOffsets([tp]) == [tp: 50])
    }

    /// Two members split four partitions; when one leaves, the other continues from the leaver's
    /// committed offsets. The only duplicates are records the leaver had not marked done.
    @Test func aGroupSplitsPartitionsAndTakesOverFromCommittedOffsets() throws {
        let topic = try newTopic("vigil-group", partitions: 4)
        let group = TestBroker.unique("group-split")
        let events = Mutex<[(String, KafkaEvent)]>([])
        let a = try consumer(topic, group: group, onEvent: { e in events.withLock { $0.append(("a", e)) } })
        let b = try consumer(topic, group: group, onEvent: { e in events.withLock { $0.append(("b", e)) } })

        // Both joined and split the partitions before anything is produced.
        try pollUntil([a, b], { _, _ in }, enough: { a.assignment.count == 2 && b.assignment.count == 2 })
        try #require(a.assignment.count == 2 && b.assignment.count == 2)
        #expect(a.assignment.isDisjoint(with: b.assignment))

        let n = 4000
        try produce(topic, (0..<n).map { "g\($0)" })
        var seenA: [KafkaPosition: String] = [:]
        var seenB: [KafkaPosition: String] = [:]
        var notDoneByA = Set<KafkaPosition>()
        // A processes its first 300 records fully; the rest stay in flight (never acknowledged).
        try pollUntil(
            [a, b],
            { who, batch in
                for r in batch {
                    let v = String(decoding: r.value ?? [], as: UTF8.self)
                    if who == 0 {
                        seenA[r.position] = v
                        if seenA.count <= 300 { a.markDone(r.position) } else { notDoneByA.insert(r.position) }
                    } else {
                        seenB[r.position] = v
                        b.markDone(r.position)
                    }
                }
            }, enough: { seenA.count + seenB.count >= n })
        try #require(seenA.count + seenB.count == n)
        #expect(!seenA.isEmpty && !seenB.isEmpty)
        let aPartitions = a.assignment

        a.close()  // commits A's done prefix and leaves the group
        var takenOver: [KafkaPosition: String] = [:]
        try pollUntil(
            [b],
            { _, batch in
                for r in batch { takenOver[r.position] = String(decoding: r.value ?? [], as: UTF8.self) }
                b.markDone(batch)
            }, enough: { takenOver.count >= notDoneByA.count && b.assignment.count == 4 })
        defer { b.close() }

        #expect(b.assignment.count == 4)
        // Nothing lost: everything was processed by A (done), by B, or taken over.
        let all = Set(seenA.values).union(seenB.values)
        #expect(all.count == n)
        // Duplicates only from A's uncommitted tail, and all of that tail came back.
        #expect(Set(takenOver.keys) == notDoneByA)
        #expect(takenOver.keys.allSatisfy { aPartitions.contains($0.topicPartition) })
        #expect(takenOver.allSatisfy { seenA[$0.key] == $0.value }, "the same records, at the same offsets")
        let aEvents = events.withLock { $0.filter { $0.0 == "a" }.map(\.1) }
        #expect(
            aEvents.contains { if case .revoked(let p) = $0 { return Set(p) == aPartitions } else { return false } })
    }

    @Test func pauseHoldsRecordsBackAndSeekRereads() throws {
        let topic = try newTopic("vigil-pause", partitions: 1)
        let tp = TopicPartition(topic, 0)
        try produce(topic, (0..<20).map { "p\($0)" })
        let c = try consumer(topic)
        defer { c.close() }
        var got: [KafkaRecord] = []
        try pollUntil([c], { _, batch in got += batch }, enough: { got.count >= 20 })
        try #require(got.count == 20)

        try c.seek([tp: 5])
        var reread: [KafkaRecord] = []
        try pollUntil([c], timeout: .seconds(20), { _, batch in reread += batch }, enough: { reread.count >= 15 })
        #expect(reread.first?.offset == 5 && reread.count == 15)

        try c.pause([tp])
        try produce(topic, (20..<25).map { "p\($0)" })
        var whilePaused: [KafkaRecord] = []
        try pollUntil([c], timeout: .seconds(2), { _, batch in whilePaused += batch }, enough: { false })
        #expect(whilePaused.isEmpty)
        try c.resume([tp])
        var afterResume: [KafkaRecord] = []
        try pollUntil(
            [c], timeout: .seconds(20), { _, batch in afterResume += batch }, enough: { afterResume.count >= 5 })
        #expect(afterResume.map(\.offset) == [20, 21, 22, 23, 24])
    }

    /// A transactional producer leaves a commit marker after its records: the high watermark is
    /// one past the last record, and only the position says that reading reached it.
    @Test func thePositionStepsOverTheTransactionMarkerThatEndsAPartition() throws {
        let topic = try newTopic("vigil-txn", partitions: 1)
        let tp = TopicPartition(topic, 0)
        let producer = try TransactionalProducer(brokers: try TestBroker.address(), id: TestBroker.unique("txn"))
        for i in 0..<5 { try producer.send(Array("t\(i)".utf8), to: topic, partition: 0) }
        try producer.commit()
        let c = try consumer(topic)
        defer { c.close() }
        #expect(c.positions([tp]).isEmpty, "nothing read yet")
        var got: [KafkaRecord] = []
        try pollUntil([c], timeout: .seconds(30), { _, batch in got += batch }, enough: { got.count >= 5 })
        // A few more polls: the marker comes after the records, in the same fetch or the next.
        try pollUntil([c], timeout: .seconds(1), { _, batch in got += batch }, enough: { false })
        #expect(got.map(\.offset) == [0, 1, 2, 3, 4])
        let high = try #require(c.cachedWatermarks(tp)?.high)
        #expect(high == 6, "five records and the commit marker")
        #expect(c.positions([tp]) == [tp: 6])
    }

    @Test func startOffsetsOverrideTheGroupPosition() throws {
        let topic = try newTopic("vigil-start", partitions: 2)
        try produce(topic, (0..<40).map { "s\($0)" }, roundRobin: 2)
        var config = KafkaConsumerConfiguration(common: try common(), groupID: TestBroker.unique("group-start"))
        config.startFrom = .earliest
        let c = try KafkaConsumer(configuration: config, logger: .quiet)
        defer { c.close() }
        c.setStartOffsets([TopicPartition(topic, 0): 15, TopicPartition(topic, 1): 18])
        try c.subscribe(topics: [topic])
        var got: [KafkaRecord] = []
        try pollUntil([c], { _, batch in got += batch }, enough: { got.count >= 7 })
        #expect(got.count == 7, "20 per partition, starting at 15 and 18")
        #expect(got.filter { $0.partition == 0 }.map(\.offset).first == 15)
        #expect(got.filter { $0.partition == 1 }.map(\.offset).first == 18)
    }

    /// Statistics arrive as events and become per-partition consumer-lag gauges.
    @Test func statisticsReportConsumerLag() throws {
        let topic = try newTopic("vigil-stats", partitions: 1)
        let tp = TopicPartition(topic, 0)
        try produce(topic, (0..<1000).map { "x\($0)" })
        let metrics = TestMetrics()
        let stats = Mutex<[KafkaStatistics]>([])
        var config = KafkaConsumerConfiguration(common: try common(), groupID: TestBroker.unique("group-stats"))
        config.startFrom = .earliest
        config.statisticsInterval = .milliseconds(200)
        let c = try KafkaConsumer(configuration: config, logger: .quiet, metricsFactory: metrics) { event in
            if case .statistics(let s) = event { stats.withLock { $0.append(s) } }
        }
        defer { c.close() }
        try c.subscribe(topics: [topic])
        var got: [KafkaRecord] = []
        try pollUntil([c], { _, batch in got += batch }, enough: { got.count >= 1000 })
        c.markDone(got.prefix(400).map(\.position))
        #expect(c.commit() == [tp: 400])
        try pollUntil(
            [c], timeout: .seconds(10), { _, _ in },
            enough: {
                stats.withLock { $0.contains { $0.partitions[tp]?.consumerLag == 600 } }
            })
        #expect(stats.withLock { $0.contains { $0.partitions[tp]?.consumerLag == 600 } })
        let gauge = try metrics.expectGauge(
            "vigil_kafka_consumer_lag", [("client", "vigil-tests"), ("topic", topic), ("partition", "0")])
        #expect(gauge.lastValue == 600)
    }

    @Test func anIdempotentProducerDeliversEverythingOnce() throws {
        let topic = try newTopic("vigil-idem", partitions: 2)
        var config = KafkaProducerConfiguration(common: try common())
        config.idempotence = true
        let producer = try KafkaProducer(configuration: config, logger: .quiet)
        for i in 0..<2000 { try producer.send(topic: topic, key: Array("k\(i % 7)".utf8), value: Array("i\(i)".utf8)) }
        try producer.close()
        #expect(producer.deliveredCount == 2000 && producer.failedCount == 0)
        let c = try consumer(topic)
        defer { c.close() }
        var values = Set<String>()
        var count = 0
        try pollUntil(
            [c],
            { _, batch in
                count += batch.count
                for r in batch { values.insert(String(decoding: r.value ?? [], as: UTF8.self)) }
            }, enough: { count >= 2000 })
        #expect(count == 2000 && values.count == 2000)
    }

    /// The cooperative-sticky protocol: members split the partitions with incremental
    /// assignment, and a leaver's partitions move to the survivor without loss.
    @Test func cooperativeStickyMembersSplitAndHandOver() throws {
        let topic = try newTopic("vigil-coop", partitions: 4)
        let group = TestBroker.unique("group-coop")
        let cooperative: (inout KafkaConsumerConfiguration) -> Void = { $0.assignmentStrategy = .cooperativeSticky }
        let a = try consumer(topic, group: group, configure: cooperative)
        let b = try consumer(topic, group: group, configure: cooperative)
        try pollUntil([a, b], { _, _ in }, enough: { a.assignment.count == 2 && b.assignment.count == 2 })
        #expect(a.assignment.count == 2 && b.assignment.count == 2)
        #expect(a.assignment.isDisjoint(with: b.assignment))
        try produce(topic, (0..<1000).map { "c\($0)" })
        var seen = Set<String>()
        try pollUntil(
            [a, b],
            { who, batch in
                for r in batch { seen.insert(String(decoding: r.value ?? [], as: UTF8.self)) }
                (who == 0 ? a : b).markDone(batch)
            }, enough: { seen.count >= 1000 })
        a.close()
        try produce(topic, (1000..<1400).map { "c\($0)" })
        try pollUntil(
            [b],
            { _, batch in
                for r in batch { seen.insert(String(decoding: r.value ?? [], as: UTF8.self)) }
                b.markDone(batch)
            }, enough: { seen.count >= 1400 && b.assignment.count == 4 })
        defer { b.close() }
        #expect(seen.count == 1400)
        #expect(b.assignment.count == 4)
    }

    /// close() from another thread while run() polls: it waits for the loop, commits what is
    /// done, and leaves; nothing crashes and the commit is visible to the group.
    @Test func closeFromAnotherThreadWaitsForRun() throws {
        let topic = try newTopic("vigil-close", partitions: 1)
        try produce(topic, (0..<500).map { "z\($0)" })
        let group = TestBroker.unique("group-close")
        let c = try consumer(topic, group: group)
        let seen = Atomic<Int>(0)
        let returned = Atomic<Bool>(false)
        let thread = Thread {
            try? c.run(maxBatch: 100) { batch in
                c.markDone(batch)
                seen.add(batch.count, ordering: .relaxed)
            }
            returned.store(true, ordering: .releasing)
        }
        thread.start()
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(60))
        while seen.load(ordering: .relaxed) < 500, clock.now < deadline { usleep(10_000) }
        c.close()
        let runReturned = returned.load(ordering: .acquiring)
        let total = seen.load(ordering: .relaxed)
        #expect(runReturned, "run() returned before close() finished")
        #expect(total == 500)
        let check = try consumer(topic, group: group)
        defer { check.close() }
        #expect(try check.committedOffsets([TopicPartition(topic, 0)]) == [TopicPartition(topic, 0): 500])
    }

    /// An asynchronous commit returns at once; the coordinator's answer arrives while polling.
    @Test func anAsynchronousCommitIsConfirmedByAnEvent() throws {
        let topic = try newTopic("vigil-async", partitions: 1)
        let tp = TopicPartition(topic, 0)
        try produce(topic, (0..<50).map { "a\($0)" })
        let committed = Mutex<[TopicPartition: Int64]>([:])
        let c = try consumer(
            topic,
            onEvent: { event in
                if case .committed(let offsets) = event { committed.withLock { $0.merge(offsets) { $1 } } }
            })
        defer { c.close() }
        var got: [KafkaRecord] = []
        try pollUntil(
            [c],
            { _, batch in
                got += batch
                c.markDone(batch)
            }, enough: { got.count >= 50 })
        #expect(c.commit(async: true) == [tp: 50], "returns what it sent")
        try pollUntil([c], timeout: .seconds(20), { _, _ in }, enough: { committed.withLock { $0[tp] } == 50 })
        #expect(committed.withLock { $0[tp] } == 50)
        #expect(try c.committedOffsets([tp]) == [tp: 50])
    }
}
