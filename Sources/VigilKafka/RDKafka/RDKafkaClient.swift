import CRdKafka
import Logging

/// Owns one `rd_kafka_t` handle and the Swift state its C callbacks reach through the opaque
/// pointer. librdkafka handles are thread-safe, and `context` outlives the handle because this
/// object holds both and destroys the handle first.
final class RDKafkaClient: @unchecked Sendable {
    // Invariant: `handle` is valid from init to deinit and only destroyed there.
    let handle: OpaquePointer
    let context: RDKafkaContext

    enum Kind { case producer, consumer }

    /// Creates a client from `properties`.
    /// - Throws: `.invalidConfiguration` for an unknown or invalid property, `.clientCreation`
    ///   when librdkafka refuses the handle.
    init(kind: Kind, properties: [(String, String)], context: RDKafkaContext) throws(KafkaError) {
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
            RDKafkaContext.from(opaque).reportError(
                rd_kafka_resp_err_t(rawValue: err), reason.map { String(cString: $0) } ?? "")
        }
        rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
            guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
            RDKafkaContext.from(opaque).log(
                level: level, facility: facility.map { String(cString: $0) } ?? "",
                message: message.map { String(cString: $0) } ?? "")
        }
        rd_kafka_conf_set_stats_cb(conf) { _, json, length, opaque in
            guard let opaque, let json else { return 0 }
            let bytes = UnsafeRawBufferPointer(start: json, count: length)
            RDKafkaContext.from(opaque).reportStatistics(Array(bytes))
            return 0  // librdkafka frees the JSON
        }
        switch kind {
        case .producer:
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let opaque, let message else { return }
                // Once per record: borrow the context without retaining it.
                Unmanaged<RDKafkaContext>.fromOpaque(opaque)._withUnsafeGuaranteedRef { $0.reportDelivery(message) }
            }
        case .consumer:
            rd_kafka_conf_set_rebalance_cb(conf) { rk, err, partitions, opaque in
                guard let rk, let opaque else { return }
                RDKafkaContext.from(opaque).consumer?.rebalance(rk, err, partitions)
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

    /// `client.id`-style name librdkafka gave this handle, e.g. `vigil#consumer-1`.
    var name: String { String(cString: rd_kafka_name(handle)) }
}

/// The Swift side of librdkafka's callbacks: routes errors, logs, statistics, delivery reports
/// and rebalances. Reached from librdkafka's threads, so everything in it is Sendable.
final class RDKafkaContext: Sendable {
    let logger: Logger
    let onEvent: (@Sendable (KafkaEvent) -> Void)?
    let onDelivery: (@Sendable (DeliveryReport) -> Void)?
    let metrics: KafkaMetrics
    /// Set for consumers: the offset tracker and assignment the rebalance callback updates.
    let consumer: ConsumerState?

    init(
        logger: Logger, metrics: KafkaMetrics, onEvent: (@Sendable (KafkaEvent) -> Void)?,
        onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil, consumer: ConsumerState? = nil
    ) {
        self.logger = logger
        self.metrics = metrics
        self.onEvent = onEvent
        self.onDelivery = onDelivery
        self.consumer = consumer
    }

    static func from(_ opaque: UnsafeMutableRawPointer) -> RDKafkaContext {
        Unmanaged<RDKafkaContext>.fromOpaque(opaque).takeUnretainedValue()
    }

    func reportError(_ err: rd_kafka_resp_err_t, _ reason: String) {
        let error = KafkaError.from(err, reason)
        metrics.errors.increment()
        logger.warning("Kafka client error", metadata: [LogKeys.error: "\(error)"])
        onEvent?(.error(error))
    }

    /// librdkafka levels are syslog's: 0–2 critical, 3 error, 4 warning, 5 notice, 6 info, 7 debug.
    func log(level: Int32, facility: String, message: String) {
        let mapped: Logger.Level
        switch level {
        case ...2: mapped = .critical
        case 3: mapped = .error
        case 4: mapped = .warning
        case 5: mapped = .notice
        case 6: mapped = .info
        default: mapped = .debug
        }
        logger.log(level: mapped, "\(message)", metadata: [LogKeys.facility: "\(facility)"], source: "librdkafka")
    }

    func reportStatistics(_ json: [UInt8]) {
        guard let stats = KafkaStatistics(json: json) else {
            logger.debug("Unreadable librdkafka statistics JSON")
            return
        }
        metrics.record(stats)
        onEvent?(.statistics(stats))
    }

    func reportDelivery(_ pointer: UnsafePointer<rd_kafka_message_t>) {
        let ok = pointer.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR
        metrics.recordDelivery(ok: ok)
        guard let onDelivery else { return }
        let message = pointer.pointee
        let topic = message.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? ""
        let error = ok ? nil : KafkaError.from(message.err, "delivery to \(topic) failed", code: .deliveryFailed)
        let token = UInt64(UInt(bitPattern: message._private))
        onDelivery(
            DeliveryReport(
                topic: topic, partition: message.partition, offset: message.offset, token: token, error: error))
    }
}

/// Metadata keys of Vigil's Kafka log lines.
enum LogKeys {
    static let error = "error"
    static let facility = "facility"
    static let partitions = "partitions"
    static let outstanding = "outstanding"
}

extension KafkaError {
    /// Maps a librdkafka error code onto Vigil's codes, keeping librdkafka's own text. Broker
    /// outages, timeouts, a full queue and fatal errors keep their own codes; anything else gets
    /// `fallback`, the code of the operation that failed.
    static func from(_ err: rd_kafka_resp_err_t, _ context: String, code fallback: Code? = nil) -> KafkaError {
        let text = String(cString: rd_kafka_err2str(err))
        let reason = context.isEmpty ? text : "\(context): \(text)"
        switch err {
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, RD_KAFKA_RESP_ERR__RESOLVE:
            return KafkaError(.brokerUnavailable, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
            return KafkaError(.timedOut, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return KafkaError(.queueFull, reason, rdkafkaCode: err.rawValue, isRetriable: true)
        case RD_KAFKA_RESP_ERR__FATAL:
            return KafkaError(.fatal, reason, rdkafkaCode: err.rawValue, isFatal: true)
        default:
            let retriable =
                err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS
                || err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR || err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE
                || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
            return KafkaError(fallback ?? .consumeFailed, reason, rdkafkaCode: err.rawValue, isRetriable: retriable)
        }
    }
}

/// Takes ownership of an `rd_kafka_error_t`: returns its code and destroys it.
func takeErrorCode(_ error: OpaquePointer) -> rd_kafka_resp_err_t {
    let code = rd_kafka_error_code(error)
    rd_kafka_error_destroy(error)
    return code
}

extension Duration {
    /// Milliseconds for librdkafka's `int timeout_ms` arguments, clamped to Int32.
    var timeoutMilliseconds: Int32 { Int32(clamping: milliseconds) }
}
