import Logging
import Metrics

/// Topic management and cluster metadata: creates the topics a topology names and tells
/// whether a broker answers at all.
public final class KafkaAdmin: Sendable {
    private let rd: RDKafkaAdmin

    /// - Parameters:
    ///   - logger: receives Vigil's and librdkafka's log lines.
    ///   - metricsFactory: where the client's metrics go (default: the bootstrapped system).
    ///   - onEvent: client-level errors.
    public init(
        configuration: KafkaConfiguration, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws(KafkaError) {
        rd = try RDKafkaAdmin(
            properties: configuration.librdkafkaProperties([]),
            context: RDKafkaContext(
                logger: logger, metrics: KafkaMetrics(client: configuration.clientID, factory: metricsFactory),
                onEvent: onEvent))
    }

    /// Creates each topic that does not exist yet, with `partitions` partitions.
    /// - Returns: the topics that were created.
    @discardableResult
    public func ensureTopics(_ names: [String], partitions: Int, timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [String]
    {
        var created: [String] = []
        for name in names where try createTopic(name, partitions: partitions, timeout: timeout) { created.append(name) }
        return created
    }

    /// What a metadata request returned.
    public struct ClusterMetadata: Sendable {
        public var brokers: [String]
        /// Partition count by topic name.
        public var topics: [String: Int]
    }

    /// Fetches the broker list and every topic's partition count.
    /// - Throws: `.brokerUnavailable` or `.timedOut` when no broker answers in time.
    public func metadata(timeout: Duration) throws(KafkaError) -> ClusterMetadata {
        try rd.metadata(timeout: timeout)
    }

    /// Creates `name` with `partitions` partitions (replication factor 1 unless given) and topic
    /// `config` (for example `cleanup.policy: compact`).
    /// - Returns: true if it was created, false if it already existed.
    /// - Throws: `.adminFailed` with the broker's reason, `.timedOut` when no answer came.
    @discardableResult
    public func createTopic(
        _ name: String, partitions: Int, replicationFactor: Int = 1, config: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) throws(KafkaError) -> Bool {
        try rd.createTopic(
            name, partitions: partitions, replicationFactor: replicationFactor, config: config, timeout: timeout)
    }
}
