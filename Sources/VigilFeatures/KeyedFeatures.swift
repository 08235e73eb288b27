import VigilCore

/// A topology's features split by the entity they aggregate over. Features keyed by the source
/// key stay in the primary plan, which the workers run per entity. Features keyed by another
/// field (a merchant, a device, an IP) or by `global` go to one keyed stage per key, which runs
/// in front of the workers over every event in arrival order (`KeyedFeatureStage`). Each keyed
/// feature's output becomes an extra numeric column of the batch, which the primary plan reads
/// as a plain value. So a ratio can divide a card's amount by its merchant's mean, and the
/// models, explanations and drift see one feature vector as before.
public struct KeyedFeatures: Sendable {
    /// The batch columns: the schema's, then one numeric column per keyed feature.
    public let layout: EventLayout
    /// What the workers compute; it reads each keyed feature from its extra column.
    public let primary: FeaturePlan
    /// One stage per key other than the source key, in order of first use.
    public let stages: [Stage]

    /// The features of one key other than the source key.
    public struct Stage: Sendable {
        /// The key field, or `FeatureSpec.globalKey`.
        public let key: String
        /// The key's categorical batch column; nil for `global`.
        public let keyColumn: Int?
        /// The stage's features, compiled as for any entity.
        public let plan: FeaturePlan
        /// For each of `plan`'s output columns, the batch column it is written to.
        public let outputs: [Int]
    }

    /// Prefix of the extra columns' names; no field of a JSON event can start with it.
    public static let columnPrefix = "\u{0}keyed/"

    /// Splits `features` (validated against `schema`) by key; `sourceKey` is the key events are
    /// routed by.
    public init(features: [FeatureSpec], schema: Schema, sourceKey: String, state: StateSpec = StateSpec())
        throws(VigilError)
    {
        let base = EventLayout(schema: schema)
        var keyed: [(key: String, features: [FeatureSpec])] = []
        var workerFeatures: [FeatureSpec] = []
        var extra: [String] = []
        for feature in features {
            guard let key = feature.kind.key, key != sourceKey else {
                workerFeatures.append(feature)
                continue
            }
            if let k = keyed.firstIndex(where: { $0.key == key }) {
                keyed[k].features.append(feature)
            } else {
                keyed.append((key, [feature]))
            }
            let column = Self.columnPrefix + feature.name
            extra.append(column)
            workerFeatures.append(FeatureSpec(name: feature.name, kind: .value(field: column, transform: .identity)))
        }
        let layout = extra.isEmpty ? base : EventLayout(numbers: base.numbers + extra, categories: base.categories)
        self.layout = layout
        var stages: [Stage] = []
        var signature = ""
        for (key, list) in keyed {
            let keyColumn: Int?
            if key == FeatureSpec.globalKey, !base.categories.contains(key) {
                keyColumn = nil
            } else {
                guard let c = base.categories.firstIndex(of: key) else {
                    throw VigilError(.invalidConfiguration, "feature key '\(key)' is not a categorical field")
                }
                keyColumn = c
            }
            let plan = try FeaturePlan(features: list, layout: layout, state: state)
            let outputs = plan.names.map { layout.numbers.firstIndex(of: Self.columnPrefix + $0)! }
            stages.append(Stage(key: key, keyColumn: keyColumn, plan: plan, outputs: outputs))
            signature += "|\(key):\(keyColumn.map(String.init) ?? "global"):\(plan.signature)"
        }
        self.stages = stages
        primary = try FeaturePlan(
            features: workerFeatures, layout: layout, state: state,
            keyedSignature: signature.isEmpty ? 0 : StableHash.hash(signature))
    }
}

/// Runs one key's features (`KeyedFeatures.Stage`) over whole batches before they are split
/// among the workers, and writes each event's outputs into the batch's extra columns.
///
/// Why one stage in front and not state shared by the workers: every event of a merchant is
/// folded in one order, the order the events were read in, so `replay` of the same input gives
/// the same features as `run`, and no lock is taken per event (docs/ARCHITECTURE.md, "Features
/// keyed by another entity", has the measurement).
///
/// `@unchecked Sendable` invariant: one thread at a time uses it (the ingest thread).
public final class KeyedFeatureStage: @unchecked Sendable {
    public let stage: KeyedFeatures.Stage
    public let extractor: FeatureExtractor
    private var keys: [UInt64] = []
    private var matrix: FeatureMatrix
    private var outcomes: [FeatureExtractor.Outcome] = []
    private var present: [Int] = []
    private var subset: EventBatch

    /// Key hash of every event under `global`.
    static let globalKeyHash: UInt64 = 1

    /// - Parameter maxEntities: the most entities of this key kept (the least recently active are
    ///   evicted beyond it).
    public init(
        _ stage: KeyedFeatures.Stage, layout: EventLayout, allowedLateness: Duration, idleTTL: Duration,
        maxEntities: Int
    ) {
        self.stage = stage
        // A late event is scored against the merchant's state as it stands: whether it goes to
        // the dead letters is decided by its own entity, in the worker.
        extractor = FeatureExtractor(
            plan: stage.plan, allowedLateness: allowedLateness, scoreLate: true, idleTTL: idleTTL,
            maxEntities: maxEntities, seed: StableHash.hash(stage.key))
        matrix = extractor.makeMatrix()
        subset = EventBatch(layout: layout)
    }

    /// Computes the stage's features of every event of `batch`, in order, into its extra columns.
    /// An event without a value for the key gets NaN there (a missing value to the models).
    public func apply(to batch: inout EventBatch) {
        let n = batch.count
        guard n > 0 else { return }
        keys.removeAll(keepingCapacity: true)
        present.removeAll(keepingCapacity: true)
        if let column = stage.keyColumn {
            let width = batch.layout.categories.count
            batch.categories.withUnsafeBufferPointer { categories in
                for i in 0..<n where categories[i * width + column] != 0 {
                    keys.append(categories[i * width + column])
                    present.append(i)
                }
            }
        } else {
            keys.append(contentsOf: repeatElement(Self.globalKeyHash, count: n))
        }
        if keys.count == n {
            extractor.process(batch, entityKeys: keys, into: &matrix, outcomes: &outcomes)
            write(into: &batch) { $0 }
        } else if !keys.isEmpty {
            subset.removeAll()
            for i in present { subset.append(from: batch, at: i) }
            extractor.process(subset, entityKeys: keys, into: &matrix, outcomes: &outcomes)
            write(into: &batch) { present[$0] }
        }
    }

    private func write(into batch: inout EventBatch, row: (Int) -> Int) {
        let width = stage.outputs.count
        matrix.values.withUnsafeBufferPointer { values in
            for r in 0..<keys.count {
                let target = row(r)
                for c in 0..<width { batch.setNumber(row: target, column: stage.outputs[c], values[r * width + c]) }
            }
        }
    }
}
