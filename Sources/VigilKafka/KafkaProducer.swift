import Foundation
import Logging
import Metrics
import Synchronization

/// Publishes records to Kafka asynchronously. Delivery reports go to `onDelivery` with the token
/// the caller passed to `send`, so whoever produced can tell when its records are acknowledged;
/// they are served on the sending thread every 256 sends and by a dedicated thread when sending
/// pauses, so `onDelivery` may run on either. The local queue is bounded: when full, `send` waits.
public final class KafkaProducer: Sendable {
    private let rd: RDKafkaProducer
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
        configuration: KafkaProducerConfiguration, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onDelivery: (@Sendable (DeliveryReport) -> Void)? = nil, onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws(KafkaError) {
        let context = RDKafkaContext(
            logger: logger, metrics: KafkaMetrics(client: configuration.common.clientID, factory: metricsFactory),
            onEvent: onEvent, onDelivery: onDelivery)
        let rd = try RDKafkaProducer(properties: configuration.properties, context: context)
        self.rd = rd
        // Non-blocking polls with a 1 ms nap when idle: a thread blocked in rd_kafka_poll must be
        // woken (futex) for every delivery-report batch; with that, 1M records cost 2.5k context
        // switches against rdkafka_performance's 0.7k (perf stat), and more CPU on 2 cores.
        poller = PollThread(name: "vigil-producer-poll") {
            if rd.poll() == 0 {
                rd.context.metrics.publishDeliveries()
                usleep(1000)
            }
        }
    }

    deinit {
        poller.stop()
        let left = outstanding
        if left > 0 {
            rd.context.logger.warning(
                "Producer released with records not yet acknowledged; call close(deadline:) to flush",
                metadata: [LogKeys.outstanding: "\(left)"])
        }
    }

    /// Records acknowledged by the broker so far.
    public var deliveredCount: Int { rd.context.metrics.deliveredCount }
    /// Records that failed delivery so far.
    public var failedCount: Int { rd.context.metrics.failedCount }
    /// Records and requests still queued locally or in flight.
    public var outstanding: Int { rd.outstanding }

    /// A handle for a topic that is produced to often: sending through it skips the lookup by name.
    public func topic(_ name: String) -> KafkaTopic {
        KafkaTopic(rd.topic(name))
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
        try enqueue(
            .handle(topic.rd), key: key, value: value, headers: headers, partition: partition, token: token,
            wait: queueFullWait)
    }

    private func enqueue(
        _ target: RDKafkaProducer.Target, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [KafkaHeader], partition: Int32?, token: UInt64, wait: Duration
    ) throws(KafkaError) {
        var deadline: ContinuousClock.Instant?
        while true {
            switch rd.produce(target, key: key, value: value, headers: headers, partition: partition, token: token) {
            case .enqueued:
                // Under load, serve delivery reports on the sending thread now and then, as
                // rdkafka_performance does: cheaper than handing each batch of reports to the
                // poll thread, which then only covers idle periods.
                if sends.wrappingAdd(1, ordering: .relaxed).newValue & 255 == 0 { rd.poll() }
                return
            case .queueFull:
                let now = ContinuousClock.now
                if deadline == nil { deadline = now.advanced(by: wait) }
                guard now < deadline! else {
                    throw KafkaError(
                        .queueFull, "produce to \(target.name): the local queue stayed full for \(wait)",
                        isRetriable: true)
                }
                // Serve delivery reports here too: returns as soon as one frees room, where a
                // fixed sleep would overshoot. librdkafka allows polling from several threads.
                rd.poll(timeout: .milliseconds(1))
            case .failed(let error):
                throw error
            }
        }
    }

    /// Waits until every queued record is acknowledged or failed.
    /// - Throws: `.timedOut` naming how many records are still outstanding.
    public func flush(timeout: Duration) throws(KafkaError) {
        try rd.flush(timeout: timeout)
    }

    /// Flushes with a deadline, then stops the poll thread. Records not acknowledged by the
    /// deadline are reported in the thrown error; the producer must not be used afterwards.
    public func close(deadline: Duration = .seconds(10)) throws(KafkaError) {
        defer { poller.stop() }
        try flush(timeout: deadline)
    }
}

/// A topic handle obtained from `KafkaProducer.topic(_:)`; it keeps its producer's client alive.
public final class KafkaTopic: Sendable {
    let rd: RDKafkaTopic
    public var name: String { rd.name }

    init(_ rd: RDKafkaTopic) { self.rd = rd }
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
