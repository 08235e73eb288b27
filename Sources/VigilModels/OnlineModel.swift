import VigilCore

/// What every Vigil model does, so the engine, the ensemble and the conformance suite treat them
/// alike: score while it keeps learning, explain a score, merge with a replica on another worker
/// or host, and survive a restart through a checkpoint.
///
/// Models read their columns by name from a `FeatureMatrix`, so the order of the columns does not
/// matter. A column the model knows that is missing from the matrix reads as missing (NaN), and
/// columns it does not know are ignored.
public protocol OnlineModel: Sendable {
    /// Names this model's checkpoints (`Checkpoint` kind).
    static var kind: String { get }

    /// Numeric features this model reads, by name.
    var featureNames: [String] { get }

    /// The score of one row: in [0, 1], higher is more anomalous (or more likely fraud).
    func score(_ matrix: FeatureMatrix, row: Int) -> Double

    /// Scores of every row into `out` (resized to `matrix.rows`).
    func score(_ matrix: FeatureMatrix, into out: inout [Double])

    /// Learns from one row; `label` is the ground truth when known (true = fraud).
    ///
    /// The engine calls it twice per event: with `nil` when the event is scored (unless the
    /// threshold protects it), and with the label when that arrives.
    mutating func learn(_ matrix: FeatureMatrix, row: Int, label: Bool?)

    /// Learns `rows` of `matrix`, unlabelled: the batch form of `learn(_:row:label: nil)`, which
    /// resolves the columns once.
    mutating func learnUnlabelled(_ matrix: FeatureMatrix, rows: some Sequence<Int>)

    /// The features that pushed this row's score up or down most, largest magnitude first.
    func explain(_ matrix: FeatureMatrix, row: Int, top: Int) -> [Contribution]

    /// Moves this model toward `peer` (a replica trained on other events): `weight` is the
    /// peer's share, 0...1. Replicas merged with equal weights converge to their average.
    mutating func merge(_ peer: Self, weight: Double)

    /// Appends the whole model to `out`.
    func encode(into out: inout BinaryWriter)

    /// Reads what `encode` wrote.
    init(decoding input: inout BinaryReader) throws(CheckpointError)
}

extension OnlineModel {
    public mutating func learnUnlabelled(_ matrix: FeatureMatrix, rows: some Sequence<Int>) {
        for r in rows { learn(matrix, row: r, label: nil) }
    }

    public func score(_ matrix: FeatureMatrix, into out: inout [Double]) {
        out.removeAll(keepingCapacity: true)
        for r in 0..<matrix.rows { out.append(score(matrix, row: r)) }
    }

    /// The model as a checkpoint: `Checkpoint` container, kind `Self.kind`, for `schema`.
    public func checkpoint(schema: UInt64) -> [UInt8] {
        var writer = BinaryWriter()
        encode(into: &writer)
        return Checkpoint.encode(kind: Self.kind, schema: schema, body: writer.bytes)
    }

    /// A model read back from `checkpoint(schema:)`'s bytes.
    public static func restore(_ bytes: [UInt8], schema: UInt64) throws(CheckpointError) -> Self {
        var reader = BinaryReader(try Checkpoint.decode(bytes, kind: kind, schema: schema))
        let model = try Self(decoding: &reader)
        guard reader.isAtEnd else {
            throw CheckpointError(.corrupt, "\(reader.remaining) bytes after the \(kind) body")
        }
        return model
    }
}

/// One feature's part in a score.
public struct Contribution: Sendable, Hashable {
    /// The feature's name (for a categorical feature, `name=bucket`).
    public var feature: String
    /// The feature's value in this event.
    public var value: Double
    /// Signed share of the score: positive pushes toward an alert.
    public var weight: Double

    public init(feature: String, value: Double, weight: Double) {
        self.feature = feature
        self.value = value
        self.weight = weight
    }
}

extension Contribution {
    /// The `top` contributions of largest magnitude, largest first.
    static func strongest(_ all: [Contribution], top: Int) -> [Contribution] {
        Array(all.sorted { abs($0.weight) > abs($1.weight) }.prefix(max(0, top)))
    }

    /// A forest's explanation: per-feature isolation credits scaled so they add up to the
    /// score's distance from 0.5, the strongest `top` first.
    static func isolation(
        names: [String], values: [Double], credits: [Double], score: Double, top: Int
    ) -> [Contribution] {
        let total = credits.reduce(0, +)
        let all = names.indices.map { j in
            Contribution(
                feature: names[j], value: values[j], weight: total > 0 ? (score - 0.5) * credits[j] / total : 0)
        }
        return strongest(all, top: top)
    }
}

/// Where a model's named columns sit in a particular matrix: resolved once per batch.
public struct ColumnBinding: Sendable {
    /// For each of the model's features, its column in the matrix, or nil when the matrix lacks it.
    public let numeric: [Int?]
    /// For each of the model's categorical features, its column in the matrix, or nil.
    public let categorical: [Int?]

    public init(numeric names: [String], categorical categoryNames: [String] = [], in matrix: FeatureMatrix) {
        numeric = names.map { matrix.names.firstIndex(of: $0) }
        categorical = categoryNames.map { matrix.categoryNames.firstIndex(of: $0) }
    }

    /// The model's feature `j` in row `r` (NaN when the matrix lacks it).
    @inline(__always)
    public func value(_ matrix: FeatureMatrix, row r: Int, _ j: Int) -> Double {
        guard let c = numeric[j] else { return .nan }
        return matrix.values[r * matrix.names.count + c]
    }

    /// The model's categorical feature `k` in row `r` (`FeatureMatrix.missing` when absent).
    @inline(__always)
    public func bucket(_ matrix: FeatureMatrix, row r: Int, _ k: Int) -> UInt32 {
        guard let c = categorical[k] else { return FeatureMatrix.missing }
        return matrix.buckets[r * matrix.categoryNames.count + c]
    }
}

extension BinaryReader {
    /// Reads with `BinaryReader`'s own checks, reporting failure as a corrupt checkpoint.
    public mutating func checkpoint<T>(_ read: (inout BinaryReader) throws(VigilError) -> T) throws(CheckpointError)
        -> T
    {
        do {
            return try read(&self)
        } catch {
            throw CheckpointError(.corrupt, error.reason)
        }
    }
}

extension BinaryReader {
    /// A count-prefixed list of at most `limit` names (feature names in model bodies).
    public mutating func checkpointNames(limit: Int) throws(CheckpointError) -> [String] {
        let n = Int(try checkpoint { r throws(VigilError) in try r.uint32() })
        guard (1...limit).contains(n) else { throw CheckpointError(.corrupt, "\(n) features") }
        var names: [String] = []
        for _ in 0..<n { names.append(try checkpoint { r throws(VigilError) in try r.string() }) }
        return names
    }

    /// A whole number that must lie in `range`.
    public mutating func checkpointInt(_ range: ClosedRange<Int>, _ what: String) throws(CheckpointError) -> Int {
        try checkpoint { r throws(VigilError) in try r.int(in: range, what) }
    }

    /// A random generator's state.
    public mutating func checkpointRandom() throws(CheckpointError) -> SeededRandom {
        var state: [UInt64] = []
        for _ in 0..<4 { state.append(try checkpoint { r throws(VigilError) in try r.uint64() }) }
        guard let random = SeededRandom(state: state) else {
            throw CheckpointError(.corrupt, "random state is all zero")
        }
        return random
    }
}
