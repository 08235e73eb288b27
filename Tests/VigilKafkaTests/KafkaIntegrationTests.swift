import Synchronization
import Testing
import VigilKafka
import VigilTestKit

/// Against the real local broker that scripts/test.sh starts (KAFKA_BOOTSTRAP).
@Suite(
    .serialized, .timeLimit(.minutes(3)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct KafkaIntegrationTests {
    func common() throws -> KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: [try TestBroker.address()], clientID: "vigil-tests")
    }

    func consumer(_ topic: String) throws -> KafkaConsumer {
        var config = KafkaConsumerConfiguration(common: try common(), groupID: TestBroker.unique("group"))
        config.startFrom = .earliest
        let consumer = try KafkaConsumer(configuration: config)
        try consumer.subscribe(topics: [topic])
        return consumer
    }

    /// Polls until `count` messages arrived or `timeout` passed.
    func drain(_ consumer: KafkaConsumer, count: Int, timeout: Duration = .seconds(60)) throws -> [KafkaMessage] {
        var got: [KafkaMessage] = []
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while got.count < count, clock.now < deadline {
            got += try consumer.poll(maxMessages: 5000, timeout: .milliseconds(200))
        }
        return got
    }

    @Test func topicsAreCreatedOnceAndShowInMetadata() throws {
        let admin = try KafkaAdmin(configuration: try common())
        let topic = TestBroker.unique("vigil-admin")
        #expect(try admin.createTopic(topic, partitions: 3) == true)
        #expect(try admin.createTopic(topic, partitions: 3) == false)
        let metadata = try admin.metadata(timeout: .seconds(10))
        #expect(metadata.topics[topic] == 3)
        #expect(metadata.brokers.count == 1)
    }

    @Test func producedMessagesAllComeBackInOrderPerPartition() throws {
        let n = 20_000
        let topic = TestBroker.unique("vigil-roundtrip")
        try KafkaAdmin(configuration: try common()).createTopic(topic, partitions: 4)
        let acked = Mutex<Set<UInt64>>([])
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(common: try common()),
            onDelivery: { report in if report.error == nil { acked.withLock { _ = $0.insert(report.token) } } })
        for i in 0..<n {
            try producer.send(
                topic: topic, key: Array("key-\(i % 64)".utf8), value: Array("\(i % 64):\(i)".utf8), token: UInt64(i + 1))
        }
        try producer.flush(timeout: .seconds(30))
        #expect(producer.deliveredCount == n && producer.failedCount == 0)
        #expect(acked.withLock { $0.count } == n)

        let consumer = try consumer(topic)
        defer { consumer.close() }
        let got = try drain(consumer, count: n)
        #expect(got.count == n)
        let values = got.map { String(decoding: $0.value ?? [], as: UTF8.self) }
        #expect(Set(values).count == n, "no duplicates")
        // Per key (so per partition) the sequence numbers rise: order is kept.
        var lastSeq: [String: Int] = [:]
        var lastOffset: [Int32: Int64] = [:]
        for (message, value) in zip(got, values) {
            let parts = value.split(separator: ":")
            let key = String(parts[0])
            let seq = Int(parts[1])!
            #expect(seq > lastSeq[key, default: -1])
            lastSeq[key] = seq
            #expect(message.offset > lastOffset[message.partition, default: -1])
            lastOffset[message.partition] = message.offset
            #expect(message.key.map { String(decoding: $0, as: UTF8.self) } == "key-\(key)")
        }
        #expect(Set(got.map(\.partition)).count == 4, "keys spread over all partitions")
    }

    @Test func tombstonesNullKeysAndHeadersRoundTrip() throws {
        let topic = TestBroker.unique("vigil-shapes")
        try KafkaAdmin(configuration: try common()).createTopic(topic, partitions: 1)
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(common: try common()))
        let headers = [
            KafkaHeader(name: "trace", value: Array("abc".utf8)), KafkaHeader(name: "empty", value: nil),
            KafkaHeader(name: "bytes", value: [0, 255, 10]),
        ]
        try producer.send(topic: topic, key: Array("card-1".utf8), value: nil)  // tombstone
        try producer.send(topic: topic, key: nil, value: Array("no key".utf8), headers: headers)
        try producer.send(topic: topic, key: [], value: [])  // empty, not null
        try producer.flush(timeout: .seconds(10))

        let consumer = try consumer(topic)
        defer { consumer.close() }
        let got = try drain(consumer, count: 3)
        try #require(got.count == 3)
        #expect(got[0].key == Array("card-1".utf8) && got[0].value == nil)
        #expect(got[1].key == nil && got[1].value == Array("no key".utf8))
        #expect(got[1].headers == headers)
        #expect(got[2].headers.isEmpty)
        #expect(got.allSatisfy { $0.timestampMilliseconds != nil })
    }
}
