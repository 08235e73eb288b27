import Foundation
import Synchronization
import VigilCore
import VigilFeatures
import VigilModels

/// Receives every chunk once all its records have an outcome, on whichever thread finished it
/// last: publishes its alerts and dead letters, then marks its records done. Must be thread-safe.
public protocol PipelineSink: Sendable {
    func complete(_ chunk: InputChunk)
}

/// The engine's processing core, shared by `vigil run` (Kafka) and `vigil replay` (files): it
/// decodes input records into chunks, routes each event by entity key over a shard ring to the
/// worker that owns the entity, and hands finished chunks to a sink. It knows nothing of Kafka.
///
/// Ingest (`submit`, `submitLabels`) is called from one thread; each worker runs on a dedicated
/// thread of its own.
///
/// `@unchecked Sendable` invariant: `builder` and `sequence` are touched by the ingest thread
/// only; workers are touched by their own threads until `finish()` joins them.
public final class Pipeline: @unchecked Sendable {
    public let topology: Topology
    public let plan: FeaturePlan
    public let workerCount: Int
    /// Model versions, in topology order.
    public let modelVersions: [String]
    let workers: [Worker]
    private let sink: any PipelineSink
    let rings: [ShardRing<WorkItem>]
    private var builder: ChunkBuilder
    private var threads: [Thread] = []
    private let running = DispatchGroup()
    private var labelsReceived = 0
    private var started = false

    /// Events that may wait for their labels, across all workers (docs/alerts.md, "Labels").
    public static let labelWaitCapacity = 2_000_000
    /// Slots of each worker's table of labels that came before their events (docs/alerts.md).
    public static let earlyLabelCapacity = 1 << 18
    /// Items a shard ring holds: with chunks of up to 10,000 events, a few chunks of slack.
    static let ringCapacity = 64

    /// - Parameters:
    ///   - workers: worker threads (shards); the results depend on it, as entities are split
    ///     among the workers' model replicas.
    ///   - metricsWindow: labelled events each worker keeps for its prequential metrics.
    public init(topology: Topology, workers: Int, sink: any PipelineSink, metricsWindow: Int = 1_000_000)
        throws(VigilError)
    {
        precondition(workers >= 1)
        self.topology = topology
        workerCount = workers
        self.sink = sink
        let decoder = EventDecoder(source: topology.source, schema: topology.schema)
        plan = try FeaturePlan(features: topology.features, layout: decoder.layout, state: topology.state)
        let plan = plan
        self.workers = (0..<workers).map {
            Worker(
                shard: $0, topology: topology, plan: plan, workers: workers, sink: sink, metricsWindow: metricsWindow)
        }
        modelVersions = self.workers[0].models.versions
        rings = (0..<workers).map { _ in ShardRing<WorkItem>(capacity: Self.ringCapacity) }
        builder = ChunkBuilder(decoder: decoder, router: ShardRouter(shards: workers), models: topology.models.count)
    }

    /// The versions of `topology`'s models (`name@hash`), in topology order, as alerts carry them.
    public static func modelVersions(of topology: Topology) throws(VigilError) -> [String] {
        let layout = EventLayout(schema: topology.schema)
        let plan = try FeaturePlan(features: topology.features, layout: layout, state: topology.state)
        return topology.models.map { ModelSet.version(spec: $0, plan: plan) }
    }

    /// Starts the worker threads.
    public func start() {
        precondition(!started)
        started = true
        for (worker, ring) in zip(workers, rings) {
            running.enter()
            let group = running
            let thread = Thread {
                worker.run(ring)
                group.leave()
            }
            thread.name = "vigil-worker-\(worker.shard)"
            thread.stackSize = 1 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Decodes `count` records and sends their events to the workers; the sink gets the chunk
    /// when every record has an outcome. Waits while a ring is full (backpressure).
    /// - Parameters:
    ///   - raw: the records' bytes (kept by the chunk for dead letters).
    ///   - position: each record's topic index (into `topics`), partition, offset and timestamp.
    ///   - arrivalMs: the time given to events without one, when the topology allows that.
    /// - Returns: the chunk (its results fill in later).
    @discardableResult
    public func submit(
        count: Int, topics: [String], raw: any RawRecords,
        position: (Int) -> (topic: Int32, partition: Int32, offset: Int64, timestampMs: Int64?),
        arrivalMs: Int64
    ) -> InputChunk {
        let (chunk, works) = builder.build(
            count: count, topics: topics, raw: raw, shards: workerCount, position: position, arrivalMs: arrivalMs)
        let busy = works.filter { $0 != nil }.count
        chunk.remaining.store(busy, ordering: .releasing)
        if busy == 0 {
            sink.complete(chunk)
        } else {
            for (shard, work) in works.enumerated() {
                if let work { _ = rings[shard].push(.events(work)) }
            }
        }
        return chunk
    }

    /// Sends labels to every worker (a label names an event id, not its entity, so the worker
    /// that scored the event is not known here; each worker ignores ids it has not seen).
    public func submitLabels(_ labels: [LabelRecord]) {
        guard !labels.isEmpty else { return }
        labelsReceived += labels.count
        for ring in rings { _ = ring.push(.labels(labels)) }
    }

    // MARK: Control: checkpoints and live tunables

    /// Cuts the input here for a checkpoint: each worker captures its state when it reaches this
    /// point of its ring, so the states cover exactly the records submitted so far. Returns at
    /// once; `CapturedState.wait()` gives the states.
    public func cut() -> CapturedState {
        let captured = CapturedState(workers: workerCount)
        for ring in rings {
            _ = ring.push(
                .control { worker in
                    let start = ContinuousClock.now
                    let state = worker.capture()
                    captured.store(worker.shard, state, took: ContinuousClock.now - start)
                })
        }
        return captured
    }

    /// The states of stopped workers (after `finish()`), or of workers not started yet.
    func captureStopped() -> [WorkerState] {
        var states = [WorkerState](repeating: WorkerState(), count: workerCount)
        let box = Mutex(states)
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let s = workers[i].capture()
            box.withLock { $0[i] = s }
        }
        states = box.withLock { $0 }
        return states
    }

    /// Gives every worker a spare buffer big enough for its windows (with room to grow), its
    /// pages faulted in, so the next capture only copies. Any thread but the workers'.
    func warmSpareBuffers() {
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let w = workers[i]
            let wanted = w.gauges.entities.load(ordering: .relaxed) * plan.rowBytes * 11 / 10 + (1 << 20)
            let current = w.spareFeatureBuffer.withLock { $0.capacity }
            guard current < wanted else { return }
            let fresh = [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
                HugePages.advise(UnsafeMutableRawPointer(buffer.baseAddress), count: wanted)
                // Touch every page now, here, instead of in the worker during the cut.
                var page = 0
                while page < wanted {
                    buffer[page] = 0
                    page += 4096
                }
                initialized = 0
            }
            w.spareFeatureBuffer.withLock { $0 = fresh }
        }
    }

    /// Hands the feature sections of an encoded checkpoint back to their workers, whose next
    /// capture reuses their memory.
    func recycle(_ states: [WorkerState]) {
        for (worker, state) in zip(workers, states) {
            if let bytes = state.section("features") { worker.spareFeatureBuffer.withLock { $0 = bytes } }
        }
    }

    /// Swaps in `topology`'s tunables between batches (thresholds, weights, roles, explanation
    /// length); the models and windows are untouched.
    func apply(_ tunables: Tunables) {
        for ring in rings { _ = ring.push(.control { $0.apply(tunables) }) }
    }

    /// Loads a checkpoint into the workers before `start()`; all workers or none.
    /// - Returns: what was restored and what starts cold (the same for every worker).
    func restore(_ checkpoint: EngineCheckpoint) throws(CheckpointError) -> Worker.RestoreReport {
        precondition(!started, "restore before start")
        guard checkpoint.workerCount == workerCount else {
            throw CheckpointError(
                .wrongSchema,
                "written by \(checkpoint.workerCount) workers and this run has \(workerCount); entities are sharded by worker, so start with --workers \(checkpoint.workerCount) to use it"
            )
        }
        let results = Mutex([Result<Worker.RestoreReport, CheckpointError>?](repeating: nil, count: workerCount))
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let r = Result { () throws(CheckpointError) in
                try workers[i].restore(checkpoint.workers[i], planSignature: checkpoint.planSignature)
            }
            results.withLock { $0[i] = r }
        }
        var report = Worker.RestoreReport()
        for (i, r) in results.withLock({ $0 }).enumerated() {
            switch r! {
            case .success(let rep): if i == 0 { report = rep }
            case .failure(let e): throw e
            }
        }
        for w in workers { w.gauges.publish(extractor: w.extractor, threshold: w.threshold.current) }
        return report
    }

    /// Live figures of the workers (any thread).
    var gauges: [WorkerGauges] { workers.map(\.gauges) }

    /// Closes the rings and waits until every worker has finished what it was given.
    public func finish() {
        for ring in rings { ring.close() }
        running.wait()
    }

    /// What the pipeline did; complete after `finish()`.
    public func summary() -> Summary {
        var s = Summary()
        s.events = builder.records
        s.deadLetters = builder.deadLetters
        var metrics: [PrequentialMetrics] = []
        for w in workers {
            s.scored += w.counters.scored
            s.alerts += w.counters.alerts
            s.suppressed += w.counters.suppressed
            s.lateScored += w.counters.lateScored
            s.labelsJoined += w.counters.labelsJoined
            if w.counters.lateDeadLettered > 0 { s.deadLetters[.late, default: 0] += w.counters.lateDeadLettered }
            s.entities += w.extractor.entityCount
            s.stateBytes += w.extractor.stateBytes
            metrics.append(w.metrics)
        }
        s.labelsReceived = labelsReceived
        s.quality = PrequentialMetrics.merged(metrics)
        s.threshold = workers.map(\.threshold.current).reduce(0, +) / Double(workers.count)
        return s
    }

    /// Totals of a run, for the closing summary.
    public struct Summary: Sendable {
        /// Input records read.
        public var events = 0
        public var scored = 0
        public var alerts = 0
        /// Flagged but within an entity's suppression interval.
        public var suppressed = 0
        public var lateScored = 0
        public var deadLetters: [DeadLetterReason.Code: Int] = [:]
        public var labelsReceived = 0
        public var labelsJoined = 0
        /// Label records that could not be read (dead-lettered by `run`).
        public var labelsMalformed = 0
        public var entities = 0
        public var stateBytes = 0
        /// Mean of the workers' live thresholds.
        public var threshold = 0.0
        /// Prequential quality over the joined labels (nil members where undefined).
        public var quality = PrequentialMetrics(window: 1).report()

        public var deadLetterTotal: Int { deadLetters.values.reduce(0, +) }
    }
}

/// Decodes records into a chunk and one column batch per shard. Ingest thread only.
struct ChunkBuilder {
    var decoder: EventDecoder
    let router: ShardRouter
    let models: Int
    private(set) var sequence = 0
    private(set) var records = 0
    private(set) var deadLetters: [DeadLetterReason.Code: Int] = [:]
    private var staging: EventBatch
    private var stagingRows: [Int32] = []
    private var stagingIds: [UInt64] = []

    init(decoder: EventDecoder, router: ShardRouter, models: Int) {
        self.decoder = decoder
        self.router = router
        self.models = models
        staging = EventBatch(layout: decoder.layout, capacity: 1024)
    }

    mutating func build(
        count: Int, topics: [String], raw: any RawRecords, shards: Int,
        position: (Int) -> (topic: Int32, partition: Int32, offset: Int64, timestampMs: Int64?), arrivalMs: Int64
    ) -> (InputChunk, [ShardWork?]) {
        let chunk = InputChunk(
            sequence: sequence, count: count, models: models, shards: shards, topics: topics, raw: raw)
        sequence += 1
        records += count
        staging.removeAll()
        stagingRows.removeAll(keepingCapacity: true)
        stagingIds.removeAll(keepingCapacity: true)
        var text: [UInt8] = []
        text.reserveCapacity(count * 24)
        var newest = Int64.min
        for i in 0..<count {
            let p = position(i)
            chunk.topicIndex[i] = p.topic
            chunk.partitions[i] = p.partition
            chunk.offsets[i] = p.offset
            chunk.timestamps[i] = p.timestampMs ?? -1
            raw.withValue(i) { bytes in
                switch decoder.decode(bytes, arrivalMs: p.timestampMs ?? arrivalMs, into: &staging) {
                case .failure(let reason):
                    chunk.deadLetters[i] = reason
                    chunk.outcomes[i] = .deadLettered
                    deadLetters[reason.code, default: 0] += 1
                case .success(let decoded):
                    let bytes = bytes!
                    chunk.keyRanges[i] = InputChunk.TextRange(
                        start: Int32(text.count), count: Int32(decoded.keyRange.count))
                    text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[decoded.keyRange]))
                    if let idRange = decoded.idRange {
                        chunk.idRanges[i] = InputChunk.TextRange(start: Int32(text.count), count: Int32(idRange.count))
                        text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[idRange]))
                    }
                    chunk.times[i] = decoded.time
                    newest = max(newest, decoded.time)
                    stagingRows.append(Int32(i))
                    stagingIds.append(decoded.idHash)
                }
            }
        }
        chunk.text = text
        chunk.newestTime = newest
        var works = [ShardWork?](repeating: nil, count: shards)
        if staging.count == 0 { return (chunk, works) }
        if shards == 1 {
            works[0] = ShardWork(chunk: chunk, batch: staging, rows: stagingRows, idHashes: stagingIds)
            staging = EventBatch(layout: decoder.layout, capacity: 1024)
            return (chunk, works)
        }
        for (shard, part) in router.split(staging).enumerated() where part.batch.count > 0 {
            works[shard] = ShardWork(
                chunk: chunk, batch: part.batch, rows: part.positions.map { stagingRows[$0] },
                idHashes: part.positions.map { stagingIds[$0] })
        }
        return (chunk, works)
    }
}

extension PrequentialMetrics {
    /// One report over the labelled events of several workers.
    static func merged(_ parts: [PrequentialMetrics]) -> Report {
        var all = PrequentialMetrics(window: max(1, parts.map(\.total).reduce(0, +)))
        for p in parts { p.forEachEntry { all.add(score: $0, label: $1, alerted: $2) } }
        return all.report()
    }
}

/// Worker states gathered at a checkpoint cut, filled in by each worker's thread.
public final class CapturedState: Sendable {
    private let states: Mutex<[WorkerState?]>
    private let longest = Mutex<Duration>(.zero)
    private let group = DispatchGroup()

    init(workers: Int) {
        states = Mutex(Array(repeating: nil, count: workers))
        for _ in 0..<workers { group.enter() }
    }

    func store(_ shard: Int, _ state: WorkerState, took: Duration) {
        states.withLock { $0[shard] = state }
        longest.withLock { $0 = max($0, took) }
        group.leave()
    }

    /// The longest time a worker spent capturing its state: how long the cut held it up.
    var pause: Duration { longest.withLock { $0 } }

    /// Waits until every worker has captured its state.
    func wait() -> [WorkerState] {
        group.wait()
        return states.withLock { $0.map { $0! } }
    }
}
