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
    private let rd: RDKafkaConsumer
    private let configuration: KafkaConsumerConfiguration
    private let stopping = Atomic<Bool>(false)
    private let closed = Atomic<Bool>(false)
    /// The pthread running `run()`, 0 when none: `close()` waits for it unless called from it.
    private let runner = Atomic<UInt>(0)
    private var state: ConsumerState { rd.state }

    /// - Parameters:
    ///   - logger: receives Vigil's and librdkafka's log lines.
    ///   - metricsFactory: where the client's metrics go (default: the bootstrapped system).
    ///   - onEvent: assignments, revocations, commits, errors and statistics. Rebalance events are
    ///     delivered on the polling thread, errors and logs may come from librdkafka's threads.
    /// - Throws: `KafkaError` for invalid configuration or an unsupported librdkafka.
    public init(
        configuration: KafkaConsumerConfiguration, logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        onEvent: (@Sendable (KafkaEvent) -> Void)? = nil
    ) throws(KafkaError) {
        self.configuration = configuration
        let state = ConsumerState(logger: logger, onEvent: onEvent)
        let context = RDKafkaContext(
            logger: logger, metrics: KafkaMetrics(client: configuration.common.clientID, factory: metricsFactory),
            onEvent: onEvent, consumer: state)
        rd = try RDKafkaConsumer(properties: configuration.properties, context: context, state: state)
    }

    /// Joins the group and subscribes to `topics`; assignments arrive while polling.
    public func subscribe(topics: [String]) throws(KafkaError) {
        try rd.subscribe(topics)
    }

    /// Partitions currently assigned to this member.
    public var assignment: Set<TopicPartition> { state.assignment.withLock { $0 } }

    /// Whether the group's last rebalance is done for this member: it holds its share, which is
    /// empty when the group has more members than the topics have partitions.
    public var isGroupMember: Bool { state.inGroup.load(ordering: .acquiring) }

    // MARK: Polling

    /// Returns up to `maxMessages` records, waiting at most `timeout` for the first, and serves
    /// rebalances and statistics on the calling thread. Per-partition errors become `.error`
    /// events; only a fatal error throws.
    public func poll(maxMessages: Int, timeout: Duration) throws(KafkaError) -> KafkaBatch {
        let batch = try rd.consume(maxMessages: maxMessages, timeout: timeout)
        if !batch.isEmpty { state.tracker.withLock { $0.fetched(batch) } }
        return batch
    }

    /// What `run`'s handler tells the loop after each poll.
    public enum Next: Sendable {
        /// Poll again.
        case poll
        /// Return from `run` (nothing more is committed by it; `close()` commits).
        case stop
    }

    /// Polls on the calling thread until `stop()`, `close()` or `onPoll` says `.stop`, handing
    /// every batch to `onPoll` (an empty one when the poll timed out, so the caller can do its
    /// own work between polls) and committing done offsets every `commitInterval` of the
    /// configuration, as measured by `now`.
    /// - Throws: a fatal `KafkaError` from polling, or what `onPoll` throws; retriable errors are
    ///   reported as events and polling goes on.
    public func run(
        maxBatch: Int = 10_000, pollTimeout: Duration = .milliseconds(100), now: () -> Duration,
        onPoll: (KafkaBatch) throws -> Next
    ) throws {
        runner.store(UInt(pthread_self()), ordering: .releasing)
        defer { runner.store(0, ordering: .releasing) }
        var nextCommit = now() + configuration.commitInterval
        while !stopping.load(ordering: .acquiring) {
            let batch = try poll(maxMessages: maxBatch, timeout: pollTimeout)
            if try onPoll(batch) == .stop { return }
            if now() >= nextCommit {
                commit(async: true)
                nextCommit = now() + configuration.commitInterval
            }
        }
    }

    /// `run(…onPoll:)` for a handler of records only: `handler` gets every non-empty batch.
    public func run(maxBatch: Int = 10_000, pollTimeout: Duration = .milliseconds(100), handler: (KafkaBatch) -> Void)
        throws
    {
        try run(maxBatch: maxBatch, pollTimeout: pollTimeout, now: Self.monotonicNow) { batch in
            if !batch.isEmpty { handler(batch) }
            return .poll
        }
    }

    /// Monotonic time since an arbitrary origin: the commit clock of `run(handler:)`.
    public static func monotonicNow() -> Duration { ContinuousClock.now - origin }
    private static let origin = ContinuousClock.now

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
        rd.commit(async: async)
    }

    /// The committed offsets the group coordinator holds for `partitions`.
    public func committedOffsets(_ partitions: [TopicPartition], timeout: Duration = .seconds(10)) throws(KafkaError)
        -> [TopicPartition: Int64]
    {
        try rd.committed(partitions, timeout: timeout)
    }

    /// Records fetched and not yet marked done, per partition.
    public var inFlight: [TopicPartition: Int] { state.tracker.withLock { $0.inFlight } }

    // MARK: Flow control and positioning

    /// Stops fetching from `partitions` (backpressure) without leaving the group.
    public func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        try rd.pause(partitions)
    }

    /// Resumes fetching from paused partitions.
    public func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        try rd.resume(partitions)
    }

    /// Lets the owner act inside a rebalance, on the polling thread, before the assignment
    /// changes: move per-partition state in and out with the partitions (Kafka Streams' state
    /// stores). Set it before `subscribe`.
    public func setRebalanceHandler(_ handler: RebalanceHandler?) {
        state.handler.withLock { $0 = handler }
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
        try rd.assign(offsets)
        state.assignment.withLock { $0 = Set(offsets.keys) }
    }

    /// The oldest offset kept and the offset the next record will get (the high watermark), as
    /// the partition's leader reports them now.
    public func watermarks(_ tp: TopicPartition, timeout: Duration = .seconds(10)) throws(KafkaError) -> (
        low: Int64, high: Int64
    ) {
        try rd.watermarks(tp, timeout: timeout)
    }

    /// The watermarks of `tp` as the last fetch response carried them, without asking the
    /// broker (cheap enough for every poll); nil before the first fetch.
    public func cachedWatermarks(_ tp: TopicPartition) -> (low: Int64, high: Int64)? {
        rd.cachedWatermarks(tp)
    }

    /// Where reading stands in each of `partitions`, without asking the broker: the offset after
    /// the last record handed out, or after the transaction markers that followed it. A partition
    /// written by a transactional producer ends with a marker that no record reports, so this,
    /// not the last record's offset, tells whether reading reached the high watermark.
    /// Partitions not read yet are absent.
    public func positions(_ partitions: [TopicPartition]) -> [TopicPartition: Int64] {
        rd.positions(partitions)
    }

    /// Per partition, the offset after the done prefix: every record before it is done (its
    /// outputs acknowledged). Partitions with no record done yet are absent.
    public var doneOffsets: [TopicPartition: Int64] { state.tracker.withLock { $0.doneOffsets } }

    /// The logical offset of a partition's oldest record kept (librdkafka's OFFSET_BEGINNING).
    public static let beginning: Int64 = RDKafkaConsumer.offsetBeginning

    /// Moves the fetch position of assigned partitions; the next records come from there.
    public func seek(_ offsets: [TopicPartition: Int64], timeout: Duration = .seconds(10)) throws(KafkaError) {
        try rd.seek(offsets, timeout: timeout)
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
        rd.close()
    }
}
