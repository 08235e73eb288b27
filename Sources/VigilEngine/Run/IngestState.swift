import Synchronization

/// What the ingest thread owns.
///
/// `@unchecked Sendable` invariant: `pipelineBox`, `positions`, `endTracker` and `retired` are
/// touched by the ingest thread only (`run()`'s thread), and read by others only after `run()`
/// returned; `installed` is behind a mutex.
final class IngestState: @unchecked Sendable {
    let sourceTopics: Set<String>
    private var pipelineBox: Pipeline?
    var positions = SourcePositions()
    var endTracker: SourceEndTracker
    /// The counters of the pipelines reloads replaced.
    var retired = Pipeline.Summary()
    /// What other threads read of the running pipeline: its model versions and live gauges.
    let installed = Mutex<(versions: [String], gauges: [WorkerGauges])>(([], []))

    init(sourceTopics: Set<String>) {
        self.sourceTopics = sourceTopics
        endTracker = SourceEndTracker(sourceTopics: sourceTopics)
    }

    /// The running pipeline (installed at boot, before the ingest loop starts).
    var pipeline: Pipeline { pipelineBox! }
    var hasPipeline: Bool { pipelineBox != nil }

    /// Makes `pipeline` (started) the running one.
    func install(_ pipeline: Pipeline) {
        pipelineBox = pipeline
        installed.withLock { $0 = (pipeline.modelVersions, pipeline.gauges) }
    }
}
