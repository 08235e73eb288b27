import CRdKafka
import Logging
import Synchronization

/// The consumer's shared state: which offsets are done, which partitions are assigned, and
/// where newly assigned partitions start. Touched by the poll thread (fetches, rebalances) and
/// by whoever marks records done, so each piece sits behind its own mutex; no C call and no
/// callback ever runs while one is held.
final class ConsumerState: Sendable {
    let tracker = Mutex(OffsetTracker())
    let assignment = Mutex(Set<TopicPartition>())
    /// Whether the group's last rebalance gave this member its share, which may be no partition
    /// at all (more members than partitions); false from an eager revocation until the next one.
    let inGroup = Atomic<Bool>(false)
    let startOffsets = Mutex([TopicPartition: Int64]())
    let handler = Mutex<RebalanceHandler?>(nil)
    let logger: Logger
    let onEvent: (@Sendable (KafkaEvent) -> Void)?

    init(logger: Logger, onEvent: (@Sendable (KafkaEvent) -> Void)?) {
        self.logger = logger
        self.onEvent = onEvent
    }

    /// librdkafka's rebalance callback, served on the poll thread.
    func rebalance(
        _ rk: OpaquePointer, _ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
    ) {
        let cooperative = String(cString: rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE"
        let partitions = TopicPartitionList.partitions(list)
        switch err {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
            // A restore asked for exact positions: start these partitions there, once (a later
            // reassignment resumes from the group's committed offsets as usual).
            var starts = startOffsets.withLock { s in
                partitions.compactMap { tp in s.removeValue(forKey: tp).map { (tp, $0) } }
            }
            var loaded: [TopicPartition: Int64] = [:]
            if let handler = handler.withLock({ $0 }) {
                // The owner's state for these partitions covers records up to these offsets.
                loaded = handler.assigning(partitions)
                starts = Array(Dictionary(starts, uniquingKeysWith: { $1 }).merging(loaded) { $1 })
            }
            if let list, !starts.isEmpty {
                let wanted = Dictionary(uniqueKeysWithValues: starts)
                for i in 0..<Int(list.pointee.cnt) {
                    let tp = TopicPartition(
                        String(cString: list.pointee.elems[i].topic), list.pointee.elems[i].partition)
                    if let offset = wanted[tp] { list.pointee.elems[i].offset = offset }
                }
            }
            tracker.withLock { $0.assigned(partitions, starts: loaded) }
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) {
                    onEvent?(.error(KafkaError.from(takeErrorCode(error), "incremental assign")))
                }
            } else {
                let e = rd_kafka_assign(rk, list)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { onEvent?(.error(KafkaError.from(e, "assign"))) }
            }
            assignment.withLock { $0.formUnion(partitions) }
            inGroup.store(true, ordering: .releasing)
            logger.info("Partitions assigned", metadata: [LogKeys.partitions: "\(partitions.sorted())"])
            onEvent?(.assigned(partitions))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            // An eager rebalance takes everything back before it assigns again; a cooperative
            // one keeps the member in the group, unless its session was lost.
            if lost || !cooperative { inGroup.store(false, ordering: .releasing) }
            handler.withLock { $0 }?.revoking(partitions, lost)
            if !lost {
                // Commit what is done before another member takes these partitions over.
                commit(rk, only: Set(partitions), asyncVia: nil)
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) {
                    onEvent?(.error(KafkaError.from(takeErrorCode(error), "incremental unassign")))
                }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            tracker.withLock { lost ? $0.lose(partitions) : $0.remove(partitions) }
            assignment.withLock { $0.subtract(partitions) }
            logger.info(
                lost ? "Partitions lost" : "Partitions revoked",
                metadata: [LogKeys.partitions: "\(partitions.sorted())"])
            onEvent?(lost ? .lost(partitions) : .revoked(partitions))
        default:
            inGroup.store(false, ordering: .releasing)
            _ = rd_kafka_assign(rk, nil)
            onEvent?(.error(KafkaError.from(err, "rebalance")))
        }
    }

    /// Commits the done prefix of every partition (or of `only`).
    ///
    /// Synchronous (`queue` nil): returns what the coordinator accepted and reports it as
    /// `.committed`. Asynchronous (`queue` is the consumer queue): records the offsets as sent and
    /// returns them; the coordinator's answer arrives while polling, as `.committed`, or as
    /// `.error` after which the failed offsets are pending again and the next commit resends them.
    @discardableResult
    func commit(_ rk: OpaquePointer, only: Set<TopicPartition>? = nil, asyncVia queue: OpaquePointer?)
        -> [TopicPartition: Int64]
    {
        let pending = tracker.withLock { $0.pendingCommits(only) }
        guard !pending.isEmpty else { return [:] }
        let list = TopicPartitionList.make(pending)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        if let queue {
            tracker.withLock { $0.committed(pending) }  // sent: not resent unless it fails
            let err = rd_kafka_commit_queue(
                rk, list, queue,
                { _, err, offsets, opaque in
                    guard let opaque else { return }
                    Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue().asyncCommitted(err, offsets)
                }, Unmanaged.passUnretained(self).toOpaque())
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                tracker.withLock { $0.commitFailed(pending) }
                onEvent?(.error(KafkaError.from(err, "commit")))
                return [:]
            }
            return pending
        }
        let err = rd_kafka_commit(rk, list, 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            onEvent?(.error(KafkaError.from(err, "commit")))
            return [:]
        }
        let (accepted, _) = split(TopicPartitionList.elements(list), err)
        tracker.withLock { $0.committed(accepted) }
        if !accepted.isEmpty { onEvent?(.committed(accepted)) }
        return accepted
    }

    /// The coordinator's answer to an asynchronous commit, served on the polling thread.
    func asyncCommitted(_ err: rd_kafka_resp_err_t, _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?) {
        let (accepted, failed) = split(TopicPartitionList.elements(list), err)
        if !failed.isEmpty { tracker.withLock { $0.commitFailed(failed) } }
        if !accepted.isEmpty { onEvent?(.committed(accepted)) }
    }

    /// Splits a commit's per-partition results into accepted and failed offsets, reporting each
    /// failure as an `.error` event.
    private func split(_ elements: [rd_kafka_topic_partition_t], _ err: rd_kafka_resp_err_t)
        -> (accepted: [TopicPartition: Int64], failed: [TopicPartition: Int64])
    {
        var accepted: [TopicPartition: Int64] = [:]
        var failed: [TopicPartition: Int64] = [:]
        for e in elements {
            let tp = TopicPartition(String(cString: e.topic), e.partition)
            let code = e.err != RD_KAFKA_RESP_ERR_NO_ERROR ? e.err : err
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                accepted[tp] = e.offset
            } else {
                failed[tp] = e.offset
                onEvent?(.error(KafkaError.from(code, "commit \(tp)")))
            }
        }
        return (accepted, failed)
    }
}
