import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A streaming isolation forest whose trees are rebuilt in rotation: the last `windowEvents`
/// events are kept (trees are grown from the newest `streamShare` of them), and every
/// `windowEvents / trees` events (scaled alike) the oldest tree is replaced by one grown on a
/// fresh sample of `sample` events from that window. The forest therefore always
/// describes the recent window: it learns and forgets without ever refitting everything at once,
/// and each rebuild is one small tree (microseconds).
///
/// Scores follow Liu et al.'s isolation forest: `2^(−E[h(x)] / c(sample))` over the trees, in
/// [0, 1], higher is more anomalous, about 0.5 for typical events. Scores are useful once the
/// window holds `sample` events (256 by default): the first forest is grown then. Before that,
/// every score is 0.5.
public struct IsolationForest: OnlineModel, Equatable {
    public static let kind = "isolation_forest"

    public let featureNames: [String]
    public let trees: Int
    public let sample: Int
    public let windowEvents: Int
    // Internal setters: IsolationForest+Codec.swift restores them.
    /// The window: `windowEvents` rows of `featureNames.count` values, as a ring.
    var window: [Float]
    var windowFilled = 0
    var windowNext = 0
    var forest: [Tree] = []
    var rotation = 0
    var sinceRebuild = 0
    var random: SeededRandom
    /// Events learned.
    public internal(set) var learned = 0
    /// The share of the stream this replica learns from (its instance's share of the source
    /// partitions, set by the engine): the trees are grown from that share of the window, the
    /// most recent events, and rebuilt that much sooner, so the forest describes the same stretch
    /// of the stream however many instances share it (docs/scaling.md). Not checkpointed: the
    /// engine sets it again on every assignment.
    public var streamShare = 1.0 {
        didSet {
            activeWindow = min(
                windowEvents, max(sample, Int((Double(windowEvents) * min(1, max(0, streamShare))).rounded())))
        }
    }

    /// The events trees are grown from: `windowEvents` scaled by `streamShare`, at least `sample`
    /// (kept, not computed: the learning path reads it for every event).
    public private(set) var activeWindow: Int

    /// One isolation tree, nodes in an array; children of node i are `left` and `left + 1`. It also
    /// keeps the same tree in the form the scorers walk (`Walk`).
    struct Tree: Sendable, Equatable {
        /// The tree as grown: the checkpoint, explanations and merges read these.
        let nodes: [Node]
        let walk: Walk

        init(nodes: [Node]) {
            self.nodes = nodes
            walk = Walk(nodes)
        }

        /// The walk form follows from `nodes`.
        static func == (a: Tree, b: Tree) -> Bool { a.nodes == b.nodes }
    }

    /// A tree as the scorers walk it, in memory that stays put (so a scorer can hold the
    /// addresses of several trees at once): every leaf is a step that leads to itself (feature 0,
    /// split +∞, `left` its own index), so a walk of `depth` steps from the root ends at the row's
    /// leaf whatever its depth, with no test per step. Never changed once made.
    final class Walk: @unchecked Sendable {
        let steps: UnsafeMutableBufferPointer<Node>
        /// Per node: for a leaf, its depth plus its path-length correction (the row's path
        /// length when its walk ends there); 0 for an internal node.
        let exits: UnsafeMutableBufferPointer<Float>
        /// The deepest leaf's depth.
        let depth: Int

        init(_ nodes: [Node]) {
            steps = .allocate(capacity: nodes.count)
            exits = .allocate(capacity: nodes.count)
            _ = exits.initialize(from: repeatElement(0, count: nodes.count))
            var depths = [Float](repeating: 0, count: nodes.count)
            var deepest = 0
            // Children follow their parent, so one forward pass sees every parent first.
            for i in nodes.indices {
                let node = nodes[i]
                if node.feature < 0 {
                    steps.initializeElement(at: i, to: Node(feature: 0, value: .infinity, left: i))
                    // The same arithmetic as a walk that counts its steps: depth + value, in Float.
                    exits[i] = depths[i] + node.value
                    deepest = max(deepest, Int(depths[i]))
                } else {
                    steps.initializeElement(at: i, to: node)
                    depths[Int(node.left)] = depths[i] + 1
                    depths[Int(node.left) + 1] = depths[i] + 1
                }
            }
            depth = deepest
        }

        deinit {
            steps.deallocate()
            exits.deallocate()
        }
    }

    /// 8 bytes: a tree has at most 2 × `sample` ≤ 8,192 nodes, so 16-bit indices suffice.
    struct Node: Sendable, Equatable {
        /// Feature index, or -1 for a leaf.
        var feature: Int16
        /// Index of the left child (the right one follows it), or for a leaf the number of
        /// sample events that reached it.
        var left: UInt16
        /// Split value (internal), or for a leaf the path-length correction c(size).
        var value: Float

        init(feature: Int16, value: Float, left: Int) {
            self.feature = feature
            self.left = UInt16(left)
            self.value = value
        }
    }

    public init(features: [String], spec: IsolationForestSpec = IsolationForestSpec(), seed: UInt64 = 0) {
        precondition(
            !features.isEmpty && features.count <= Int(Int16.max), "an isolation forest needs 1...32767 features")
        featureNames = features
        trees = spec.trees
        sample = spec.sample
        windowEvents = max(spec.windowEvents, spec.sample)
        activeWindow = windowEvents
        window = Array(repeating: 0, count: windowEvents * features.count)
        random = SeededRandom(seed: seed)
    }

    var dimensions: Int { featureNames.count }

    /// How many more events the forest can learn before its trees change (the first forest is
    /// grown, or the next tree in the rotation is rebuilt): scores of rows taken in that span do
    /// not depend on the learning in between, so they can be computed as one batch.
    public var learnsUntilChange: Int {
        if forest.isEmpty { return max(1, sample - windowFilled) }
        return max(1, max(1, activeWindow / trees) - sinceRebuild)
    }

    /// Events the window must hold before the first forest is grown.
    public var warmUpEvents: Int { sample }

    /// Whether the forest exists yet.
    public var isWarm: Bool { !forest.isEmpty }

    // MARK: Scoring

    /// Average path length of an unsuccessful search in a binary search tree of n items: the
    /// normaliser of isolation depths.
    static func c(_ n: Double) -> Double {
        if n <= 1 { return 0 }
        if n <= 2 { return 1 }
        return 2 * (log(n - 1) + 0.5772156649015329) - 2 * (n - 1) / n
    }

    /// Trees walked together for one row by the one-row scorer.
    static let treeLanes = 8

    /// One row's score: the trees are walked `treeLanes` at a time, each group for its deepest
    /// tree's depth, so one row has several independent chains of loads in flight. The path
    /// lengths are added in tree order, as the batch scorer adds them, so both give identical
    /// scores.
    private func score(row x: UnsafeBufferPointer<Float>) -> Double {
        guard !forest.isEmpty else { return 0.5 }
        var total: Float = 0
        let lanes = Self.treeLanes
        withUnsafeTemporaryAllocation(of: Int.self, capacity: lanes) { at in
            withUnsafeTemporaryAllocation(of: Walk.self, capacity: lanes) { walks in
                forest.withUnsafeBufferPointer { trees in
                    var first = 0
                    while first < trees.count {
                        let count = min(lanes, trees.count - first)
                        var depth = 0
                        for t in 0..<count {
                            walks.initializeElement(at: t, to: trees[first + t].walk)
                            depth = max(depth, trees[first + t].walk.depth)
                            at[t] = 0
                        }
                        for _ in 0..<depth {
                            for t in 0..<count {
                                let node = walks[t].steps[at[t]]
                                at[t] = Int(node.left) &+ (x[Int(node.feature)] < node.value ? 0 : 1)
                            }
                        }
                        for t in 0..<count { total += walks[t].exits[at[t]] }
                        _ = walks.baseAddress!.deinitialize(count: count)
                        first += count
                    }
                }
            }
        }
        // The same arithmetic as the batch path, so both give identical scores.
        return exp2(-Double(total) * (1 / (Double(forest.count) * Self.c(Double(sample)))))
    }

    /// The row's values in this model's feature order, missing ones as 0.
    private func row(_ matrix: FeatureMatrix, _ r: Int, _ binding: ColumnBinding, into out: inout [Float]) {
        for j in 0..<dimensions {
            let v = binding.value(matrix, row: r, j)
            out[j] = v.isFinite ? Float(v) : 0
        }
    }

    public func score(_ matrix: FeatureMatrix, row r: Int) -> Double {
        score(matrix, row: r, binding: binding(for: matrix))
    }

    /// Where this model's columns sit in matrices shaped like `matrix`: resolve it once, then
    /// score and learn one row at a time without looking names up again.
    public func binding(for matrix: FeatureMatrix) -> ColumnBinding {
        ColumnBinding(numeric: featureNames, in: matrix)
    }

    /// `score(_:row:)` with the columns already resolved.
    public func score(_ matrix: FeatureMatrix, row r: Int, binding: ColumnBinding) -> Double {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: Swift.max(1, dimensions)) { x in
            for j in 0..<dimensions {
                let v = binding.value(matrix, row: r, j)
                x[j] = v.isFinite ? Float(v) : 0
            }
            return score(row: UnsafeBufferPointer(rebasing: x[0..<dimensions]))
        }
    }

    /// `learn(_:row:label: nil)` with the columns already resolved. The row goes straight into
    /// the window: nothing is allocated per event.
    public mutating func learn(_ matrix: FeatureMatrix, row r: Int, binding: ColumnBinding) {
        let base = windowNext * dimensions
        for j in 0..<dimensions {
            let v = binding.value(matrix, row: r, j)
            window[base + j] = v.isFinite ? Float(v) : 0
        }
        advanceWindow()
    }

    /// Rows walked together through one tree by the batch scorer.
    static let lanes = 16

    /// Scores a batch. Each tree walks `lanes` rows at once: one row's walk is a chain of dependent
    /// loads, and independent chains keep the core busy. Every lane takes the tree's full depth
    /// of steps (`Tree.steps`), so the walk has no test per step (bench/RESULTS.md).
    public func score(_ matrix: FeatureMatrix, into out: inout [Double]) {
        out.removeAll(keepingCapacity: true)
        score(matrix, rows: 0..<matrix.rows, binding: binding(for: matrix), into: &out)
    }

    /// Scores rows `range` of `matrix`, appending to `out`: the batch walk for part of a matrix,
    /// with the columns already resolved. Scores equal those of `score(_:row:)`.
    public func score(_ matrix: FeatureMatrix, rows range: Range<Int>, binding: ColumnBinding, into out: inout [Double])
    {
        let rows = range.count
        let d = dimensions
        guard !forest.isEmpty else {
            out.append(contentsOf: repeatElement(0.5, count: rows))
            return
        }
        var xs = [Float](repeating: 0, count: rows * d)
        var x = [Float](repeating: 0, count: d)
        for r in 0..<rows {
            row(matrix, range.lowerBound + r, binding, into: &x)
            for j in 0..<d { xs[r * d + j] = x[j] }
        }
        var totals = [Float](repeating: 0, count: rows)
        let lanes = Self.lanes
        withUnsafeTemporaryAllocation(of: Int.self, capacity: lanes) { at in
            xs.withUnsafeBufferPointer { xs in
                totals.withUnsafeMutableBufferPointer { totals in
                    forest.withUnsafeBufferPointer { trees in
                        for k in trees.indices {
                            let walk = trees[k].walk
                            let steps = walk.steps
                            var start = 0
                            while start < rows {
                                let count = min(lanes, rows - start)
                                for lane in 0..<count { at[lane] = 0 }
                                // `depth` steps for every lane: a lane at its leaf stays there, so
                                // no lane tests whether it is done.
                                for _ in 0..<walk.depth {
                                    for lane in 0..<count {
                                        let node = steps[at[lane]]
                                        let v = xs[(start &+ lane) &* d &+ Int(node.feature)]
                                        at[lane] = Int(node.left) &+ (v < node.value ? 0 : 1)
                                    }
                                }
                                for lane in 0..<count { totals[start &+ lane] += walk.exits[at[lane]] }
                                start += lanes
                            }
                        }
                    }
                }
            }
        }
        let scale = 1 / (Double(forest.count) * Self.c(Double(sample)))
        for r in 0..<rows { out.append(exp2(-Double(totals[r]) * scale)) }
    }

    // MARK: Learning

    /// Learns an unlabelled event (labels do not change an unsupervised forest).
    public mutating func learn(_ matrix: FeatureMatrix, row r: Int, label: Bool?) {
        guard label == nil else { return }
        learnUnlabelled(matrix, rows: CollectionOfOne(r))
    }

    public mutating func learnUnlabelled(_ matrix: FeatureMatrix, rows: some Sequence<Int>) {
        let binding = ColumnBinding(numeric: featureNames, in: matrix)
        var x = [Float](repeating: 0, count: dimensions)
        for r in rows {
            row(matrix, r, binding, into: &x)
            learn(x)
        }
    }

    private mutating func learn(_ x: [Float]) {
        let base = windowNext * dimensions
        for j in 0..<dimensions { window[base + j] = x[j] }
        advanceWindow()
    }

    /// Counts the row just written at `windowNext` as learned, and grows or rebuilds trees when due.
    private mutating func advanceWindow() {
        windowNext = (windowNext + 1) % windowEvents
        windowFilled = min(windowEvents, windowFilled + 1)
        learned += 1
        if forest.isEmpty {
            if windowFilled >= sample { forest = (0..<trees).map { _ in grow() } }
            return
        }
        // A forest imported before any event (`init:`) waits for a full sample to rebuild from.
        guard windowFilled >= sample else { return }
        sinceRebuild += 1
        if sinceRebuild >= max(1, activeWindow / trees) {
            sinceRebuild = 0
            forest[rotation] = grow()
            rotation = (rotation + 1) % trees
        }
    }

    static func leaf(_ size: Int) -> Node { Node(feature: -1, value: Float(c(Double(size))), left: size) }

    /// Grows one tree on `sample` events drawn without replacement from the window (its most
    /// recent `activeWindow` events).
    private mutating func grow() -> Tree {
        let pool = min(windowFilled, activeWindow)
        let n = min(sample, pool)
        // Partial Fisher–Yates over the row indices of the filled window, or of its newest part.
        var indices =
            pool == windowFilled
            ? Array(0..<windowFilled) : (1...pool).map { (windowNext - $0 + windowEvents) % windowEvents }
        for i in 0..<n {
            let j = i + random.below(pool - i)
            indices.swapAt(i, j)
        }
        var rows = Array(indices[0..<n])
        let limit = Int(ceil(log2(Double(max(2, n)))))
        var nodes: [Node] = []
        nodes.reserveCapacity(2 * n)
        nodes.append(Self.leaf(n))
        // Work list: (node, range of `rows`, depth).
        var work: [(node: Int, lo: Int, hi: Int, depth: Int)] = [(0, 0, n, 0)]
        while let (node, lo, hi, depth) = work.popLast() {
            let count = hi - lo
            nodes[node] = Self.leaf(count)
            guard count > 1, depth < limit else { continue }
            // A random feature that varies among these rows (a few tries), split uniformly
            // between its minimum and maximum.
            var chosen = -1
            var low: Float = 0
            var high: Float = 0
            for _ in 0..<min(dimensions, 8) {
                let f = random.below(dimensions)
                var mn = Float.infinity
                var mx = -Float.infinity
                for k in lo..<hi {
                    let v = window[rows[k] * dimensions + f]
                    mn = min(mn, v)
                    mx = max(mx, v)
                }
                if mx > mn {
                    chosen = f
                    low = mn
                    high = mx
                    break
                }
            }
            guard chosen >= 0 else { continue }
            var split = low + Float(random.unit()) * (high - low)
            if split <= low { split = low.nextUp }
            // Partition rows[lo..<hi]: values < split first.
            var i = lo
            var j = hi - 1
            while i <= j {
                if window[rows[i] * dimensions + chosen] < split {
                    i += 1
                } else {
                    rows.swapAt(i, j)
                    j -= 1
                }
            }
            let left = nodes.count
            nodes.append(Node(feature: -1, value: 0, left: 0))
            nodes.append(Node(feature: -1, value: 0, left: 0))
            nodes[node] = Node(feature: Int16(chosen), value: split, left: left)
            work.append((left, lo, i, depth + 1))
            work.append((left + 1, i, hi, depth + 1))
        }
        return Tree(nodes: nodes)
    }

    // MARK: Explanation, merging, encoding

    /// Features that isolate this event: along the event's path in every tree, a split on
    /// feature f that sends it into a branch holding m of the node's n sample events credits f
    /// with log2(n / m), the bits of isolation it contributed. Credits are scaled so they add up
    /// to the score's distance from 0.5. (Explanations are computed for alerts only, so the
    /// subtree sizes are counted on demand.)
    public func explain(_ matrix: FeatureMatrix, row r: Int, top: Int) -> [Contribution] {
        let binding = ColumnBinding(numeric: featureNames, in: matrix)
        var x = [Float](repeating: 0, count: dimensions)
        row(matrix, r, binding, into: &x)
        var credit = [Double](repeating: 0, count: dimensions)
        for tree in forest {
            let sizes = Self.subtreeSizes(tree)
            var i = 0
            while tree.nodes[i].feature >= 0 {
                let node = tree.nodes[i]
                let next = Int(node.left) + (x[Int(node.feature)] < node.value ? 0 : 1)
                credit[Int(node.feature)] += log2(sizes[i] / max(1, sizes[next]))
                i = next
            }
        }
        return Contribution.isolation(
            names: featureNames, values: (0..<dimensions).map { binding.value(matrix, row: r, $0) }, credits: credit,
            score: x.withUnsafeBufferPointer { score(row: $0) }, top: top)
    }

    /// Sample events under every node (children always follow their parent, so one backward
    /// pass suffices).
    static func subtreeSizes(_ tree: Tree) -> [Double] {
        var sizes = [Double](repeating: 0, count: tree.nodes.count)
        for i in tree.nodes.indices.reversed() {
            let node = tree.nodes[i]
            sizes[i] = node.feature < 0 ? Double(node.left) : sizes[Int(node.left)] + sizes[Int(node.left) + 1]
        }
        return sizes
    }

    /// Takes `weight` of its trees from `peer` (the next ones due for rebuilding), so a merged
    /// forest describes both replicas' windows in proportion.
    public mutating func merge(_ peer: IsolationForest, weight: Double) {
        let k = Int((min(1, max(0, weight)) * Double(trees)).rounded())
        adoptTrees(of: peer, at: (0..<k).map { (rotation + $0) % trees })
    }

    /// Replaces the trees at `slots` with `peer`'s (a federated average apportions a forest's
    /// slots among the replicas by their weights); the window stays this forest's own.
    public mutating func adoptTrees(of peer: IsolationForest, at slots: some Sequence<Int>) {
        precondition(
            peer.featureNames == featureNames && peer.trees == trees && peer.sample == sample,
            "merging different forests")
        guard !peer.forest.isEmpty else { return }
        if forest.isEmpty {
            forest = peer.forest
            return
        }
        for i in slots where i < forest.count && i < peer.forest.count { forest[i] = peer.forest[i] }
    }

    /// Takes a federated average's trees, except in the slots rebuilt since `snapshot`, the copy
    /// of this forest the average was made from: those hold newer trees of this window.
    public mutating func adoptTrees(of average: IsolationForest, keepingChangesSince snapshot: IsolationForest) {
        guard !average.forest.isEmpty else { return }
        if forest.isEmpty {
            forest = average.forest
            return
        }
        // A forest first grown since the snapshot is all new.
        guard snapshot.forest.count == forest.count else { return }
        // Unchanged trees share their storage with the snapshot's, so comparing is cheap.
        adoptTrees(of: average, at: forest.indices.filter { forest[$0] == snapshot.forest[$0] })
    }
}
