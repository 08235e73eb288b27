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
