/// Feature vectors of a batch, row per event: dense numeric columns (what every model reads) and
/// hashed categorical columns (bucket indices, for models that one-hot encode them).
public struct FeatureMatrix: Sendable {
    /// Names of the numeric columns.
    public let names: [String]
    /// Names of the categorical columns.
    public let categoryNames: [String]
    /// Number of buckets of each categorical column.
    public let categoryBuckets: [Int]
    /// Number of rows.
    public private(set) var rows: Int = 0
    /// Numeric values, row-major (`rows × names.count`). NaN marks a value that is undefined for
    /// this event (a ratio over zero, the time since a previous event that does not exist).
    public var values: [Double] = []
    /// Bucket index of each categorical value, row-major; `FeatureMatrix.missing` when absent.
    public var buckets: [UInt32] = []

    /// The bucket of a missing categorical value.
    public static let missing = UInt32.max

    public init(names: [String], categoryNames: [String] = [], categoryBuckets: [Int] = []) {
        precondition(categoryNames.count == categoryBuckets.count)
        self.names = names
        self.categoryNames = categoryNames
        self.categoryBuckets = categoryBuckets
    }

    /// Sets the number of rows, every value zeroed and every bucket missing, keeping memory.
    public mutating func reset(rows newRows: Int) {
        rows = newRows
        values.removeAll(keepingCapacity: true)
        values.append(contentsOf: repeatElement(0, count: newRows * names.count))
        buckets.removeAll(keepingCapacity: true)
        buckets.append(contentsOf: repeatElement(Self.missing, count: newRows * categoryNames.count))
    }

    /// The numeric columns of one row.
    public func row(_ i: Int) -> ArraySlice<Double> {
        values[i * names.count..<(i + 1) * names.count]
    }

    /// One value by row and column name (for tests and tools; the hot path indexes directly).
    public func value(row: Int, _ name: String) -> Double? {
        names.firstIndex(of: name).map { values[row * names.count + $0] }
    }
}
