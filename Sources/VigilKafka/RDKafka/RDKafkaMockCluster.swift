import CRdKafka

/// librdkafka's in-process mock cluster (`rdkafka_mock.h`): brokers that speak the Kafka
/// protocol on loopback ports, with consumer groups, inside this process. It lives on a client
/// handle of its own, which must outlive it.
final class RDKafkaMockCluster: @unchecked Sendable {
    // Invariant: `cluster` is destroyed only in deinit, before `owner` (its rd_kafka_t) is released;
    // librdkafka's mock calls are thread-safe.
    private let owner: RDKafkaClient
    private let cluster: OpaquePointer

    init(brokers: Int, context: RDKafkaContext) throws(KafkaError) {
        owner = try RDKafkaClient(kind: .producer, properties: [("client.id", "vigil-mock-cluster")], context: context)
        guard let cluster = rd_kafka_mock_cluster_new(owner.handle, Int32(brokers)) else {
            throw KafkaError(.clientCreation, "rd_kafka_mock_cluster_new failed")
        }
        self.cluster = cluster
        // The mock delays a group's first rebalance by 3 s (Kafka's default); tests want it now.
        rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, 0)
    }

    deinit { rd_kafka_mock_cluster_destroy(cluster) }

    /// `host:port,…` of the mock brokers.
    var bootstraps: String { String(cString: rd_kafka_mock_cluster_bootstraps(cluster)) }

    func createTopic(_ name: String, partitions: Int) throws(KafkaError) {
        let err = rd_kafka_mock_topic_create(cluster, name, Int32(partitions), 1)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "mock cluster: create topic \(name)", code: .adminFailed)
        }
    }

    /// The next `errors.count` requests of protocol API `apiKey` fail with these errors, in order.
    func pushRequestErrors(apiKey: Int16, _ errors: [KafkaMockCluster.Failure]) {
        let codes = errors.map(Self.code)
        codes.withUnsafeBufferPointer {
            rd_kafka_mock_push_request_errors_array(cluster, apiKey, $0.count, $0.baseAddress)
        }
    }

    func setBroker(_ id: Int32, up: Bool) {
        _ = up ? rd_kafka_mock_broker_set_up(cluster, id) : rd_kafka_mock_broker_set_down(cluster, id)
    }

    private static func code(_ failure: KafkaMockCluster.Failure) -> rd_kafka_resp_err_t {
        switch failure {
        case .disconnect: RD_KAFKA_RESP_ERR__TRANSPORT
        case .notLeader: RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION
        case .requestTimedOut: RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT
        case .topicAuthorizationFailed: RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED
        case .messageTooLarge: RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE
        case .coordinatorNotAvailable: RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE
        }
    }
}
