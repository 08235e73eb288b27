import Foundation
import Logging
import VigilModels

/// Carries a classified topology change out, on the ingest thread. Boot is the change from the
/// empty topology, so boot and reload share this path:
/// - tunable: the new settings go to every worker between two batches;
/// - structural: the running pipeline stops at a checkpoint, a new one is built, and it loads
///   what still fits from the first candidate of a `RestorePlan` (at boot: the stored
///   checkpoints; on reload: the state just taken).
struct PipelineTransition: Sendable {
    let workers: Int
    let sink: any PipelineSink
    let coordinator: CheckpointCoordinator
    let logger: Logger

    /// A new pipeline, started, and what it was loaded from.
    struct Built: Sendable {
        var pipeline: Pipeline
        /// The stored checkpoint it was restored from (boot only); its offsets are where reading
        /// resumes.
        var restored: EngineCheckpoint?
        /// The rollout override that checkpoint held (boot only).
        var rollout: RolloutOverride?
    }

    private var store: CheckpointStore? { coordinator.store }

    /// Boot: a pipeline for `topology`, restored from the newest stored checkpoint that loads
    /// (or `requested`), started.
    func boot(_ topology: Topology, requested: UInt64?) throws(EngineError) -> Built {
        var plan = RestorePlan(bootWithStore: store != nil, requested: requested)
        return try build(topology, into: try makePipeline(topology), plan: &plan)
    }

    /// Applies `change` to the running `current` pipeline. A tunable change returns nil (the
    /// settings were swapped in); a structural one stops `current` at a checkpoint (published
    /// too, when checkpoints are configured; `offsets` are where it stopped) and returns the
    /// pipeline that replaces it.
    func apply(
        _ change: TopologyChange, to new: Topology, current: Pipeline, offsets: [SourceOffset]
    ) throws(EngineError) -> Built? {
        if change.kind == .tunable {
            current.apply(Tunables(new))
            return nil
        }
        // Built before the running pipeline stops: if the new one cannot be built, the old one
        // runs on untouched.
        let fresh = try makePipeline(new)
        current.finish()
        coordinator.waitForWrites()
        let states = current.captureStopped()
        coordinator.writeStopped(current, states: states, offsets: offsets, reason: .reload, pause: .zero)
        let taken = EngineCheckpoint(
            sequence: 0, createdMs: Int64(Date().timeIntervalSince1970 * 1000), topology: current.topology.name,
            planSignature: current.plan.signature, modelVersions: current.modelVersions, offsets: offsets,
            reason: CheckpointReason.reload.rawValue, workers: states)
        var plan = RestorePlan(rebuildFrom: taken)
        return try build(new, into: fresh, plan: &plan)
    }

    /// Loads the first candidate of `plan` that fits into `pipeline` (or none), and starts it.
    private func build(_ topology: Topology, into fresh: Pipeline, plan: inout RestorePlan) throws(EngineError) -> Built
    {
        var pipeline = fresh
        var readTime = Duration.zero
        while true {
            switch plan.next() {
            case .scan(let limit):
                guard let store else { continue }
                let readStart = ContinuousClock.now
                let scan: CheckpointStore.Scan
                do {
                    scan = try store.scan(limit: limit)
                } catch {
                    throw EngineError(.kafkaFailed, "reading the checkpoints", cause: error)
                }
                readTime += ContinuousClock.now - readStart
                for s in scan.skipped {
                    logger.error(
                        "Checkpoint skipped",
                        metadata: ["sequence": "\(s.sequence)", "where": "\(s.location)", "reason": "\(s.reason)"])
                }
                coordinator.continueSequence(after: scan.highestSequence)
                plan.found(scan.stored)
            case .load(let candidate):
                let loadStart = ContinuousClock.now
                let checkpoint: EngineCheckpoint
                var location = "the running pipeline"
                switch candidate {
                case .running(let taken): checkpoint = taken
                case .stored(let stored):
                    location = stored.location
                    do {
                        checkpoint = try EngineCheckpoint.decode(stored.bytes, topology: topology.name)
                    } catch {
                        rejected(stored.sequence, location, error)
                        continue
                    }
                }
                do {
                    let report = try pipeline.restore(checkpoint)
                    pipeline.start()
                    let restored: EngineCheckpoint? = if case .stored = candidate { checkpoint } else { nil }
                    logger.info(
                        restored == nil ? "Pipeline rebuilt" : "Restored checkpoint",
                        metadata: [
                            "sequence": "\(checkpoint.sequence)", "where": "\(location)",
                            "entities": "\(checkpoint.entities)", "restored": "\(report.restored)",
                            "workers": "\(checkpoint.workerCount) → \(workers)",
                            "cold": "\(report.cold)", "migrated": "\(report.migrated)",
                            "offsets": "\(checkpoint.offsets.map { "\($0.topic)[\($0.partition)]@\($0.offset)" })",
                            "read_ms": "\(milliseconds(readTime))",
                            "load_ms": "\(milliseconds(ContinuousClock.now - loadStart))",
                        ])
                    return Built(
                        pipeline: pipeline, restored: restored, rollout: restored == nil ? nil : report.rollout)
                } catch {
                    rejected(checkpoint.sequence, location, error)
                    pipeline = try makePipeline(topology)  // a failed restore may have loaded some workers
                }
            case .coldStart(let reason):
                logger.notice("Cold start: windows and models start empty", metadata: ["reason": "\(reason)"])
                pipeline.start()
                return Built(pipeline: pipeline, restored: nil)
            case .fail(let error):
                throw error
            }
        }
    }

    private func rejected(_ sequence: UInt64, _ location: String, _ error: CheckpointError) {
        logger.error(
            "Checkpoint rejected; trying the previous one",
            metadata: ["sequence": "\(sequence)", "where": "\(location)", "error": "\(error)"])
    }

    private func makePipeline(_ topology: Topology) throws(EngineError) -> Pipeline {
        do {
            return try Pipeline(topology: topology, workers: workers, sink: sink)
        } catch {
            throw EngineError(.pipelineFailed, "building the pipeline of \(topology.name)", cause: error)
        }
    }
}
