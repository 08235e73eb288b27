import Foundation
import Logging
import Synchronization
import VigilCore
import VigilKafka
import VigilModels

/// `vigil run`: the pipeline between Kafka topics. A consumer-group member reads the source
/// topics (and the labels topics), the pipeline scores every event, and the sink publishes
/// alerts and dead letters; an input offset is committed only once its alert or dead letter is
/// acknowledged by the broker (at-least-once; alert ids are deterministic, so consumers can drop
/// duplicates after a restart).
///
/// With `checkpoints` in the topology it checkpoints its whole state with the offsets it covers,
/// restores the newest valid checkpoint at start and seeks there. It reloads its topology file
/// on request (`reload`): boot itself is a reload from the empty topology.
///
/// `run()` blocks its thread (the ingest thread) until `stop()`; workers run on threads of their
/// own, checkpoints are encoded and published on a thread of their own.
public final class KafkaEngine: Sendable {
    public let brokers: [String]
    public let workers: Int
    /// Live figures for the admin endpoint.
    public let stats = EngineStats()
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let sink: KafkaSink
    private let labelSources: [String: LabelDecoder]
    private let sourceTopics: [String]
    private let store: CheckpointStore?
    private let audit: AuditLog
    private let topologyFile: String?
    private let untilEnd: Bool
    private let restoreSequence: UInt64?
    /// Nanoseconds from `run()`'s start to the first source record (0 until then).
    private let firstRecordNanos = Atomic<Int64>(0)
    private let stopping = Atomic<Bool>(false)
    private let shared: Mutex<Shared>
    private let requests = Mutex<[Request]>([])
    /// One reload at a time, whoever asks.
    private let reloading = NSLock()
    private let ingest: IngestState
    private let checkpointQueue = DispatchQueue(label: "vigil-checkpoint")
    private let checkpointInFlight = Atomic<Bool>(false)
    /// From each checkpoint cut to the moment every worker had captured its state.
    private let captureWindows = Mutex<[(ContinuousClock.Instant, ContinuousClock.Instant)]>([])

    /// What the control plane reads: the topology in force, the last reload, the phase.
    struct Shared: Sendable {
        var topology: Topology
        var modelVersions: [String] = []
        var lastReload: ReloadOutcome?
        var phase = "starting"
        var restoredFrom: UInt64?
        var lagByPartition: [TopicPartition: Int64] = [:]
    }

    /// Work for the ingest thread, asked for by other threads.
    private enum Request: Sendable {
        case apply(Topology, TopologyChange, Reply)
        case checkpoint(String, Reply)
        /// A due checkpoint whose buffers are warm.
        case cut(String)
    }

    /// A one-shot answer from the ingest thread.
    final class Reply: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let value = Mutex<String?>(nil)

        func answer(_ text: String?) {
            value.withLock { $0 = text }
            done.signal()
        }

        /// The answer, or nil after `timeout`.
        func wait(_ timeout: Duration) -> String?? {
            guard done.wait(timeout: .now() + .milliseconds(Int(timeout.wholeMilliseconds))) == .success else {
                return nil
            }
            return .some(value.withLock { $0 })
        }
    }

    /// - Parameters:
    ///   - topologyFile: the file `topology` was read from; `reload` reads it again.
    ///   - brokers: overrides the topology's `source.kafka.brokers`.
    ///   - stopAfterEvents: stop by itself once this many source records have an outcome.
    ///   - untilEnd: stop by itself once every source partition assigned at start is done up to
    ///     the end it had when it was assigned.
    ///   - restoreSequence: restore this checkpoint instead of the newest (a rollback).
    ///   - onChunk: called with every finished chunk after its outputs are handed to the
    ///     producer (the integration tests read outcomes and scores from it).
    ///   - onAlertDelivered: called with each alert the broker acknowledged (`--print-alerts`).
    public init(
        topology: Topology, topologyFile: String? = nil, brokers: [String]? = nil, workers: Int,
        logger: Logger = Logger(label: "vigil.engine"), stopAfterEvents: Int? = nil, untilEnd: Bool = false,
        restoreSequence: UInt64? = nil, onChunk: (@Sendable (InputChunk) -> Void)? = nil,
        onAlertDelivered: (@Sendable (AlertRecord) -> Void)? = nil
    ) throws {
        let servers = brokers ?? topology.source.kafka.brokers
        self.brokers = servers
        self.workers = workers
        self.logger = logger
        self.topologyFile = topologyFile
        self.untilEnd = untilEnd
        self.restoreSequence = restoreSequence
        sourceTopics = topology.source.kafka.topics
        shared = Mutex(Shared(topology: topology))
        let common = KafkaConfiguration(
            bootstrapServers: servers, clientID: "vigil-\(topology.name)", properties: topology.source.kafka.properties)
        if topology.source.kafka.createTopics {
            let admin = try KafkaAdmin(
                configuration: KafkaConfiguration(bootstrapServers: servers, clientID: "vigil-admin"), logger: logger)
            let created = try topology.createMissingTopics(admin)
            if !created.isEmpty { logger.info("Created topics", metadata: ["topics": "\(created.sorted())"]) }
        }
        var consumerConfig = KafkaConsumerConfiguration(common: common, groupID: topology.source.kafka.group)
        consumerConfig.startFrom = topology.source.kafka.startFrom == .earliest ? .earliest : .latest
        consumerConfig.statisticsInterval = .seconds(5)
        let stats = stats
        let lag = LagBox()
        consumer = try KafkaConsumer(configuration: consumerConfig, logger: logger) { event in
            switch event {
            case .statistics(let s):
                stats.brokerUp.store(s.brokerStates.values.contains("UP"), ordering: .relaxed)
                lag.update(s)
            case .assigned: stats.brokerUp.store(true, ordering: .relaxed)
            case .error(let e) where e.code == .brokerUnavailable: stats.brokerUp.store(false, ordering: .relaxed)
            default: break
            }
        }
        lagBox = lag
        let sink = KafkaSink(
            topology: topology, logger: logger, stopAfter: stopAfterEvents, onChunk: onChunk,
            onAlertDelivered: onAlertDelivered, stats: stats)
        self.sink = sink
        var producerConfig = KafkaProducerConfiguration(
            common: KafkaConfiguration(bootstrapServers: servers, clientID: "vigil-\(topology.name)"))
        producerConfig.linger = .milliseconds(5)
        producer = try KafkaProducer(configuration: producerConfig, logger: logger) { report in sink.delivered(report) }
        var labels: [String: LabelDecoder] = [:]
        for source in topology.models.compactMap(\.kind.labels) {
            labels[source.topic] = LabelDecoder(source: source, timeField: topology.source.time?.field)
        }
        labelSources = labels
        store = topology.checkpoints.map {
            CheckpointStore(
                spec: $0, topology: topology.name, brokers: servers, properties: topology.source.kafka.properties,
                logger: logger)
        }
        audit = AuditLog(topic: topology.audit?.topic, producer: producer, logger: logger)
        ingest = IngestState()
        sink.attach(producer: producer, consumer: consumer)
    }

    private let lagBox: LagBox

    /// The topology in force (it changes with reloads).
    public var topology: Topology { shared.withLock { $0.topology } }

    /// Model versions, in topology order (they are part of every alert id); empty before `run()`.
    public var modelVersions: [String] { shared.withLock { $0.modelVersions } }

    /// What the engine is doing: starting, restoring, running, draining, flushing, final
    /// checkpoint, committing, stopped.
    public var phase: String { shared.withLock { $0.phase } }

    /// The last reload's outcome (boot included).
    public var lastReload: ReloadOutcome? { shared.withLock { $0.lastReload } }

    /// The sequence of the last checkpoint this engine wrote, if any.
    public var lastCheckpointSequence: UInt64? {
        let s = stats.checkpointSequence.load(ordering: .relaxed)
        return s < 0 ? nil : UInt64(s)
    }

    /// The checkpoint the engine restored at start, if any.
    public var restoredFrom: UInt64? { shared.withLock { $0.restoredFrom } }

    /// Records not yet done per source partition (high watermark minus the done offset), from
    /// the consumer's latest statistics.
    public var consumerLag: [TopicPartition: Int64] {
        let done = consumer.doneOffsets
        return lagBox.highWatermarks.reduce(into: [:]) { out, e in
            guard sourceTopics.contains(e.key.topic), let d = done[e.key] else { return }
            out[e.key] = max(0, e.value - d)
        }
    }

    /// Ready: restored, running, assigned, and the brokers reachable.
    public var isReady: Bool { notReadyReason == nil }

    /// Why the engine is not ready (nil: it is).
    public var notReadyReason: String? {
        if stats.restoring.load(ordering: .relaxed) { return "restoring a checkpoint" }
        let phase = self.phase
        if phase != "running" { return phase }
        if !stats.brokerUp.load(ordering: .relaxed) { return "the brokers are not reachable" }
        if consumer.assignment.isEmpty { return "waiting for the consumer group's assignment" }
        return nil
    }

    private func setPhase(_ p: String) { shared.withLock { $0.phase = p } }

    // MARK: Running

    /// Boots (a reload from the empty topology, restoring the newest valid checkpoint), then
    /// reads, scores and publishes until `stop()` (or a bound); then drains the workers, flushes
    /// the producer, writes a final checkpoint, commits what is done and leaves the group.
    /// - Throws: a fatal `KafkaError`; retriable ones (a broker away) are logged and retried.
    public func run() throws {
        let topology = self.topology
        setPhase("restoring")
        stats.restoring.store(true, ordering: .relaxed)
        let change = TopologyChange.between(nil, topology)
        let restored = try transition(to: topology, change: change)
        let outcome = ReloadOutcome(
            source: .boot, result: .applied, change: change,
            reason: restored.map { "restored checkpoint \($0)" } ?? "cold start",
            topology: topology.name)
        shared.withLock { $0.lastReload = outcome }
        audit.record(outcome)
        try consumer.subscribe(topics: sourceTopics + labelSources.keys.sorted())
        stats.restoring.store(false, ordering: .relaxed)
        setPhase("running")
        logger.info(
            "Vigil running",
            metadata: [
                "topology": "\(topology.name)", "topics": "\(sourceTopics)", "workers": "\(workers)",
                "models": "\(modelVersions)",
            ])
        let sourceSet = Set(sourceTopics)
        let clock = ContinuousClock()
        let started = clock.now
        var nextCommit = clock.now.advanced(by: .seconds(1))
        ingest.lastCheckpoint = clock.now
        var failure: (any Error)?
        do {
            while !stopping.load(ordering: .acquiring), !sink.reachedBound.load(ordering: .acquiring) {
                let batch = try consumer.poll(maxMessages: 10_000, timeout: .milliseconds(100))
                if !batch.isEmpty {
                    if firstRecordNanos.load(ordering: .relaxed) == 0 {
                        let d = clock.now - started
                        firstRecordNanos.store(max(1, Int64(d.seconds * 1e9)), ordering: .relaxed)
                    }
                    stats.brokerUp.store(true, ordering: .relaxed)
                    ingestBatch(batch, sources: sourceSet)
                }
                sink.retryFailed()
                if clock.now >= nextCommit {
                    consumer.commit(async: true)
                    nextCommit = clock.now.advanced(by: .seconds(1))
                }
                serveRequests()
                checkpointIfDue(clock.now)
                if untilEnd, reachedEnd() { break }
            }
        } catch {
            failure = error
            logger.error("Consumer failed", metadata: ["error": "\(error)"])
        }
        try finish(failure: failure)
    }

    /// Makes `run()` stop reading and finish (from any thread).
    public func stop() {
        stopping.store(true, ordering: .releasing)
    }

    private func finish(failure: (any Error)?) throws {
        var failure = failure
        setPhase("draining")
        // Answer whoever waits for the ingest thread.
        for r in requests.withLock({ q in
            defer { q.removeAll() }
            return q
        }) {
            switch r {
            case .apply(_, _, let reply), .checkpoint(_, let reply): reply.answer("the engine is stopping")
            case .cut: break
            }
        }
        ingest.pipeline.finish()
        setPhase("flushing")
        do {
            try sink.drain(deadline: .seconds(30))
        } catch {
            logger.error("Outputs not all acknowledged at shutdown", metadata: ["error": "\(error)"])
            if failure == nil { failure = error }
        }
        checkpointQueue.sync {}  // a checkpoint in flight finishes first
        if store != nil, failure == nil, ingest.dirty {
            setPhase("final checkpoint")
            let captureStart = ContinuousClock.now
            let states = ingest.pipeline.captureStopped()
            writeCheckpoint(
                states: states, offsets: currentOffsets(), planSignature: ingest.planSignature, reason: "shutdown",
                pause: ContinuousClock.now - captureStart)
        }
        setPhase("committing")
        consumer.close()
        store?.close()
        try? producer.flush(timeout: .seconds(5))
        setPhase("stopped")
        if let failure { throw failure }
    }

    /// Totals so far; complete once `run()` has returned (over every pipeline a reload built).
    public func summary() -> Pipeline.Summary {
        var s = ingest.retired
        guard let current = ingest.pipelineBox?.summary() else { return s }
        s.add(current)
        s.threshold = current.threshold
        s.quality = current.quality
        s.entities = current.entities
        s.stateBytes = current.stateBytes
        s.labelsMalformed += sink.labelsMalformed
        return s
    }

    /// Time from `run()`'s start to the first record (the group join, mostly); nil before it.
    public var timeToFirstRecord: Duration? {
        let n = firstRecordNanos.load(ordering: .relaxed)
        return n == 0 ? nil : .nanoseconds(n)
    }

    /// The engine's own latency: milliseconds from the poll that returned a record to its alert
    /// or dead letter handed to the producer (the broker's and the producer's delays come on
    /// top), at quantile `q` over the chunks so far; nil before the first.
    public func processingLatency(quantile q: Double) -> Double? { sink.chunkTime(quantile: q) }

    /// `processingLatency` split by whether a chunk was in flight while the workers captured a
    /// checkpoint (`during`), with the number of such captures; nil without checkpoints.
    public func processingLatencyAroundCheckpoints(quantile q: Double) -> (
        during: Double?, outside: Double?, captures: Int
    )? {
        let windows = captureWindows.withLock { $0 }
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
    var gauges: [WorkerGauges] { ingest.gauges.withLock { $0 } }

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

    private func ingestBatch(_ batch: KafkaBatch, sources: Set<String>) {
        var events: [Int] = []
        events.reserveCapacity(batch.count)
        var labels: [LabelRecord] = []
        ingest.dirty = true
        for i in 0..<batch.count {
            let record = batch[i]
            ingest.nextOffsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if sources.contains(record.topic) {
                events.append(i)
            } else if let decoder = labelSources[record.topic] {
                let result = record.withValueBytes { decoder.decode($0) }
                switch result {
                case .success(let label):
                    labels.append(label.record)
                    consumer.markDone(record.position)
                case .failure(let reason):
                    sink.deadLetterLabel(record, reason)
                }
            }
        }
        if !events.isEmpty {
            let raw = KafkaRecords(batch: batch, indices: events)
            ingest.pipeline.submit(
                count: events.count, topics: batch.topics, raw: raw,
                position: { k in
                    let r = batch[events[k]]
                    return (Int32(r.topicIndex), r.partition, r.offset, r.timestampMilliseconds)
                }, arrivalMs: Int64(Date().timeIntervalSince1970 * 1000))
            ingest.eventsSinceCheckpoint += events.count
        }
        stats.labels.add(labels.count, ordering: .relaxed)
        ingest.pipeline.submitLabels(labels)
    }

    // MARK: Until the end

    private func reachedEnd() -> Bool {
        let assigned = consumer.assignment.filter { sourceTopics.contains($0.topic) }
        guard !assigned.isEmpty else { return false }
        if ingest.ends == nil {
            var ends: [TopicPartition: Int64] = [:]
            for tp in assigned {
                guard let marks = try? consumer.watermarks(tp, timeout: .seconds(5)) else { return false }
                ends[tp] = marks.high
            }
            ingest.ends = ends
            // Partitions already read up to their end start at their committed offsets.
            if let committed = try? consumer.committedOffsets(Array(assigned), timeout: .seconds(5)) {
                for (tp, o) in committed where o >= 0 && ingest.startOffsets[tp] == nil { ingest.startOffsets[tp] = o }
            }
            logger.info("Reading up to the end of the source", metadata: ["ends": "\(ends.sorted { $0.key < $1.key })"])
        }
        let done = consumer.doneOffsets
        for (tp, end) in ingest.ends! {
            let reached = max(done[tp] ?? -1, ingest.startOffsets[tp] ?? -1)
            if reached < end { return false }
        }
        return consumer.inFlight.values.allSatisfy { $0 == 0 }
    }

    // MARK: Checkpoints

    private func checkpointIfDue(_ now: ContinuousClock.Instant) {
        guard let spec = store?.spec, ingest.dirty, !checkpointInFlight.load(ordering: .acquiring) else { return }
        let byTime = now - ingest.lastCheckpoint >= spec.every
        let byEvents = spec.everyEvents.map { ingest.eventsSinceCheckpoint >= $0 } ?? false
        guard byTime || byEvents, !ingest.warming else { return }
        // First, off the workers, make sure each has warm memory to copy its windows into (fresh
        // pages cost more to fault in than the copy); then cut, on this thread.
        ingest.warming = true
        let pipeline = ingest.pipeline
        let reason = byEvents ? "events" : "interval"
        checkpointQueue.async { [self] in
            pipeline.warmSpareBuffers()
            requests.withLock { $0.append(.cut(reason)) }
        }
    }

    /// Cuts the input now and writes the checkpoint on the checkpoint thread. Ingest thread.
    @discardableResult
    private func startCheckpoint(reason: String) -> Bool {
        guard store != nil, !checkpointInFlight.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        ingest.lastCheckpoint = .now
        ingest.eventsSinceCheckpoint = 0
        ingest.dirty = false
        let offsets = currentOffsets()
        let cutAt = ContinuousClock.now
        let captured = ingest.pipeline.cut()
        let pipeline = ingest.pipeline
        let signature = ingest.planSignature
        checkpointQueue.async { [self] in
            do {
                let states = captured.wait()
                let capturedAt = ContinuousClock.now
                captureWindows.withLock { if $0.count < 100_000 { $0.append((cutAt, capturedAt)) } }
                writeCheckpoint(
                    states: states, offsets: offsets, planSignature: signature, reason: reason, pause: captured.pause)
                pipeline.recycle(states)
            }
            checkpointInFlight.store(false, ordering: .releasing)
        }
        return true
    }

    /// The next offset of every partition read so far, and where unread assigned source
    /// partitions start (their committed offsets).
    private func currentOffsets() -> [SourceOffset] {
        var offsets = ingest.nextOffsets
        let unseen = consumer.assignment.filter { offsets[$0] == nil && sourceTopics.contains($0.topic) }
        if !unseen.isEmpty, let committed = try? consumer.committedOffsets(Array(unseen), timeout: .seconds(5)) {
            for (tp, o) in committed where o >= 0 { offsets[tp] = o }
        }
        return offsets.map { SourceOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }.sorted()
    }

    /// Waits until the outputs of everything before the cut are acknowledged, then encodes and
    /// publishes the checkpoint. Checkpoint thread (or the ingest thread at shutdown).
    private func writeCheckpoint(
        states: [WorkerState], offsets: [SourceOffset], planSignature signature: UInt64, reason: String, pause: Duration
    ) {
        guard let store else { return }
        stats.checkpointPauseSeconds.observe(pause.seconds)
        let clock = ContinuousClock()
        let start = clock.now
        // A checkpoint in the topic must mean: every output before its offsets is published.
        let wanted = offsets.filter { sourceTopics.contains($0.topic) }
        while true {
            let done = consumer.doneOffsets
            let assigned = consumer.assignment
            let waiting = wanted.filter { o in
                let tp = TopicPartition(o.topic, o.partition)
                return assigned.contains(tp) && (done[tp] ?? -1) < o.offset && consumer.inFlight[tp, default: 0] > 0
            }
            if waiting.isEmpty { break }
            if clock.now - start > .seconds(120) {
                logger.error(
                    "Checkpoint abandoned: outputs before the cut were not acknowledged in 120 s",
                    metadata: ["waiting": "\(waiting)"])
                stats.checkpointsFailed.add(1, ordering: .relaxed)
                return
            }
            usleep(2000)
        }
        let sequence = ingest.nextSequence.add(1, ordering: .relaxed).oldValue
        let (topologyName, versions) = shared.withLock { s in (s.topology.name, s.modelVersions) }
        let checkpoint = EngineCheckpoint(
            sequence: sequence, createdMs: Int64(Date().timeIntervalSince1970 * 1000), topology: topologyName,
            planSignature: signature, modelVersions: versions, offsets: offsets, reason: reason, workers: states)
        let encodeStart = clock.now
        let bytes = checkpoint.encode()
        let encoded = clock.now
        do {
            try store.publish(bytes, sequence: sequence)
        } catch {
            stats.checkpointsFailed.add(1, ordering: .relaxed)
            logger.error("Checkpoint not written", metadata: ["sequence": "\(sequence)", "error": "\(error)"])
            return
        }
        let took = clock.now - start
        logger.debug(
            "Checkpoint capture by part",
            metadata: [
                "ms":
                    "\(states.map { $0.captureTimes.map { "\($0.name)=\(milliseconds($0.took))" }.joined(separator: ",") })"
            ])
        stats.checkpointsWritten.add(1, ordering: .relaxed)
        stats.checkpointBytes.store(bytes.count, ordering: .relaxed)
        stats.checkpointSequence.store(Int(sequence), ordering: .relaxed)
        stats.checkpointTimeMs.store(checkpoint.createdMs, ordering: .relaxed)
        stats.checkpointWriteNanos.store(Int(took.seconds * 1e9), ordering: .relaxed)
        logger.info(
            "Checkpoint written",
            metadata: [
                "sequence": "\(sequence)", "reason": "\(reason)", "bytes": "\(bytes.count)",
                "entities": "\(checkpoint.entities)",
                "offsets": "\(offsets.map { "\($0.topic)[\($0.partition)]@\($0.offset)" })",
                "pause_ms": "\(milliseconds(pause))", "write_ms": "\(milliseconds(took))",
                "wait_ms": "\(milliseconds(encodeStart - start))",
                "encode_ms": "\(milliseconds(encoded - encodeStart))",
                "publish_ms": "\(milliseconds(clock.now - encoded))",
                "sections_mb": "\(checkpoint.sectionSummary)",
            ])
    }

    /// Asks for a checkpoint now (admin); waits until it is cut, not until it is written.
    public func requestCheckpoint() -> String? {
        let reply = Reply()
        requests.withLock { $0.append(.checkpoint("admin", reply)) }
        return reply.wait(.seconds(30)) ?? "the engine did not answer in 30 s"
    }

    // MARK: Boot and reload

    /// A checkpoint a structural change may load: one just taken from the running pipeline, or
    /// one stored (boot), read only when its turn comes.
    private enum Candidate {
        case taken(EngineCheckpoint)
        case stored(CheckpointStore.Stored)
    }

    /// Applies a change on the ingest thread; boot is the change from the empty topology. A
    /// tunable change swaps settings between batches. A structural one stops the running
    /// pipeline at a checkpoint (there is none at boot), builds the new one and loads the first
    /// candidate checkpoint that fits, newest first: at boot the stored ones (a damaged one is
    /// reported and the previous one tried), on reload the one just taken.
    /// - Returns: the checkpoint loaded, if any.
    private func transition(to new: Topology, change: TopologyChange) throws -> UInt64? {
        if change.kind == .tunable {
            ingest.pipeline.apply(Tunables(new))
            shared.withLock { $0.topology = new }
            return nil
        }
        let next = try makePipeline(new)
        var candidates: [Candidate] = []
        var readTime = Duration.zero
        if let old = ingest.pipelineBox {
            candidates = [.taken(stopAtCheckpoint(old))]
            ingest.retired.add(old.summary())
        } else if let store {
            // The newest first; the others are read only if it does not load.
            let readStart = ContinuousClock.now
            let scan = try store.scan(limit: restoreSequence == nil ? 1 : nil)
            readTime = ContinuousClock.now - readStart
            for s in scan.skipped {
                logger.error(
                    "Checkpoint skipped",
                    metadata: ["sequence": "\(s.sequence)", "where": "\(s.location)", "reason": "\(s.reason)"])
            }
            ingest.nextSequence.store((scan.highestSequence ?? 0) + 1, ordering: .relaxed)
            candidates = scan.stored.map(Candidate.stored)
            if let wanted = restoreSequence {
                candidates = scan.stored.filter { $0.sequence == wanted }.map(Candidate.stored)
                if candidates.isEmpty {
                    throw VigilError(
                        .invalidArgument, "checkpoint \(wanted) is not among those kept (see vigil checkpoints list)")
                }
            }
        }
        var pipeline = next
        var tried = Set<UInt64>()
        var readAll = restoreSequence != nil || ingest.pipelineBox != nil || store == nil
        while true {
            if candidates.isEmpty, !readAll, let store {
                // The newest did not load: read the older ones kept.
                readAll = true
                let readStart = ContinuousClock.now
                candidates = try store.scan().stored.filter { !tried.contains($0.sequence) }.map(Candidate.stored)
                readTime += ContinuousClock.now - readStart
            }
            guard !candidates.isEmpty else { break }
            let candidate = candidates.removeFirst()
            if case .stored(let s) = candidate { tried.insert(s.sequence) }
            let loadStart = ContinuousClock.now
            let checkpoint: EngineCheckpoint
            var location = "the running pipeline"
            switch candidate {
            case .taken(let c): checkpoint = c
            case .stored(let stored):
                location = stored.location
                do {
                    checkpoint = try EngineCheckpoint.decode(stored.bytes, topology: new.name)
                } catch {
                    logger.error(
                        "Checkpoint rejected; trying the previous one",
                        metadata: ["sequence": "\(stored.sequence)", "where": "\(location)", "error": "\(error)"])
                    continue
                }
            }
            do {
                let report = try pipeline.restore(checkpoint)
                install(pipeline, topology: new)
                if case .stored = candidate {
                    let starts = Dictionary(
                        checkpoint.offsets.map { (TopicPartition($0.topic, $0.partition), $0.offset) },
                        uniquingKeysWith: { $1 })
                    consumer.setStartOffsets(starts)
                    ingest.startOffsets = starts
                    ingest.nextOffsets = starts
                    shared.withLock { $0.restoredFrom = checkpoint.sequence }
                }
                let rebuilt: Bool
                if case .taken = candidate { rebuilt = true } else { rebuilt = false }
                logger.info(
                    rebuilt ? "Pipeline rebuilt" : "Restored checkpoint",
                    metadata: [
                        "sequence": "\(checkpoint.sequence)", "where": "\(location)",
                        "entities": "\(checkpoint.entities)",
                        "restored": "\(report.restored)", "cold": "\(report.cold)",
                        "offsets": "\(checkpoint.offsets.map { "\($0.topic)[\($0.partition)]@\($0.offset)" })",
                        "read_ms": "\(milliseconds(readTime))",
                        "load_ms": "\(milliseconds(ContinuousClock.now - loadStart))",
                    ])
                return checkpoint.sequence
            } catch {
                logger.error(
                    "Checkpoint rejected; trying the previous one",
                    metadata: ["sequence": "\(checkpoint.sequence)", "where": "\(location)", "error": "\(error)"])
                pipeline = try makePipeline(new)  // a failed restore may have loaded some workers
            }
        }
        if ingest.pipelineBox == nil {
            logger.notice(
                store == nil
                    ? "No checkpoints configured: cold start"
                    : "No usable checkpoint: cold start (windows and models start empty)")
        }
        install(pipeline, topology: new)
        return nil
    }

    /// Stops `old` after everything submitted so far and takes its state as a checkpoint (also
    /// published, when checkpoints are configured). Ingest thread.
    private func stopAtCheckpoint(_ old: Pipeline) -> EngineCheckpoint {
        let offsets = currentOffsets()
        old.finish()
        checkpointQueue.sync {}
        let states = old.captureStopped()
        let (name, versions) = shared.withLock { ($0.topology.name, $0.modelVersions) }
        if store != nil {
            checkpointInFlight.store(true, ordering: .releasing)
            writeCheckpoint(
                states: states, offsets: offsets, planSignature: old.plan.signature, reason: "reload", pause: .zero)
            checkpointInFlight.store(false, ordering: .releasing)
        }
        return EngineCheckpoint(
            sequence: 0, createdMs: Int64(Date().timeIntervalSince1970 * 1000), topology: name,
            planSignature: old.plan.signature,
            modelVersions: versions, offsets: offsets, reason: "reload", workers: states)
    }

    private func makePipeline(_ topology: Topology) throws(VigilError) -> Pipeline {
        try Pipeline(topology: topology, workers: workers, sink: sink)
    }

    /// Makes `pipeline` the running one (started here). Ingest thread.
    private func install(_ pipeline: Pipeline, topology: Topology) {
        pipeline.start()
        ingest.pipelineBox = pipeline
        ingest.planSignature = pipeline.plan.signature
        ingest.gauges.withLock { $0 = pipeline.gauges }
        shared.withLock {
            $0.topology = topology
            $0.modelVersions = pipeline.modelVersions
        }
    }

    /// Reads the topology file again and applies what changed: tunables between batches,
    /// structural changes by rebuilding from a fresh checkpoint; refuses an invalid file and
    /// changes that need a restart. Every outcome is audited. Any thread; one at a time.
    public func reload(source: ReloadOutcome.Source) -> ReloadOutcome {
        reloading.lock()
        defer { reloading.unlock() }
        let current = topology
        let outcome: ReloadOutcome
        if let topologyFile {
            outcome = decideReload(from: current, file: topologyFile, source: source)
        } else {
            outcome = ReloadOutcome(
                source: source, result: .invalid, change: TopologyChange(items: []),
                reason: "the engine was not started from a file",
                topology: current.name)
        }
        switch outcome.result {
        case .unchanged:
            // Not a change (a file saved as it was, or read again after an admin reload).
            logger.debug("Topology reloaded: no change", metadata: ["source": "\(source.rawValue)"])
            return outcome
        case .applied: stats.reloadsApplied.add(1, ordering: .relaxed)
        case .refused, .invalid: stats.reloadsRefused.add(1, ordering: .relaxed)
        }
        shared.withLock { $0.lastReload = outcome }
        audit.record(outcome)
        return outcome
    }

    private func decideReload(from current: Topology, file: String, source: ReloadOutcome.Source) -> ReloadOutcome {
        let new: Topology
        do {
            new = try TopologyLoader.load(path: file)
            _ = try Pipeline.modelVersions(of: new)
        } catch {
            return ReloadOutcome(
                source: source, result: .invalid, change: TopologyChange(items: []),
                reason: "invalid topology; the running configuration is kept: \(error)", topology: current.name)
        }
        let change = TopologyChange.between(current, new)
        guard let kind = change.kind else {
            return ReloadOutcome(
                source: source, result: .unchanged, change: change, reason: "no change", topology: current.name)
        }
        if kind == .restart {
            let paths = change.items.filter { $0.kind == .restart }.map(\.path)
            return ReloadOutcome(
                source: source, result: .refused, change: change,
                reason:
                    "needs a restart: \(paths.joined(separator: ", ")) cannot change while running; the running configuration is kept",
                topology: current.name)
        }
        let reply = Reply()
        requests.withLock { $0.append(.apply(new, change, reply)) }
        switch reply.wait(.seconds(120)) {
        case .none:
            return ReloadOutcome(
                source: source, result: .refused, change: change, reason: "the engine did not apply it within 120 s",
                topology: current.name)
        case .some(.some(let error)):
            return ReloadOutcome(
                source: source, result: .refused, change: change, reason: error, topology: current.name)
        case .some(.none):
            let how =
                kind == .tunable
                ? "swapped in between batches" : "rebuilt from a checkpoint (unchanged windows and models kept)"
            return ReloadOutcome(source: source, result: .applied, change: change, reason: how, topology: new.name)
        }
    }

    /// Runs what other threads asked for. Ingest thread, between batches.
    private func serveRequests() {
        let pending = requests.withLock { q in
            defer { q.removeAll() }
            return q
        }
        for request in pending {
            switch request {
            case .cut(let reason):
                ingest.warming = false
                startCheckpoint(reason: reason)
            case .checkpoint(let reason, let reply):
                if store == nil {
                    reply.answer("the topology has no checkpoints section")
                } else {
                    reply.answer(startCheckpoint(reason: reason) ? nil : "a checkpoint is already being written")
                }
            case .apply(let new, let change, let reply):
                do {
                    _ = try transition(to: new, change: change)
                    reply.answer(nil)
                } catch {
                    reply.answer("the new topology could not be applied: \(error)")
                }
            }
        }
    }
}

private func milliseconds(_ d: Duration) -> String {
    String(format: "%.1f", d.seconds * 1000)
}

/// State the ingest thread owns.
///
/// `@unchecked Sendable` invariant: every `var` here is touched by the ingest thread only
/// (`run()`'s thread), except `gauges` (behind a mutex) and `nextSequence` (atomic).
private final class IngestState: @unchecked Sendable {
    var pipelineBox: Pipeline?
    var pipeline: Pipeline { pipelineBox! }
    var planSignature: UInt64 = 0
    var nextOffsets: [TopicPartition: Int64] = [:]
    var startOffsets: [TopicPartition: Int64] = [:]
    var ends: [TopicPartition: Int64]?
    var eventsSinceCheckpoint = 0
    /// Records were read since the last checkpoint cut (or the restore).
    var dirty = false
    /// A due checkpoint is warming its buffers; the cut follows.
    var warming = false
    var lastCheckpoint = ContinuousClock.now
    var retired = Pipeline.Summary()
    let nextSequence = Atomic<UInt64>(1)
    let gauges = Mutex<[WorkerGauges]>([])
}

/// The consumer's latest view of the high watermarks (from its statistics).
private final class LagBox: Sendable {
    private let marks = Mutex<[TopicPartition: Int64]>([:])

    func update(_ s: KafkaStatistics) {
        let hw = s.partitions.filter { $0.value.highWatermark >= 0 }.mapValues(\.highWatermark)
        marks.withLock { $0.merge(hw) { $1 } }
    }

    var highWatermarks: [TopicPartition: Int64] { marks.withLock { $0 } }
}

extension Pipeline.Summary {
    /// Adds the counters of another pipeline's run (a reload replaced it).
    mutating func add(_ o: Pipeline.Summary) {
        events += o.events
        scored += o.scored
        alerts += o.alerts
        suppressed += o.suppressed
        lateScored += o.lateScored
        for (k, v) in o.deadLetters { deadLetters[k, default: 0] += v }
        labelsReceived += o.labelsReceived
        labelsJoined += o.labelsJoined
    }
}

/// The source records of a consumed batch, as a chunk's raw records.
struct KafkaRecords: RawRecords {
    let batch: KafkaBatch
    let indices: [Int]

    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        batch[indices[i]].withValueBytes { body($0) }
    }

    func key(_ i: Int) -> [UInt8]? { batch[indices[i]].key.map(Array.init) }
}
