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
/// This type wires the parts together and runs the ingest loop; each concern has a type of its
/// own (docs/ARCHITECTURE.md draws them): `CheckpointCoordinator` (the checkpoint cycle),
/// `PipelineTransition` and `RestorePlan` (boot and structural reloads), `ReloadController`
/// (the reload decision), `IngestRequests` (the control plane's channel to this thread),
/// `SourceEndTracker` (`--until-end`), `KafkaSink` (outputs), and the read-outs in
/// `KafkaEngine+Status`.
///
/// `run()` blocks its thread (the ingest thread) until `stop()` or a bound; workers run on
/// threads of their own, checkpoints are written on a thread of their own.
public final class KafkaEngine: Sendable {
    public let brokers: [String]
    public let workers: Int
    /// The one client configuration every Kafka client of this engine is made from.
    public let clients: KafkaClients
    /// This instance's name in its consumer group: its checkpoints are keyed by it.
    public let instance: String
    /// Moves source partitions' windows in and out at rebalances.
    let handoff: PartitionHandoff
    /// Live figures for the admin endpoint.
    public let stats = EngineStats()
    let logger: Logger
    let clock: EngineClock
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let sink: KafkaSink
    let coordinator: CheckpointCoordinator
    let reloads: ReloadController
    /// Promotions, rollbacks, model history and live model quality (`vigil models`).
    public let rollout: RolloutController
    let phases = PhaseTracker()
    let lag = LagTracker()
    let requests = IngestRequests()
    private let transition: PipelineTransition
    let labelDecoders: [String: LabelDecoder]
    /// Every partition of the labels topics, outside the group (nil: no model learns from labels).
    let labelsFeed: LabelsFeed?
    let sourceTopics: [String]
    private let untilEnd: Bool
    private let restoreSequence: UInt64?
    let stopping = Atomic<Bool>(false)
    /// Engine time from `run()`'s start to the first source record (nil until then).
    let firstRecord = Mutex<Duration?>(nil)
    /// The checkpoint restored at start, if any.
    let restored = Mutex<UInt64?>(nil)
    let ingest: IngestState

    /// - Parameters:
    ///   - topologyFile: the file `topology` was read from; `reload` reads it again.
    ///   - brokers: overrides the topology's `source.kafka.brokers`.
    ///   - clients: the Kafka client configuration (default: the topology's, with `brokers`).
    ///   - instance: this instance's name (`--instance`; default `defaultInstance`).
    ///   - stopAfterEvents: stop by itself once this many source records have an outcome.
    ///   - untilEnd: stop by itself once every source partition assigned at start is done up to
    ///     the end it had when it was assigned.
    ///   - restoreSequence: restore this checkpoint instead of the newest (a rollback).
    ///   - clock: what the engine's timers read (commits, checkpoint intervals).
    ///   - onChunk: called with every finished chunk after its outputs are handed to the
    ///     producer (the integration tests read outcomes and scores from it).
    ///   - onAlertDelivered: called with each alert the broker acknowledged (`--print-alerts`).
    /// - Throws: `KafkaError` when a client cannot be created (invalid properties), or
    ///   `EngineError` when a secret reference in the properties does not resolve.
    public init(
        topology: Topology, topologyFile: String? = nil, brokers: [String]? = nil, clients: KafkaClients? = nil,
        instance: String? = nil, workers: Int, logger: Logger,
        stopAfterEvents: Int? = nil, untilEnd: Bool = false, restoreSequence: UInt64? = nil,
        clock: EngineClock = .continuous, onChunk: (@Sendable (InputChunk) -> Void)? = nil,
        onAlertDelivered: (@Sendable (AlertRecord) -> Void)? = nil
    ) throws {
        let clients = try clients ?? KafkaClients(topology: topology, brokers: brokers)
        self.clients = clients
        self.brokers = clients.brokers
        let instance = instance ?? Self.defaultInstance
        self.instance = instance
        self.workers = workers
        self.logger = logger
        self.clock = clock
        self.untilEnd = untilEnd
        self.restoreSequence = restoreSequence
        sourceTopics = topology.source.kafka.topics
        var consumerConfig = clients.consumer("source", group: topology.source.kafka.group)
        // Only the partitions that move are revoked, so a rebalance hands off just their windows.
        consumerConfig.assignmentStrategy =
            topology.source.kafka.assignment == .eager ? .eager : .cooperativeSticky
        consumerConfig.startFrom = topology.source.kafka.startFrom == .earliest ? .earliest : .latest
        consumerConfig.statisticsInterval = .seconds(5)
        let (stats, lag) = (stats, lag)
        consumer = try KafkaConsumer(configuration: consumerConfig, logger: logger) { event in
            lag.observe(event, stats: stats)
        }
        let progress = OutputProgress()
        let sink = KafkaSink(
            topology: topology, logger: logger, stopAfter: stopAfterEvents, onChunk: onChunk,
            onAlertDelivered: onAlertDelivered, stats: stats, progress: progress)
        self.sink = sink
        let producerConfig = clients.outputsProducer()
        producer = try KafkaProducer(configuration: producerConfig, logger: logger) { report in sink.delivered(report) }
        var decoders: [String: LabelDecoder] = [:]
        for source in topology.models.compactMap(\.kind.labels) {
            decoders[source.topic] = LabelDecoder(source: source, timeField: topology.source.time?.field)
        }
        labelDecoders = decoders
        labelsFeed =
            decoders.isEmpty ? nil : try LabelsFeed(topics: decoders.keys.sorted(), clients: clients, logger: logger)
        let store = topology.checkpoints.map {
            CheckpointStore(spec: $0, clients: clients, instance: instance, logger: logger)
        }
        let handoff = PartitionHandoff(
            store: store, topics: topology.source.kafka.topics, instance: instance, stats: stats, logger: logger)
        self.handoff = handoff
        coordinator = CheckpointCoordinator(
            store: store, handoff: handoff, sourceTopics: Set(sourceTopics), consumer: consumer, progress: progress,
            stats: stats,
            clock: clock, logger: logger)
        transition = PipelineTransition(workers: workers, sink: sink, coordinator: coordinator, logger: logger)
        let audit = AuditLog(topic: topology.audit?.topic, clients: clients, logger: logger)
        reloads = ReloadController(
            topology: topology, file: topologyFile, requests: requests, audit: audit, stats: stats, logger: logger)
        let ingest = IngestState(sourceTopics: Set(sourceTopics))
        self.ingest = ingest
        rollout = RolloutController(
            reloads: reloads, requests: requests, audit: audit, stats: stats, checkpoints: topology.checkpoints != nil,
            versions: { ingest.installed.withLock { $0.versions } },
            serving: { [phases] in phases.current == .running },
            logger: logger)
        sink.attach(producer: producer, consumer: consumer)
    }

    // MARK: Running

    /// Boots (creates missing topics when asked to, then a reload from the empty topology that
    /// restores the newest valid checkpoint), then reads, scores and publishes until `stop()`
    /// (or a bound); then drains the workers, flushes the producer, writes a final checkpoint,
    /// commits what is done and leaves the group.
    /// - Throws: an `EngineError` when the engine cannot start, or a fatal `KafkaError`;
    ///   retriable Kafka errors (a broker away) are logged and retried.
    public func run() throws {
        let topology = reloads.topology
        phases.advance(to: .restoring)
        do {
            try bootWaitingForTheBroker(topology)
        } catch {
            phases.advance(to: .stopped)
            throw error
        }
        phases.advance(to: .running)
        logger.info(
            "Vigil running",
            metadata: [
                "topology": "\(topology.name)", "topics": "\(sourceTopics)", "workers": "\(workers)",
                "models": "\(modelVersions)",
            ])
        let started = clock.now
        var failure: (any Error)?
        do {
            let clock = clock
            try consumer.run(
                maxBatch: IngestBounds.pollBatch, pollTimeout: .milliseconds(100), now: { clock.now },
                onPoll: { batch in step(batch, started: started) })
        } catch {
            failure = error
            logger.error("Consumer failed", metadata: ["error": "\(error)"])
        }
        try finish(failure: failure)
    }

    /// The instance name when none is given: `$VIGIL_INSTANCE`, else the host name (stable for
    /// a Kubernetes StatefulSet's pods).
    public static var defaultInstance: String {
        let env = ProcessInfo.processInfo.environment["VIGIL_INSTANCE"] ?? ""
        return env.isEmpty ? ProcessInfo.processInfo.hostName : env
    }

    /// Makes `run()` stop reading and finish (from any thread).
    public func stop() {
        stopping.store(true, ordering: .releasing)
    }

    func boot(_ topology: Topology) throws(EngineError) {
        if topology.source.kafka.createTopics {
            do {
                let admin = try clients.admin(logger: logger)
                let created = try topology.createMissingTopics(admin)
                if !created.isEmpty { logger.info("Created topics", metadata: ["topics": "\(created.sorted())"]) }
            } catch {
                throw EngineError(.kafkaFailed, "creating the topology's topics", cause: error)
            }
        }
        let change = TopologyChange.between(nil, topology)
        let built = try transition.boot(topology, requested: restoreSequence)
        if let restored = built.restored {
            // A checkpoint with the windows in it (one instance, or a release before December
            // 2026) resumes every partition it names. Otherwise the windows come per source
            // partition when it is assigned, with the offset they cover (PartitionHandoff), and
            // only the labels partitions resume from here.
            let whole = restored.sectionNames(worker: 0).contains("features") || !handoff.isEnabled
            let starts = Dictionary(
                restored.offsets.filter { whole || !sourceTopics.contains($0.topic) }.map {
                    (TopicPartition($0.topic, $0.partition), $0.offset)
                }, uniquingKeysWith: { $1 })
            consumer.setStartOffsets(starts)
            ingest.positions.restored(starts)
            handoff.completed(offsets: restored.offsets, createdMs: restored.createdMs)
            self.restored.withLock { $0 = restored.sequence }
        }
        ingest.install(built.pipeline)
        reloads.booted(change, restored: built.restored?.sequence, override: built.rollout)
        if built.rollout != nil {
            // The promotions in force when the checkpoint was cut, over the file read now.
            built.pipeline.apply(Tunables(reloads.topology))
            logger.notice(
                "Rollout restored",
                metadata: ["roles": "\(reloads.topology.models.map { "\($0.name)=\($0.role.rawValue)" })"])
        }
        ingest.sourcePartitions = sourcePartitionCount()
        consumer.setRebalanceHandler(
            RebalanceHandler(
                assigning: { [self] partitions in
                    let starts = handoff.assigning(partitions, pipeline: ingest.pipeline)
                    ingest.positions.assigned(starts)
                    sharedStream(ingest.assignment(adding: partitions))
                    return starts
                },
                revoking: { [self] partitions, lost in
                    handoff.revoking(
                        partitions, lost: lost, pipeline: ingest.pipeline, next: ingest.positions.next,
                        consumer: consumer)
                    ingest.positions.revoked(partitions)
                    sharedStream(ingest.assignment(removing: partitions))
                }))
        do {
            try consumer.subscribe(topics: sourceTopics)
        } catch {
            throw EngineError(.kafkaFailed, "subscribing to the source topics", cause: error)
        }
        if let labelsFeed {
            do {
                let restored = Dictionary(
                    (built.restored?.offsets ?? []).filter { labelsFeed.topics.contains($0.topic) }.map {
                        (TopicPartition($0.topic, $0.partition), $0.offset)
                    }, uniquingKeysWith: { $1 })
                let starts = try labelsFeed.start(
                    restored: restored, earliest: topology.source.kafka.startFrom == .earliest,
                    admin: try clients.admin(logger: logger))
                ingest.positions.assigned(starts)
            } catch {
                throw EngineError(.kafkaFailed, "assigning the labels topics' partitions", cause: error)
            }
        }
    }

    /// One turn of the ingest loop, after each poll: the batch, then what waits between batches.
    private func step(_ batch: KafkaBatch, started: Duration) -> KafkaConsumer.Next {
        if stopping.load(ordering: .acquiring) || sink.reachedBound.load(ordering: .acquiring) { return .stop }
        // Labels first: those of this poll's events can then join between them (LabelPacer).
        // While the pacer is full, the feed is not polled: the labels wait on the broker.
        if let labelsFeed, ingest.pacer.count < LabelPacer.capacity {
            do {
                let labels = try labelsFeed.poll()
                if !labels.isEmpty { hold(labels) }
            } catch {
                logger.warning("Reading the labels failed; retrying", metadata: ["error": "\(error)"])
            }
        }
        if !batch.isEmpty {
            firstRecord.withLock { if $0 == nil { $0 = clock.now - started } }
            stats.brokerUp.store(true, ordering: .relaxed)
            read(batch)
        } else if ingest.pacer.count > 0, sourceCaughtUp() {
            // Nothing left to read: the held labels' events, if any, have been read.
            releaseHeldLabels()
        }
        ingest.labelsHeld.store(ingest.pacer.count, ordering: .relaxed)
        if labelsFeed != nil { ingest.sourcePositions = consumer.positions(Array(assignedSources())) }
        sink.retryFailed()
        serveRequests()
        coordinator.tick(pipeline: ingest.pipeline) {
            ingest.positions.current(consumer, sourceTopics: ingest.sourceTopics)
        }
        if untilEnd, ingest.endTracker.reachedEnd(consumer, positions: &ingest.positions, logger: logger) {
            releaseHeldLabels()
            return .stop
        }
        // The next batch is polled once it fits under the engine's bound.
        ingest.pipeline.waitForRoom(atMost: max(0, IngestBounds.inFlightRecords - IngestBounds.pollBatch))
        return .poll
    }

    /// Hands the group consumer's batch (source events) to the pipeline, with the held labels
    /// the events' times reach, each between the events after the one that reached it.
    private func read(_ batch: KafkaBatch) {
        let split = KafkaIngest(batch, sourceTopics: ingest.sourceTopics, labelDecoders: labelDecoders)
        if labelsFeed != nil, !split.events.isEmpty {
            // The partitions behind before this batch bound the labels' release (SourceWatermark).
            ingest.watermark.setBehind(sourcesBehind(assignedSources(), positions: ingest.sourcePositions))
        }
        for (tp, next) in split.nextOffsets { ingest.positions.read(tp, offset: next - 1) }
        if !split.labelPositions.isEmpty { consumer.markDone(split.labelPositions) }
        for bad in split.badLabels { sink.deadLetterLabel(batch[bad.index], bad.reason) }
        if !split.events.isEmpty {
            let events = split.events
            let ingest = ingest
            let paced = labelsFeed != nil
            var released = 0
            ingest.pipeline.submit(
                count: events.count, topics: batch.topics, raw: KafkaRecords(batch: batch, indices: events),
                position: { k in
                    let r = batch[events[k]]
                    return (Int32(r.topicIndex), r.partition, r.offset, r.timestampMilliseconds)
                }, arrivalMs: Int64(Date().timeIntervalSince1970 * 1000),
                labelsDue: { chunk in
                    self.catchUpLabels(to: chunk.newestTime)
                    var due: [(after: Int, record: LabelRecord)] = []
                    guard paced else { return due }
                    chunk.joinClock = ingest.watermark.bound
                    // Partition → watermark slot, looked up once per partition of the chunk.
                    var slots: [(topic: Int32, partition: Int32, slot: Int)] = []
                    for i in 0..<chunk.count where chunk.outcome(i) != .deadLettered {
                        let topic = chunk.topicIndex[i]
                        let partition = chunk.partitions[i]
                        let slot: Int
                        if let known = slots.first(where: { $0.topic == topic && $0.partition == partition }) {
                            slot = known.slot
                        } else {
                            slot = ingest.watermark.slot(TopicPartition(chunk.topics[Int(topic)], partition))
                            slots.append((topic, partition, slot))
                        }
                        guard ingest.watermark.observe(slot: slot, time: chunk.eventTime(i)), ingest.pacer.count > 0
                        else { continue }
                        ingest.pacer.release(
                            upTo: ingest.watermark.bound, into: { due.append((i, $0)) },
                            released: { ingest.positions.read($0, offset: $1) })
                    }
                    released = due.count
                    return due
                })
            stats.readLabels(released)
        }
        coordinator.read(events: split.events.count)
        stats.readLabels(split.labels.count)
        ingest.pipeline.submitLabels(split.labels)
    }

    /// Serves what the control plane asked for (between batches).
    private func serveRequests() {
        for pending in requests.take() {
            switch pending.request {
            case .checkpoint(let reason):
                do throws(EngineError) {
                    try coordinator.request(reason, pipeline: ingest.pipeline) {
                        ingest.positions.current(consumer, sourceTopics: ingest.sourceTopics)
                    }
                    pending.answer(.checkpointStarted)
                } catch {
                    pending.answer(.refused(error))
                }
            case .gatherTracks:
                pending.answer(.tracks(ingest.pipeline.gatherTracks()))
            case .gatherModels:
                pending.answer(.models(ingest.pipeline.gatherModels()))
            case .adoptModels(let averages, let snapshots):
                ingest.pipeline.adoptModels(averages, snapshots: snapshots)
                pending.answer(.applied)
            case .apply(let new, let change, let file):
                do throws(EngineError) {
                    let offsets = ingest.positions.current(consumer, sourceTopics: ingest.sourceTopics)
                    let old = ingest.pipeline
                    if let built = try transition.apply(change, to: new, current: old, offsets: offsets) {
                        ingest.retired.add(old.summary())
                        ingest.install(built.pipeline)
                    }
                    reloads.installed(new, file: file)
                    pending.answer(.applied)
                } catch {
                    pending.answer(
                        .refused(EngineError(.pipelineFailed, "the new topology could not be applied", cause: error)))
                }
            }
        }
    }

    private func finish(failure: (any Error)?) throws {
        var failure = failure
        phases.advance(to: .draining)
        requests.close(EngineError(.stopping, "the engine is stopping"))
        ingest.pipeline.finish()
        phases.advance(to: .flushing)
        do {
            try sink.drain(deadline: .seconds(30))
        } catch {
            logger.error("Outputs not all acknowledged at shutdown", metadata: ["error": "\(error)"])
            if failure == nil { failure = error }
        }
        coordinator.waitForWrites()
        if coordinator.store != nil, failure == nil, coordinator.isDirty {
            phases.advance(to: .finalCheckpoint)
            let captureStart = ContinuousClock.now
            let states = ingest.pipeline.captureStopped()
            coordinator.writeStopped(
                ingest.pipeline, states: states,
                offsets: ingest.positions.current(consumer, sourceTopics: ingest.sourceTopics),
                reason: .shutdown, pause: ContinuousClock.now - captureStart)
        }
        phases.advance(to: .committing)
        // The pipeline is finished: leaving the group hands nothing off (the final checkpoint did).
        consumer.setRebalanceHandler(nil)
        consumer.close()
        labelsFeed?.close()
        coordinator.store?.close()
        reloads.audit.close()
        try? producer.flush(timeout: .seconds(5))
        phases.advance(to: .stopped)
        if let failure { throw failure }
    }
}
