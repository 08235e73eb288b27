import CRdKafka

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
