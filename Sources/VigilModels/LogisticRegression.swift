import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Streaming logistic regression for labelled fraud: FTRL-Proximal or AdaGrad with L1 and L2,
/// numeric inputs standardised with running statistics, categorical buckets one-hot, positives
/// weighted for rare fraud, and probabilities corrected back for that weighting.
///
/// Learning follows the engine's two calls per event. `learn(label: nil)` comes when the event is
/// scored and updates the running standardisation. `learn(label:)` comes when its label arrives,
/// perhaps hours later, and updates the weights.
public struct LogisticRegression: OnlineModel, Equatable {
    public static let kind = "logistic_regression"

    /// Hyper-parameters (those of `LogisticRegressionSpec` that shape learning).
    public struct Parameters: Sendable, Hashable {
        public var optimizer: LogisticRegressionSpec.Optimizer = .ftrl
        public var learningRate = 0.2
        public var l1 = 0.0
        public var l2 = 0.001
        public var positiveWeight = 1.0

        public init() {}

        public init(_ spec: LogisticRegressionSpec) {
            optimizer = spec.optimizer
            learningRate = spec.learningRate
            l1 = spec.l1
            l2 = spec.l2
            positiveWeight = spec.positiveWeight
        }
    }

    public let parameters: Parameters
    public let featureNames: [String]
    public let categoryNames: [String]
    public let categoryBuckets: [Int]
    /// Per coordinate (numeric features, then every bucket of every categorical feature, then
    /// the bias): FTRL's z and n, or AdaGrad's weight and squared-gradient sum.
    var a: [Double]
    var b: [Double]
    /// Running mean and spread of each numeric feature.
    var stats: [RunningStats]
    /// Labelled examples learned, and how many were positive.
    public private(set) var labelled = 0
    public private(set) var positives = 0

    /// Standardised inputs are clipped to this many standard deviations, so one absurd value
    /// cannot throw the weights.
    static let clip = 10.0
    /// FTRL's β.
    static let beta = 1.0

    public init(
        features: [String], categories: [(name: String, buckets: Int)] = [], parameters: Parameters = Parameters()
    ) {
        self.parameters = parameters
        featureNames = features
        categoryNames = categories.map(\.name)
        categoryBuckets = categories.map(\.buckets)
        let dims = features.count + categories.map(\.buckets).reduce(0, +) + 1
        a = Array(repeating: 0, count: dims)
        b = Array(repeating: 0, count: dims)
        stats = Array(repeating: RunningStats(), count: features.count)
    }

    var dimensions: Int { a.count }
    var biasIndex: Int { a.count - 1 }

    /// The weight of coordinate `i`.
    @inline(__always)
    func weight(_ i: Int) -> Double {
        switch parameters.optimizer {
        case .adagrad:
            return a[i]
        case .ftrl:
            let z = a[i]
            let l1 = i == biasIndex ? 0 : parameters.l1
            if abs(z) <= l1 { return 0 }
            let l2 = i == biasIndex ? 0 : parameters.l2
            return -(z - (z < 0 ? -l1 : l1)) / ((Self.beta + b[i].squareRoot()) / parameters.learningRate + l2)
        }
    }

    /// The active coordinates of a row and their input values (standardised numbers, 1 for the
    /// bucket of each categorical feature, 1 for the bias).
    private func inputs(_ matrix: FeatureMatrix, row: Int, _ binding: ColumnBinding) -> [(index: Int, x: Double)] {
        var out: [(index: Int, x: Double)] = []
        out.reserveCapacity(featureNames.count + categoryNames.count + 1)
        forEachInput(matrix, row: row, binding) { out.append(($0, $1)) }
        return out
    }

    /// Calls `body` with each non-zero input of a row (weight index, value), in a fixed order:
    /// the standardised numeric features, the one-hot bucket of each category, the bias.
    @inline(__always)
    private func forEachInput(
        _ matrix: FeatureMatrix, row: Int, _ binding: ColumnBinding, _ body: (Int, Double) -> Void
    ) {
        for j in featureNames.indices {
            body(j, stats[j].standardise(binding.value(matrix, row: row, j), clip: Self.clip))
        }
        var base = featureNames.count
        for k in categoryNames.indices {
            let bucket = binding.bucket(matrix, row: row, k)
            if bucket != FeatureMatrix.missing, Int(bucket) < categoryBuckets[k] { body(base + Int(bucket), 1) }
            base += categoryBuckets[k]
        }
        body(biasIndex, 1)
    }

    private func binding(_ matrix: FeatureMatrix) -> ColumnBinding { binding(for: matrix) }

    /// Where this model's columns sit in matrices shaped like `matrix`: resolve it once, then
    /// score and learn one row at a time without looking names up again.
    public func binding(for matrix: FeatureMatrix) -> ColumnBinding {
        ColumnBinding(numeric: featureNames, categorical: categoryNames, in: matrix)
    }

    /// The probability the model was trained toward (skewed by `positiveWeight`).
    private func rawProbability(_ x: [(index: Int, x: Double)]) -> Double {
        var logit = 0.0
        for (i, v) in x { logit += weight(i) * v }
        return Self.sigmoid(logit)
    }

    /// The logistic function, its input clamped so exp cannot overflow.
    static func sigmoid(_ logit: Double) -> Double { 1 / (1 + exp(-max(-35, min(35, logit)))) }

    /// Undoes the class weighting: weighting positives by w multiplies the odds by w.
    private func calibrated(_ p: Double) -> Double {
        let w = parameters.positiveWeight
        return w == 1 ? p : p / (p + (1 - p) * w)
    }

    public func score(_ matrix: FeatureMatrix, row: Int) -> Double {
        score(matrix, row: row, binding: binding(matrix))
    }

    /// `score(_:row:)` with the columns already resolved.
    public func score(_ matrix: FeatureMatrix, row: Int, binding: ColumnBinding) -> Double {
        // The sum of `rawProbability`, in the same order, without building the input list.
        var logit = 0.0
        forEachInput(matrix, row: row, binding) { i, v in logit += weight(i) * v }
        return calibrated(Self.sigmoid(logit))
    }

    /// Batches of at least this many rows go through CBLAS (`cblas_dgemv`); smaller ones through
    /// the plain loop. Measured with `model-bench kernels` for 10 features: the loop takes
    /// 4.1 ns/row at batch 1 against CBLAS's 15.6, and CBLAS takes 1.6 ns/row from batch 64 on
    /// against the loop's 2.6. They cross near 16 (bench/RESULTS.md).
    static let blasFromRows = 16

    /// Scores a batch: standardise every row, one matrix-vector product for the numeric
    /// weights, then the categorical weights, the bias and the calibration.
    public func score(_ matrix: FeatureMatrix, into out: inout [Double]) {
        out.removeAll(keepingCapacity: true)
        let rows = matrix.rows
        let d = featureNames.count
        let binding = binding(matrix)
        var z = [Double](repeating: 0, count: rows * d)
        for r in 0..<rows {
            for j in 0..<d { z[r * d + j] = stats[j].standardise(binding.value(matrix, row: r, j), clip: Self.clip) }
        }
        let w = (0..<d).map(weight)
        var logits = [Double](repeating: 0, count: rows)
        z.withUnsafeBufferPointer { z in
            w.withUnsafeBufferPointer { w in
                logits.withUnsafeMutableBufferPointer { out in
                    if rows >= Self.blasFromRows {
                        LinearKernels.affineBLAS(rows: z, count: rows, weights: w, bias: weight(biasIndex), out: out)
                    } else {
                        LinearKernels.affineLoop(rows: z, count: rows, weights: w, bias: weight(biasIndex), out: out)
                    }
                }
            }
        }
        for r in 0..<rows {
            var logit = logits[r]
            var base = d
            for k in categoryNames.indices {
                let bucket = binding.bucket(matrix, row: r, k)
                if bucket != FeatureMatrix.missing, Int(bucket) < categoryBuckets[k] {
                    logit += weight(base + Int(bucket))
                }
                base += categoryBuckets[k]
            }
            out.append(calibrated(Self.sigmoid(logit)))
        }
    }

    public mutating func learnUnlabelled(_ matrix: FeatureMatrix, rows: some Sequence<Int>) {
        let binding = binding(matrix)
        for r in rows {
            for j in featureNames.indices { stats[j].add(binding.value(matrix, row: r, j)) }
        }
    }

    public mutating func learn(_ matrix: FeatureMatrix, row: Int, label: Bool?) {
        learn(matrix, row: row, label: label, binding: binding(matrix))
    }

    /// `learn(_:row:label:)` with the columns already resolved.
    public mutating func learn(_ matrix: FeatureMatrix, row: Int, label: Bool?, binding: ColumnBinding) {
        guard let label else {
            for j in featureNames.indices { stats[j].add(binding.value(matrix, row: row, j)) }
            return
        }
        let x = inputs(matrix, row: row, binding)
        let p = rawProbability(x)
        let y = label ? 1.0 : 0.0
        let sampleWeight = label ? parameters.positiveWeight : 1
        labelled += 1
        if label { positives += 1 }
        for (i, v) in x {
            let g = (p - y) * v * sampleWeight
            switch parameters.optimizer {
            case .ftrl:
                let w = weight(i)
                let sigma = ((b[i] + g * g).squareRoot() - b[i].squareRoot()) / parameters.learningRate
                a[i] += g - sigma * w
                b[i] += g * g
            case .adagrad:
                let l2 = i == biasIndex ? 0 : parameters.l2
                let grad = g + l2 * a[i]
                b[i] += grad * grad
                let step = parameters.learningRate / (b[i].squareRoot() + 1e-8)
                var w = a[i] - step * grad
                if i != biasIndex, parameters.l1 > 0 {  // proximal step: true zeros
                    let shrink = step * parameters.l1
                    w = abs(w) <= shrink ? 0 : w - (w < 0 ? -shrink : shrink)
                }
                a[i] = w
            }
        }
    }

    public func explain(_ matrix: FeatureMatrix, row: Int, top: Int) -> [Contribution] {
        let binding = binding(matrix)
        var out: [Contribution] = []
        for j in featureNames.indices {
            let raw = binding.value(matrix, row: row, j)
            out.append(
                Contribution(
                    feature: featureNames[j], value: raw, weight: weight(j) * stats[j].standardise(raw, clip: Self.clip)
                ))
        }
        var base = featureNames.count
        for k in categoryNames.indices {
            let bucket = binding.bucket(matrix, row: row, k)
            if bucket != FeatureMatrix.missing, Int(bucket) < categoryBuckets[k] {
                out.append(
                    Contribution(feature: "\(categoryNames[k])=\(bucket)", value: 1, weight: weight(base + Int(bucket)))
                )
            }
            base += categoryBuckets[k]
        }
        return Contribution.strongest(out, top: top)
    }

    public mutating func merge(_ peer: LogisticRegression, weight: Double) {
        precondition(
            peer.featureNames == featureNames && peer.categoryBuckets == categoryBuckets
                && peer.parameters == parameters,
            "merging replicas of different models")
        let w = min(1, max(0, weight))
        for i in a.indices {
            a[i] = (1 - w) * a[i] + w * peer.a[i]
            b[i] = (1 - w) * b[i] + w * peer.b[i]
        }
        for j in stats.indices { stats[j].merge(peer.stats[j], weight: w) }
        labelled += peer.labelled
        positives += peer.positives
    }

    /// Takes a federated average's weights and input statistics, plus what this replica learned
    /// since `snapshot`, the copy of it the average was made from: labels learned while the
    /// average was computed are not lost. Its own counts of labels learned stay: they weigh this
    /// replica in the next average.
    public mutating func adopt(_ average: LogisticRegression, since snapshot: LogisticRegression) {
        precondition(
            average.featureNames == featureNames && average.categoryBuckets == categoryBuckets
                && average.parameters == parameters && snapshot.a.count == a.count,
            "adopting a replica of a different model")
        for i in a.indices {
            a[i] = average.a[i] + (a[i] - snapshot.a[i])
            b[i] = average.b[i] + max(0, b[i] - snapshot.b[i])
        }
        stats = average.stats
    }

    public func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(parameters.optimizer.rawValue)
        for x in [parameters.learningRate, parameters.l1, parameters.l2, parameters.positiveWeight] { out.write(x) }
        out.write(UInt32(featureNames.count))
        for name in featureNames { out.write(name) }
        out.write(UInt32(categoryNames.count))
        for (name, buckets) in zip(categoryNames, categoryBuckets) {
            out.write(name)
            out.write(UInt32(buckets))
        }
        for x in a { out.write(x) }
        for x in b { out.write(x) }
        for s in stats { s.encode(into: &out) }
        out.write(labelled)
        out.write(positives)
    }

    public init(decoding input: inout BinaryReader) throws(CheckpointError) {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "logistic regression body version \(version)") }
        var p = Parameters()
        let optimizer = try input.checkpoint { r throws(VigilError) in try r.string(maxBytes: 16) }
        guard let o = LogisticRegressionSpec.Optimizer(rawValue: optimizer) else {
            throw CheckpointError(.corrupt, "unknown optimizer '\(optimizer)'")
        }
        p.optimizer = o
        p.learningRate = try input.checkpoint { r throws(VigilError) in try r.double() }
        p.l1 = try input.checkpoint { r throws(VigilError) in try r.double() }
        p.l2 = try input.checkpoint { r throws(VigilError) in try r.double() }
        p.positiveWeight = try input.checkpoint { r throws(VigilError) in try r.double() }
        let nFeatures = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard nFeatures <= 100_000 else { throw CheckpointError(.corrupt, "\(nFeatures) features") }
        var features: [String] = []
        for _ in 0..<nFeatures { features.append(try input.checkpoint { r throws(VigilError) in try r.string() }) }
        let nCategories = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard nCategories <= 10_000 else { throw CheckpointError(.corrupt, "\(nCategories) categorical features") }
        var categories: [(name: String, buckets: Int)] = []
        var total = 0
        for _ in 0..<nCategories {
            let name = try input.checkpoint { r throws(VigilError) in try r.string() }
            let buckets = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
            total += buckets
            guard buckets >= 1, total <= 1 << 26 else { throw CheckpointError(.corrupt, "\(buckets) buckets") }
            categories.append((name, buckets))
        }
        self.init(features: features, categories: categories, parameters: p)
        guard input.remaining >= 16 * dimensions else { throw CheckpointError(.truncated, "weights cut short") }
        for i in a.indices { a[i] = try input.checkpoint { r throws(VigilError) in try r.double() } }
        for i in b.indices { b[i] = try input.checkpoint { r throws(VigilError) in try r.double() } }
        for j in stats.indices { stats[j] = try RunningStats(decoding: &input) }
        labelled = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "example count") }
        positives = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "positive count") }
    }

    public static func == (x: LogisticRegression, y: LogisticRegression) -> Bool {
        x.parameters == y.parameters && x.featureNames == y.featureNames && x.categoryNames == y.categoryNames
            && x.categoryBuckets == y.categoryBuckets && x.a.map(\.bitPattern) == y.a.map(\.bitPattern)
            && x.b.map(\.bitPattern) == y.b.map(\.bitPattern) && x.stats == y.stats && x.labelled == y.labelled
            && x.positives == y.positives
    }
}

/// Running mean and variance (Welford) of one input, for standardisation.
public struct RunningStats: Sendable, Equatable {
    public internal(set) var count = 0.0
    public internal(set) var mean = 0.0
    public internal(set) var m2 = 0.0

    public init() {}

    public mutating func add(_ x: Double) {
        guard x.isFinite else { return }
        count += 1
        let delta = x - mean
        mean += delta / count
        m2 += delta * (x - mean)
    }

    public var standardDeviation: Double { count > 1 ? (m2 / count).squareRoot() : 0 }

    /// (x − mean) / std, clipped to ±`clip`; 0 for a missing value or before any spread is seen.
    @inline(__always)
    public func standardise(_ x: Double, clip: Double) -> Double {
        guard x.isFinite else { return 0 }
        let s = standardDeviation
        guard s > 0 else { return 0 }
        return min(clip, max(-clip, (x - mean) / s))
    }

    /// Moves toward `peer` by `weight`.
    public mutating func merge(_ peer: RunningStats, weight w: Double) {
        let variance = (1 - w) * (count > 0 ? m2 / count : 0) + w * (peer.count > 0 ? peer.m2 / peer.count : 0)
        count = (1 - w) * count + w * peer.count
        mean = (1 - w) * mean + w * peer.mean
        m2 = variance * count
    }

    func encode(into out: inout BinaryWriter) {
        out.write(count)
        out.write(mean)
        out.write(m2)
    }

    init(decoding input: inout BinaryReader) throws(CheckpointError) {
        count = try input.checkpoint { r throws(VigilError) in try r.double() }
        mean = try input.checkpoint { r throws(VigilError) in try r.double() }
        m2 = try input.checkpoint { r throws(VigilError) in try r.double() }
        guard count >= 0, m2 >= 0 else { throw CheckpointError(.corrupt, "negative or undefined statistics") }
    }
}
