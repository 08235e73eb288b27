import CRdKafka
import Foundation

/// Writes records inside one committed Kafka transaction, with librdkafka's C API. Vigil never
/// produces transactionally, but the topics it reads may be written so (Kafka Streams' exactly-
/// once output, for one): each partition a transaction wrote to then ends with a commit marker,
/// an offset no consumer is ever handed, so "read up to the high watermark" cannot be judged
/// by the records read alone.
public final class TransactionalProducer {
    private let handle: OpaquePointer
    private var topics: [String: OpaquePointer] = [:]
    private var open = false

    /// Connects and registers `id` with the broker's transaction coordinator.
    public init(brokers: String, id: String) throws {
        let conf = rd_kafka_conf_new()
        let error = UnsafeMutablePointer<CChar>.allocate(capacity: 512)
        defer { error.deallocate() }
        for (key, value) in [("bootstrap.servers", brokers), ("transactional.id", id), ("linger.ms", "5")]
        where rd_kafka_conf_set(conf, key, value, error, 512) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            throw TransactionFailure("transactional producer: \(key): \(String(cString: error))")
        }
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, 512) else {
            throw TransactionFailure("transactional producer: \(String(cString: error))")
        }
        self.handle = handle
        try check(rd_kafka_init_transactions(handle, 30_000), "init transactions")
    }

    deinit {
        for topic in topics.values { rd_kafka_topic_destroy(topic) }
        rd_kafka_destroy(handle)
    }

    /// Sends one record to `partition` of `topic`, in the transaction (begun on the first send).
    public func send(_ value: [UInt8], key: [UInt8]? = nil, to topic: String, partition: Int32) throws {
        if !open {
            try check(rd_kafka_begin_transaction(handle), "begin transaction")
            open = true
        }
        let rkt = topics[topic] ?? rd_kafka_topic_new(handle, topic, nil)
        topics[topic] = rkt
        while true {
            let sent = value.withUnsafeBytes { v in
                (key ?? []).withUnsafeBytes { k in
                    rd_kafka_produce(
                        rkt, partition, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: v.baseAddress), v.count,
                        k.baseAddress, key == nil ? 0 : k.count, nil)
                }
            }
            if sent == 0 { return }
            guard rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                throw TransactionFailure(
                    "transactional send: \(String(cString: rd_kafka_err2str(rd_kafka_last_error())))")
            }
            rd_kafka_poll(handle, 10)
        }
    }

    /// Commits the transaction: its records become readable, and each partition it wrote to
    /// gets a commit marker after them.
    public func commit() throws {
        guard open else { return }
        try check(rd_kafka_commit_transaction(handle, 60_000), "commit transaction")
        open = false
    }

    private func check(_ error: OpaquePointer?, _ what: String) throws {
        guard let error else { return }
        defer { rd_kafka_error_destroy(error) }
        throw TransactionFailure("\(what): \(String(cString: rd_kafka_error_string(error)))")
    }
}

/// Why the transactional producer of a test could not do its part.
public struct TransactionFailure: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
