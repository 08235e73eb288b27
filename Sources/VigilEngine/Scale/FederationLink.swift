import Foundation
import Logging
import VigilKafka

/// The models topic as the federation uses it: a producer, and a reader of every partition,
/// outside any consumer group, that keeps the newest record of each instance.
///
/// `@unchecked Sendable` invariant: one federation round at a time uses it (the service's task
/// hands it to one blocking call after another, never to two at once).
final class FederationLink: @unchecked Sendable {
    let topic: String
    private let producer: KafkaProducer
    private let consumer: KafkaConsumer
    private let logger: Logger
    /// The newest record read of each instance (by key), still encoded.
    private var newest: [String: (publishedMs: Int64, record: FederatedModels)] = [:]

    /// Peers' records read back at a start: enough for the newest of each instance of a group,
    /// on a topic compaction has not yet cleaned.
    static let lookback: Int64 = 256

    init(topic: String, clients: KafkaClients, logger: Logger) throws {
        self.topic = topic
        self.logger = logger
        producer = try KafkaProducer(configuration: clients.producer("federation"), logger: logger)
        var reader = clients.consumer("federation", group: "vigil-federation-\(UUID().uuidString)")
        reader.common.properties.merge(
            [
                "max.partition.fetch.bytes": "67108864", "fetch.max.bytes": "134217728",
                "receive.message.max.bytes": "135000000",
            ]
        ) { $1 }
        consumer = try KafkaConsumer(configuration: reader, logger: logger)
        let admin = try clients.admin(logger: logger)
        let partitions = try admin.metadata(timeout: .seconds(10)).topics[topic] ?? 0
        guard partitions > 0 else { throw EngineError(.kafkaFailed, "the models topic \(topic) does not exist") }
        var starts: [TopicPartition: Int64] = [:]
        for p in 0..<partitions {
            let tp = TopicPartition(topic, Int32(p))
            let (low, high) = try consumer.watermarks(tp)
            starts[tp] = max(low, high - Self.lookback)
        }
        try consumer.assign(starts)
    }

    /// Publishes this instance's record, then reads what peers published since the last call.
    /// - Returns: the newest record of every instance seen so far (this one's own included),
    ///   and the size of the record published.
    func exchange(_ own: FederatedModels) throws -> (records: [FederatedModels], bytes: Int) {
        let value = own.encoded()
        try producer.send(topic: topic, key: Array(own.key.utf8), value: value)
        while true {
            let batch = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(50))
            if batch.isEmpty { break }
            for record in batch {
                guard let bytes = record.value else { continue }
                do {
                    let read = try FederatedModels(decoding: Array(bytes))
                    if read.publishedMs >= newest[read.key]?.publishedMs ?? .min {
                        newest[read.key] = (read.publishedMs, read)
                    }
                } catch {
                    logger.warning(
                        "Federation: a record of the models topic could not be read",
                        metadata: ["offset": "\(record.partition)/\(record.offset)", "error": "\(error)"])
                }
            }
        }
        return (newest.values.map(\.record), value.count)
    }

    func close() {
        consumer.close()
        try? producer.close(deadline: .seconds(5))
    }
}
