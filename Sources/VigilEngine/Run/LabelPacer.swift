import VigilKafka

/// Labels read from the labels topics, held until the source events have reached their time:
/// `vigil run`'s side of the label join's guarantee that an event within `labels.expire` of its
/// label always joins. A labels topic read ahead of the events (after a restart, or a backlog)
/// would otherwise hand its labels over before their events, and events read in a batch that
/// spans more than `expire` would expire before the labels of the same poll.
///
/// Held per labels partition in arrival order; a label is released when the newest event time
/// read reaches its time (a label without a time at once), and each partition's position moves
/// only past released labels, so a checkpoint never counts a held label as read. When the
/// source has nothing to read, every held label is released: its event, if any, was read.
///
/// Ingest thread only.
struct LabelPacer {
    struct Held {
        var record: LabelRecord
        var time: Int64?
        var offset: Int64
    }

    private var queues: [TopicPartition: [Held]] = [:]
    /// Where each queue's unreleased labels start (the queue is compacted now and then).
    private var heads: [TopicPartition: Int] = [:]
    /// The partitions, in the order first seen (released in this order).
    private var order: [TopicPartition] = []
    private(set) var count = 0
    /// Labels held at most: while this many are held, the labels feed is not read.
    static let capacity = 500_000

    mutating func hold(_ label: LabelRecord, time: Int64?, at position: KafkaPosition) {
        if queues[position.topicPartition] == nil { order.append(position.topicPartition) }
        queues[position.topicPartition, default: []].append(Held(record: label, time: time, offset: position.offset))
        count += 1
    }

    /// Whether labels of `tp` are held.
    func holds(_ tp: TopicPartition) -> Bool { heads[tp, default: 0] < queues[tp]?.count ?? 0 }

    /// Releases, in each partition's order, the labels whose time is at or before `newest`,
    /// calling `released` with each partition's last released offset.
    mutating func release(
        upTo newest: Int64, into out: (LabelRecord) -> Void, released: (TopicPartition, Int64) -> Void
    ) {
        guard count > 0 else { return }
        for tp in order {
            var head = heads[tp, default: 0]
            let queue = queues[tp]!
            let start = head
            while head < queue.count, (queue[head].time ?? .min) <= newest {
                out(queue[head].record)
                head += 1
            }
            guard head > start else { continue }
            released(tp, queue[head - 1].offset)
            count -= head - start
            if head == queue.count {
                queues[tp] = []
                heads[tp] = 0
            } else if head > 4096, head * 2 > queue.count {
                queues[tp] = Array(queue[head...])
                heads[tp] = 0
            } else {
                heads[tp] = head
            }
        }
    }

    /// Releases every held label.
    mutating func releaseAll(into out: (LabelRecord) -> Void, released: (TopicPartition, Int64) -> Void) {
        release(upTo: .max, into: out, released: released)
    }
}
