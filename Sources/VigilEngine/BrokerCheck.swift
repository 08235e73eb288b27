import Foundation
import Logging
import VigilKafka

/// Proves the Kafka path end to end: reach the broker, create a topic, produce sample events,
/// wait for every acknowledgement, and read them back through a consumer group.
public struct BrokerCheck: Sendable {
    /// Brokers and client properties (TLS, SASL).
    public var clients: KafkaClients
    public var brokers: [String] { clients.brokers }
    /// Topic to use; a fresh `vigil-check-…` topic when nil.
    public var topic: String?
    public var count: Int
    public var timeout: Duration
    /// Receives the Kafka clients' log lines.
    public var logger: Logger

    public init(
        clients: KafkaClients, topic: String? = nil, count: Int = 5, timeout: Duration = .seconds(30), logger: Logger
    ) {
        self.clients = clients
        self.logger = logger
        self.topic = topic
        self.count = count
        self.timeout = timeout
    }

    /// What the check saw.
    public struct Report: Sendable {
        public var brokers: [String]
        public var topic: String
        public var produced: Int
        public var readBack: [KafkaMessage]
        public var elapsed: Duration
    }

    /// Runs the check; `say` receives progress lines.
    /// - Throws: `KafkaError` naming the step that failed.
    public func run(say: (String) -> Void) throws(KafkaError) -> Report {
        let clock = ContinuousClock()
        let start = clock.now
        let common = clients.common("check")
        let admin = try KafkaAdmin(configuration: common, logger: logger)
        let metadata = try admin.metadata(timeout: .seconds(10))
        say("broker answered: \(metadata.brokers.joined(separator: ", ")) (\(metadata.topics.count) topics)")

        let nonce = "\(getpid())-\(UInt64(Date().timeIntervalSince1970 * 1000))"
        let topic = self.topic ?? "vigil-check-\(nonce)"
        let created = try admin.createTopic(topic, partitions: 2)
        say("topic \(topic): \(created ? "created" : "exists")")

        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(common: common), logger: logger)
        var sent = Set<String>()
        for i in 0..<count {
            let id = "check-\(nonce)-\(i)"
            let value = SampleEvents.payment(index: i, id: id)
            sent.insert(value)
            try producer.send(
                topic: topic, key: Array("card-\(i % 3)".utf8), value: Array(value.utf8),
                headers: [KafkaHeader(name: "vigil-check", value: Array(nonce.utf8))], token: UInt64(i + 1))
        }
        try producer.flush(timeout: .seconds(10))
        guard producer.failedCount == 0, producer.deliveredCount == count else {
            throw KafkaError(.deliveryFailed, "\(producer.failedCount) of \(count) events were not acknowledged")
        }
        say("produced \(count) events, all acknowledged by the broker")

        var config = KafkaConsumerConfiguration(common: common, groupID: "vigil-check-\(nonce)")
        config.startFrom = .earliest
        let consumer = try KafkaConsumer(configuration: config, logger: logger)
        defer { consumer.close() }
        try consumer.subscribe(topics: [topic])
        var got: [KafkaMessage] = []
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            for record in try consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
            where record.headers.contains(KafkaHeader(name: "vigil-check", value: Array(nonce.utf8))) {
                got.append(record.message)
            }
            if got.count >= count { break }
        }
        guard got.count == count else {
            throw KafkaError(.timedOut, "read back \(got.count) of \(count) events within \(timeout)")
        }
        for m in got {
            let text = m.value.map { String(decoding: $0, as: UTF8.self) } ?? ""
            guard sent.contains(text) else {
                throw KafkaError(.consumeFailed, "read back an event that was not sent: \(text)")
            }
        }
        return Report(
            brokers: metadata.brokers, topic: topic, produced: count,
            readBack: got.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }, elapsed: clock.now - start)
    }
}

/// Small deterministic sample events in the card-payments topology's shape.
public enum SampleEvents {
    /// A card payment as JSON, varied by `index`.
    public static func payment(index i: Int, id: String) -> String {
        let countries = ["DE", "FR", "NL", "ES", "US"]
        let categories = ["grocery", "fuel", "travel", "electronics", "restaurant"]
        let amount = Double((i * 7919) % 20000) / 100 + 1
        return #"{"txn_id":"\#(id)","card_id":"card-\#(i % 3)","amount":\#(amount),"#
            + #""merchant_id":"m-\#(i % 11)","merchant_category":"\#(categories[i % 5])","#
            + #""country":"\#(countries[i % 5])","channel":"pos","ts":\#(1_764_000_000_000 + i * 1000)}"#
    }
}
