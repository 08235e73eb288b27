import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The second streaming forest, after the Online Isolation Forest of Leveni et al. (ICML 2024):
/// trees that keep no events at all, only how much of the recent stream fell into each node.
///
/// - Every event walks every tree and adds its weight to each node on its path.
/// - Older weight decays with a half-life of `windowEvents` events.
/// - A leaf holding more than two events' share of a `sample`-sized subsample splits. The split
///   is on a random feature, at a uniform point of the leaf's box (the observed feature ranges
///   narrowed by the splits above it), and the mass is shared between the children in proportion.
/// - A point is isolated where its path reaches a node holding less than one event's share:
///   regions the stream has left decay until they isolate points quickly, which is how these
///   trees forget without storing events.
///
/// Topologies select it with `kind: counting_isolation_forest`. `IsolationForest` (trees rebuilt
/// in rotation) measured better and is the default; this one keeps no event values in memory or
/// in checkpoints. docs/models.md has the numbers.
public struct CountingIsolationForest: OnlineModel, Equatable {
    public static let kind = "counting_isolation_forest"

    public let featureNames: [String]
    public let trees: Int
    public let sample: Int
    public let windowEvents: Int
    private(set) var forest: [Tree] = []
    /// Observed range of each feature (grown as values arrive); the root box.
    private(set) var low: [Float]
    private(set) var high: [Float]
    /// Events kept until there are `sample` of them, to set the ranges before the first splits.
    private var warmUp: [Float] = []
    private var random: SeededRandom
    /// New weight is added as `increment`, which grows by the decay factor per event, so old mass
    /// shrinks relative to it without touching every node (rescaled when it grows large).
    private var increment = 1.0
    private var growth: Double
    /// The share of the stream this replica learns from (its instance's share of the source
    /// partitions, set by the engine): old weight decays with a half-life of that share of
    /// `windowEvents`, so the forest describes the same stretch of the stream however many
    /// instances share it. Not checkpointed: the engine sets it again on every assignment.
    public var streamShare = 1.0 {
        didSet { growth = Self.growth(halfLife: Double(windowEvents) * min(1, max(0, streamShare)), sample: sample) }
    }

    /// The per-event growth of new weight for a half-life of `halfLife` events (at least `sample`).
    private static func growth(halfLife: Double, sample: Int) -> Double { exp2(1 / max(Double(sample), halfLife)) }
    /// Total mass (current scale) of all events learned.
    private var total = 0.0
    public private(set) var learned = 0

    struct Tree: Sendable, Equatable {
        var nodes: [Node]
    }

    struct Node: Sendable, Equatable {
        var feature: Int16  // -1 for a leaf
        var split: Float
        var left: Int32
        var mass: Double
    }

    var maxDepth: Int { Int(ceil(log2(Double(max(2, sample))))) }

    public init(features: [String], spec: IsolationForestSpec = IsolationForestSpec(), seed: UInt64 = 0) {
        precondition(!features.isEmpty && features.count <= Int(Int16.max))
        featureNames = features
        trees = spec.trees
        sample = spec.sample
        windowEvents = max(spec.windowEvents, spec.sample)
        low = Array(repeating: .infinity, count: features.count)
        high = Array(repeating: -.infinity, count: features.count)
        random = SeededRandom(seed: seed)
        growth = Self.growth(halfLife: Double(windowEvents), sample: spec.sample)
    }

    var dimensions: Int { featureNames.count }
    public var isWarm: Bool { !forest.isEmpty }

    private func row(_ matrix: FeatureMatrix, _ r: Int, _ binding: ColumnBinding) -> [Float] {
        (0..<dimensions).map { j in
            let v = binding.value(matrix, row: r, j)
            return v.isFinite ? Float(v) : 0
        }
    }

    /// Mass of one event's share of a `sample`-sized subsample, in the current scale.
    private var unit: Double { total / Double(sample) }

    // MARK: Scoring

    private func pathLength(_ tree: Tree, _ x: [Float]) -> Double {
        var i = 0
        var depth = 0.0
        let unit = self.unit
        while true {
            let node = tree.nodes[i]
            let equivalent = node.mass / unit  // sample events in this node
            if equivalent < 1 || node.feature < 0 { return depth + IsolationForest.c(max(equivalent, 0)) }
            i = Int(node.left) + (x[Int(node.feature)] < node.split ? 0 : 1)
            depth += 1
        }
    }

    private func score(_ x: [Float]) -> Double {
        guard !forest.isEmpty, total > 0 else { return 0.5 }
        var sum = 0.0
        for tree in forest { sum += pathLength(tree, x) }
        return exp2(-(sum / Double(forest.count)) / IsolationForest.c(Double(sample)))
    }

    public func score(_ matrix: FeatureMatrix, row r: Int) -> Double {
        score(row(matrix, r, binding(for: matrix)))
    }

    /// Where this forest's features sit in matrices shaped like `matrix` (resolve once, reuse).
    public func binding(for matrix: FeatureMatrix) -> ColumnBinding {
        ColumnBinding(numeric: featureNames, in: matrix)
    }

    /// `score(_:row:)` with the columns already resolved.
    public func score(_ matrix: FeatureMatrix, row r: Int, binding: ColumnBinding) -> Double {
        score(row(matrix, r, binding))
    }

    // MARK: Learning

    public mutating func learn(_ matrix: FeatureMatrix, row r: Int, label: Bool?) {
        guard label == nil else { return }
        learnUnlabelled(matrix, rows: CollectionOfOne(r))
    }

    /// Learns one unlabelled row with the columns already resolved.
    public mutating func learn(_ matrix: FeatureMatrix, row r: Int, binding: ColumnBinding) {
        learn(row(matrix, r, binding))
    }

    public mutating func learnUnlabelled(_ matrix: FeatureMatrix, rows: some Sequence<Int>) {
        let binding = ColumnBinding(numeric: featureNames, in: matrix)
        for r in rows { learn(row(matrix, r, binding)) }
    }

    private mutating func learn(_ x: [Float]) {
        learned += 1
        for j in 0..<dimensions {
            low[j] = min(low[j], x[j])
            high[j] = max(high[j], x[j])
        }
        if forest.isEmpty {
            warmUp += x
            guard warmUp.count / dimensions >= sample else { return }
            forest = (0..<trees).map { _ in Tree(nodes: [Node(feature: -1, split: 0, left: 0, mass: 0)]) }
            let kept = warmUp
            warmUp = []
            for r in 0..<(kept.count / dimensions) { add(Array(kept[r * dimensions..<(r + 1) * dimensions])) }
            return
        }
        add(x)
    }

    private mutating func add(_ x: [Float]) {
        total += increment
        for t in forest.indices { insert(x, into: t) }
        increment *= growth
        if increment > 1e100 { rescale() }
    }

    private mutating func insert(_ x: [Float], into t: Int) {
        // The leaf's box is only needed when it splits (rarely): recompute it then.
        var i = 0
        var depth = 0
        while true {
            forest[t].nodes[i].mass += increment
            let node = forest[t].nodes[i]
            if node.feature < 0 {
                if depth < maxDepth, node.mass >= 2 * unit { split(t, i, box: box(of: x, in: t)) }
                return
            }
            i = Int(node.left) + (x[Int(node.feature)] < node.split ? 0 : 1)
            depth += 1
        }
    }

    /// The box of the leaf `x` reaches in tree `t`: the feature ranges narrowed by its path.
    private func box(of x: [Float], in t: Int) -> (low: [Float], high: [Float]) {
        var box = (low: low, high: high)
        var i = 0
        let nodes = forest[t].nodes
        while nodes[i].feature >= 0 {
            let node = nodes[i]
            let f = Int(node.feature)
            if x[f] < node.split {
                box.high[f] = node.split
                i = Int(node.left)
            } else {
                box.low[f] = node.split
                i = Int(node.left) + 1
            }
        }
        return box
    }

    /// Splits leaf `i` of tree `t` on a random feature with room in the leaf's box.
    private mutating func split(_ t: Int, _ i: Int, box: (low: [Float], high: [Float])) {
        for _ in 0..<min(dimensions, 8) {
            let f = random.below(dimensions)
            let lo = box.low[f]
            let hi = box.high[f]
            guard hi > lo, lo.isFinite, hi.isFinite else { continue }
            let fraction = random.unit()
            let value = lo + Float(fraction) * (hi - lo)
            guard value > lo, value < hi else { continue }
            let mass = forest[t].nodes[i].mass
            let left = forest[t].nodes.count
            forest[t].nodes.append(Node(feature: -1, split: 0, left: 0, mass: mass * fraction))
            forest[t].nodes.append(Node(feature: -1, split: 0, left: 0, mass: mass * (1 - fraction)))
            forest[t].nodes[i] = Node(feature: Int16(f), split: value, left: Int32(left), mass: mass)
            return
        }
    }

    private mutating func rescale() {
        let f = 1 / increment
        for t in forest.indices {
            for i in forest[t].nodes.indices { forest[t].nodes[i].mass *= f }
        }
        total *= f
        increment = 1
    }

    // MARK: Explanation, merging, encoding

    /// Features whose splits cut the event's path down fastest (bits of mass removed per split).
    public func explain(_ matrix: FeatureMatrix, row r: Int, top: Int) -> [Contribution] {
        let binding = ColumnBinding(numeric: featureNames, in: matrix)
        let x = row(matrix, r, binding)
        var credit = [Double](repeating: 0, count: dimensions)
        for tree in forest {
            var i = 0
            while tree.nodes[i].feature >= 0, tree.nodes[i].mass >= unit {
                let node = tree.nodes[i]
                let next = Int(node.left) + (x[Int(node.feature)] < node.split ? 0 : 1)
                credit[Int(node.feature)] += log2(node.mass / max(tree.nodes[next].mass, 1e-300))
                i = next
            }
        }
        return Contribution.isolation(
            names: featureNames, values: (0..<dimensions).map { binding.value(matrix, row: r, $0) }, credits: credit,
            score: score(x), top: top)
    }

    /// Takes `weight` of its trees from `peer`, with their masses brought to this scale.
    public mutating func merge(_ peer: CountingIsolationForest, weight: Double) {
        let k = Int((min(1, max(0, weight)) * Double(trees)).rounded())
        adoptTrees(of: peer, at: 0..<k)
    }

    /// Replaces the trees at `slots` with `peer`'s, their masses brought to this scale (a
    /// federated average apportions a forest's slots among the replicas by their weights).
    public mutating func adoptTrees(of peer: CountingIsolationForest, at slots: some Sequence<Int>) {
        precondition(peer.featureNames == featureNames && peer.trees == trees && peer.sample == sample)
        guard !peer.forest.isEmpty else { return }
        if forest.isEmpty {
            self = peer
            return
        }
        let factor = increment / peer.increment  // the peer's masses in this model's scale
        for t in slots where t < forest.count && t < peer.forest.count {
            forest[t] = peer.forest[t]
            for i in forest[t].nodes.indices { forest[t].nodes[i].mass *= factor }
        }
        for j in 0..<dimensions {
            low[j] = min(low[j], peer.low[j])
            high[j] = max(high[j], peer.high[j])
        }
    }

    public func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))
        out.write(UInt32(featureNames.count))
        for name in featureNames { out.write(name) }
        for n in [trees, sample, windowEvents, learned] { out.write(n) }
        for w in random.state { out.write(w) }
        out.write(increment)
        out.write(total)
        for j in 0..<dimensions {
            out.write(UInt32(low[j].bitPattern))
            out.write(UInt32(high[j].bitPattern))
        }
        out.write(UInt32(warmUp.count))
        for v in warmUp { out.write(v.bitPattern) }
        out.write(UInt32(forest.count))
        for tree in forest {
            out.write(UInt32(tree.nodes.count))
            for node in tree.nodes {
                out.write(UInt32(UInt16(bitPattern: node.feature)))
                out.write(node.split.bitPattern)
                out.write(UInt32(bitPattern: node.left))
                out.write(node.mass)
            }
        }
    }

    public init(decoding input: inout BinaryReader) throws(CheckpointError) {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "counting forest body version \(version)") }
        let names = try input.checkpointNames(limit: Int(Int16.max))
        let d = names.count
        func int(_ range: ClosedRange<Int>, _ what: String) throws(CheckpointError) -> Int {
            try input.checkpointInt(range, what)
        }
        let trees = try int(1...1000, "trees")
        let sample = try int(2...4096, "sample")
        let window = try int(sample...100_000_000, "window")
        self.init(features: names, spec: IsolationForestSpec(trees: trees, sample: sample, windowEvents: window))
        learned = try int(0...Int.max, "events learned")
        random = try input.checkpointRandom()
        increment = try input.checkpoint { r throws(VigilError) in try r.double() }
        total = try input.checkpoint { r throws(VigilError) in try r.double() }
        guard increment >= 1, increment.isFinite, total >= 0, total.isFinite else {
            throw CheckpointError(.corrupt, "bad scale")
        }
        for j in 0..<d {
            low[j] = Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
            high[j] = Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
        }
        let pending = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard pending <= sample * d, input.remaining >= 4 * pending else {
            throw CheckpointError(.corrupt, "warm-up of \(pending) values")
        }
        for _ in 0..<pending {
            warmUp.append(Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() }))
        }
        let count = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard count == 0 || count == trees else { throw CheckpointError(.corrupt, "\(count) trees") }
        for _ in 0..<count {
            let nodes = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
            guard (1...(2 << maxDepth)).contains(nodes), input.remaining >= 20 * nodes else {
                throw CheckpointError(.corrupt, "a tree of \(nodes) nodes")
            }
            var tree = Tree(nodes: [])
            for _ in 0..<nodes {
                let feature = Int16(
                    bitPattern: UInt16(
                        truncatingIfNeeded: try input.checkpoint { r throws(VigilError) in try r.uint32() }))
                let split = Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
                let left = Int32(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
                let mass = try input.checkpoint { r throws(VigilError) in try r.double() }
                guard feature < Int16(d), feature >= -1, mass >= 0,
                    feature == -1 || (Int(left) > tree.nodes.count && Int(left) + 1 < nodes)
                else { throw CheckpointError(.corrupt, "a tree node points outside its tree") }
                tree.nodes.append(Node(feature: feature, split: split, left: left, mass: mass))
            }
            forest.append(tree)
        }
    }

    /// Bytes the model holds.
    public var memoryBytes: Int { forest.reduce(0) { $0 + $1.nodes.count * MemoryLayout<Node>.stride } }

    public static func == (a: CountingIsolationForest, b: CountingIsolationForest) -> Bool {
        a.featureNames == b.featureNames && a.trees == b.trees && a.sample == b.sample
            && a.windowEvents == b.windowEvents
            && a.forest == b.forest && a.low == b.low && a.high == b.high && a.warmUp == b.warmUp
            && a.random == b.random
            && a.increment == b.increment && a.total == b.total && a.learned == b.learned
    }
}
