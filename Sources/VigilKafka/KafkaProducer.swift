import CRdKafka

/// Publishes records to Kafka asynchronously. Delivery reports arrive on the thread that calls
/// `poll` or `flush` and go to `onDelivery`, carrying the caller's token.
public final class KafkaProducer: Sendable {
    private let client: RDKafkaClient

    /// - Parameters:
    ///   - onDelivery: called once per message with the broker's acknowledgement or the failure.
    ///   - onError: called for client-level errors (broker down, authentication), which
    ///     librdkafka retries by itself unless the error is fatal.
    /// - Throws: `KafkaError` for invalid configuration or an unsupported librdkafka.
    public init(
        configuration: KafkaProducerConfiguration,
        onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil,
        onError: (@Sendable (KafkaError) -> Void)? = nil
    ) throws(KafkaError) {
        let context = RDKafkaContext(onError: onError, onDelivery: onDelivery)
        client = try RDKafkaClient(
            kind: .producer, properties: configuration.properties, context: context, deliveryReports: true)
    }

    /// Messages acknowledged by the broker so far.
    public var deliveredCount: Int { client.context.delivered.load(ordering: .relaxed) }
    /// Messages that failed delivery so far.
    public var failedCount: Int { client.context.failed.load(ordering: .relaxed) }
    /// Messages and requests still in flight or queued locally.
    public var outstanding: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// Enqueues one record. When the local queue is full, serves delivery reports until there is
    /// room, up to `queueFullWait`, then throws `.queueFull`.
    /// - Parameters:
    ///   - partition: nil lets the partitioner choose (by key hash when there is a key).
    ///   - token: returned in this message's `DeliveryReport`.
    public func send(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], partition: Int32? = nil,
        token: UInt64 = 0, queueFullWait: Duration = .seconds(5)
    ) throws(KafkaError) {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: queueFullWait)
        while true {
            let err = produce(topic: topic, key: key, value: value, headers: headers, partition: partition, token: token)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL, clock.now < deadline {
                rd_kafka_poll(client.handle, 5)
                continue
            }
            throw KafkaError.from(err, "produce to \(topic)", code: .deliveryFailed)
        }
    }

    private func produce(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader], partition: Int32?, token: UInt64
    ) -> rd_kafka_resp_err_t {
        var hdrs: OpaquePointer?
        if !headers.isEmpty {
            hdrs = rd_kafka_headers_new(headers.count)
            for h in headers {
                if let v = h.value {
                    v.withUnsafeBytes { _ = rd_kafka_header_add(hdrs, h.name, -1, $0.baseAddress, $0.count) }
                } else {
                    _ = rd_kafka_header_add(hdrs, h.name, -1, nil, 0)
                }
            }
        }
        let error: OpaquePointer? = topic.withCString { topicName in
            withOptionalBytes(key) { keyPtr, keyLen in
                withOptionalBytes(value) { valuePtr, valueLen in
                    var vus = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 6)
                    vus[0].vtype = RD_KAFKA_VTYPE_TOPIC
                    vus[0].u.cstr = topicName
                    vus[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    vus[1].u.i = RD_KAFKA_MSG_F_COPY
                    vus[2].vtype = RD_KAFKA_VTYPE_VALUE
                    vus[2].u.mem = .init(ptr: valuePtr, size: valueLen)
                    vus[3].vtype = RD_KAFKA_VTYPE_KEY
                    vus[3].u.mem = .init(ptr: keyPtr, size: keyLen)
                    vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                    vus[4].u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token))
                    vus[5].vtype = RD_KAFKA_VTYPE_PARTITION
                    vus[5].u.i32 = partition ?? RD_KAFKA_PARTITION_UA
                    if let hdrs {
                        vus.append(rd_kafka_vu_t())
                        vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
                        vus[6].u.headers = hdrs
                    }
                    return rd_kafka_produceva(client.handle, vus, vus.count)
                }
            }
        }
        guard let error else { return RD_KAFKA_RESP_ERR_NO_ERROR }
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        if let hdrs { rd_kafka_headers_destroy(hdrs) }  // ownership passes only on success
        return code
    }

    /// Serves delivery reports and error callbacks for up to `timeout`.
    /// - Returns: the number of events served.
    @discardableResult
    public func poll(timeout: Duration = .zero) -> Int {
        Int(rd_kafka_poll(client.handle, timeout.timeoutMilliseconds))
    }

    /// Waits until every queued message is acknowledged or failed, serving delivery reports.
    /// - Throws: `.timedOut` naming how many messages are still outstanding.
    public func flush(timeout: Duration) throws(KafkaError) {
        let err = rd_kafka_flush(client.handle, timeout.timeoutMilliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(
                .timedOut, "flush: \(outstanding) messages still outstanding after \(timeout)",
                rdkafkaCode: err.rawValue, isRetriable: true)
        }
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeMutableRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body(UnsafeMutableRawPointer(mutating: $0.baseAddress), $0.count) }
}
