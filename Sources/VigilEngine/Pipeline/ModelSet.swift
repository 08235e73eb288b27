import VigilCore
import VigilFeatures
import VigilModels

/// The models of one worker, in topology order: their specs and versions, and the models
/// themselves kept in one array per algorithm, so learning mutates them in place and scoring
/// dispatches with a switch rather than through an existential.
struct ModelSet: Sendable {
    let specs: [ModelSpec]
    /// `name@hash` per model: the hash covers the model's spec and the feature plan it reads, so
    /// a changed model gets a new version and alert ids change with it.
    let versions: [String]
    private let plan: FeaturePlan
    private let slots: [Slot]
    private var forests: [IsolationForest] = []
    private var countingForests: [CountingIsolationForest] = []
    private var regressions: [LogisticRegression] = []
    /// Per regression (indexed like `regressions`), the labels its federation peers learned, as
    /// of the last average it adopted: what its parameters hold beyond its own counts, so it
    /// joins the ensemble as soon as the group has seen enough labels. An array, not a
    /// dictionary: `isReady` reads it for every event.
    private var peerLabels: [(labelled: Int, positives: Int)] = []
    /// The forests' share of the stream (`setStreamShare`).
    private(set) var streamShare = 1.0
    /// Each model's columns in the worker's matrices (they all share the plan's layout).
    private var bindings: [ColumnBinding] = []

    private enum Slot: Sendable {
        case forest(Int)
        case countingForest(Int)
        case regression(Int)
    }

    init(specs: [ModelSpec], plan: FeaturePlan) {
        self.specs = specs
        self.plan = plan
        var slots: [Slot] = []
        for spec in specs {
            let wanted = spec.features.map(Set.init)
            let numeric = plan.names.filter { wanted?.contains($0) ?? true }
            switch spec.kind {
            case .isolationForest(let forest):
                slots.append(.forest(forests.count))
                forests.append(
                    spec.initial.map { IsolationForest(features: numeric, imported: $0, spec: forest, seed: spec.seed) }
                        ?? IsolationForest(features: numeric, spec: forest, seed: spec.seed))
            case .countingIsolationForest(let forest):
                slots.append(.countingForest(countingForests.count))
                countingForests.append(CountingIsolationForest(features: numeric, spec: forest, seed: spec.seed))
            case .logisticRegression(let lr):
                let categories = zip(plan.categoryNames, plan.categoryBuckets).filter { wanted?.contains($0.0) ?? true }
                slots.append(.regression(regressions.count))
                peerLabels.append((0, 0))
                let named = categories.map { (name: $0.0, buckets: $0.1) }
                let parameters = LogisticRegression.Parameters(lr)
                regressions.append(
                    spec.initial.map {
                        LogisticRegression(features: numeric, categories: named, parameters: parameters, imported: $0)
                    } ?? LogisticRegression(features: numeric, categories: named, parameters: parameters))
            }
        }
        self.slots = slots
        versions = specs.map { Self.version(spec: $0, plan: plan) }
        let shape = FeatureMatrix(
            names: plan.names, categoryNames: plan.categoryNames, categoryBuckets: plan.categoryBuckets)
        bindings = slots.map { slot in
            switch slot {
            case .forest(let k): return forests[k].binding(for: shape)
            case .countingForest(let k): return countingForests[k].binding(for: shape)
            case .regression(let k): return regressions[k].binding(for: shape)
            }
        }
    }

    static func version(spec: ModelSpec, plan: FeaturePlan) -> String {
        spec.version(planSignature: plan.signature)
    }

    var count: Int { specs.count }

    /// Labels (and positives among them) a label-learning model needs before its scores count in
    /// the ensemble: until then it scores every event alike, and a constant score would only
    /// dilute the others.
    static let minimumLabels = 200
    static let minimumPositives = 10

    /// Whether model `m`'s scores count in the ensemble yet. A forest before its first trees
    /// scores every event 0.5: counting those would fill its percentile memory with one value,
    /// against which every later score looks extreme.
    func isReady(_ m: Int) -> Bool {
        switch slots[m] {
        case .forest(let k): return forests[k].isWarm
        case .countingForest(let k): return countingForests[k].isWarm
        case .regression(let k):
            let peers = peerLabels[k]
            return regressions[k].labelled + peers.labelled >= Self.minimumLabels
                && regressions[k].positives + peers.positives >= Self.minimumPositives
        }
    }

    /// Model `m`'s score of `row` (a matrix with the plan's layout).
    func score(_ m: Int, _ matrix: FeatureMatrix, row: Int) -> Double {
        switch slots[m] {
        case .forest(let k): return forests[k].score(matrix, row: row, binding: bindings[m])
        case .countingForest(let k): return countingForests[k].score(matrix, row: row, binding: bindings[m])
        case .regression(let k): return regressions[k].score(matrix, row: row, binding: bindings[m])
        }
    }

    /// One event's scores from the models that `batched` leaves out, into `scores`, and whether
    /// each model counts yet, into `ready` (`isReady`). `mutating` so that the worker calls it in
    /// place: a non-mutating call on the set stored in the worker copies the set, a retain and a
    /// release of each of its arrays, three times per event (measured: see bench/RESULTS.md).
    mutating func scoreRow(
        _ matrix: FeatureMatrix, row: Int, batched: [Bool], scores: inout [Double], ready: inout [Bool]
    ) {
        for m in slots.indices {
            if !batched[m] { scores[m] = score(m, matrix, row: row) }
            ready[m] = isReady(m)
        }
    }

    /// For a model that can score several rows as one batch: how many rows from here (it
    /// changes only after that many learned events). nil for models scored one row at a time.
    func batchSpan(_ m: Int) -> Int? {
        if case .forest(let k) = slots[m] { return forests[k].learnsUntilChange }
        return nil
    }

    /// Model `m`'s scores of `rows`, appended to `out` (only for models with a `batchSpan`).
    func score(_ m: Int, _ matrix: FeatureMatrix, rows: Range<Int>, into out: inout [Double]) {
        switch slots[m] {
        case .forest(let k): forests[k].score(matrix, rows: rows, binding: bindings[m], into: &out)
        case .countingForest(let k):
            for r in rows { out.append(countingForests[k].score(matrix, row: r, binding: bindings[m])) }
        case .regression(let k):
            for r in rows { out.append(regressions[k].score(matrix, row: r, binding: bindings[m])) }
        }
    }

    /// Model `m` learns `row` (a matrix with the plan's layout); a forest ignores labelled calls.
    mutating func learn(_ m: Int, _ matrix: FeatureMatrix, row: Int, label: Bool?) {
        switch slots[m] {
        case .forest(let k): if label == nil { forests[k].learn(matrix, row: row, binding: bindings[m]) }
        case .countingForest(let k):
            if label == nil { countingForests[k].learn(matrix, row: row, binding: bindings[m]) }
        case .regression(let k): regressions[k].learn(matrix, row: row, label: label, binding: bindings[m])
        }
    }

    func explain(_ m: Int, _ matrix: FeatureMatrix, row: Int, top: Int) -> [Contribution] {
        switch slots[m] {
        case .forest(let k): return forests[k].explain(matrix, row: row, top: top)
        case .countingForest(let k): return countingForests[k].explain(matrix, row: row, top: top)
        case .regression(let k): return regressions[k].explain(matrix, row: row, top: top)
        }
    }

    /// Appends model `m` (its `OnlineModel` encoding).
    func encode(_ m: Int, into out: inout BinaryWriter) {
        switch slots[m] {
        case .forest(let k): forests[k].encode(into: &out)
        case .countingForest(let k): countingForests[k].encode(into: &out)
        case .regression(let k): regressions[k].encode(into: &out)
        }
    }

    /// A decoded model, ready to replace model `m` (decoding and replacing are separate, so a
    /// damaged checkpoint changes nothing).
    enum Decoded: Sendable {
        case forest(IsolationForest)
        case countingForest(CountingIsolationForest)
        case regression(LogisticRegression)
    }

    /// Reads model `m`'s encoding as written by `encode`.
    func decode(_ m: Int, from input: inout BinaryReader) throws(CheckpointError) -> Decoded {
        switch slots[m] {
        case .forest: return .forest(try IsolationForest(decoding: &input))
        case .countingForest: return .countingForest(try CountingIsolationForest(decoding: &input))
        case .regression: return .regression(try LogisticRegression(decoding: &input))
        }
    }

    /// Starts model `m` afresh, as its spec builds it (a drift action).
    mutating func reset(_ m: Int) {
        let fresh = ModelSet(specs: [specs[m]], plan: plan)
        switch (slots[m], fresh.slots[0]) {
        case (.forest(let k), .forest(let j)):
            forests[k] = fresh.forests[j]
            forests[k].streamShare = streamShare
        case (.countingForest(let k), .countingForest(let j)):
            countingForests[k] = fresh.countingForests[j]
            countingForests[k].streamShare = streamShare
        case (.regression(let k), .regression(let j)):
            regressions[k] = fresh.regressions[j]
            peerLabels[k] = (0, 0)
        default: preconditionFailure("a spec builds its own kind")
        }
    }

    /// Moves model `m` toward a decoded replica of it (another worker's): `weight` is the
    /// replica's share (0...1), as `OnlineModel.merge` takes it.
    mutating func merge(_ m: Int, with decoded: Decoded, weight: Double) {
        switch (slots[m], decoded) {
        case (.forest(let k), .forest(let model)): forests[k].merge(model, weight: weight)
        case (.countingForest(let k), .countingForest(let model)): countingForests[k].merge(model, weight: weight)
        case (.regression(let k), .regression(let model)): regressions[k].merge(model, weight: weight)
        default: preconditionFailure("a decoded model merges into one of its own kind")
        }
    }

    /// How many examples model `m` learned from: its weight in a federated average (Flower's
    /// FedAvg). Labels for a regression, events for a forest (none before its first trees).
    func examples(_ m: Int) -> Double {
        switch slots[m] {
        case .forest(let k): return forests[k].isWarm ? Double(forests[k].learned) : 0
        case .countingForest(let k): return countingForests[k].isWarm ? Double(countingForests[k].learned) : 0
        case .regression(let k): return Double(regressions[k].labelled)
        }
    }

    /// Model `m` as a value (a copy that shares storage until either side learns).
    func model(_ m: Int) -> Decoded {
        switch slots[m] {
        case .forest(let k): return .forest(forests[k])
        case .countingForest(let k): return .countingForest(countingForests[k])
        case .regression(let k): return .regression(regressions[k])
        }
    }

    /// Takes a federated average's learned parameters into model `m`: a regression's weights and
    /// input statistics, a forest's trees. What the model learned since `snapshot` (the copy the
    /// average was made from) is kept: a regression's updates since, a forest's trees rebuilt
    /// since. Its window and its counts stay its own.
    mutating func adopt(_ m: Int, _ average: Decoded, since snapshot: Decoded) {
        switch (slots[m], average, snapshot) {
        case (.forest(let k), .forest(let model), .forest(let before)):
            forests[k].adoptTrees(of: model, keepingChangesSince: before)
        case (.countingForest(let k), .countingForest(let model), .countingForest):
            // Every event changes a counting forest's masses: its trees are taken as they are.
            countingForests[k].adoptTrees(of: model, at: 0..<model.trees)
        case (.regression(let k), .regression(let model), .regression(let before)):
            regressions[k].adopt(model, since: before)
            // The average's counts are the sums over every replica, this one's copy included.
            peerLabels[k] = (max(0, model.labelled - before.labelled), max(0, model.positives - before.positives))
        default: preconditionFailure("an average is adopted by a model of its own kind")
        }
    }

    /// The FedAvg of replicas of one model, each weighted by the examples it learned from:
    /// linear parameters are averaged, a forest's tree slots are shared out in proportion
    /// (largest remainders). nil when no replica has a weight.
    static func average(_ replicas: [(model: Decoded, weight: Double)]) -> Decoded? {
        let weighted = replicas.filter { $0.weight > 0 }
        guard let first = weighted.first else { return nil }
        switch first.model {
        case .regression(var base):
            var total = first.weight
            for r in weighted.dropFirst() {
                guard case .regression(let model) = r.model else { return nil }
                base.merge(model, weight: r.weight / (total + r.weight))
                total += r.weight
            }
            return .regression(base)
        case .forest(let base):
            let forests = weighted.compactMap { r -> IsolationForest? in
                if case .forest(let f) = r.model { return f }
                return nil
            }
            guard forests.count == weighted.count else { return nil }
            return .forest(
                shareSlots(base, base.trees, forests, weighted.map(\.weight)) { $0.adoptTrees(of: $1, at: $2) })
        case .countingForest(let base):
            let forests = weighted.compactMap { r -> CountingIsolationForest? in
                if case .countingForest(let f) = r.model { return f }
                return nil
            }
            guard forests.count == weighted.count else { return nil }
            return .countingForest(
                shareSlots(base, base.trees, forests, weighted.map(\.weight)) { $0.adoptTrees(of: $1, at: $2) })
        }
    }

    /// `base` (the first replica) with the tree slots shared out among `replicas` by `weights`:
    /// each replica after the first fills its share of slots, in order, through `adopt`.
    private static func shareSlots<Forest>(
        _ base: Forest, _ trees: Int, _ replicas: [Forest], _ weights: [Double],
        adopt: (inout Forest, Forest, Range<Int>) -> Void
    ) -> Forest {
        var out = base
        var start = 0
        for (j, n) in apportion(trees, weights).enumerated() {
            if j > 0 { adopt(&out, replicas[j], start..<start + n) }
            start += n
        }
        return out
    }

    /// `total` slots shared out in proportion to `weights` (Hamilton's largest remainders).
    static func apportion(_ total: Int, _ weights: [Double]) -> [Int] {
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return weights.map { _ in 0 } }
        let quotas = weights.map { Double(total) * $0 / sum }
        var shares = quotas.map { Int($0.rounded(.down)) }
        let order = quotas.indices.sorted { quotas[$0] - Double(shares[$0]) > quotas[$1] - Double(shares[$1]) }
        for i in order.prefix(total - shares.reduce(0, +)) { shares[i] += 1 }
        return shares
    }

    /// Replaces model `m` with a decoded one of the same kind.
    mutating func replace(_ m: Int, with decoded: Decoded) {
        switch (slots[m], decoded) {
        case (.forest(let k), .forest(let model)):
            forests[k] = model
            forests[k].streamShare = streamShare
        case (.countingForest(let k), .countingForest(let model)):
            countingForests[k] = model
            countingForests[k].streamShare = streamShare
        case (.regression(let k), .regression(let model)):
            regressions[k] = model
            peerLabels[k] = (0, 0)
        default: preconditionFailure("a decoded model replaces one of its own kind")
        }
    }

    /// Sets the share of the stream the forests learn from (`IsolationForest.streamShare`): the
    /// instance's share of the source partitions. Models replaced or reset later take it too.
    mutating func setStreamShare(_ share: Double) {
        streamShare = share
        for k in forests.indices { forests[k].streamShare = share }
        for k in countingForests.indices { countingForests[k].streamShare = share }
    }
}
