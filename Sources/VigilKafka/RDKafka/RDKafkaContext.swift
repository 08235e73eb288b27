import CRdKafka
import Logging

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
