import Foundation
import Logging
import Synchronization
import VigilKafka

/// Owns the checkpoint cycle of a running engine: when one is due, warming the workers' spare
/// buffers, the cut (on the ingest thread, between two batches), and the write (on a thread of
/// its own): wait until every output before the cut is acknowledged, encode, publish.
///
/// The cycle is a `CheckpointCycle` behind a mutex: decisions are taken under it, work is done
/// after releasing it.
final class CheckpointCoordinator: Sendable {
    let store: CheckpointStore?
    /// Publishes each owned source partition's windows with every checkpoint.
    let handoff: PartitionHandoff?
    /// Used only when `store` is set.
    private let cycle: Mutex<CheckpointCycle>
    private let sourceTopics: Set<String>
    private let consumer: KafkaConsumer
    private let progress: OutputProgress
    private let stats: EngineStats
    private let clock: EngineClock
    private let logger: Logger
    private let queue = DispatchQueue(label: "vigil-checkpoint")
    private let nextSequence = Atomic<UInt64>(1)
    /// From each cut to the moment every worker had captured its state (the first 100,000).
    private let captures = Mutex<[(ContinuousClock.Instant, ContinuousClock.Instant)]>([])

    /// How long the outputs before a cut may take to be acknowledged before the checkpoint is
    /// given up (it is retried at the next interval).
    static let acknowledgementTimeout = Duration.seconds(120)

    init(
        store: CheckpointStore?, handoff: PartitionHandoff? = nil, sourceTopics: Set<String>, consumer: KafkaConsumer,
        progress: OutputProgress, stats: EngineStats, clock: EngineClock, logger: Logger
    ) {
        self.store = store
        self.handoff = handoff
        cycle = Mutex(
            CheckpointCycle(
                every: store?.spec.every ?? .seconds(30), everyEvents: store?.spec.everyEvents, now: clock.now))
        self.sourceTopics = sourceTopics
        self.consumer = consumer
        self.progress = progress
        self.stats = stats
        self.clock = clock
        self.logger = logger
        // Reads the source commit now (a few small files), not while the workers are held for a cut.
        if store != nil { _ = RunManifest.Build.current }
    }

    /// Records were read (ingest thread).
    func read(events: Int) {
        guard store != nil else { return }
        cycle.withLock { $0.read(events: events) }
    }

    /// Whether anything was read since the last cut.
    var isDirty: Bool { store != nil && cycle.withLock { $0.dirty } }

    /// Checkpoints written from now on count up from `highest + 1` (boot, after reading the store).
    func continueSequence(after highest: UInt64?) {
        nextSequence.store((highest ?? 0) + 1, ordering: .relaxed)
    }

    /// The cut-to-captured intervals so far, for the latency split in the run summary.
    var captureWindows: [(ContinuousClock.Instant, ContinuousClock.Instant)] { captures.withLock { $0 } }

    // MARK: Ingest thread

    /// Between two batches: starts warming for a due checkpoint, or cuts one that is warm.
    func tick(pipeline: Pipeline, offsets: () -> [SourceOffset]) {
        guard store != nil, !awaitingAssignment else { return }
        let now = clock.now
        switch cycle.withLock({ $0.tick(now: now) }) {
        case .none: return
        case .warm:
            // First, off the workers, make sure each has warm memory to copy its windows into
            // (fresh pages cost more to fault in than the copy); the cut follows on this thread.
            queue.async { [self] in
                pipeline.warmSpareBuffers()
                self.cycle.withLock { $0.warmed() }
            }
        case .cut(let reason):
            cut(pipeline, reason: reason, offsets: offsets())
        }
    }

    /// A checkpoint now (`POST /checkpoint`): cut at once, write in the background.
    /// - Throws: `.checkpointsDisabled`, or `.checkpointInProgress` while one is under way or
    ///   while partitions lost are not assigned again.
    func request(_ reason: CheckpointReason, pipeline: Pipeline, offsets: () -> [SourceOffset]) throws(EngineError) {
        guard store != nil else { throw EngineError(.checkpointsDisabled, "the topology has no checkpoints section") }
        guard !awaitingAssignment else {
            throw EngineError(
                .checkpointInProgress, "partitions were lost: checkpoints wait until the group assigns partitions again"
            )
        }
        let now = clock.now
        guard case .cut = cycle.withLock({ $0.request(reason, now: now) }) else {
            throw EngineError(.checkpointInProgress, "a checkpoint is already being taken")
        }
        cut(pipeline, reason: reason, offsets: offsets())
    }

    /// Whether partitions were lost and not yet assigned again: the models hold records of
    /// partitions whose positions a checkpoint could not name, so none is cut meanwhile.
    private var awaitingAssignment: Bool { handoff?.lostHere.awaitingAssignment ?? false }

    private func cut(_ pipeline: Pipeline, reason: CheckpointReason, offsets: [SourceOffset]) {
        let cutAt = ContinuousClock.now
        let captured = pipeline.cut()
        let identity = Identity(pipeline)
        queue.async { [self] in
            let states = captured.wait()
            let capturedAt = ContinuousClock.now
            captures.withLock { if $0.count < 100_000 { $0.append((cutAt, capturedAt)) } }
            let saved = write(
                states: states, offsets: offsets, identity: identity, reason: reason, pause: captured.pause)
            pipeline.recycle(states)
            cycle.withLock { $0.written(saved: saved) }
        }
    }

    /// Waits until no checkpoint is being warmed or written.
    func waitForWrites() {
        queue.sync {}
    }

    /// Writes the state of a stopped pipeline now, on this thread (shutdown, structural reload),
    /// after any checkpoint under way.
    func writeStopped(
        _ pipeline: Pipeline, states: [WorkerState], offsets: [SourceOffset], reason: CheckpointReason, pause: Duration
    ) {
        guard store != nil else { return }
        waitForWrites()
        guard !awaitingAssignment else {
            logger.notice(
                "Checkpoint skipped: partitions were lost and not assigned again; the previous checkpoint stands",
                metadata: ["reason": "\(reason.rawValue)"])
            return
        }
        let now = clock.now
        // A due checkpoint that warmed meanwhile is superseded by this one.
        guard case .cut = cycle.withLock({ $0.request(reason, now: now, superseding: true) }) else { return }
        let saved = write(states: states, offsets: offsets, identity: Identity(pipeline), reason: reason, pause: pause)
        cycle.withLock { $0.written(saved: saved) }
    }

    // MARK: Checkpoint thread

    /// What a checkpoint says about the pipeline it was cut from.
    private struct Identity: Sendable {
        var topology: String
        var planSignature: UInt64
        var modelVersions: [String]
        var manifest: CheckpointManifest

        init(_ pipeline: Pipeline) {
            topology = pipeline.topology.name
            planSignature = pipeline.plan.signature
            modelVersions = pipeline.modelVersions
            manifest = CheckpointManifest(
                configHash: pipeline.configHash,
                seeds: Dictionary(pipeline.topology.models.map { ($0.name, $0.seed) }, uniquingKeysWith: { a, _ in a }))
        }
    }

    /// Waits until the outputs of everything before `offsets` are acknowledged, then encodes and
    /// publishes the checkpoint: a checkpoint in the store implies its outputs are published.
    /// Returns whether it was saved (false: given up, and said why).
    private func write(
        states: [WorkerState], offsets: [SourceOffset], identity: Identity, reason: CheckpointReason, pause: Duration
    ) -> Bool {
        guard let store else { return false }
        stats.checkpointPaused(pause)
        let start = ContinuousClock.now
        let wanted = offsets.filter { sourceTopics.contains($0.topic) }
        let published = progress.wait(timeout: Self.acknowledgementTimeout) { unacknowledged(wanted).isEmpty }
        guard published else {
            logger.error(
                "Checkpoint abandoned: outputs before the cut were not acknowledged in time",
                metadata: ["timeout": "\(Self.acknowledgementTimeout)", "waiting": "\(unacknowledged(wanted))"])
            stats.checkpointFailed()
            return false
        }
        guard !awaitingAssignment else {
            // Cut before the loss: the lost partitions' windows would go unpublished, and the
            // models would be ahead of the windows any restore could load for them.
            logger.notice(
                "Checkpoint abandoned: partitions were lost while it was written; the next one follows the next assignment"
            )
            return false
        }
        var states = states
        var partitions = 0
        if let handoff, handoff.isEnabled {
            // The windows go out per source partition, for whichever instance owns it next; the
            // instance's own record keeps the rest (models, thresholds, metrics).
            let records = handoff.records(
                states: states, offsets: offsets, owned: consumer.assignment, planSignature: identity.planSignature,
                reason: reason.rawValue)
            do {
                for (tp, state) in records {
                    try store.publish(
                        partition: state.encode(topology: store.topology), of: tp, sequence: handoff.nextSequence())
                }
            } catch {
                stats.checkpointFailed()
                logger.error("Checkpoint not written: a partition's windows", metadata: ["error": "\(error)"])
                return false
            }
            partitions = records.count
            for i in states.indices { states[i].sections.removeAll { $0.name == "features" } }
        }
        let sequence = nextSequence.add(1, ordering: .relaxed).oldValue
        let checkpoint = EngineCheckpoint(
            sequence: sequence, createdMs: Int64(Date().timeIntervalSince1970 * 1000), topology: identity.topology,
            planSignature: identity.planSignature, modelVersions: identity.modelVersions, offsets: offsets,
            reason: reason.rawValue, workers: states, manifest: identity.manifest)
        let encodeStart = ContinuousClock.now
        let bytes = checkpoint.encode()
        let encoded = ContinuousClock.now
        do {
            try store.publish(bytes, sequence: sequence)
        } catch let error as CheckpointFileError {
            // On the topic, so a restore finds it; the copy the topology asked for is missing.
            handoff?.completed(offsets: offsets, createdMs: checkpoint.createdMs)
            stats.checkpointFailed()
            logger.error("Checkpoint file copy not written", metadata: ["error": "\(error)"])
            return false
        } catch {
            stats.checkpointFailed()
            logger.error("Checkpoint not written", metadata: ["sequence": "\(sequence)", "error": "\(error)"])
            return false
        }
        let took = ContinuousClock.now - start
        logger.debug(
            "Checkpoint capture by part",
            metadata: [
                "ms":
                    "\(states.map { $0.captureTimes.map { "\($0.name)=\(milliseconds($0.took))" }.joined(separator: ",") })"
            ])
        handoff?.completed(offsets: offsets, createdMs: checkpoint.createdMs)
        stats.checkpointWritten(sequence: sequence, bytes: bytes.count, createdMs: checkpoint.createdMs, took: took)
        logger.info(
            "Checkpoint written",
            metadata: [
                "sequence": "\(sequence)", "reason": "\(reason.rawValue)", "bytes": "\(bytes.count)",
                "partition_records": "\(partitions)",
                "entities": "\(checkpoint.entities)",
                "offsets": "\(offsets.map { "\($0.topic)[\($0.partition)]@\($0.offset)" })",
                "pause_ms": "\(milliseconds(pause))", "write_ms": "\(milliseconds(took))",
                "wait_ms": "\(milliseconds(encodeStart - start))",
                "encode_ms": "\(milliseconds(encoded - encodeStart))",
                "publish_ms": "\(milliseconds(ContinuousClock.now - encoded))",
                "sections_mb": "\(checkpoint.sectionSummary)",
            ])
        return true
    }

    /// Source partitions still assigned whose outputs before `offsets` are not all acknowledged.
    private func unacknowledged(_ offsets: [SourceOffset]) -> [SourceOffset] {
        let done = consumer.doneOffsets
        let assigned = consumer.assignment
        let inFlight = consumer.inFlight
        return offsets.filter { o in
            let tp = TopicPartition(o.topic, o.partition)
            return assigned.contains(tp) && (done[tp] ?? -1) < o.offset && inFlight[tp, default: 0] > 0
        }
    }
}

func milliseconds(_ d: Duration) -> String {
    String(format: "%.1f", d.seconds * 1000)
}
