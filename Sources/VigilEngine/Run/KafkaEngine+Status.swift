import VigilKafka

/// The engine as the control plane sees it: read-outs for `/status`, `/metrics`, readiness and
/// the run summary (any thread), and the async requests (reload, checkpoint).
extension KafkaEngine {
    /// The topology in force (it changes with reloads).
    public var topology: Topology { reloads.topology }

    /// Model versions, in topology order (they are part of every alert id); empty before `run()`.
    public var modelVersions: [String] { ingest.installed.withLock { $0.versions } }

    /// What the engine is doing.
    public var phase: EnginePhase { phases.current }

    /// Returns once the engine has reached `phase` (or a later one), or when the task is cancelled.
    public func waitFor(_ phase: EnginePhase) async {
        await phases.wait(until: phase)
    }

    /// The last reload's outcome (boot included).
    public var lastReload: ReloadOutcome? { reloads.lastOutcome }

    /// The sequence of the last checkpoint this engine wrote, if any.
    public var lastCheckpointSequence: UInt64? {
        let s = stats.checkpointSequence.load(ordering: .relaxed)
        return s < 0 ? nil : UInt64(s)
    }

    /// The checkpoint the engine restored at start, if any.
    public var restoredFrom: UInt64? { restored.withLock { $0 } }

    /// The source and labels partitions this group member reads now.
    public var assignment: [TopicPartition] { consumer.assignment.sorted() }

    /// Records not yet done per source partition (high watermark minus the done offset), from
    /// the consumer's latest statistics.
    public var consumerLag: [TopicPartition: Int64] {
        let done = consumer.doneOffsets
        return lag.highWatermarks.reduce(into: [:]) { out, e in
            guard sourceTopics.contains(e.key.topic), let d = done[e.key] else { return }
            out[e.key] = max(0, e.value - d)
        }
    }

    /// Outputs held after a failure to publish them, failures since the start, and the topics
    /// failing now.
    var outputs: (held: Int, failures: Int, failing: [OutputFailures.Streak]) {
        (sink.held, sink.failures.total, sink.failures.current)
    }

    /// Ready: restored, running, in the group (with partitions, or idle because the group has
    /// more members than partitions: a standby that takes partitions over at the next
    /// rebalance), and the brokers reachable.
    public var isReady: Bool { notReadyReason == nil }

    /// Why the engine is not ready (nil: it is).
    public var notReadyReason: String? {
        switch phase {
        case .starting: return "starting"
        case .restoring: return "restoring a checkpoint"
        case .running: break
        default: return phase.rawValue
        }
        if !stats.brokerUp.load(ordering: .relaxed) { return "the brokers are not reachable" }
        if consumer.assignment.isEmpty, !consumer.isGroupMember {
            return "waiting for the consumer group's assignment"
        }
        return nil
    }

    /// Totals so far; complete once `run()` has returned (over every pipeline a reload built).
    public func summary() -> Pipeline.Summary {
        var s = ingest.retired
        guard ingest.hasPipeline else { return s }
        let current = ingest.pipeline.summary()
        s.add(current)
        s.threshold = current.threshold
        s.quality = current.quality
        s.entities = current.entities
        s.stateBytes = current.stateBytes
        s.labelsMalformed += sink.labelsMalformed
        return s
    }

    /// Time from `run()`'s start to the first record (the group join, mostly); nil before it.
    public var timeToFirstRecord: Duration? { firstRecord.withLock { $0 } }

    /// The engine's own latency: milliseconds from the poll that returned a record to its alert
    /// or dead letter handed to the producer (the broker's and the producer's delays come on
    /// top), at quantile `q` over the chunks so far; nil before the first.
    public func processingLatency(quantile q: Double) -> Double? { sink.chunkTime(quantile: q) }

    /// `processingLatency` split by whether a chunk was in flight while the workers captured a
    /// checkpoint (`during`), with the number of such captures; nil without checkpoints.
    public func processingLatencyAroundCheckpoints(quantile q: Double) -> (
        during: Double?, outside: Double?, captures: Int
    )? {
        let windows = coordinator.captureWindows
        guard !windows.isEmpty else { return nil }
        return (
            sink.chunkTime(quantile: q, during: windows, inside: true),
            sink.chunkTime(quantile: q, during: windows, inside: false),
            windows.count
        )
    }

    /// Records acknowledged so far: alerts and dead letters.
    public var published: (alerts: Int, deadLetters: Int) { sink.published }

    /// Live per-worker figures: entities, evictions, threshold.
    var gauges: [WorkerGauges] { ingest.installed.withLock { $0.gauges } }

    /// Entities held, idle evictions, capacity evictions, mean threshold (any thread).
    public var stateGauges: (entities: Int, evictedIdle: Int, evictedForCapacity: Int, threshold: Double) {
        let g = gauges
        guard !g.isEmpty else { return (0, 0, 0, 0) }
        return (
            g.map { $0.entities.load(ordering: .relaxed) }.reduce(0, +),
            g.map { $0.evictedIdle.load(ordering: .relaxed) }.reduce(0, +),
            g.map { $0.evictedForCapacity.load(ordering: .relaxed) }.reduce(0, +),
            g.map(\.threshold).reduce(0, +) / Double(g.count)
        )
    }

    /// Labels read and held until the source events reach their time (`LabelPacer`), as of the
    /// ingest loop's last turn (any thread).
    public var labelsHeld: Int { ingest.labelsHeld.load(ordering: .relaxed) }

    /// Records between poll and outputs handed to the producer now, the most at once since the
    /// running pipeline was installed, and the bound the ingest loop keeps them under (any thread).
    public var recordsInFlight: (now: Int, peak: Int, limit: Int) {
        let counter = ingest.inFlight.withLock { $0 }
        return (counter?.current ?? 0, counter?.peak ?? 0, IngestBounds.inFlightRecords)
    }

    /// Entities held and evicted by each keyed feature stage, by key (any thread; empty without
    /// keyed features).
    public var keyedStateGauges: [KeyedStageFigures] { ingest.installed.withLock { $0.keyed }.map(\.snapshot) }

    // MARK: Requests

    /// Reads the topology file again and applies what changed: tunables between batches,
    /// structural changes by rebuilding from a fresh checkpoint; refuses an invalid file and
    /// changes that need a restart. Every outcome is audited. One at a time, whoever asks.
    public func reload(source: ReloadOutcome.Source) async -> ReloadOutcome {
        await reloads.reload(source: source)
    }

    /// Cuts a checkpoint now (admin); returns once it is cut, not once it is written.
    /// - Throws: `.checkpointsDisabled`, `.checkpointInProgress`, or `.stopping`.
    public func requestCheckpoint() async throws(EngineError) {
        switch await requests.submit(.checkpoint(.admin)) {
        case .checkpointStarted: return
        case .refused(let error): throw error
        case .applied, .tracks, .models: fatalError("\(#function): a reply of another request")
        }
    }
}
