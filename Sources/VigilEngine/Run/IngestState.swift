import Synchronization
import VigilKafka

/// What the ingest thread owns.
///
/// `@unchecked Sendable` invariant: `pipelineBox`, `positions`, `endTracker`, `retired` and the
/// share of the stream are touched by the ingest thread only (`run()`'s thread), and read by
/// others only after `run()` returned; `installed` is behind a mutex.
final class IngestState: @unchecked Sendable {
    let sourceTopics: Set<String>
    private var pipelineBox: Pipeline?
    var positions = SourcePositions()
    /// Labels from the labels feed waiting for the events to reach their time.
    var pacer = LabelPacer()
    /// The event time the source partitions being read have all reached (ms since the epoch).
    var watermark = SourceWatermark()
    /// The label time the labels partitions being read have all reached.
    var labelMark = SourceWatermark()
    /// The consumer's position in each source partition at the end of the last ingest turn,
    /// before the next poll (`sourcesBehind`).
    var sourcePositions: [TopicPartition: Int64] = [:]
    /// Whether a label without a time was read (the feed then never holds events back).
    var labelsUntimed = false
    var endTracker: SourceEndTracker
    /// The counters of the pipelines reloads replaced.
    var retired = Pipeline.Summary()
    /// What other threads read of the running pipeline: its model versions and live gauges.
    let installed = Mutex<(versions: [String], gauges: [WorkerGauges], keyed: [KeyedStageGauges])>(([], [], []))
    /// The running pipeline's count of records between poll and sink (read by `/metrics`).
    let inFlight = Mutex<InFlightRecords?>(nil)
    /// Labels read and held until the source reaches their time (`pacer.count`, for `/metrics`).
    let labelsHeld = Atomic<Int>(0)

    init(sourceTopics: Set<String>) {
        self.sourceTopics = sourceTopics
        endTracker = SourceEndTracker(sourceTopics: sourceTopics)
    }

    /// The running pipeline (installed at boot, before the ingest loop starts).
    var pipeline: Pipeline { pipelineBox! }
    var hasPipeline: Bool { pipelineBox != nil }

    /// Makes `pipeline` (started) the running one, its forests set to this instance's share of
    /// the stream.
    func install(_ pipeline: Pipeline) {
        pipelineBox = pipeline
        inFlight.withLock { $0 = pipeline.inFlight }
        installed.withLock { $0 = (pipeline.modelVersions, pipeline.gauges, pipeline.keyedGauges) }
        if streamShare != 1 { pipeline.setStreamShare(streamShare) }
    }

    // MARK: Share of the stream

    /// Partitions of the source topics in all (0 when unknown).
    var sourcePartitions = 0
    /// The source partitions this instance holds.
    private(set) var ownedSources = Set<TopicPartition>()
    /// `ownedSources` as a share of `sourcePartitions`: what the forests' windows are scaled by.
    private(set) var streamShare = 1.0

    /// Counts partitions in or out of this instance's assignment and, when its share of the
    /// stream changes, has the running pipeline's forests take it. Returns the new share, or nil
    /// when it did not change.
    func assignment(adding: [TopicPartition] = [], removing: [TopicPartition] = []) -> Double? {
        ownedSources.formUnion(adding.filter { sourceTopics.contains($0.topic) })
        ownedSources.subtract(removing)
        let share =
            sourcePartitions > 0 && !ownedSources.isEmpty
            ? min(1, Double(ownedSources.count) / Double(sourcePartitions)) : 1
        guard share != streamShare else { return nil }
        streamShare = share
        if hasPipeline { pipeline.setStreamShare(share) }
        return share
    }
}
