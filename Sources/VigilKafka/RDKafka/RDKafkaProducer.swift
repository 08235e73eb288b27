import CRdKafka
import Foundation

/// The C side of `KafkaProducer`: one producer handle and the calls made on it. Callers pass and
/// receive Swift values only.
final class RDKafkaProducer: Sendable {
    let client: RDKafkaClient

    init(properties: [(String, String)], context: RDKafkaContext) throws(KafkaError) {
        client = try RDKafkaClient(kind: .producer, properties: properties, context: context)
    }

    var context: RDKafkaContext { client.context }

    /// A topic handle: sending through it skips the lookup by name.
    func topic(_ name: String) -> RDKafkaTopic {
        RDKafkaTopic(name: name, handle: rd_kafka_topic_new(client.handle, name, nil), client: client)
    }

    /// Where a record goes: a topic handle (no lookup, no reference counting) or a name.
    enum Target {
        case name(String)
        case handle(RDKafkaTopic)

        var name: String {
            switch self {
            case .name(let n): return n
            case .handle(let t): return t.name
            }
        }
    }

    /// What one produce call did.
    enum Outcome {
        case enqueued
        /// The local queue is full: serve delivery reports and try again.
        case queueFull
        case failed(KafkaError)
    }

    /// Enqueues one record, copying key and value (`RD_KAFKA_MSG_F_COPY`).
    /// - Parameters:
    ///   - partition: nil lets the partitioner choose.
    ///   - token: returned in the record's delivery report.
    func produce(
        _ target: Target, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [KafkaHeader],
        partition: Int32?, token: UInt64
    ) -> Outcome {
        let err = withExtendedLifetime(target) { rawProduce(target, key, value, headers, partition, token) }
        switch err {
        case RD_KAFKA_RESP_ERR_NO_ERROR: return .enqueued
        case RD_KAFKA_RESP_ERR__QUEUE_FULL: return .queueFull
        default: return .failed(KafkaError.from(err, "produce to \(target.name)", code: .deliveryFailed))
        }
    }

    private func rawProduce(
        _ target: Target, _ key: UnsafeRawBufferPointer?, _ value: UnsafeRawBufferPointer?, _ headers: [KafkaHeader],
        _ partition: Int32?, _ token: UInt64
    ) -> rd_kafka_resp_err_t {
        // The common case, a topic handle and no headers, takes librdkafka's plain produce call,
        // which skips parsing an argument list (as rdkafka_performance does).
        if case .handle(let topic) = target, headers.isEmpty {
            let status = rd_kafka_produce(
                topic.handle, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                UnsafeMutableRawPointer(mutating: value?.baseAddress), value?.count ?? 0,
                key?.baseAddress, key?.count ?? 0, UnsafeMutableRawPointer(bitPattern: UInt(token)))
            return status == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_last_error()
        }
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
        // The argument list lives on the stack: no allocation per record.
        let error: OpaquePointer? = withUnsafeTemporaryAllocation(of: rd_kafka_vu_t.self, capacity: 7) { vus in
            let build = { (first: rd_kafka_vu_t) -> OpaquePointer? in
                vus[0] = first
                vus[1] = rd_kafka_vu_t()
                vus[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
                vus[1].u.i = RD_KAFKA_MSG_F_COPY
                vus[2] = rd_kafka_vu_t()
                vus[2].vtype = RD_KAFKA_VTYPE_VALUE
                vus[2].u.mem = .init(
                    ptr: UnsafeMutableRawPointer(mutating: value?.baseAddress), size: value?.count ?? 0)
                vus[3] = rd_kafka_vu_t()
                vus[3].vtype = RD_KAFKA_VTYPE_KEY
                vus[3].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: key?.baseAddress), size: key?.count ?? 0)
                vus[4] = rd_kafka_vu_t()
                vus[4].vtype = RD_KAFKA_VTYPE_OPAQUE
                vus[4].u.ptr = UnsafeMutableRawPointer(bitPattern: UInt(token))
                vus[5] = rd_kafka_vu_t()
                vus[5].vtype = RD_KAFKA_VTYPE_PARTITION
                vus[5].u.i32 = partition ?? RD_KAFKA_PARTITION_UA
                var count = 6
                if let hdrs {
                    vus[6] = rd_kafka_vu_t()
                    vus[6].vtype = RD_KAFKA_VTYPE_HEADERS
                    vus[6].u.headers = hdrs
                    count = 7
                }
                return rd_kafka_produceva(self.client.handle, vus.baseAddress, count)
            }
            var first = rd_kafka_vu_t()
            switch target {
            case .handle(let topic):
                first.vtype = RD_KAFKA_VTYPE_RKT
                first.u.rkt = topic.handle
                return build(first)
            case .name(let name):
                return name.withCString { cName in
                    first.vtype = RD_KAFKA_VTYPE_TOPIC
                    first.u.cstr = cName
                    return build(first)
                }
            }
        }
        guard let error else { return RD_KAFKA_RESP_ERR_NO_ERROR }
        let code = takeErrorCode(error)
        if let hdrs { rd_kafka_headers_destroy(hdrs) }  // ownership passes only on success
        return code
    }

    /// Serves delivery reports and other callbacks for up to `timeout`; returns how many events
    /// were served.
    @discardableResult
    func poll(timeout: Duration = .zero) -> Int {
        Int(rd_kafka_poll(client.handle, timeout.timeoutMilliseconds))
    }

    /// Waits until every queued record is acknowledged or failed.
    func flush(timeout: Duration) throws(KafkaError) {
        let err = rd_kafka_flush(client.handle, timeout.timeoutMilliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(
                .timedOut, "flush: \(outstanding) records still outstanding after \(timeout)",
                rdkafkaCode: err.rawValue, isRetriable: true)
        }
    }

    /// Records and requests still queued locally or in flight.
    var outstanding: Int { Int(rd_kafka_outq_len(client.handle)) }
}

/// A refcounted `rd_kafka_topic_t`. It keeps its client alive: librdkafka requires topic handles
/// to be destroyed before the client.
final class RDKafkaTopic: @unchecked Sendable {
    // Invariant: `handle` is released only in deinit, while `client` is still alive.
    let name: String
    let handle: OpaquePointer?
    private let client: RDKafkaClient

    init(name: String, handle: OpaquePointer?, client: RDKafkaClient) {
        self.name = name
        self.handle = handle
        self.client = client
    }

    deinit { if let handle { rd_kafka_topic_destroy(handle) } }
}
