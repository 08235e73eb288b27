import CRdKafka
import Synchronization

/// Owns one `rd_kafka_t` handle and the Swift state its C callbacks reach through the opaque
/// pointer. librdkafka handles are thread-safe, and `context` outlives the handle because this
/// object holds both and destroys the handle first.
final class RDKafkaClient: @unchecked Sendable {
    let handle: OpaquePointer
    let context: RDKafkaContext

    enum Kind { case producer, consumer }

    /// Creates a client from `properties`.
    /// - Throws: `.invalidConfiguration` for an unknown or invalid property, `.clientCreation`
    ///   when librdkafka refuses the handle.
    init(kind: Kind, properties: [(String, String)], context: RDKafkaContext, deliveryReports: Bool) throws(KafkaError) {
        try KafkaRuntime.checkVersion()
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(.clientCreation, "rd_kafka_conf_new failed") }
        let errstr = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
        defer { errstr.deallocate() }
        for (name, value) in properties where rd_kafka_conf_set(conf, name, value, errstr, 512) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            let shown = KafkaConfiguration.isSecret(name) ? "[redacted]" : value
            throw KafkaError(.invalidConfiguration, "librdkafka property \(name)=\(shown): \(String(cString: errstr))")
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        rd_kafka_conf_set_error_cb(conf) { _, err, reason, opaque in
            guard let opaque else { return }
            let ctx = Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
            ctx.reportError(rd_kafka_resp_err_t(rawValue: err), reason.map { String(cString: $0) } ?? "")
        }
        if deliveryReports {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let opaque, let message else { return }
                let ctx = Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
                ctx.reportDelivery(message.pointee)
            }
        }
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        guard let handle = rd_kafka_new(type, conf, errstr, 512) else {
            rd_kafka_conf_destroy(conf)  // rd_kafka_new takes the conf only on success
            throw KafkaError(.clientCreation, "rd_kafka_new: \(String(cString: errstr))")
        }
        self.handle = handle
        self.context = context
    }

    deinit { rd_kafka_destroy(handle) }
}

/// The Swift side of librdkafka's callbacks: routes errors and delivery reports to handlers
/// and counts them. Reached from librdkafka's threads, hence the atomics.
final class RDKafkaContext: Sendable {
    let onError: (@Sendable (KafkaError) -> Void)?
    let onDelivery: (@Sendable (DeliveryReport) -> Void)?
    let delivered = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)

    init(onError: (@Sendable (KafkaError) -> Void)?, onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil) {
        self.onError = onError
        self.onDelivery = onDelivery
    }

    func reportError(_ err: rd_kafka_resp_err_t, _ reason: String) {
        errors.add(1, ordering: .relaxed)
        onError?(KafkaError.from(err, reason))
    }

    func reportDelivery(_ message: rd_kafka_message_t) {
        let ok = message.err == RD_KAFKA_RESP_ERR_NO_ERROR
        if ok { delivered.add(1, ordering: .relaxed) } else { failed.add(1, ordering: .relaxed) }
        guard let onDelivery else { return }
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let error = ok ? nil : KafkaError.from(message.err, "delivery to \(topic) failed", code: .deliveryFailed)
        let token = UInt64(UInt(bitPattern: message._private))
        onDelivery(DeliveryReport(topic: topic, partition: message.partition, offset: message.offset, token: token, error: error))
    }
}

extension KafkaError {
    /// Maps a librdkafka error code onto Vigil's codes, keeping librdkafka's own text.
    static func from(_ err: rd_kafka_resp_err_t, _ context: String, code: Code? = nil) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(err))
        let reason = context.isEmpty ? text : "\(context): \(text)"
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE:
            return KafkaError(code ?? .brokerUnavailable, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
            return KafkaError(code ?? .timedOut, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return KafkaError(.queueFull, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__FATAL:
            return KafkaError(.fatal, reason, rdkafkaCode: err.rawValue, isFatal: true)
        default:
            return KafkaError(code ?? .consumeFailed, reason, rdkafkaCode: err.rawValue, isRetriable: false)
        }
    }
}

extension Duration {
    /// Milliseconds for librdkafka's `int timeout_ms` arguments, clamped to Int32.
    var timeoutMilliseconds: Int32 { Int32(clamping: milliseconds) }
}
