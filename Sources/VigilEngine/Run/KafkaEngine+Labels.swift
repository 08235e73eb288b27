import VigilKafka

/// The labels feed paced against the source (`LabelPacer`): labels wait for the events to reach
/// their time, and a chunk of events waits (briefly) for the labels to catch up with it.
extension KafkaEngine {
    /// Holds the labels feed's batch in the pacer (its positions move as labels are released).
    func hold(_ batch: KafkaBatch) {
        let split = KafkaIngest(batch, sourceTopics: ingest.sourceTopics, labelDecoders: labelDecoders)
        for bad in split.badLabels { sink.deadLetterLabel(batch[bad.index], bad.reason) }
        // A partition with nothing held (only dead letters in this batch) is read to its end.
        for (k, label) in split.labels.enumerated() {
            ingest.pacer.hold(label, time: split.labelTimes[k], at: split.labelPositions[k])
            ingest.newestLabelTime = max(ingest.newestLabelTime, split.labelTimes[k] ?? .max)
        }
        for (tp, next) in split.nextOffsets where !ingest.pacer.holds(tp) {
            ingest.positions.read(tp, offset: next - 1)
        }
        // Labels the events read so far have reached go at once.
        var due: [LabelRecord] = []
        ingest.pacer.release(
            upTo: ingest.newestEventTime, into: { due.append($0) },
            released: { ingest.positions.read($0, offset: $1) })
        stats.readLabels(due.count)
        ingest.pipeline.submitLabels(due)
    }

    /// The other side of the pacing: before the workers get a chunk whose events are more than
    /// half the shortest `labels.expire` past the newest label read, the labels feed is read on
    /// while it has labels on the broker it has not read (for at most `labelCatchUp`), so that
    /// no event expires from the label join before its label is read. Labels that trail the
    /// events by less (as live labels do) never hold a chunk back, and neither does a feed that
    /// has read everything (labels may be rare, or late by design).
    func catchUpLabels(to newest: Int64) {
        guard let labelsFeed, ingest.pacer.count < LabelPacer.capacity else { return }
        let expire = topology.models.compactMap(\.kind.labels).map(\.expire.wholeMilliseconds).min() ?? 0
        let deadline = ContinuousClock.now.advanced(by: Self.labelCatchUp)
        func trailing() -> Bool {
            let labels = ingest.newestLabelTime
            return labels < .max - expire / 2 && newest > labels + expire / 2
        }
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
        let assigned = consumer.assignment.filter { ingest.sourceTopics.contains($0.topic) }
        guard !assigned.isEmpty else { return false }
        for tp in assigned {
            guard let marks = consumer.cachedWatermarks(tp) else { return false }
            if (ingest.positions.next[tp] ?? marks.low) < marks.high { return false }
        }
        return true
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
