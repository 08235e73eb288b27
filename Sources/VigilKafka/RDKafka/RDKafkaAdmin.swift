import CRdKafka

/// The C side of `KafkaAdmin`: metadata requests and topic creation on one client handle.
final class RDKafkaAdmin: Sendable {
    let client: RDKafkaClient

    init(properties: [(String, String)], context: RDKafkaContext) throws(KafkaError) {
        client = try RDKafkaClient(kind: .producer, properties: properties, context: context)
    }

    /// Fetches the broker list and every topic's partition count.
    /// - Throws: `.brokerUnavailable` or `.timedOut` when no broker answers in time.
    func metadata(timeout: Duration) throws(KafkaError) -> KafkaAdmin.ClusterMetadata {
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(client.handle, 1, nil, &md, timeout.timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else {
            throw KafkaError.from(err, "metadata request", code: .brokerUnavailable)
        }
        defer { rd_kafka_metadata_destroy(md) }
        let m = md.pointee
        let brokers = (0..<Int(m.broker_cnt)).map { i in
            "\(String(cString: m.brokers[i].host)):\(m.brokers[i].port)"
        }
        var topics: [String: Int] = [:]
        for i in 0..<Int(m.topic_cnt) where m.topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR {
            topics[String(cString: m.topics[i].topic)] = Int(m.topics[i].partition_cnt)
        }
        return KafkaAdmin.ClusterMetadata(brokers: brokers, topics: topics)
    }

    /// Creates `name` with `partitions` partitions (replication factor 1 unless given) and topic
    /// `config` (for example `cleanup.policy: compact`).
    /// - Returns: true if it was created, false if it already existed.
    /// - Throws: `.adminFailed` with the broker's reason, `.timedOut` when no answer came.
    func createTopic(
        _ name: String, partitions: Int, replicationFactor: Int = 1, config: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) throws(KafkaError) -> Bool {
        let errstr = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
        defer { errstr.deallocate() }
        guard let topic = rd_kafka_NewTopic_new(name, Int32(partitions), Int32(replicationFactor), errstr, 512) else {
            throw KafkaError(.adminFailed, "create topic \(name): \(String(cString: errstr))")
        }
        defer { rd_kafka_NewTopic_destroy(topic) }
        for (key, value) in config.sorted(by: { $0.key < $1.key }) {
            let err = rd_kafka_NewTopic_set_config(topic, key, value)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError.from(err, "create topic \(name): config \(key)=\(value)", code: .adminFailed)
            }
        }
        let options = rd_kafka_AdminOptions_new(client.handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        _ = rd_kafka_AdminOptions_set_request_timeout(options, timeout.timeoutMilliseconds, errstr, 512)
        let queue = RDKafkaQueue(rd_kafka_queue_new(client.handle), of: client)
        var topics: [OpaquePointer?] = [topic]
        rd_kafka_CreateTopics(client.handle, &topics, 1, options, queue.handle)
        guard let event = rd_kafka_queue_poll(queue.handle, timeout.timeoutMilliseconds + 1000) else {
            throw KafkaError(.timedOut, "create topic \(name): no answer within \(timeout)", isRetriable: true)
        }
        defer { rd_kafka_event_destroy(event) }
        let eventErr = rd_kafka_event_error(event)
        if eventErr != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(eventErr, "create topic \(name)", code: .adminFailed)
        }
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
            let results = rd_kafka_CreateTopics_result_topics(result, &count), count == 1
        else { throw KafkaError(.adminFailed, "create topic \(name): empty result") }
        let err = rd_kafka_topic_result_error(results[0])
        switch err {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return true
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS: return false
        default:
            let reason = rd_kafka_topic_result_error_string(results[0]).map { String(cString: $0) } ?? ""
            throw KafkaError.from(err, "create topic \(name): \(reason)", code: .adminFailed)
        }
    }
}
