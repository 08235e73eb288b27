import VigilKafka

/// The labels feed paced against the source (`LabelPacer`): labels wait for the events to reach
/// their time, and a chunk of events waits (briefly) for the labels to catch up with it.
extension KafkaEngine {
    /// Holds the labels feed's batch in the pacer (its positions move as labels are released).
    func hold(_ batch: KafkaBatch) {
        let split = KafkaIngest(batch, sourceTopics: ingest.sourceTopics, labelDecoders: labelDecoders)
        for bad in split.badLabels { sink.deadLetterLabel(batch[bad.index], bad.reason) }
        // The labels partitions still behind bound the label time read (`catchUpLabels`).
        if let labelsFeed { ingest.labelMark.setBehind(labelsFeed.partitionsBehind()) }
        var last = (tp: TopicPartition("", -1), slot: 0)
        for (k, label) in split.labels.enumerated() {
            let position = split.labelPositions[k]
            ingest.pacer.hold(label, time: split.labelTimes[k], at: position)
            guard let time = split.labelTimes[k] else {
                ingest.labelsUntimed = true
                continue
            }
            if last.tp != position.topicPartition {
                last = (position.topicPartition, ingest.labelMark.slot(position.topicPartition))
            }
            _ = ingest.labelMark.observe(slot: last.slot, time: time)
        }
        // A partition with nothing held (only dead letters in this batch) is read to its end.
        for (tp, next) in split.nextOffsets where !ingest.pacer.holds(tp) {
            ingest.positions.read(tp, offset: next - 1)
        }
        // Labels the events read so far have reached go at once.
        var due: [LabelRecord] = []
        ingest.pacer.release(
            upTo: ingest.watermark.bound, into: { due.append($0) },
            released: { ingest.positions.read($0, offset: $1) })
        stats.readLabels(due.count)
        ingest.pipeline.submitLabels(due)
    }

    /// The other side of the pacing: before the workers get a chunk whose events are past the
    /// label time every labels partition still being read has reached (`labelMark`), the labels
    /// feed is read on while it has labels on the broker it has not read (for at most
    /// `labelCatchUp`), so that no event expires from the label join before its label is read.
    /// A feed that has read everything never holds a chunk back (labels may be rare, or late by
    /// design), and so live labels never do.
    func catchUpLabels(to newest: Int64) {
        guard let labelsFeed, ingest.pacer.count < LabelPacer.capacity else { return }
        let deadline = ContinuousClock.now.advanced(by: Self.labelCatchUp)
        func trailing() -> Bool { !ingest.labelsUntimed && newest > ingest.labelMark.bound }
        while trailing(), ingest.pacer.count < LabelPacer.capacity,
            ContinuousClock.now < deadline, labelsFeed.behind()
        {
            do {
                let labels = try labelsFeed.poll(timeout: .milliseconds(20))
                if !labels.isEmpty { hold(labels) }
            } catch {
                return
            }
        }
    }

    /// Whether every assigned source partition has been read to its high watermark (as the last
    /// fetch reported it). Not while nothing is assigned yet: an empty poll before the group
    /// assigned the partitions says nothing of the events to come.
    func sourceCaughtUp() -> Bool {
        let assigned = assignedSources()
        return !assigned.isEmpty && sourcesBehind(assigned, positions: consumer.positions(Array(assigned))).isEmpty
    }

    /// The source partitions this instance is assigned.
    func assignedSources() -> Set<TopicPartition> {
        consumer.assignment.filter { ingest.sourceTopics.contains($0.topic) }
    }

    /// Of `assigned`, the partitions not read to their high watermark (as the last fetch
    /// reported it), or whose high watermark is not known yet. Read to it by the records read,
    /// or by the consumer's `positions` (taken before the batch in hand was polled, so that its
    /// records do not count as read yet), which step over the transaction markers that end a
    /// partition a transactional producer wrote: no record reports them.
    func sourcesBehind(_ assigned: Set<TopicPartition>, positions: [TopicPartition: Int64]) -> Set<TopicPartition> {
        assigned.filter { tp in
            guard let marks = consumer.cachedWatermarks(tp) else { return true }
            return max(ingest.positions.next[tp] ?? marks.low, positions[tp] ?? -1) < marks.high
        }
    }

    /// How long a chunk waits at most for the labels to catch up with its events.
    static let labelCatchUp: Duration = .seconds(5)

    /// Hands every held label to the pipeline.
    func releaseHeldLabels() {
        guard ingest.pacer.count > 0 else { return }
        var due: [LabelRecord] = []
        ingest.pacer.releaseAll(into: { due.append($0) }, released: { ingest.positions.read($0, offset: $1) })
        stats.readLabels(due.count)
        ingest.pipeline.submitLabels(due)
    }
}
