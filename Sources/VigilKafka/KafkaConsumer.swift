import CRdKafka

/// Reads records as a member of a consumer group, a batch at a time. The caller owns the
/// polling thread; offsets are never committed automatically.
public final class KafkaConsumer: Sendable {
    // Declared first so it is released first: the queue must go before its client's handle.
    private let queue: RDKafkaQueue
    private let client: RDKafkaClient

    /// - Parameter onError: client-level errors (broker down, rebalance trouble); librdkafka
    ///   keeps retrying them unless they are fatal.
    /// - Throws: `KafkaError` for invalid configuration or an unsupported librdkafka.
    public init(
        configuration: KafkaConsumerConfiguration, onError: (@Sendable (KafkaError) -> Void)? = nil
    ) throws(KafkaError) {
        let context = RDKafkaContext(onError: onError)
        client = try RDKafkaClient(
            kind: .consumer, properties: configuration.properties, context: context, deliveryReports: false)
        // Route the main queue into the consumer queue, so one batch poll serves rebalances,
        // errors and messages alike.
        rd_kafka_poll_set_consumer(client.handle)
        queue = RDKafkaQueue(rd_kafka_queue_get_consumer(client.handle))
    }

    /// Joins the group and subscribes to `topics`; the assignment arrives during `poll`.
    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = rd_kafka_topic_partition_list_new(Int32(topics.count))
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let err = rd_kafka_subscribe(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "subscribe to \(topics.joined(separator: ","))", code: .consumeFailed)
        }
    }

    /// Returns up to `maxMessages` records, waiting at most `timeout` for the first.
    /// Per-partition errors go to `onError`; only a fatal error throws.
    public func poll(maxMessages: Int, timeout: Duration) throws(KafkaError) -> [KafkaMessage] {
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: maxMessages)
        defer { buffer.deallocate() }
        let n = rd_kafka_consume_batch_queue(queue.handle, timeout.timeoutMilliseconds, buffer, maxMessages)
        if n < 0 {
            throw KafkaError.from(rd_kafka_last_error(), "consume", code: .consumeFailed)
        }
        var out: [KafkaMessage] = []
        out.reserveCapacity(n)
        var fatal: KafkaError?
        for i in 0..<n {
            guard let m = buffer[i] else { continue }
            defer { rd_kafka_message_destroy(m) }  // every message, errors included
            let msg = m.pointee
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let reason = msg.payload.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? ""
                let error = KafkaError.from(msg.err, reason, code: .consumeFailed)
                if msg.err == RD_KAFKA_RESP_ERR__FATAL { fatal = error } else { client.context.reportError(msg.err, reason) }
                continue
            }
            out.append(Self.convert(m))
        }
        if let fatal { throw fatal }
        return out
    }

    private static func convert(_ m: UnsafeMutablePointer<rd_kafka_message_t>) -> KafkaMessage {
        let msg = m.pointee
        let topic = msg.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let key = msg.key.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.key_len)) }
        let value = msg.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: msg.len)) }
        var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(m, &tsType)
        var headers: [KafkaHeader] = []
        var hdrs: OpaquePointer?
        if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
            var idx = 0
            var name: UnsafePointer<CChar>?
            var val: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(hdrs, idx, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(
                    KafkaHeader(
                        name: name.map { String(cString: $0) } ?? "",
                        value: val.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }))
                idx += 1
            }
        }
        return KafkaMessage(
            topic: topic, partition: msg.partition, offset: msg.offset, key: key, value: value, headers: headers,
            timestampMilliseconds: tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : ts)
    }

    /// Leaves the group (its partitions move to the other members at once) and stops fetching.
    public func close() {
        _ = rd_kafka_consumer_close(client.handle)
    }
}

/// Owns one `rd_kafka_queue_t`; librdkafka queues are thread-safe.
final class RDKafkaQueue: @unchecked Sendable {
    let handle: OpaquePointer?
    init(_ handle: OpaquePointer?) { self.handle = handle }
    deinit { if let handle { rd_kafka_queue_destroy(handle) } }
}
