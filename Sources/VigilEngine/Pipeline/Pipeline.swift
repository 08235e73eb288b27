import Foundation
import Synchronization
import VigilCore
import VigilFeatures
import VigilModels

/// Receives every chunk once all its records have an outcome, on whichever thread finished it
/// last: publishes its alerts and dead letters, then marks its records done. Must be thread-safe.
public protocol PipelineSink: Sendable {
    func complete(_ chunk: InputChunk)
    /// A drift record (JSON) for `topic`, from a worker, on its thread; the default drops it.
    func drift(_ record: [UInt8], topic: String)
}

extension PipelineSink {
    public func drift(_ record: [UInt8], topic: String) {}
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
    /// Records submitted whose chunk the sink has not yet taken (`waitForRoom`).
    let inFlight = InFlightRecords()
    /// Ingest thread only.
    var builder: ChunkBuilder
    private var threads: [Thread] = []
    private let running = DispatchGroup()
    private(set) var labelsReceived = 0
    private(set) var started = false
    /// The topology file's hash as last applied (its `configHash`, then a reload's): what
    /// checkpoints record. Any thread.
    let appliedConfigHash: Mutex<String?>
    var configHash: String? { appliedConfigHash.withLock { $0 } }

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
        appliedConfigHash = Mutex(topology.configHash)
        workerCount = workers
        self.sink = sink
        let keyed = try Self.keyedFeatures(of: topology)
        let decoder = EventDecoder(source: topology.source, schema: topology.schema, layout: keyed.layout)
        plan = keyed.primary
        let plan = plan
        let inFlight = inFlight
        self.workers = (0..<workers).map {
            Worker(
                shard: $0, topology: topology, plan: plan, workers: workers, sink: sink, inFlight: inFlight,
                metricsWindow: metricsWindow)
        }
        modelVersions = self.workers[0].models.versions
        rings = (0..<workers).map { _ in ShardRing<WorkItem>(capacity: Self.ringCapacity) }
        let lateness = topology.source.time?.allowedLateness ?? .seconds(30)
        builder = ChunkBuilder(
            decoder: decoder, router: ShardRouter(shards: workers), models: topology.models.count,
            keyedStages: keyed.stages.map {
                KeyedFeatureStage(
                    $0, layout: keyed.layout, allowedLateness: lateness, idleTTL: topology.state.idleTTL,
                    maxEntities: topology.state.maxEntities)
            })
    }

    /// `topology`'s features split by key: the workers' plan, and the keyed stages in front.
    static func keyedFeatures(of topology: Topology) throws(VigilError) -> KeyedFeatures {
        try KeyedFeatures(
            features: topology.features, schema: topology.schema, sourceKey: topology.source.key,
            state: topology.state)
    }

    /// The versions of `topology`'s models (`name@hash`), in topology order, as alerts carry them.
    public static func modelVersions(of topology: Topology) throws(VigilError) -> [String] {
        let plan = try keyedFeatures(of: topology).primary
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
    ///   - labelsDue: given the decoded chunk, the labels due within it, each after a record
    ///     (ascending): every worker applies each label between its events, after that record's
    ///     (`vigil replay`'s event-granularity delivery).
    /// - Returns: the chunk (its results fill in later).
    @discardableResult
    public func submit(
        count: Int, topics: [String], raw: any RawRecords,
        position: (Int) -> (topic: Int32, partition: Int32, offset: Int64, timestampMs: Int64?),
        arrivalMs: Int64, labelsDue: ((InputChunk) -> [(after: Int, record: LabelRecord)])? = nil
    ) -> InputChunk {
        let (chunk, built) = builder.build(
            count: count, topics: topics, raw: raw, shards: workerCount, position: position, arrivalMs: arrivalMs)
        let due = labelsDue?(chunk).map { DueLabel(after: Int32($0.after), record: $0.record) } ?? []
        labelsReceived += due.count
        var works = built
        for k in works.indices where works[k] != nil { works[k]!.labels = due }
        let busy = works.filter { $0 != nil }.count
        chunk.remaining.store(busy, ordering: .releasing)
        inFlight.add(chunk.count)
        if busy == 0 {
            sink.complete(chunk)
            inFlight.done(chunk.count)
        }
        for (shard, work) in works.enumerated() {
            if let work {
                _ = rings[shard].push(.events(work))
            } else if !due.isEmpty {
                // No events of this chunk here: the labels come at once.
                _ = rings[shard].push(.labels(due.map(\.record)))
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

    /// Waits while more than `records` are in flight: between polls, so that the records the
    /// next poll returns are not kept waiting inside the engine (ingest thread).
    public func waitForRoom(atMost records: Int) {
        inFlight.wait(atMost: records)
    }

    /// Live figures of the workers (any thread).
    var gauges: [WorkerGauges] { workers.map(\.gauges) }

    /// Live figures of the keyed feature stages, in stage order (any thread).
    var keyedGauges: [KeyedStageGauges] { builder.keyedGauges }

    /// Closes the rings and waits until every worker has finished what it was given.
    public func finish() {
        for ring in rings { ring.close() }
        running.wait()
    }

    /// Every worker's forests take `share` as their share of the stream (ingest thread).
    func setStreamShare(_ share: Double) {
        for ring in rings { _ = ring.push(.control { worker in worker.models.setStreamShare(share) }) }
    }
}
