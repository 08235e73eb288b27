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

/// What a consumer's owner does inside a rebalance, on the polling thread, before librdkafka's
/// assignment changes (`KafkaConsumer.setRebalanceHandler`).
public struct RebalanceHandler: Sendable {
    /// Partitions about to be assigned: returns where some of them should start (the offsets
    /// their loaded state covers), over the group's committed offsets.
    public var assigning: @Sendable ([TopicPartition]) -> [TopicPartition: Int64]
    /// Partitions about to be taken away; `lost` when they are gone already (session timeout),
    /// so nothing should be saved for them. Returns once what they need is saved; the done
    /// offsets are committed after it (unless lost).
    public var revoking: @Sendable (_ partitions: [TopicPartition], _ lost: Bool) -> Void

    public init(
        assigning: @escaping @Sendable ([TopicPartition]) -> [TopicPartition: Int64],
        revoking: @escaping @Sendable ([TopicPartition], Bool) -> Void
    ) {
        self.assigning = assigning
        self.revoking = revoking
    }
}
