import VigilKafka

/// The event time the source as a whole has reached, which the label pacing (`LabelPacer`)
/// releases labels up to: the oldest of the newest event times of the partitions still being
/// read (not yet at their end), or the newest event time of any partition once none is behind.
///
/// One clock for all partitions ran ahead with whichever partition a poll happened to read: a
/// backlog's poll holds a few thousand records of one or two partitions, so labels were released
/// hours of event time before the events of the other partitions reached their worker, which
/// held them in its small table of early labels and lost most of them.
///
/// Ingest thread only.
struct SourceWatermark {
    private var partitions: [TopicPartition] = []
    /// The newest event time read from each partition in `partitions`.
    private var newest: [Int64] = []
    /// Whether each partition of `partitions` is behind (and so bounds the watermark).
    private var behind: [Bool] = []
    private var anyBehind = false
    /// The newest event time read from any partition.
    private(set) var newestAny = Int64.min
    /// The event time every partition being read has reached.
    private(set) var bound = Int64.min

    /// The slot of `tp` (added when new).
    mutating func slot(_ tp: TopicPartition) -> Int {
        if let k = partitions.firstIndex(of: tp) { return k }
        partitions.append(tp)
        newest.append(.min)
        behind.append(false)
        return partitions.count - 1
    }

    /// Sets which partitions are still being read: they bound the watermark, including those
    /// not read from yet (whose events could be older than any read).
    mutating func setBehind(_ lagging: Set<TopicPartition>) {
        for tp in lagging { _ = slot(tp) }
        for k in partitions.indices { behind[k] = lagging.contains(partitions[k]) }
        anyBehind = !lagging.isEmpty
        recompute()
    }

    /// Takes an event of the partition in `slot`; returns whether the watermark rose.
    mutating func observe(slot k: Int, time: Int64) -> Bool {
        guard time > newest[k] else { return false }
        let old = newest[k]
        newest[k] = time
        newestAny = max(newestAny, time)
        if !anyBehind {
            let rose = newestAny > bound
            bound = newestAny
            return rose
        }
        // Only the partition that held the watermark back can move it.
        guard behind[k], old == bound else { return false }
        let before = bound
        recompute()
        return bound > before
    }

    private mutating func recompute() {
        guard anyBehind else {
            bound = newestAny
            return
        }
        var oldest = Int64.max
        for k in partitions.indices where behind[k] { oldest = min(oldest, newest[k]) }
        bound = oldest
    }
}
