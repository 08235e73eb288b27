import VigilKafka

/// The key groups of a topology: one per source partition. Entity state belongs to the key
/// group of the partition that delivers the entity, so it moves with that partition between
/// workers and instances (docs/scaling.md). Group ids are `(topic index << 20 | partition) + 1`,
/// the topic index being the topic's place in `source.kafka.topics`; 0 means none.
public struct KeyGroups: Sendable, Hashable {
    /// `source.kafka.topics`, in order.
    public let topics: [String]

    public init(topics: [String]) { self.topics = topics }

    /// The key group of `partition` of `topic` (0 when `topic` is not a source topic).
    public func group(topic: String, partition: Int32) -> UInt32 {
        guard let index = topics.firstIndex(of: topic), partition >= 0, partition < 1 << 20 else { return 0 }
        return (UInt32(index) << 20 | UInt32(partition)) + 1
    }

    public func group(_ tp: TopicPartition) -> UInt32 { group(topic: tp.topic, partition: tp.partition) }

    /// The source partition of key group `group`.
    public func partition(of group: UInt32) -> TopicPartition? {
        guard group > 0 else { return nil }
        let index = Int((group - 1) >> 20)
        guard index < topics.count else { return nil }
        return TopicPartition(topics[index], Int32((group - 1) & 0xFFFFF))
    }

    /// Each event's key group for a worker's share of a chunk, into `out`.
    func groups(of work: ShardWork, into out: inout [UInt32]) {
        let chunk = work.chunk
        // The chunk's topic list is the batch's: map it once, not per event.
        let base = chunk.topics.map { topic in topics.firstIndex(of: topic).map { UInt32($0) << 20 } }
        out.removeAll(keepingCapacity: true)
        for row in work.rows {
            let i = Int(row)
            let partition = chunk.partitions[i]
            if let b = base[Int(chunk.topicIndex[i])], partition >= 0, partition < 1 << 20 {
                out.append((b | UInt32(partition)) + 1)
            } else {
                out.append(0)
            }
        }
    }
}
