import Logging
import Metrics

/// An in-process Kafka cluster (librdkafka's mock brokers) for fast tests of consumer and
/// producer behaviour without a broker process: real clients connect to it on loopback, and
/// tests can make requests fail or take a broker down.
///
/// It is not a test double for Vigil's integration tests, which run against a real broker; it
/// is the unit tier below them.
public final class KafkaMockCluster: Sendable {
    private let rd: RDKafkaMockCluster

    /// Starts `brokers` mock brokers (ids 1...brokers).
    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        rd = try RDKafkaMockCluster(
            brokers: brokers,
            context: RDKafkaContext(
                logger: logger,
                metrics: KafkaMetrics(client: "vigil-mock-cluster", factory: NOOPMetricsHandler.instance),
                onEvent: nil))
    }

    /// The brokers' addresses, for `KafkaConfiguration.bootstrapServers`.
    public var bootstrapServers: [String] { rd.bootstraps.split(separator: ",").map(String.init) }

    /// Creates `name` with `partitions` partitions (the mock brokers do not serve CreateTopics).
    public func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        try rd.createTopic(name, partitions: partitions)
    }

    /// Kafka protocol requests whose answers a test can make fail.
    public enum Request: Int16, Sendable {
        case produce = 0
        case fetch = 1
        case offsetCommit = 8
        case offsetFetch = 9
        case joinGroup = 11
    }

    /// Errors a mock broker can answer with.
    public enum Failure: Sendable {
        /// The broker drops the connection (retriable).
        case disconnect
        /// NOT_LEADER_FOR_PARTITION (retriable).
        case notLeader
        /// REQUEST_TIMED_OUT (retriable).
        case requestTimedOut
        /// TOPIC_AUTHORIZATION_FAILED (permanent).
        case topicAuthorizationFailed
        /// MESSAGE_TOO_LARGE (permanent).
        case messageTooLarge
        /// COORDINATOR_NOT_AVAILABLE (retriable).
        case coordinatorNotAvailable
    }

    /// The next `failures.count` requests of kind `request`, to any broker, fail with these
    /// errors in order; later ones succeed again.
    public func fail(_ request: Request, with failures: [Failure]) {
        rd.pushRequestErrors(apiKey: request.rawValue, failures)
    }

    /// Takes broker `id` down (its connections close and it refuses new ones) or brings it back.
    public func setBroker(_ id: Int32, up: Bool) {
        rd.setBroker(id, up: up)
    }
}
