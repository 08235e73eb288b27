import VigilKafka

/// Where the engine stands in its input: the next offset of every partition read (source and
/// labels), and where partitions started (a restored checkpoint's offsets, or their committed
/// offsets). Ingest thread only.
struct SourcePositions {
    private(set) var next: [TopicPartition: Int64] = [:]
    private(set) var starts: [TopicPartition: Int64] = [:]

    /// A restore: reading resumes at `offsets`.
    mutating func restored(_ offsets: [TopicPartition: Int64]) {
        starts = offsets
        next = offsets
    }

    /// Partitions assigned in a rebalance start at `offsets` (their loaded windows cover what
    /// is before them).
    mutating func assigned(_ offsets: [TopicPartition: Int64]) {
        starts.merge(offsets) { $1 }
        next.merge(offsets) { $1 }
    }

    /// Partitions revoked: another member reads them now.
    mutating func revoked(_ partitions: [TopicPartition]) {
        for tp in partitions {
            next[tp] = nil
            starts[tp] = nil
        }
    }

    /// A record was read.
    mutating func read(_ tp: TopicPartition, offset: Int64) {
        next[tp] = offset + 1
    }

    /// Partitions read to their end before this run started at their committed offsets.
    mutating func started(_ tp: TopicPartition, at offset: Int64) {
        if starts[tp] == nil { starts[tp] = offset }
    }

    /// The offsets a checkpoint cut now covers: the next offset of every partition read, and
    /// for assigned source partitions not read yet, their committed offsets.
    func current(_ consumer: KafkaConsumer, sourceTopics: Set<String>) -> [SourceOffset] {
        var offsets = next
        let unseen = consumer.assignment.filter { offsets[$0] == nil && sourceTopics.contains($0.topic) }
        if !unseen.isEmpty, let committed = try? consumer.committedOffsets(Array(unseen), timeout: .seconds(5)) {
            for (tp, o) in committed where o >= 0 { offsets[tp] = o }
        }
        return offsets.map { SourceOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }.sorted()
    }
}
