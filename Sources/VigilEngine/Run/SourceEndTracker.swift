import Logging
import VigilKafka

/// `vigil run --until-end`: the source partitions assigned at the start are done (every record
/// has its outcome acknowledged) up to the end each had when it was first seen. Ingest thread.
struct SourceEndTracker {
    let sourceTopics: Set<String>
    private var ends: [TopicPartition: Int64]?

    init(sourceTopics: Set<String>) {
        self.sourceTopics = sourceTopics
    }

    /// Whether every assigned source partition is done up to its end; learns the ends (and the
    /// starting offsets of partitions already read to their end) the first time it is asked
    /// with an assignment.
    mutating func reachedEnd(_ consumer: KafkaConsumer, positions: inout SourcePositions, logger: Logger) -> Bool {
        let assigned = consumer.assignment.filter { sourceTopics.contains($0.topic) }
        guard !assigned.isEmpty else { return false }
        if ends == nil {
            var found: [TopicPartition: Int64] = [:]
            for tp in assigned {
                guard let marks = try? consumer.watermarks(tp, timeout: .seconds(5)) else { return false }
                found[tp] = marks.high
            }
            ends = found
            if let committed = try? consumer.committedOffsets(Array(assigned), timeout: .seconds(5)) {
                for (tp, o) in committed where o >= 0 { positions.started(tp, at: o) }
            }
            logger.info(
                "Reading up to the end of the source", metadata: ["ends": "\(found.sorted { $0.key < $1.key })"])
        }
        let done = consumer.doneOffsets
        // A partition ending in a transaction marker is done to its end once the consumer's
        // position stepped over the marker and nothing read is in flight (checked last).
        let ends = ends ?? [:]
        let at = consumer.positions(Array(ends.keys))
        for (tp, end) in ends where max(done[tp] ?? -1, positions.starts[tp] ?? -1, at[tp] ?? -1) < end { return false }
        return consumer.inFlight.values.allSatisfy { $0 == 0 }
    }
}
