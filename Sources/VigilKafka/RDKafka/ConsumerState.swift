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
    let startOffsets = Mutex([TopicPartition: Int64]())
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
            let starts = startOffsets.withLock { s in partitions.compactMap { tp in s.removeValue(forKey: tp).map { (tp, $0) } } }
            if let list, !starts.isEmpty {
                let wanted = Dictionary(uniqueKeysWithValues: starts)
                for i in 0..<Int(list.pointee.cnt) {
                    let tp = TopicPartition(String(cString: list.pointee.elems[i].topic), list.pointee.elems[i].partition)
                    if let offset = wanted[tp] { list.pointee.elems[i].offset = offset }
                }
            }
            tracker.withLock { $0.remove(partitions) }
            if cooperative {
                if let error = rd_kafka_incremental_assign(rk, list) { consume(error, "incremental assign") }
            } else {
                let e = rd_kafka_assign(rk, list)
                if e != RD_KAFKA_RESP_ERR_NO_ERROR { onEvent?(.error(KafkaError.from(e, "assign"))) }
            }
            assignment.withLock { $0.formUnion(partitions) }
            logger.info("Partitions assigned", metadata: [LogKeys.partitions: "\(partitions.sorted())"])
            onEvent?(.assigned(partitions))
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
            let lost = rd_kafka_assignment_lost(rk) != 0
            if !lost {
                // Commit what is done before another member takes these partitions over.
                commit(rk, only: Set(partitions), async: false)
            }
            if cooperative {
                if let error = rd_kafka_incremental_unassign(rk, list) { consume(error, "incremental unassign") }
            } else {
                _ = rd_kafka_assign(rk, nil)
            }
            tracker.withLock { $0.remove(partitions) }
            assignment.withLock { $0.subtract(partitions) }
            logger.info(lost ? "Partitions lost" : "Partitions revoked", metadata: [LogKeys.partitions: "\(partitions.sorted())"])
            onEvent?(lost ? .lost(partitions) : .revoked(partitions))
        default:
            _ = rd_kafka_assign(rk, nil)
            onEvent?(.error(KafkaError.from(err, "rebalance")))
        }
    }

    private func consume(_ error: OpaquePointer, _ what: String) {
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        onEvent?(.error(KafkaError.from(code, what)))
    }

    /// Commits the done prefix of every partition (or of `only`), synchronously or not.
    /// - Returns: what was committed (for a synchronous commit; an asynchronous one reports nothing).
    @discardableResult
    func commit(_ rk: OpaquePointer, only: Set<TopicPartition>? = nil, async: Bool) -> [TopicPartition: Int64] {
        let pending = tracker.withLock { $0.pendingCommits(only) }
        guard !pending.isEmpty else { return [:] }
        let list = TopicPartitionList.make(pending)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        let err = rd_kafka_commit(rk, list, async ? 1 : 0)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            onEvent?(.error(KafkaError.from(err, "commit")))
            return [:]
        }
        var done = pending
        if !async {
            for e in TopicPartitionList.elements(list) where e.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                done[TopicPartition(String(cString: e.topic), e.partition)] = nil
                onEvent?(.error(KafkaError.from(e.err, "commit \(String(cString: e.topic))[\(e.partition)]")))
            }
        }
        // An asynchronous commit is recorded as sent; a failed one is retried by the next commit
        // only if more progress is made, which at-least-once tolerates (replay, never skip).
        tracker.withLock { $0.committed(done) }
        if !done.isEmpty { onEvent?(.committed(done)) }
        return done
    }
}
