import CRdKafka
import Foundation
import Logging
import Metrics
import Synchronization

/// Publishes records to Kafka asynchronously. Delivery reports go to `onDelivery` with the token
/// the caller passed to `send`, so whoever produced can tell when its records are acknowledged;
/// they are served on the sending thread every 256 sends and by a dedicated thread when sending
/// pauses, so `onDelivery` may run on either. The local queue is bounded: when full, `send` waits.
public final class KafkaProducer: Sendable {
    private let client: RDKafkaClient
    private let poller: PollThread
    private let sends = Atomic<Int>(0)

    /// - Parameters:
    ///   - logger: receives Vigil's and librdkafka's log lines.
    ///   - metricsFactory: where the client's metrics go (default: the bootstrapped system).
    ///   - onDelivery: called once per record with the broker's acknowledgement or the failure, on
    ///     a sending thread or the producer's poll thread. Keep it short; it holds up later reports.
    ///   - onEvent: client-level errors (librdkafka retries the retriable ones) and statistics.
    /// - Throws: `KafkaError` for invalid configuration or an unsupported librdkafka.
    public init(
        configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "vigil.kafka"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil, onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws(KafkaError) {
        let context = RDKafkaContext(
            logger: logger, metrics: KafkaMetrics(client: configuration.common.clientID, factory: metricsFactory),
            onEvent: onEvent,
            onDelivery: onDelivery)
        let client = try RDKafkaClient(kind: .producer, properties: configuration.properties, context: context)
        self.client = client
        // Non-blocking polls with a 1 ms nap when idle: a thread blocked in rd_kafka_poll must be
        // woken (futex) for every delivery-report batch; with that, 1M records cost 2.5k context
        // switches against rdkafka_performance's 0.7k (perf stat), and more CPU on 2 cores.
        poller = PollThread(name: "vigil-producer-poll") {
            if rd_kafka_poll(client.handle, 0) == 0 {
                client.context.metrics.publishDeliveries()
                usleep(1000)
            }
        }
    }

    deinit {
        poller.stop()
        let left = outstanding
        if left > 0 {
            client.context.logger.warning(
                "Producer released with records not yet acknowledged; call close(deadline:) to flush",
                metadata: [LogKeys.outstanding: "\(left)"])
        }
    }

    /// Records acknowledged by the broker so far.
    public var deliveredCount: Int { client.context.metrics.deliveredCount }
    /// Records that failed delivery so far.
    public var failedCount: Int { client.context.metrics.failedCount }
    /// Records and requests still queued locally or in flight.
    public var outstanding: Int { Int(rd_kafka_outq_len(client.handle)) }

    /// A handle for a topic that is produced to often: sending through it skips the lookup by name.
    public func topic(_ name: String) -> KafkaTopic {
        KafkaTopic(name: name, handle: rd_kafka_topic_new(client.handle, name, nil), client: client)
    }

    /// Enqueues one record; see `send(to:key:value:…)`.
    public func send(
        topic: String, key: [UInt8]?, value: [UInt8]?, headers: [KafkaHeader] = [], partition: Int32? = nil,
        token: UInt64 = 0, queueFullWait: Duration = .seconds(30)
    ) throws(KafkaError) {
        try withOptionalBytes(key) { (k) throws(KafkaError) in
            try withOptionalBytes(value) { (v) throws(KafkaError) in
                try enqueue(
                    .name(topic), key: k, value: v, headers: headers, partition: partition, token: token,
                    wait: queueFullWait)
            }
        }
    }

    /// Enqueues one record, copying key and value. When the local queue is full it serves
    /// delivery reports until there is room, then throws `.queueFull` after `queueFullWait`.
    /// - Parameters:
    ///   - partition: nil lets the partitioner choose (by key hash when there is a key).
    ///   - token: returned in this record's `DeliveryReport`.
    public func send(
        to topic: KafkaTopic, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [KafkaHeader] = [],
        partition: Int32? = nil, token: UInt64 = 0, queueFullWait: Duration = .seconds(30)
    ) throws(KafkaError) {
        try withExtendedLifetime(topic) { () throws(KafkaError) in
            try enqueue(
                .handle(topic.handle, topic.name), key: key, value: value, headers: headers, partition: partition,
                token: token, wait: queueFullWait)
        }
    }

    /// Where a record goes: a topic handle (no lookup, no reference counting) or a name.
    private enum Target {
        case name(String)
        case handle(OpaquePointer?, String)

        var name: String {
            switch self {
            case .name(let n), .handle(_, let n): return n
            }
        }
    }

    private func enqueue(
        _ target: Target, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [KafkaHeader],
        partition: Int32?, token: UInt64, wait: Duration
    ) throws(KafkaError) {
        var deadline: ContinuousClock.Instant?
        while true {
            let err = produce(target, key: key, value: value, headers: headers, partition: partition, token: token)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                // Under load, serve delivery reports on the sending thread now and then, as
                // rdkafka_performance does: cheaper than handing each batch of reports to the
                // poll thread, which then only covers idle periods.
                if sends.wrappingAdd(1, ordering: .relaxed).newValue & 255 == 0 { rd_kafka_poll(client.handle, 0) }
                return
            }
            if err == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                let now = ContinuousClock.now
                if deadline == nil { deadline = now.advanced(by: wait) }
                if now < deadline! {
                    // Serve delivery reports here too: returns as soon as one frees room, where a
                    // fixed sleep would overshoot. librdkafka allows polling from several threads.
                    rd_kafka_poll(client.handle, 1)
                    continue
                }
            }
            throw KafkaError.from(err, "produce to \(target.name)", code: .deliveryFailed)
        }
    }

    private func produce(
        _ target: Target, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: [KafkaHeader],
        partition: Int32?, token: UInt64
    ) -> rd_kafka_resp_err_t {
        // The common case, a topic handle and no headers, takes librdkafka's plain produce call,
        // which skips parsing an argument list (as rdkafka_performance does).
        if case .handle(let rkt, _) = target, headers.isEmpty {
            let status = rd_kafka_produce(
                rkt, partition ?? RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
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
            case .handle(let rkt, _):
                first.vtype = RD_KAFKA_VTYPE_RKT
                first.u.rkt = rkt
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

    /// Waits until every queued record is acknowledged or failed.
    /// - Throws: `.timedOut` naming how many records are still outstanding.
    public func flush(timeout: Duration) throws(KafkaError) {
        let err = rd_kafka_flush(client.handle, timeout.timeoutMilliseconds)
        if err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError(
                .timedOut, "flush: \(outstanding) records still outstanding after \(timeout)",
                rdkafkaCode: err.rawValue, isRetriable: true)
        }
    }

    /// Flushes with a deadline, then stops the poll thread. Records not acknowledged by the
    /// deadline are reported in the thrown error; the producer must not be used afterwards.
    public func close(deadline: Duration = .seconds(10)) throws(KafkaError) {
        defer { poller.stop() }
        try flush(timeout: deadline)
    }
}

/// A topic handle obtained from `KafkaProducer.topic(_:)`. It keeps its producer's client alive:
/// librdkafka requires topic handles to be destroyed before the client.
public final class KafkaTopic: @unchecked Sendable {
    // Invariant: `handle` is a refcounted rd_kafka_topic_t released only in deinit, while
    // `client` is still alive.
    public let name: String
    let handle: OpaquePointer?
    private let client: RDKafkaClient
    init(name: String, handle: OpaquePointer?, client: RDKafkaClient) {
        self.name = name
        self.handle = handle
        self.client = client
    }
    deinit { if let handle { rd_kafka_topic_destroy(handle) } }
}

/// A thread that calls `body` until stopped: serves librdkafka callbacks off the cooperative pool.
final class PollThread: Sendable {
    private let stopped = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    // Invariant: written once in init, only compared afterwards.
    nonisolated(unsafe) private var thread: Thread?

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [self] in
            while !stopped.load(ordering: .acquiring) { body() }
            finished.store(true, ordering: .releasing)
        }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// Asks the loop to end and waits (at most about one poll) for it, unless called from the
    /// loop itself (a callback dropping the last reference), which would wait forever.
    func stop() {
        stopped.store(true, ordering: .releasing)
        if Thread.current == thread { return }
        while !finished.load(ordering: .acquiring) { usleep(1000) }
    }
}

private func withOptionalBytes<R>(
    _ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws(KafkaError) -> R
) throws(KafkaError) -> R {
    guard let bytes else { return try body(nil) }
    // withUnsafeBytes rethrows untyped errors, so carry the typed one out in a Result.
    let result: Result<R, KafkaError> = bytes.withUnsafeBytes { b in
        do throws(KafkaError) { return .success(try body(b)) } catch { return .failure(error) }
    }
    return try result.get()
}
