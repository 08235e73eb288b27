import Foundation
import Logging
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

/// The broker goes away for 10 s and comes back. Tansu keeps everything in memory, so after
/// its restart every topic, group and committed offset is gone; the test re-creates the topic
/// at once, as an operator of such a broker would. The same client objects must report the
/// outage, keep retrying, and carry on afterwards.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs tansu: run scripts/test.sh, which installs it"))
struct BrokerRestartTests {
    @Test func clientsReportAnOutageAndRecoverWithoutARestart() throws {
        let broker = try PrivateBroker()
        defer { broker.stop() }
        let topic = TestBroker.unique("vigil-restart")
        try broker.createTopic(topic, partitions: 1)
        // A broker that lost its topics: librdkafka notices the re-created topic only at its next
        // metadata refresh, every 5 minutes by default. Refresh every second here.
        let common = KafkaConfiguration(
            bootstrapServers: [broker.address], clientID: "vigil-restart",
            properties: ["topic.metadata.refresh.interval.ms": "1000"])

        let errors = Mutex<[KafkaError]>([])
        let onEvent: @Sendable (KafkaEvent) -> Void = { event in
            if case .error(let e) = event { errors.withLock { $0.append(e) } }
        }
        let reports = Mutex<[DeliveryReport]>([])
        var producerConfig = KafkaProducerConfiguration(common: common)
        producerConfig.messageTimeout = .seconds(60)
        let producer = try KafkaProducer(
            configuration: producerConfig, logger: .quiet, onDelivery: { r in reports.withLock { $0.append(r) } },
            onEvent: onEvent)
        var consumerConfig = KafkaConsumerConfiguration(common: common, groupID: TestBroker.unique("group-restart"))
        consumerConfig.startFrom = .earliest
        let consumer = try KafkaConsumer(configuration: consumerConfig, logger: .quiet, onEvent: onEvent)
        defer { consumer.close() }
        try consumer.subscribe(topics: [topic])

        func send(_ prefix: String) throws {
            for i in 0..<10 { try producer.send(topic: topic, key: nil, value: Array("\(prefix)-\(i)".utf8)) }
        }
        var received = Set<String>()
        func poll(for duration: Duration, until done: () -> Bool = { false }) throws {
            let clock = ContinuousClock()
            let deadline = clock.now.advanced(by: duration)
            while clock.now < deadline, !done() {
                for r in try consumer.poll(maxMessages: 1000, timeout: .milliseconds(100)) {
                    received.insert(String(decoding: r.value ?? [], as: UTF8.self))
                    consumer.markDone(r.position)
                }
            }
        }

        try send("before")
        try producer.flush(timeout: .seconds(10))
        try poll(for: .seconds(30)) { received.count >= 10 }
        try #require(received.count == 10)

        broker.stop()
        try send("during")  // buffered by the producer while the broker is away
        try poll(for: .seconds(10))
        #expect(errors.withLock { $0.contains { $0.code == .brokerUnavailable && $0.isRetriable } })

        try broker.start()
        try broker.createTopic(topic, partitions: 1)  // memory storage: the topic is gone
        try send("after")
        try producer.flush(timeout: .seconds(60))
        try poll(for: .seconds(60)) { (0..<10).allSatisfy { received.contains("after-\($0)") } }
        #expect((0..<10).allSatisfy { received.contains("after-\($0)") }, "the same consumer reads again")
        // Every record got a delivery report; nothing was silently dropped by the client.
        #expect(reports.withLock { $0.count } == 30)
        #expect(reports.withLock { $0.filter { $0.topic == topic && $0.error == nil }.count } >= 20)
    }
}
