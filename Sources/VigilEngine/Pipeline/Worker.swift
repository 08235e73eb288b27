import Synchronization
import VigilCore
import VigilFeatures
import VigilModels

/// The events of one chunk that belong to one worker's shard, decoded into columns.
struct ShardWork: Sendable {
    let chunk: InputChunk
    let batch: EventBatch
    /// Record index in the chunk of each batch row.
    let rows: [Int32]
    /// `StableHash` of each row's event id (0 without one).
    let idHashes: [UInt64]
    /// Labels due within the chunk (replay, and run's paced labels), each with the chunk record
    /// index after which it is due, in that order: the worker applies each before its first row
    /// past that record.
    var labels: [DueLabel] = []
}

/// A label and the chunk record after which it is due (every record up to it has been read).
struct DueLabel: Sendable {
    let after: Int32
    let record: LabelRecord
}

/// What travels on a shard ring: events, labels, or a control message that runs between batches.
enum WorkItem: Sendable {
    case events(ShardWork)
    case labels([LabelRecord])
    /// Runs on the worker's thread between two items (checkpoint cuts, live tunables).
    case control(@Sendable (Worker) -> Void)
}

/// One worker: it owns its shard's entity state, its model replicas, its ensemble and its
/// threshold, and runs every event of its shard through windows → features → models →
/// ensemble → threshold → alert, in arrival order, one event at a time through the models, so
/// the results do not depend on how events were batched (`replay` equals `run`).
///
/// `@unchecked Sendable` invariant: after `Pipeline` starts it, only the worker's own thread
/// touches it; `Pipeline` reads its counters and metrics only after joining that thread.
final class Worker: @unchecked Sendable {
    let shard: Int
    let extractor: FeatureExtractor
    var models: ModelSet
    var ensemble: Ensemble
    var threshold: AlertThreshold
    var writer: AlertWriter
    let sink: any PipelineSink
    /// The pipeline's count of records not yet handed to the sink.
    let inFlight: InFlightRecords
    let join: LabelJoin
    /// Whether events wait for labels at all (some model learns from them, and events have ids).
    let joinsLabels: Bool
    /// Canary models: the share of entities they are active for (nil: not a canary).
    var canaryShares: [Double?]
    /// The rollout override the roles in force came from (it goes into each checkpoint).
    var rollout: RolloutOverride?
    /// Which models learn from labels.
    let learnsFromLabels: [Bool]
    var metrics: PrequentialMetrics
    /// Each model's own live quality, whatever its role.
    var tracks: ModelTracks
    /// The A/B experiment: each model's arm (nil: in none), and each arm's figures.
    let experiment: ExperimentSpec?
    let modelArms: [Int?]
    private let experimentSalt: UInt64
    var arms: [ArmFigures]
    /// The state of model versions no longer in the topology (`retired:` checkpoint sections),
    /// newest first: a reload that brings a version back restores it warm.
    var retired: [(name: String, bytes: [UInt8])] = []
    /// Retired versions kept.
    static let retiredVersions = 4
    /// Drift detectors (`drift:`), if any.
    var drift: DriftWatch?
    /// The segment values of waiting events and the counts their labels make (`segments:`).
    let segments: LiveSegments
    /// Transformed value features by name, with their field's numeric batch column: an alert
    /// explains them in the event's own units (the amount, not its log1p).
    private let rawValueColumns: [String: Int]
    private let topologyName: String
    private(set) var counters = Counters()
    /// What `/metrics` reads while the worker runs, refreshed after every batch.
    let gauges = WorkerGauges()
    /// The feature section of the last checkpoint, handed back once it was encoded: the next
    /// capture writes into its memory instead of faulting in hundreds of fresh megabytes while
    /// the worker is held (docs/operations.md).
    let spareFeatureBuffer = Mutex<[UInt8]>([])

    private var matrix: FeatureMatrix
    /// The source partitions events come from, as key groups their entities' state belongs to.
    let keyGroups: KeyGroups
    private var groupScratch: [UInt32] = []
    private var labelMatrix: FeatureMatrix
    private var featureOutcomes: [FeatureExtractor.Outcome] = []
    /// Per model, for the event at hand: its score when ready (NaN before), whether it counts
    /// in this event's ensemble, its own percentile, and its raw score.
    private var modelInput: [Double]
    private var counted: [Bool]
    private var percentiles: [Double]
    private var rowScores: [Double]
    /// Batch scores of the models that score a span of rows at once, per model.
    private var spanScores: [[Double]]
    /// Per model, the first row of its current span and the row after its last.
    private var spanStarts: [Int]
    private var spanEnds: [Int]
    /// Per model, whether it counts in the ensemble for the current event (`ModelSet.isReady`).
    private var ready: [Bool]
    /// Scores a model contributes before its percentiles count in the final score.
    static let minimumEnsembleScores = 1000
    /// Rows scored as one batch at most (the forest's rebuild interval is usually shorter).
    static let maxSpan = 64

    /// What this worker did.
    struct Counters: Sendable {
        var scored = 0
        var alerts = 0
        var suppressed = 0
        var lateScored = 0
        var lateDeadLettered = 0
        var labelsJoined = 0
        /// Of `labelsJoined`, those whose label reached the worker before the event did.
        var labelsJoinedEarly = 0
        var driftDetections = 0
    }

    init(
        shard: Int, topology: Topology, plan: FeaturePlan, workers: Int, sink: any PipelineSink,
        inFlight: InFlightRecords, metricsWindow: Int
    ) {
        self.shard = shard
        keyGroups = KeyGroups(topics: topology.source.kafka.topics)
        let time = topology.source.time
        extractor = FeatureExtractor(
            plan: plan, allowedLateness: time?.allowedLateness ?? .seconds(30), scoreLate: time?.late != .deadLetter,
            idleTTL: topology.state.idleTTL, maxEntities: max(1, topology.state.maxEntities / workers),
            seed: UInt64(shard), tableSeed: UInt64(shard) &* 0x9E37_79B9_7F4A_7C15)
        models = ModelSet(specs: topology.models, plan: plan)
        let tunables = Tunables(topology)
        let labelSources = topology.models.compactMap(\.kind.labels)
        joinsLabels = !labelSources.isEmpty && topology.source.id != nil
        // With labels, the weights of two models or more are learned from them (unless fixed).
        ensemble = Ensemble(
            weights: tunables.weights, minimumScores: Self.minimumEnsembleScores,
            learnsWeights: joinsLabels && topology.models.count >= 2 && topology.ensemble.weights == .learned)
        threshold = AlertThreshold(topology.threshold)
        writer = AlertWriter(
            topology: topology.name, topologyHash: topology.configHash, names: topology.models.map(\.name),
            versions: models.versions,
            roles: topology.models.map(\.role), explain: topology.alerts.explain)
        self.sink = sink
        self.inFlight = inFlight
        segments = LiveSegments(
            fields: joinsLabels ? topology.segments : [], layout: EventLayout(schema: topology.schema))
        join = LabelJoin(
            expireMs: labelSources.map(\.expire.wholeMilliseconds).max() ?? 0,
            capacity: max(1, Pipeline.labelWaitCapacity / workers), earlyCapacity: Pipeline.earlyLabelCapacity,
            columns: plan.names.count,
            categoryColumns: plan.categoryNames.count, models: topology.models.count, segments: segments.count)
        learnsFromLabels = topology.models.map { $0.kind.labels != nil }
        canaryShares = tunables.canaryShares
        rollout = tunables.rollout
        metrics = PrequentialMetrics(window: metricsWindow)
        tracks = ModelTracks(models: topology.models.count, threshold: topology.threshold)
        experiment = topology.experiment
        experimentSalt = topology.experiment?.salt ?? 0
        modelArms = topology.models.map { m in topology.experiment?.arms.firstIndex { $0.models.contains(m.name) } }
        arms = (topology.experiment?.arms ?? []).map { _ in ArmFigures() }
        drift = topology.drift.map { spec in
            let values = topology.features.filter { if case .value = $0.kind { return true } else { return false } }
            return DriftWatch(spec: spec, names: plan.names, watched: spec.features ?? values.map(\.name))
        }
        topologyName = topology.name
        let layout = EventLayout(schema: topology.schema)
        var raw: [String: Int] = [:]
        for f in topology.features {
            if case .value(let field, let t) = f.kind, t != .identity, let c = layout.numbers.firstIndex(of: field) {
                raw[f.name] = c
            }
        }
        rawValueColumns = raw
        matrix = extractor.makeMatrix()
        labelMatrix = extractor.makeMatrix()
        modelInput = Array(repeating: .nan, count: topology.models.count)
        counted = Array(repeating: false, count: topology.models.count)
        percentiles = Array(repeating: .nan, count: topology.models.count)
        rowScores = Array(repeating: .nan, count: topology.models.count)
        spanScores = Array(repeating: [], count: topology.models.count)
        spanStarts = Array(repeating: 0, count: topology.models.count)
        spanEnds = Array(repeating: 0, count: topology.models.count)
        ready = Array(repeating: false, count: topology.models.count)
    }

    /// Runs items from `ring` until it is closed and empty.
    func run(_ ring: ShardRing<WorkItem>) {
        while let item = ring.pop() {
            switch item {
            case .events(let work): process(work)
            case .labels(let labels): learn(labels)
            case .control(let body): body(self)
            }
        }
    }

    func process(_ work: ShardWork) {
        let chunk = work.chunk
        keyGroups.groups(of: work, into: &groupScratch)
        extractor.process(work.batch, groups: groupScratch, into: &matrix, outcomes: &featureOutcomes)
        // Read through a local from here: every read of the stored property would copy the
        // matrix (retaining each of its arrays) once per event and model.
        let matrix = self.matrix
        let featureOutcomes = self.featureOutcomes
        let batch = work.batch
        let m = models.count
        var alerts: [AlertRecord] = []
        var late: [Int] = []
        let batched = (0..<m).map { models.batchSpan($0) != nil }
        // Each batched model scores the rows up to its own next change at once (its span), so
        // every score equals the one-row score. Spans are per model: a label ends only the spans
        // of the models that learn from labels, so a forest keeps its span while labels arrive
        // between the rows (measured: the replay of 1M events with their labels, 94k → see
        // bench/RESULTS.md).
        for k in 0..<m {
            spanStarts[k] = 0
            spanEnds[k] = 0
        }
        var nextLabel = 0
        for r in 0..<batch.count {
            if nextLabel < work.labels.count, work.labels[nextLabel].after < work.rows[r] {
                while nextLabel < work.labels.count, work.labels[nextLabel].after < work.rows[r] {
                    learn(CollectionOfOne(work.labels[nextLabel].record))
                    nextLabel += 1
                }
                // Labels may have changed the models that learn them: their next span starts here.
                for k in 0..<m where learnsFromLabels[k] { spanEnds[k] = r }
            }
            for k in 0..<m where batched[k] && r >= spanEnds[k] {
                spanStarts[k] = r
                spanEnds[k] = min(batch.count, r + min(Self.maxSpan, models.batchSpan(k) ?? 1))
                spanScores[k].removeAll(keepingCapacity: true)
                models.score(k, matrix, rows: r..<spanEnds[k], into: &spanScores[k])
            }
            let i = Int(work.rows[r])
            let outcome = featureOutcomes[r]
            if outcome == .lateRejected {
                late.append(i)
                chunk.outcomes[i] = .deadLettered
                counters.lateDeadLettered += 1
                continue
            }
            let key = batch.keys[r]
            let arm = experiment?.arm(of: key, salt: experimentSalt)
            models.scoreRow(matrix, row: r, batched: batched, scores: &rowScores, ready: &ready)
            for k in 0..<m {
                if batched[k] { rowScores[k] = spanScores[k][r - spanStarts[k]] }
                let s = rowScores[k]
                chunk.modelScores[i * m + k] = s
                if !ready[k] {  // per event: a model can become ready mid-batch
                    modelInput[k] = .nan
                    counted[k] = false
                } else {
                    modelInput[k] = s
                    // A canary counts only for its share of entities (fixed by the key's hash).
                    counted[k] = canaryShares[k].map { Double(key >> 11) * 0x1p-53 < $0 } ?? true
                    // In an experiment, an arm's models count for that arm's entities only.
                    if let own = modelArms[k], own != arm { counted[k] = false }
                }
            }
            let combined = ensemble.combine(modelInput, counted: counted, percentiles: &percentiles)
            // Until a model has enough scores for percentiles, events get a provisional score
            // (their percentile among the few scores so far, which keeps their rank; 0 before
            // any) and neither alert nor feed the threshold.
            let final = combined.isNaN ? (ensemble.provisional.isNaN ? 0 : ensemble.provisional) : combined
            let decision =
                combined.isNaN ? threshold.unscored : threshold.decide(score: final, entity: key, time: batch.times[r])
            chunk.scores[i] = final
            chunk.thresholds[i] = decision.threshold
            var flags = tracks.record(
                scores: rowScores, percentiles: percentiles, final: combined.isNaN ? nil : final,
                ensembleFlagged: decision.flagged, entity: key, time: batch.times[r])
            // The arm travels with the event to its label, in the flags' top byte.
            if let arm { flags |= UInt64(arm + 1) << 56 }
            chunk.modelFlags[i] = flags & ModelTracks.modelBits
            if let found = drift?.observe(
                final: combined.isNaN ? nil : final, matrix: matrix, row: r, time: batch.times[r]), !found.isEmpty
            {
                // Models started afresh: the batch scores of the rest of the spans are stale, so
                // the next row starts new spans (scores stay independent of batching).
                if drifted(found) { for k in 0..<m { spanEnds[k] = r + 1 } }
            }
            counters.scored += 1
            if decision.suppressed { counters.suppressed += 1 }
            if let arm {
                arms[arm].events += 1
                if decision.alert { arms[arm].alerts += 1 }
            }
            if decision.alert {
                counters.alerts += 1
                chunk.outcomes[i] = .alerted
                alerts.append(
                    writer.write(
                        chunk: chunk, index: i, worker: shard, contributions: explain(matrix, batch, row: r),
                        arm: arm.map { experiment!.arms[$0].name }))
            } else {
                chunk.outcomes[i] = .scored
            }
            if outcome == .lateScored {
                counters.lateScored += 1
            } else if decision.learn {
                for k in 0..<m { models.learn(k, matrix, row: r, label: nil) }
            }
            if joinsLabels, work.idHashes[r] != 0 {
                if segments.count > 0 { segments.codes(batch, row: r, chunk: chunk, record: i) }
                rowScores.withUnsafeBufferPointer { scores in
                    join.add(
                        idHash: work.idHashes[r], time: batch.times[r], clock: chunk.joinClock, score: final,
                        alerted: decision.alert,
                        modelScores: scores.baseAddress!, flags: flags, segmentCodes: segments.scratch,
                        matrix: matrix, row: r)
                }
                if let label = join.takeEarly(work.idHashes[r]), let slot = join.take(work.idHashes[r]) {
                    counters.labelsJoinedEarly += 1
                    apply(label, slot: slot)
                    for k in 0..<m where learnsFromLabels[k] { spanEnds[k] = r + 1 }
                }
            }
        }
        for k in nextLabel..<work.labels.count { learn(CollectionOfOne(work.labels[k].record)) }
        chunk.alerts[shard] = alerts
        chunk.lateDeadLetters[shard] = late
        gauges.publish(extractor: extractor, threshold: threshold.current)
        if chunk.remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            sink.complete(chunk)
            inFlight.done(chunk.count)
        }
    }

    /// The alert's explanation: each counted model's contributions as shares of its own total,
    /// weighted by the model's share of the ensemble, summed per feature; the strongest first.
    /// Counted: with a weight, and a score in this event's ensemble (`modelInput`, `counted`).
    /// A transformed value feature shows its field's value as the event had it.
    private func explain(_ matrix: FeatureMatrix, _ batch: EventBatch, row r: Int) -> [Contribution] {
        guard writer.explain > 0 else { return [] }
        let weights = ensemble.effectiveWeights
        let counted = (0..<models.count).filter {
            weights[$0] > 0 && self.counted[$0] && !modelInput[$0].isNaN
        }
        let total = counted.map { weights[$0] }.reduce(0, +)
        var merged: [String: Contribution] = [:]
        var order: [String] = []
        for k in counted {
            let parts = models.explain(k, matrix, row: r, top: 2 * writer.explain + 2)
            let size = parts.reduce(0) { $0 + abs($1.weight) }
            guard size > 0 else { continue }
            for c in parts {
                let share = c.weight / size * weights[k] / total
                if merged[c.feature] == nil {
                    order.append(c.feature)
                    let value = rawValueColumns[c.feature].map { batch.numbers[r * batch.layout.numbers.count + $0] }
                    merged[c.feature] = Contribution(feature: c.feature, value: value ?? c.value, weight: 0)
                }
                merged[c.feature]!.weight += share
            }
        }
        return Array(order.compactMap { merged[$0] }.sorted { abs($0.weight) > abs($1.weight) }.prefix(writer.explain))
    }

    /// Publishes drift records and carries out the configured action on this worker's models;
    /// true when models were started afresh.
    private func drifted(_ found: [DriftWatch.Finding]) -> Bool {
        guard let spec = drift?.spec else { return false }
        var touched: [Int] = []
        switch spec.action {
        case .none: break
        case .reset:
            touched = models.specs.indices.filter { k in
                spec.models.map { $0.contains(models.specs[k].name) }
                    ?? {
                        if case .isolationForest = models.specs[k].kind { return true }
                        if case .countingIsolationForest = models.specs[k].kind { return true }
                        return false
                    }()
            }
        case .retrain:
            touched = models.specs.indices.filter { spec.models?.contains(models.specs[$0].name) ?? false }
        }
        for k in touched {
            models.reset(k)
            ensemble.forget(model: k)
            tracks.reset(k)
        }
        let names = touched.map { models.versions[$0] }
        for f in found {
            sink.drift(
                DriftWatch.record(f, topology: topologyName, worker: shard, action: spec.action, models: names),
                topic: spec.topic)
        }
        counters.driftDetections += found.count
        return !touched.isEmpty
    }

    /// Joins labels to the events waiting for them: the label-learning models learn the row the
    /// event was scored with, and the metrics and the threshold record the outcome.
    func learn(_ labels: some Collection<LabelRecord>) {
        guard joinsLabels else { return }
        for label in labels {
            if let slot = join.take(label.idHash) {
                apply(label.isFraud, slot: slot)
            } else {
                join.holdEarly(label)
            }
        }
    }

    private func apply(_ isFraud: Bool, slot: Int) {
        join.copyRow(slot, into: &labelMatrix)
        for k in 0..<models.count where learnsFromLabels[k] {
            models.learn(k, labelMatrix, row: 0, label: isFraud)
        }
        metrics.add(score: join.score(slot), label: isFraud, alerted: join.alerted(slot))
        // Scored first, then learned (as the models): the weights the event was combined with
        // did not know its label.
        ensemble.learn(scores: { join.modelScore(slot, $0) }, fraud: isFraud)
        let flags = join.flags(slot)
        tracks.label(isFraud, scores: { join.modelScore(slot, $0) }, flagged: flags & ModelTracks.modelBits)
        let arm = Int(flags >> 56) - 1
        if arm >= 0, arm < arms.count {
            arms[arm].metrics.add(score: join.score(slot), label: isFraud, alerted: join.alerted(slot))
        }
        threshold.observe(score: join.score(slot), label: isFraud)
        if segments.count > 0 { segments.count(join.segmentValues(slot), fraud: isFraud, alerted: join.alerted(slot)) }
        counters.labelsJoined += 1
    }
}

/// A worker's live figures for the admin endpoint: written by the worker after each batch, read
/// by any thread.
final class WorkerGauges: Sendable {
    let entities = Atomic<Int>(0)
    let evictedIdle = Atomic<Int>(0)
    let evictedForCapacity = Atomic<Int>(0)
    let thresholdBits = Atomic<UInt64>(0)

    func publish(extractor: FeatureExtractor, threshold: Double) {
        entities.store(extractor.entityCount, ordering: .relaxed)
        evictedIdle.store(extractor.counters.evictedIdle, ordering: .relaxed)
        evictedForCapacity.store(extractor.counters.evictedForCapacity, ordering: .relaxed)
        thresholdBits.store(threshold.bitPattern, ordering: .relaxed)
    }

    var threshold: Double { Double(bitPattern: thresholdBits.load(ordering: .relaxed)) }
}
