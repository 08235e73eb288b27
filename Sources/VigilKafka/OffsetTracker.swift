/// Decides which offsets may be committed: per partition, only the contiguous prefix of fetched
/// records that are all marked done, so a crash replays unfinished records and never skips one.
/// Offsets are tracked as fetched rather than assumed consecutive, because compaction and
/// transaction markers leave gaps in a partition's offsets.
///
/// Not thread-safe by itself: `KafkaConsumer` keeps it behind a mutex.
public struct OffsetTracker: Sendable {
    /// In-flight offsets of one partition, oldest first, with their done flags.
    struct Partition: Sendable {
        var offsets: [Int64] = []
        var done: [Bool] = []
        /// Index of the oldest record not yet known done.
        var head = 0
        /// The offset to commit (last done record of the prefix + 1), if any progress was made.
        var committable: Int64?
        /// The last offset successfully committed.
        var committed: Int64?
        /// The offset after the last record fetched.
        var next: Int64?

        var inFlight: Int { offsets.count - head }

        mutating func fetched(_ offset: Int64) {
            next = offset + 1
            if let last = offsets.last, offset <= last {
                // A seek backwards (or a re-delivery after rebalance): start over from here; the
                // records before it are fetched again, so nothing is skipped.
                offsets.removeAll(keepingCapacity: true)
                done.removeAll(keepingCapacity: true)
                head = 0
            }
            offsets.append(offset)
            done.append(false)
        }

        /// Returns false when `offset` is not in flight (already done, or from before a reset).
        mutating func markDone(_ offset: Int64) -> Bool {
            guard head < offsets.count, offset >= offsets[head], offset <= offsets[offsets.count - 1] else {
                return false
            }
            // Binary search: offsets are increasing.
            var lo = head
            var hi = offsets.count - 1
            while lo < hi {
                let mid = (lo + hi) / 2
                if offsets[mid] < offset { lo = mid + 1 } else { hi = mid }
            }
            guard offsets[lo] == offset else { return false }
            done[lo] = true
            while head < offsets.count, done[head] {
                committable = offsets[head] + 1
                head += 1
            }
            // Drop the done prefix now and then, so memory follows what is in flight.
            if head >= 4096 && head * 2 >= offsets.count {
                offsets.removeFirst(head)
                done.removeFirst(head)
                head = 0
            }
            return true
        }
    }

    private(set) var partitions: [TopicPartition: Partition] = [:]
    /// Partitions lost since the last assignment, as they stood: records read from them still
    /// finish, and one that comes back where it stood resumes with them (`assigned`).
    private(set) var lost: [TopicPartition: Partition] = [:]

    public init() {}

    /// Records that `offset` of `tp` was handed to the caller.
    public mutating func fetched(_ tp: TopicPartition, _ offset: Int64) {
        partitions[tp, default: Partition()].fetched(offset)
    }

    /// Records every record of `batch` as handed to the caller.
    public mutating func fetched(_ batch: KafkaBatch) {
        forEachRun(of: batch, creating: true) { partition, entries in
            for e in entries { partition.fetched(e.offset) }
        }
    }

    /// Marks every record of `batch` done; partitions no longer tracked are skipped.
    public mutating func markDone(_ batch: KafkaBatch) {
        forEachRun(of: batch, creating: false) { partition, entries in
            for e in entries { _ = partition.markDone(e.offset) }
        }
    }

    /// Calls `body` once per run of consecutive records from one partition, so a batch costs one
    /// dictionary lookup per partition run rather than one per record.
    private mutating func forEachRun(
        of batch: KafkaBatch, creating: Bool, _ body: (inout Partition, ArraySlice<KafkaBatch.Entry>) -> Void
    ) {
        let entries = batch.entries
        var start = 0
        while start < entries.count {
            let first = entries[start]
            var end = start + 1
            while end < entries.count, entries[end].partition == first.partition,
                entries[end].topicIndex == first.topicIndex
            {
                end += 1
            }
            let tp = TopicPartition(batch.topics[Int(first.topicIndex)], first.partition)
            if creating {
                body(&partitions[tp, default: Partition()], entries[start..<end])
            } else if partitions[tp] != nil {
                body(&partitions[tp]!, entries[start..<end])
            } else if lost[tp] != nil {
                body(&lost[tp]!, entries[start..<end])
            }
            start = end
        }
    }

    /// Marks a fetched record done. Unknown positions (a partition no longer assigned, an offset
    /// already done) are ignored and reported as false.
    @discardableResult
    public mutating func markDone(_ position: KafkaPosition) -> Bool {
        let tp = position.topicPartition
        if let done = partitions[tp]?.markDone(position.offset) { return done }  // one lookup, in place
        return lost[tp]?.markDone(position.offset) ?? false
    }

    /// The offsets to commit now: for each partition whose done prefix moved since the last
    /// commit, the offset of the next record to read.
    public func pendingCommits(_ only: Set<TopicPartition>? = nil) -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for (tp, p) in partitions where only?.contains(tp) ?? true {
            if let c = p.committable, c != p.committed { out[tp] = c }
        }
        return out
    }

    /// For every partition with progress, the offset after its done prefix (what a commit would
    /// send), whether or not it was committed already.
    public var doneOffsets: [TopicPartition: Int64] { partitions.compactMapValues(\.committable) }

    /// Records a commit as made (or, for an asynchronous one, as sent).
    public mutating func committed(_ offsets: [TopicPartition: Int64]) {
        for (tp, offset) in offsets where partitions[tp] != nil { partitions[tp]!.committed = offset }
    }

    /// Records that an asynchronous commit failed: those offsets become pending again, so the
    /// next commit (periodic, on revoke or on close) sends them once more.
    public mutating func commitFailed(_ offsets: [TopicPartition: Int64]) {
        for (tp, offset) in offsets where partitions[tp]?.committed == offset { partitions[tp]!.committed = nil }
    }

    /// Forgets partitions that were revoked.
    public mutating func remove(_ tps: some Sequence<TopicPartition>) {
        for tp in tps { partitions[tp] = nil }
    }

    /// Sets aside partitions lost without a revoke: nothing of them is committed, but their
    /// records still in flight are marked done as they finish, until the next assignment.
    public mutating func lose(_ tps: some Sequence<TopicPartition>) {
        for tp in tps {
            if let p = partitions.removeValue(forKey: tp) { lost[tp] = p }
        }
    }

    /// Starts tracking assigned partitions, and forgets the lost ones that did not come back.
    ///
    /// A partition with an offset in `starts` begins there, because its owner's state covers
    /// every record before it. So that offset is committed at the next commit, even if no record
    /// follows; otherwise an idle partition would keep an older committed offset, and a lag, for
    /// good. There is one exception: a partition lost here that resumes exactly where it stood.
    /// It takes back its records in flight, and the commit waits for them to finish.
    public mutating func assigned(_ tps: some Sequence<TopicPartition>, starts: [TopicPartition: Int64]) {
        for tp in tps {
            let kept = lost.removeValue(forKey: tp)
            guard let start = starts[tp] else {
                partitions[tp] = nil
                continue
            }
            if var kept, kept.next == start {
                kept.committed = nil  // commits made before the loss may not have counted
                partitions[tp] = kept
            } else {
                var fresh = Partition()
                fresh.committable = start
                fresh.next = start
                partitions[tp] = fresh
            }
        }
        lost.removeAll()
    }

    /// Records fetched but not yet done, per partition.
    public var inFlight: [TopicPartition: Int] { partitions.mapValues(\.inFlight) }

    /// The last committed offset of `tp`, if this tracker committed one.
    public func committedOffset(_ tp: TopicPartition) -> Int64? { partitions[tp]?.committed }
}
