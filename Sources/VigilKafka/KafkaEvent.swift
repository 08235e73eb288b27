/// What a Kafka client tells its owner besides records: group membership changes, commits,
/// errors and statistics.
public enum KafkaEvent: Sendable {
    /// Partitions given to this consumer; records from them follow.
    case assigned([TopicPartition])
    /// Partitions taken away in an orderly rebalance; their done offsets were committed first.
    case revoked([TopicPartition])
    /// Partitions lost without a chance to commit (session timeout): expect their uncommitted
    /// records to be delivered again to whoever gets them.
    case lost([TopicPartition])
    /// Offsets the group coordinator accepted (for an asynchronous commit, when its answer arrives).
    case committed([TopicPartition: Int64])
    /// A client-level error. Retriable ones (broker down, timeouts) are retried by librdkafka.
    case error(KafkaError)
    /// A statistics report (every `statisticsInterval`).
    case statistics(KafkaStatistics)
}
