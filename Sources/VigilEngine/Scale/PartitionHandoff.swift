import Foundation
import Logging
import Synchronization
import VigilCore
import VigilFeatures
import VigilKafka

/// Moves the windows of source partitions with the partitions, between the instances of one
/// consumer group (docs/scaling.md):
/// - at each checkpoint, every owned partition's windows are published as a `PartitionState`
///   keyed by the partition;
/// - when a partition is revoked, once every record read from it has its outputs acknowledged,
///   its windows are taken out of the workers and published the same way;
/// - when a partition is assigned, the newest state of it (written by whichever instance) is
///   loaded into the workers before any of its records, and reading starts at the offset that
///   state covers.
///
/// Called on the ingest thread only, from inside the consumer's rebalance callback.
final class PartitionHandoff: Sendable {
    let store: CheckpointStore?
    let keyGroups: KeyGroups
    let instance: String
    private let sourceTopics: Set<String>
    private let stats: EngineStats
    private let logger: Logger
    private let lastSequence = Atomic<UInt64>(0)
    /// Partitions this instance lost, and where it stood in each.
    let lostHere = LostPartitions()
    /// How long a revoke waits for the outputs of the records read from the partitions leaving.
    static let drainTimeout = Duration.seconds(30)
    /// The `reason` of a partition record published at revoke.
    static let revokeReason = "revoke"
    /// The last checkpoint of this instance known complete (restored, or written here): its
    /// source offsets and when it was cut. Partition records it did not complete are skipped.
    private let lastComplete = Mutex<(offsets: [TopicPartition: Int64], createdMs: Int64)?>(nil)

    init(store: CheckpointStore?, topics: [String], instance: String, stats: EngineStats, logger: Logger) {
        self.store = store
        keyGroups = KeyGroups(topics: topics)
        sourceTopics = Set(topics)
        self.instance = instance
        self.stats = stats
        self.logger = logger
    }

    /// Whether windows move with partitions (the topology keeps checkpoints).
    var isEnabled: Bool { store?.instance != nil }

    /// A sequence for a partition record: wall-clock microseconds, strictly increasing here.
    func nextSequence() -> UInt64 {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
        while true {
            let last = lastSequence.load(ordering: .relaxed)
            let next = max(now, last + 1)
            if lastSequence.compareExchange(expected: last, desired: next, ordering: .relaxed).exchanged { return next }
        }
    }

    /// A checkpoint of this instance is complete: restored at boot, or its own record published
    /// after its partition records.
    func completed(offsets: [SourceOffset], createdMs: Int64) {
        let offsets = Dictionary(
            offsets.map { (TopicPartition($0.topic, $0.partition), $0.offset) }, uniquingKeysWith: { $1 })
        lastComplete.withLock { $0 = (offsets, createdMs) }
    }

    /// Whether `state` was published by a checkpoint of this instance that never completed: its
    /// partition records went out, and then the process was killed (or the instance record
    /// failed) before the instance record. Its windows are ahead of the models restored with
    /// the last complete checkpoint, so reading from its offset would have them skip records.
    /// Handoffs at revoke stand on their own, and so does everything other instances wrote.
    func isIncomplete(_ state: PartitionState) -> Bool {
        guard state.instance == instance, state.reason != Self.revokeReason, let last = lastComplete.withLock({ $0 })
        else {
            return false
        }
        if let offset = last.offsets[TopicPartition(state.topic, state.partition)] { return state.offset > offset }
        return state.createdMs > last.createdMs
    }

    // MARK: Assign

    /// Loads the newest state of each assigned source partition into `pipeline` (before any of
    /// its records) and returns where each of them starts reading. A partition with no state
    /// stored, or none that loads, starts from the group's committed offset with empty windows,
    /// and the log says so. A partition this instance lost comes back where it stood, with the
    /// windows it kept, unless a newer state is stored.
    func assigning(_ partitions: [TopicPartition], pipeline: Pipeline) -> [TopicPartition: Int64] {
        let sources = Set(partitions.filter { sourceTopics.contains($0.topic) })
        let back = lostHere.assigned(sources)
        guard isEnabled, let store, !sources.isEmpty else { return [:] }
        let start = ContinuousClock.now
        let found: [TopicPartition: [CheckpointStore.Stored]]
        do {
            found = try store.partitionRecords(for: sources)
        } catch {
            logger.error(
                "Partition states not read: these partitions start with empty windows",
                metadata: ["partitions": "\(sources.sorted())", "error": "\(error)"])
            return [:]
        }
        var starts: [TopicPartition: Int64] = [:]
        var loaded: [String] = []
        for tp in sources.sorted() {
            var best: PartitionState?
            for stored in found[tp] ?? [] {
                do {
                    let state = try PartitionState.decode(stored.bytes, topology: store.topology)
                    guard state.planSignature == pipeline.plan.signature else {
                        logger.notice(
                            "Partition state written for other features: skipped",
                            metadata: ["partition": "\(tp)", "sequence": "\(stored.sequence)"])
                        continue
                    }
                    guard !isIncomplete(state) else {
                        logger.notice(
                            "Partition state of a checkpoint that was not completed: skipped",
                            metadata: ["partition": "\(tp)", "offset": "\(state.offset)", "reason": "\(state.reason)"])
                        continue
                    }
                    if state.offset > best?.offset ?? -1 { best = state }
                } catch {
                    logger.warning(
                        "Partition state does not load; trying an older one",
                        metadata: ["partition": "\(tp)", "sequence": "\(stored.sequence)", "error": "\(error)"])
                }
            }
            if let here = back[tp], here >= best?.offset ?? -1 {
                // Lost here and no one stored anything newer: the windows kept here, and the
                // models, hold every record before `here`; reading from an older record would
                // have them learn those records twice.
                starts[tp] = here
                loaded.append("\(tp)@\(here): kept here since the loss")
                continue
            }
            guard let best else {
                loaded.append("\(tp): none")
                continue
            }
            pipeline.adopt(best.windows) { [logger] error in
                logger.error("Partition windows did not load", metadata: ["partition": "\(tp)", "error": "\(error)"])
            }
            starts[tp] = best.offset
            stats.handoffsIn.add(1, ordering: .relaxed)
            loaded.append("\(tp)@\(best.offset): \(best.entities) entities from \(best.instance) (\(best.reason))")
        }
        logger.info(
            "Partition states loaded",
            metadata: ["partitions": "\(loaded)", "read_ms": "\(milliseconds(ContinuousClock.now - start))"])
        return starts
    }

    // MARK: Revoke

    /// Publishes the windows of the revoked source partitions and takes them out of the
    /// workers. Lost partitions (no chance to hand off) keep their windows here.
    /// - Parameter next: the next offset to read of each partition read so far.
    func revoking(
        _ partitions: [TopicPartition], lost: Bool, pipeline: Pipeline, next: [TopicPartition: Int64],
        consumer: KafkaConsumer
    ) {
        let sources = partitions.filter { sourceTopics.contains($0.topic) }
        guard !sources.isEmpty else { return }
        let groups = Set(sources.map(keyGroups.group))
        if lost {
            // Kept: if the partition comes back here with no newer state stored (a session lost
            // to a slow broker), reading resumes where this instance stood, with these windows;
            // a stored state, when there is one, replaces them. No checkpoint is cut until the
            // next assignment (LostPartitions).
            lostHere.lost(sources, next: next)
            logger.notice(
                "Partitions lost: their windows stay until a stored state replaces them, and checkpoints wait for the next assignment",
                metadata: ["partitions": "\(sources)"])
            return
        }
        guard isEnabled, let store else {
            pipeline.drop(groups: groups)
            return
        }
        let start = ContinuousClock.now
        // The new owner starts after the records read here: their outputs must be published.
        let deadline = start.advanced(by: Self.drainTimeout)
        while sources.contains(where: { consumer.inFlight[$0, default: 0] > 0 }), ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.002)
        }
        let waiting = sources.filter { consumer.inFlight[$0, default: 0] > 0 }
        let released = pipeline.release(groups: groups)
        guard waiting.isEmpty else {
            // Not published: the next owner reads these records again from the last state stored.
            logger.error(
                "Revoked partitions' outputs not acknowledged in time: their windows are not handed off",
                metadata: ["partitions": "\(waiting)", "timeout": "\(Self.drainTimeout)"])
            return
        }
        var byGroup: [UInt32: [[UInt8]]] = [:]
        for state in released {
            guard let split = try? FeatureExtractor.splitByKeyGroup(state) else { continue }
            for (group, bytes) in split { byGroup[group, default: []].append(bytes) }
        }
        var published: [String] = []
        for tp in sources.sorted() {
            guard let offset = next[tp] else { continue }  // nothing read: its stored state stands
            let state = PartitionState(
                topic: tp.topic, partition: tp.partition, offset: offset, planSignature: pipeline.plan.signature,
                createdMs: Int64(Date().timeIntervalSince1970 * 1000), instance: instance, reason: Self.revokeReason,
                windows: byGroup[keyGroups.group(tp)] ?? [])
            do {
                try store.publish(partition: state.encode(topology: store.topology), of: tp, sequence: nextSequence())
                stats.handoffsOut.add(1, ordering: .relaxed)
                published.append("\(tp)@\(offset): \(state.entities) entities")
            } catch {
                logger.error(
                    "Partition state not published: the next owner starts from the last checkpoint",
                    metadata: ["partition": "\(tp)", "error": "\(error)"])
            }
        }
        logger.info(
            "Partition states handed off",
            metadata: ["partitions": "\(published)", "ms": "\(milliseconds(ContinuousClock.now - start))"])
    }

    // MARK: Checkpoints

    /// The partition records of a checkpoint cut: for each source partition in `owned` with an
    /// offset, its entities' windows from every worker's feature section.
    func records(
        states: [WorkerState], offsets: [SourceOffset], owned: Set<TopicPartition>, planSignature: UInt64,
        reason: String
    ) -> [(TopicPartition, PartitionState)] {
        var byGroup: [UInt32: [[UInt8]]] = [:]
        for state in states {
            guard let features = state.section("features"),
                let split = try? FeatureExtractor.splitByKeyGroup(features)
            else { continue }
            for (group, bytes) in split { byGroup[group, default: []].append(bytes) }
        }
        let created = Int64(Date().timeIntervalSince1970 * 1000)
        return offsets.compactMap { o in
            let tp = TopicPartition(o.topic, o.partition)
            guard sourceTopics.contains(o.topic), owned.contains(tp) else { return nil }
            return (
                tp,
                PartitionState(
                    topic: o.topic, partition: o.partition, offset: o.offset, planSignature: planSignature,
                    createdMs: created, instance: instance, reason: reason, windows: byGroup[keyGroups.group(tp)] ?? [])
            )
        }
    }
}
