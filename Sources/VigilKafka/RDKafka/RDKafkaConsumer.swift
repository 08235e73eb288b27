import CRdKafka
import Foundation

/// The C side of `KafkaConsumer`: one consumer handle, its consumer queue (which also serves
/// rebalances and statistics, so one batch poll serves everything) and the calls made on them.
/// Everything here speaks Swift values to its callers; the handles never leave this type.
final class RDKafkaConsumer: Sendable {
    let client: RDKafkaClient
    let queue: RDKafkaQueue
    let state: ConsumerState

    init(properties: [(String, String)], context: RDKafkaContext, state: ConsumerState) throws(KafkaError) {
        self.state = state
        client = try RDKafkaClient(kind: .consumer, properties: properties, context: context)
        // Route the main queue into the consumer queue, so one batch poll serves rebalances,
        // statistics and messages alike.
        rd_kafka_poll_set_consumer(client.handle)
        queue = RDKafkaQueue(rd_kafka_queue_get_consumer(client.handle), of: client)
    }

    func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = TopicPartitionList.make(topics.map { TopicPartition($0, RD_KAFKA_PARTITION_UA) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_subscribe(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "subscribe to \(topics.joined(separator: ","))", code: .consumeFailed)
        }
    }

    /// Up to `maxMessages` records, waiting at most `timeout` for the first.
    ///
    /// `rd_kafka_consume_batch_queue` waits until the batch is *full* or the timeout expires, which
    /// on a quiet stream delays every record by up to the whole timeout. So: take what is there
    /// without waiting; if nothing is, wait for one record only, then take what came with it.
    func consume(maxMessages: Int, timeout: Duration) throws(KafkaError) -> KafkaBatch {
        try withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<rd_kafka_message_t>?.self, capacity: maxMessages) {
            (buffer) throws(KafkaError) -> KafkaBatch in
            var n = rd_kafka_consume_batch_queue(queue.handle, 0, buffer.baseAddress, maxMessages)
            if n == 0 {
                n = rd_kafka_consume_batch_queue(queue.handle, timeout.timeoutMilliseconds, buffer.baseAddress, 1)
                if n == 1 && maxMessages > 1 {
                    let more = rd_kafka_consume_batch_queue(queue.handle, 0, buffer.baseAddress! + 1, maxMessages - 1)
                    n = more < 0 ? n : n + more
                }
            }
            if n < 0 { throw KafkaError.from(rd_kafka_last_error(), "consume", code: .consumeFailed) }
            if n == 0 { return .empty }
            defer { for i in 0..<n { rd_kafka_message_destroy(buffer[i]) } }  // every message, errors included
            return try RDKafkaMessages.batch(buffer, count: n, context: client.context)
        }
    }

    /// Commits the done prefix of every assigned partition (see `ConsumerState.commit`).
    func commit(async: Bool) -> [TopicPartition: Int64] {
        state.commit(client.handle, asyncVia: async ? queue.handle : nil)
    }

    func committed(_ partitions: [TopicPartition], timeout: Duration) throws(KafkaError) -> [TopicPartition: Int64] {
        let list = TopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(client.handle, list, timeout.timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "committed offsets", code: .consumeFailed)
        }
        return TopicPartitionList.offsets(list)
    }

    func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try partitionCall(partitions, "pause") { rd_kafka_pause_partitions($0, $1) }
    }

    func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try partitionCall(partitions, "resume") { rd_kafka_resume_partitions($0, $1) }
    }

    private func partitionCall(
        _ partitions: [TopicPartition], _ what: String,
        _ call: (OpaquePointer, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> rd_kafka_resp_err_t
    ) throws(KafkaError) {
        let list = TopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = call(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.from(err, what, code: .consumeFailed) }
    }

    func assign(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        let list = TopicPartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.from(err, "assign", code: .consumeFailed) }
    }

    func watermarks(_ tp: TopicPartition, timeout: Duration) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(
            client.handle, tp.topic, tp.partition, &low, &high, timeout.timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "watermarks of \(tp)", code: .consumeFailed)
        }
        return (low, high)
    }

    /// The watermarks librdkafka last saw in a fetch response (no request); nil before any.
    func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let err = rd_kafka_get_watermark_offsets(client.handle, tp.topic, tp.partition, &low, &high)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (low, high)
    }

    /// The application's position in each of `partitions` (no request): librdkafka's offset after
    /// the last record it handed out, moved past the transaction markers it stepped over.
    /// Partitions without a position yet are absent.
    func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let list = TopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_position(client.handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR else { return [:] }
        return TopicPartitionList.offsets(list).filter { $0.value >= 0 }
    }

    func seek(_ offsets: [TopicPartition: Int64], timeout: Duration) throws(KafkaError) {
        let list = TopicPartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_seek_partitions(client.handle, list, timeout.timeoutMilliseconds) {
            throw KafkaError.from(takeErrorCode(error), "seek", code: .consumeFailed)
        }
        for e in TopicPartitionList.elements(list) where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(e.err, "seek \(String(cString: e.topic))[\(e.partition)]", code: .consumeFailed)
        }
    }

    /// Leaves the group (serving the final revoke, whose callback commits what is done).
    func close() {
        _ = rd_kafka_consumer_close(client.handle)
    }

    /// librdkafka's logical offset of a partition's oldest record kept.
    static let offsetBeginning = Int64(RD_KAFKA_OFFSET_BEGINNING)
}

/// Owns one `rd_kafka_queue_t`; librdkafka queues are thread-safe. It holds its client, so the
/// queue is always destroyed before the `rd_kafka_t` it belongs to, whatever order Swift
/// releases references in.
final class RDKafkaQueue: @unchecked Sendable {
    // Invariant: `handle` is destroyed only in deinit, while `client` is still alive.
    let handle: OpaquePointer?
    private let client: RDKafkaClient
    init(_ handle: OpaquePointer?, of client: RDKafkaClient) {
        self.handle = handle
        self.client = client
    }
    deinit { if let handle { rd_kafka_queue_destroy(handle) } }
}
