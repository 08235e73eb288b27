import Foundation
import Logging
import Synchronization
import VigilKafka

/// Every partition of the labels topics, read outside the consumer group. The instances of a
/// group split the source partitions between them, but a label must reach the instance that
/// scored its event, and a labels partition assigned by the group would carry other instances'
/// labels. So every instance reads all labels (a broadcast): the one whose join holds the event
/// learns from it, the others count it unmatched. Label traffic is small beside events, and the
/// labels topic needs no co-partitioning with the source, which the cooperative-sticky assignor
/// would not keep anyway. Positions go into the instance's checkpoints; nothing is committed.
final class LabelsFeed: Sendable {
    let topics: [String]
    private let consumer: KafkaConsumer
    private let logger: Logger
    /// Per assigned partition: the next offset to read, and the highest high watermark known.
    private let progress = Mutex<[TopicPartition: (next: Int64, high: Int64)]>([:])

    init(topics: [String], clients: KafkaClients, logger: Logger) throws(KafkaError) {
        self.topics = topics
        self.logger = logger
        var config = clients.consumer("labels", group: "vigil-labels-\(UUID().uuidString)")
        config.common.properties["enable.auto.commit"] = "false"
        consumer = try KafkaConsumer(configuration: config, logger: logger)
    }

    /// Assigns every partition of the labels topics: from `restored` where the checkpoint names
    /// a partition, else from its start (`earliest`) or its end (`latest`).
    /// - Returns: the offsets it starts from.
    @discardableResult
    func start(
        restored: [TopicPartition: Int64], earliest: Bool, admin: KafkaAdmin
    ) throws(KafkaError) -> [TopicPartition: Int64] {
        let metadata = try admin.metadata(timeout: .seconds(10))
        var starts: [TopicPartition: Int64] = [:]
        for topic in topics {
            guard let partitions = metadata.topics[topic], partitions > 0 else {
                logger.warning(
                    "A labels topic does not exist: its labels are read only after a restart once it does",
                    metadata: ["topic": "\(topic)"])
                continue
            }
            for p in 0..<partitions {
                let tp = TopicPartition(topic, Int32(p))
                if let offset = restored[tp] {
                    starts[tp] = offset
                } else {
                    let marks = try consumer.watermarks(tp)
                    starts[tp] = earliest ? marks.low : marks.high
                }
            }
        }
        try consumer.assign(starts)
        var known: [TopicPartition: (next: Int64, high: Int64)] = [:]
        for (tp, start) in starts {
            let high = (try? consumer.watermarks(tp).high) ?? start
            known[tp] = (start >= 0 ? start : high, high)
        }
        progress.withLock { $0 = known }
        return starts
    }

    /// The labels that arrived since the last call, waiting at most `timeout` for some.
    func poll(timeout: Duration = .zero) throws(KafkaError) -> KafkaBatch {
        let batch = try consumer.poll(maxMessages: 10_000, timeout: timeout)
        progress.withLock { p in
            for i in 0..<batch.count {
                let r = batch[i]
                let tp = r.position.topicPartition
                if let known = p[tp] { p[tp] = (max(known.next, r.offset + 1), known.high) }
            }
        }
        return batch
    }

    /// Whether labels are on the broker that the feed has not read yet (by the watermarks the
    /// last fetches carried; no request is made).
    func behind() -> Bool { !partitionsBehind().isEmpty }

    /// The partitions with labels on the broker that the feed has not read yet. A partition a
    /// transactional producer wrote ends with a commit marker that no label reports: the
    /// consumer's position, which steps over it, says whether the feed reached the end.
    func partitionsBehind() -> Set<TopicPartition> {
        let positions = consumer.positions(progress.withLock { Array($0.keys) })
        return progress.withLock { p in
            var behind = Set<TopicPartition>()
            for (tp, known) in p {
                let high = max(known.high, consumer.cachedWatermarks(tp)?.high ?? -1)
                let next = max(known.next, positions[tp] ?? -1)
                p[tp] = (next, high)
                if high > next { behind.insert(tp) }
            }
            return behind
        }
    }

    func close() { consumer.close() }
}
