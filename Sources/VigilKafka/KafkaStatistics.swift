import Foundation

/// The parts of librdkafka's statistics JSON (`statistics.interval.ms`) that Vigil reports:
/// queue depth, message counts, broker states and per-partition consumer lag.
public struct KafkaStatistics: Sendable {
    /// librdkafka's handle name, e.g. `vigil#consumer-1`.
    public var name: String
    /// `producer` or `consumer`.
    public var type: String
    /// Messages waiting in the producer's local queue.
    public var queuedMessages: Int64
    /// Messages sent and received since the client started.
    public var transmittedMessages: Int64
    public var receivedMessages: Int64
    /// Broker name → connection state (`UP`, `DOWN`, `CONNECT`, …).
    public var brokerStates: [String: String]
    /// Per partition (librdkafka's internal "unassigned" partition left out).
    public var partitions: [TopicPartition: PartitionStatistics]

    /// One partition's numbers; -1 where librdkafka does not know.
    public struct PartitionStatistics: Sendable, Hashable {
        /// High watermark minus the consumer's committed (or stored) offset.
        public var consumerLag: Int64
        public var committedOffset: Int64
        public var highWatermark: Int64
        /// Messages fetched but not yet handed to the application.
        public var fetchQueueMessages: Int64
    }

    /// Parses librdkafka's JSON; nil if it is not what librdkafka writes.
    public init?(json: [UInt8]) {
        guard let raw = try? JSONDecoder().decode(Raw.self, from: Data(json)) else { return nil }
        name = raw.name
        type = raw.type
        queuedMessages = raw.messageCount ?? 0
        transmittedMessages = raw.txmsgs ?? 0
        receivedMessages = raw.rxmsgs ?? 0
        brokerStates = (raw.brokers ?? [:]).mapValues { $0.state ?? "" }
        var partitions: [TopicPartition: PartitionStatistics] = [:]
        for (topic, t) in raw.topics ?? [:] {
            for p in (t.partitions ?? [:]).values where p.partition >= 0 {
                partitions[TopicPartition(topic, p.partition)] = PartitionStatistics(
                    consumerLag: p.consumerLag ?? -1, committedOffset: p.committedOffset ?? -1,
                    highWatermark: p.highOffset ?? -1, fetchQueueMessages: p.fetchQueueCount ?? 0)
            }
        }
        self.partitions = partitions
    }

    // Field names as librdkafka's STATISTICS.md spells them.
    private struct Raw: Decodable {
        var name: String
        var type: String
        var messageCount: Int64?
        var txmsgs: Int64?
        var rxmsgs: Int64?
        var brokers: [String: Broker]?
        var topics: [String: Topic]?
        enum CodingKeys: String, CodingKey {
            case name, type, txmsgs, rxmsgs, brokers, topics
            case messageCount = "msg_cnt"
        }
        struct Broker: Decodable { var state: String? }
        struct Topic: Decodable { var partitions: [String: Partition]? }
        struct Partition: Decodable {
            var partition: Int32
            var consumerLag: Int64?
            var committedOffset: Int64?
            var highOffset: Int64?
            var fetchQueueCount: Int64?
            enum CodingKeys: String, CodingKey {
                case partition
                case consumerLag = "consumer_lag"
                case committedOffset = "committed_offset"
                case highOffset = "hi_offset"
                case fetchQueueCount = "fetchq_cnt"
            }
        }
    }
}
