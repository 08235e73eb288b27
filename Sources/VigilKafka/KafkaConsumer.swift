import CRdKafka
import Foundation
import Logging
import Metrics
import Synchronization

/// Reads records as a member of a consumer group, a batch at a time, and commits an offset only
/// once the caller has marked it — and every record before it — done.
///
/// Typical use: `subscribe`, then `run(handler:)` on a dedicated thread (or `poll` in your own
/// loop); mark records done with `markDone` when their effects are acknowledged; `close()` on
/// shutdown commits what is done and leaves the group.
public final class KafkaConsumer: Sendable {
    private let queue: RDKafkaQueue
    private let client: RDKafkaClient
    private let state: ConsumerState
    private let configuration: KafkaConsumerConfiguration
    private let stopping = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    /// The pthread running `run()`, 0 when none: `close()` waits for it unless called from it.
    private let runner = Atomic<UInt>(0)

    /// - Parameters:
    ///   - logger: receives Vigil's and librdkafka's log lines.
    ///   - metricsFactory: where the client's metrics go (default: the bootstrapped system).
    ///   - onEvent: assignments, revocations, commits, errors and statistics. Rebalance events are
    ///     delivered on the polling thread, errors and logs may come from librdkafka's threads.
    /// - Throws: `KafkaError` for invalid configuration or an unsupported librdkafka.
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "vigil.kafka"),
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws(KafkaError) {
        self.configuration = configuration
        state = ConsumerState(logger: logger, onEvent: onEvent)
        let context = RDKafkaContext(
            logger: logger, metrics: KafkaMetrics(client: configuration.common.clientID, factory: metricsFactory),
            onEvent: onEvent,
            consumer: state)
        client = try RDKafkaClient(kind: .consumer, properties: configuration.properties, context: context)
        // Route the main queue into the consumer queue, so one batch poll serves rebalances,
        // statistics and messages alike.
        rd_kafka_poll_set_consumer(client.handle)
        queue = RDKafkaQueue(rd_kafka_queue_get_consumer(client.handle), of: client)
    }

    /// Joins the group and subscribes to `topics`; assignments arrive while polling.
    public func subscribe(topics: [String]) throws(KafkaError) {
        let list = TopicPartitionList.make(topics.map { TopicPartition($0, RD_KAFKA_PARTITION_UA) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_subscribe(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "subscribe to \(topics.joined(separator: ","))", code: .consumeFailed)
        }
    }

    /// Partitions currently assigned to this member.
    public var assignment: Set<TopicPartition> { state.assignment.withLock { $0 } }

    // MARK: Polling

    /// Returns up to `maxMessages` records, waiting at most `timeout` for the first, and serves
    /// rebalances and statistics on the calling thread. Per-partition errors become `.error`
    /// events; only a fatal error throws.
    ///
    /// `rd_kafka_consume_batch_queue` waits until the batch is *full* or the timeout expires, which
    /// on a quiet stream delays every record by up to the whole timeout. So: take what is there
    /// without waiting; if nothing is, wait for one record only, then take what came with it.
    public func poll(maxMessages: Int, timeout: Duration) throws(KafkaError) -> KafkaBatch {
        try withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<rd_kafka_message_t>?.self, capacity: maxMessages) {
            (buffer) throws(KafkaError) -> KafkaBatch in
            var n = rd_kafka_consume_batch_queue(queue.handle, 0, buffer.baseAddress, maxMessages)
            if n == 0 {
                n = rd_kafka_consume_batch_queue(queue.handle, timeout.timeoutMilliseconds, buffer.baseAddress, 1)
                if n == 1 && maxMessages > 1 {
                    let more = rd_kafka_consume_batch_queue(queue.handle, 0, buffer.baseAddress! + 1, maxMessages - 1)
                    n = more < 0 ? n : n + more
                }
            }
            if n < 0 { throw KafkaError.from(rd_kafka_last_error(), "consume", code: .consumeFailed) }
            if n == 0 { return .empty }
            defer { for i in 0..<n { rd_kafka_message_destroy(buffer[i]) } }  // every message, errors included
            let batch = try Self.convert(buffer, count: n, context: client.context)
            if !batch.isEmpty { state.tracker.withLock { $0.fetched(batch) } }
            return batch
        }
    }

    /// Polls on the calling thread until `stop()` or `close()`, handing every non-empty batch to
    /// `handler` and committing done offsets every `commitInterval` of the configuration.
    /// - Throws: a fatal `KafkaError`; retriable errors are reported as events and polling goes on.
    public func run(maxBatch: Int = 10_000, pollTimeout: Duration = .milliseconds(100), handler: (KafkaBatch) -> Void)
        throws(KafkaError)
    {
        runner.store(UInt(pthread_self()), ordering: .releasing)
        defer { runner.store(0, ordering: .releasing) }
        let clock = ContinuousClock()
        var nextCommit = clock.now.advanced(by: configuration.commitInterval)
        while !stopping.load(ordering: .acquiring) {
            let batch = try poll(maxMessages: maxBatch, timeout: pollTimeout)
            if !batch.isEmpty { handler(batch) }
            if clock.now >= nextCommit {
                commit(async: true)
                nextCommit = clock.now.advanced(by: configuration.commitInterval)
            }
        }
    }

    /// Makes `run` return after its current poll (at most its poll timeout later).
    public func stop() { stopping.store(true, ordering: .releasing) }

    // MARK: Offsets

    /// Marks a record done: everything it caused is acknowledged. Its offset is committed once
    /// every earlier record of its partition is done too.
    public func markDone(_ position: KafkaPosition) {
        state.tracker.withLock { _ = $0.markDone(position) }
    }

    /// Marks many records done under one lock.
    public func markDone(_ positions: some Sequence<KafkaPosition>) {
        state.tracker.withLock { tracker in for p in positions { tracker.markDone(p) } }
    }

    /// Marks every record of `batch` done.
    public func markDone(_ batch: KafkaBatch) {
        state.tracker.withLock { $0.markDone(batch) }
    }

    /// Commits the done prefix of every assigned partition.
    /// - Parameter async: false waits for the coordinator; true returns at once, and the answer
    ///   arrives while polling as a `.committed` or `.error` event (failed offsets are resent by
    ///   the next commit).
    /// - Returns: the offsets the coordinator accepted (synchronous) or the offsets sent
    ///   (asynchronous).
    @discardableResult
    public func commit(async: Bool = false) -> [TopicPartition: Int64] {
        state.commit(client.handle, asyncVia: async ? queue.handle : nil)
    }

    /// The committed offsets the group coordinator holds for `partitions`.
    public func committedOffsets(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        let list = TopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_committed(client.handle, list, timeout.timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "committed offsets", code: .consumeFailed)
        }
        return TopicPartitionList.offsets(list)
    }

    /// Records fetched and not yet marked done, per partition.
    public var inFlight: [TopicPartition: Int] { state.tracker.withLock { $0.inFlight } }

    // MARK: Flow control and positioning

    /// Stops fetching from `partitions` (backpressure) without leaving the group.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try partitionCall(partitions, "pause") { rd_kafka_pause_partitions($0, $1) }
    }

    /// Resumes fetching from paused partitions.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try partitionCall(partitions, "resume") { rd_kafka_resume_partitions($0, $1) }
    }

    private func partitionCall(
        _ partitions: [TopicPartition], _ what: String,
        _ call: (OpaquePointer, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> rd_kafka_resp_err_t
    ) throws(KafkaError) {
        let list = TopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = call(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.from(err, what, code: .consumeFailed) }
    }

    /// Where partitions start the next time they are assigned (checkpoint restore): their offsets
    /// here win over the group's committed offsets, once; later assignments resume from the
    /// committed offsets.
    public func setStartOffsets(_ offsets: [TopicPartition: Int64]) {
        state.startOffsets.withLock { $0.merge(offsets) { $1 } }
    }

    /// Reads `offsets`' partitions from those offsets without joining the group's rebalances
    /// (the checkpoint reader; nothing is committed for them). `KafkaConsumer.beginning` starts at
    /// the oldest record kept.
    public func assign(_ offsets: [TopicPartition: Int64]) throws(KafkaError) {
        let list = TopicPartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_assign(client.handle, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.from(err, "assign", code: .consumeFailed) }
        state.assignment.withLock { $0 = Set(offsets.keys) }
    }

    /// The oldest offset kept and the offset the next record will get (the high watermark), as
    /// the partition's leader reports them now.
    public func watermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (
        low: Int64, high: Int64
    ) {
        var low: Int64 = 0
        var high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(
            client.handle, tp.topic, tp.partition, &low, &high, timeout.timeoutMilliseconds)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError.from(err, "watermarks of \(tp)", code: .consumeFailed)
        }
        return (low, high)
    }

    /// Per partition, the offset after the done prefix: every record before it is done (its
    /// outputs acknowledged). Partitions with no record done yet are absent.
    public var doneOffsets: [TopicPartition: Int64] { state.tracker.withLock { $0.doneOffsets } }

    /// The logical offset of a partition's oldest record kept (librdkafka's OFFSET_BEGINNING).
    public static let beginning: Int64 = Int64(RD_KAFKA_OFFSET_BEGINNING)

    /// Moves the fetch position of assigned partitions; the next records come from there.
    public func seek(_ offsets: [TopicPartition: Int64], timeout: Duration = .seconds(10)) throws(KafkaError) {
        let list = TopicPartitionList.make(offsets)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let error = rd_kafka_seek_partitions(client.handle, list, timeout.timeoutMilliseconds) {
            throw KafkaError.from(takeErrorCode(error), "seek", code: .consumeFailed)
        }
        for e in TopicPartitionList.elements(list) where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
            throw KafkaError.from(e.err, "seek \(String(cString: e.topic))[\(e.partition)]", code: .consumeFailed)
        }
    }

    // MARK: Shutdown

    /// Stops polling, commits every done offset synchronously, and leaves the group so its
    /// partitions move to the other members at once. Waits for a `run()` on another thread to
    /// return first (at most one poll timeout). Safe to call twice.
    public func close() {
        stop()
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let me = UInt(pthread_self())
        while case let r = runner.load(ordering: .acquiring), r != 0, r != me { usleep(1000) }
        commit(async: false)
        // Serves the final revoke, whose callback commits again (a no-op when nothing moved).
        _ = rd_kafka_consumer_close(client.handle)
    }

    // MARK: Conversion

    /// Copies a batch of librdkafka messages into one `KafkaBatch`: a first pass sizes the byte
    /// buffer, a second copies each payload once.
    private static func convert(
        _ messages: UnsafeMutableBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>, count n: Int,
        context: RDKafkaContext
    ) throws(KafkaError) -> KafkaBatch {
        var total = 0
        var fatal: KafkaError?
        for i in 0..<n {
            guard let m = messages[i] else { continue }
            if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
            total += m.pointee.key_len + m.pointee.len
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        var entries: [KafkaBatch.Entry] = []
        entries.reserveCapacity(n)
        var headerEntries: [KafkaBatch.HeaderEntry] = []
        var topics: [String] = []
        var topicHandles: [OpaquePointer?] = []

        for i in 0..<n {
            guard let m = messages[i] else { continue }
            let msg = m.pointee
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let reason = rd_kafka_message_errstr(m).map { String(cString: $0) } ?? ""
                let error = KafkaError.from(msg.err, reason, code: .consumeFailed)
                if msg.err == RD_KAFKA_RESP_ERR__FATAL { fatal = error } else { context.reportError(msg.err, reason) }
                continue
            }
            // Topics repeat within a batch: compare handles, build each name once.
            var topicIndex = topicHandles.firstIndex { $0 == msg.rkt } ?? -1
            if topicIndex < 0 {
                topicIndex = topics.count
                topicHandles.append(msg.rkt)
                topics.append(msg.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "")
            }
            let keyStart = bytes.count
            if let k = msg.key { bytes.append(contentsOf: UnsafeRawBufferPointer(start: k, count: msg.key_len)) }
            let valueStart = bytes.count
            if let v = msg.payload { bytes.append(contentsOf: UnsafeRawBufferPointer(start: v, count: msg.len)) }
            var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let ts = rd_kafka_message_timestamp(m, &tsType)
            let headerStart = headerEntries.count
            var hdrs: OpaquePointer?
            if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
                var idx = 0
                var name: UnsafePointer<CChar>?
                var value: UnsafeRawPointer?
                var size = 0
                while rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                    let nameStart = bytes.count
                    let nameLength = name.map { strlen($0) } ?? 0
                    if let name { bytes.append(contentsOf: UnsafeRawBufferPointer(start: name, count: nameLength)) }
                    let vStart = bytes.count
                    if let value { bytes.append(contentsOf: UnsafeRawBufferPointer(start: value, count: size)) }
                    headerEntries.append(
                        .init(
                            nameStart: nameStart, nameCount: nameLength, valueStart: vStart,
                            valueCount: value == nil ? -1 : size))
                    idx += 1
                }
            }
            entries.append(
                .init(
                    topicIndex: Int32(topicIndex), partition: msg.partition, offset: msg.offset,
                    timestamp: tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
                    keyStart: keyStart, keyCount: msg.key == nil ? -1 : msg.key_len,
                    valueStart: valueStart, valueCount: msg.payload == nil ? -1 : msg.len,
                    headerStart: Int32(headerStart), headerCount: Int32(headerEntries.count - headerStart)))
        }
        if let fatal { throw fatal }
        return KafkaBatch(topics: topics, entries: entries, headerEntries: headerEntries, bytes: bytes)
    }
}

/// Owns one `rd_kafka_queue_t`; librdkafka queues are thread-safe. It holds its client, so the
/// queue is always destroyed before the `rd_kafka_t` it belongs to, whatever order Swift
/// releases references in.
final class RDKafkaQueue: @unchecked Sendable {
    // Invariant: `handle` is destroyed only in deinit, while `client` is still alive.
    let handle: OpaquePointer?
    private let client: RDKafkaClient
    init(_ handle: OpaquePointer?, of client: RDKafkaClient) {
        self.handle = handle
        self.client = client
    }
    deinit { if let handle { rd_kafka_queue_destroy(handle) } }
}
