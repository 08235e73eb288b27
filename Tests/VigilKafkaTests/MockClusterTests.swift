import Foundation
import Logging
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

/// The unit tier of VigilKafka: real consumers and producers against librdkafka's in-process
/// mock cluster, so delivery, failure and commit behaviour are tested without a broker process
/// (and with failures a real broker cannot be asked for). The integration tests above it run
/// the same clients against the real broker.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(10)))
struct MockClusterTests {
    let cluster: KafkaMockCluster

    init() throws {
        cluster = try KafkaMockCluster(brokers: 1, logger: .silent)
    }

    var common: KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: cluster.bootstrapServers, clientID: "vigil-mock-tests")
    }

    /// Delivery reports by token.
    final class Reports: Sendable {
        private let byToken = Mutex<[UInt64: DeliveryReport]>([:])
        func add(_ r: DeliveryReport) { byToken.withLock { $0[r.token] = r } }
        var all: [UInt64: DeliveryReport] { byToken.withLock { $0 } }
        subscript(_ token: UInt64) -> DeliveryReport? { all[token] }
    }

    /// A producer whose delivery reports are collected in `reports`.
    func producer(
        _ reports: Reports, configure: (inout KafkaProducerConfiguration) -> Void = { _ in }
    ) throws -> KafkaProducer {
        var config = KafkaProducerConfiguration(common: common)
        configure(&config)
        return try KafkaProducer(configuration: config, logger: .silent) { reports.add($0) }
    }

    /// Waits (at most `timeout`) until `done` holds; false when it never did.
    func wait(_ timeout: Duration = .seconds(30), until done: () -> Bool) -> Bool {
        let end = ContinuousClock.now.advanced(by: timeout)
        while !done() {
            if ContinuousClock.now >= end { return false }
            usleep(5000)
        }
        return true
    }

    @Test func everyRecordGetsOneDeliveryReportWithItsToken() throws {
        try cluster.createTopic("t", partitions: 3)
        let reports = Reports()
        let producer = try producer(reports)
        for i in 1...1000 {
            try producer.send(topic: "t", key: Array("k\(i % 7)".utf8), value: [UInt8(i % 256)], token: UInt64(i))
        }
        try producer.close(deadline: .seconds(30))
        let got = reports.all
        #expect(got.count == 1000)
        #expect(Set(got.keys) == Set(1...1000))
        #expect(got.values.allSatisfy { $0.error == nil && $0.topic == "t" && $0.offset >= 0 })
        #expect(producer.deliveredCount == 1000 && producer.failedCount == 0)
    }

    @Test func retriableProduceErrorsAreRetriedUntilDelivered() throws {
        try cluster.createTopic("retried", partitions: 1)
        cluster.fail(.produce, with: [.notLeader, .requestTimedOut, .disconnect])
        let reports = Reports()
        let producer = try producer(reports)
        try producer.send(topic: "retried", key: nil, value: Array("x".utf8), token: 1)
        try producer.close(deadline: .seconds(30))
        let report = try #require(reports[1])
        #expect(
            report.error == nil,
            "delivered after librdkafka's retries: \(report.error.map(String.init(describing:)) ?? "")")
        #expect(producer.failedCount == 0)
    }

    /// After a permanent error librdkafka also refuses new records for that topic at once, until
    /// its next metadata refresh: `send` throws, and the caller keeps the record and tries again
    /// (as Vigil's sink does), until it goes through.
    @Test func aPermanentProduceErrorFailsTheDeliveryAndTheTopicRecovers() throws {
        try cluster.createTopic("refused", partitions: 1)
        cluster.fail(.produce, with: [.topicAuthorizationFailed])
        let reports = Reports()
        let producer = try producer(reports) { $0.common.properties["topic.metadata.refresh.interval.ms"] = "200" }
        try producer.send(topic: "refused", key: nil, value: Array("first".utf8), token: 1)
        try producer.flush(timeout: .seconds(30))
        var refusals = 0
        let accepted = wait {
            do throws(KafkaError) {
                try producer.send(topic: "refused", key: nil, value: Array("second".utf8), token: 2)
                return true
            } catch {
                #expect(error.code == .deliveryFailed && !error.isRetriable)
                refusals += 1
                return false
            }
        }
        #expect(accepted, "the topic never accepted records again (\(refusals) refusals)")
        try producer.close(deadline: .seconds(30))
        let (first, second) = (reports[1], reports[2])
        #expect(first?.error?.code == .deliveryFailed)
        #expect(first?.error?.isRetriable == false)
        #expect(second != nil && second?.error == nil)
        #expect(producer.failedCount == 1 && producer.deliveredCount == 1)
    }

    @Test func aBrokerOutageIsWaitedOutAndBufferedRecordsAreDelivered() throws {
        try cluster.createTopic("outage", partitions: 1)
        let reports = Reports()
        let producer = try producer(reports) { $0.messageTimeout = .seconds(60) }
        try producer.send(topic: "outage", key: nil, value: Array("before".utf8), token: 1)
        try producer.flush(timeout: .seconds(30))
        cluster.setBroker(1, up: false)
        for i in 2...11 {
            try producer.send(topic: "outage", key: nil, value: Array("during-\(i)".utf8), token: UInt64(i))
        }
        // Nothing can be acknowledged while the only broker is down; nothing fails either.
        #expect(!wait(.seconds(1)) { reports.all.count > 1 })
        cluster.setBroker(1, up: true)
        try producer.close(deadline: .seconds(45))
        let got = reports.all
        #expect(got.count == 11)
        #expect(got.values.allSatisfy { $0.error == nil })
    }

    @Test func aGroupMemberCommitsOnlyTheDonePrefixOfEachPartition() throws {
        try cluster.createTopic("prefix", partitions: 1)
        let reports = Reports()
        let producer = try producer(reports)
        for i in 0..<10 { try producer.send(topic: "prefix", key: nil, value: Array("v\(i)".utf8), partition: 0) }
        try producer.close(deadline: .seconds(30))

        var config = KafkaConsumerConfiguration(common: common, groupID: "prefix-group")
        config.startFrom = .earliest
        let consumer = try KafkaConsumer(configuration: config, logger: .silent)
        defer { consumer.close() }
        try consumer.subscribe(topics: ["prefix"])
        var records: [KafkaRecord] = []
        let end = ContinuousClock.now.advanced(by: .seconds(30))
        while records.count < 10, ContinuousClock.now < end {
            records += try consumer.poll(maxMessages: 100, timeout: .milliseconds(100))
        }
        try #require(records.count == 10)
        let tp = TopicPartition("prefix", 0)
        #expect(consumer.inFlight[tp] == 10)
        // Done out of order: 0, 1, 2 and 4..9, but not 3.
        consumer.markDone(records.filter { $0.offset != 3 }.map(\.position))
        #expect(consumer.commit()[tp] == 3)
        #expect(try consumer.committedOffsets([tp])[tp] == 3)
        consumer.markDone(records[3].position)
        #expect(consumer.commit()[tp] == 10)
        #expect(try consumer.committedOffsets([tp])[tp] == 10)
        #expect(consumer.inFlight[tp, default: 0] == 0)
    }
}
