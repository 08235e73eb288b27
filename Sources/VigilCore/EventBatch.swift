/// Decoded events in columns, the unit ingest hands to a worker: one allocation per column
/// instead of one per event, and the layout the feature stage reads without conversions.
public struct EventBatch: Sendable {
    /// Which schema fields the columns hold.
    public let layout: EventLayout
    /// Number of events.
    public private(set) var count: Int = 0
    /// `StableHash` of each event's entity key.
    public private(set) var keys: [UInt64] = []
    /// Event time of each event, in milliseconds since the Unix epoch.
    public private(set) var times: [Int64] = []
    /// Numeric fields, row-major (`count × layout.numbers.count`); NaN marks a missing value.
    public private(set) var numbers: [Double] = []
    /// Categorical fields as `StableHash.category` values, row-major; 0 marks a missing value.
    public private(set) var categories: [UInt64] = []

    public init(layout: EventLayout, capacity: Int = 0) {
        self.layout = layout
        keys.reserveCapacity(capacity)
        times.reserveCapacity(capacity)
        numbers.reserveCapacity(capacity * layout.numbers.count)
        categories.reserveCapacity(capacity * layout.categories.count)
    }

    /// Appends one event; `numbers` and `categories` must have one value per layout column.
    /// Arrays rather than any collection: ingest calls it for every event, and a generic
    /// function not specialised across modules cost a third of the decoder's time.
    public mutating func append(
        key: UInt64, time: Int64, numbers rowNumbers: [Double], categories rowCategories: [UInt64]
    ) {
        precondition(rowNumbers.count == layout.numbers.count && rowCategories.count == layout.categories.count)
        keys.append(key)
        times.append(time)
        numbers.append(contentsOf: rowNumbers)
        categories.append(contentsOf: rowCategories)
        count += 1
    }

    /// Starts a new event with every field missing; set its fields with `setNumber` and
    /// `setCategory`. This is how ingest fills a batch as it decodes, without temporary arrays.
    public mutating func appendEvent(key: UInt64, time: Int64) {
        keys.append(key)
        times.append(time)
        numbers.append(contentsOf: repeatElement(.nan, count: layout.numbers.count))
        categories.append(contentsOf: repeatElement(0, count: layout.categories.count))
        count += 1
    }

    /// Sets numeric column `column` of the last event.
    public mutating func setNumber(_ column: Int, _ value: Double) {
        numbers[(count - 1) * layout.numbers.count + column] = value
    }

    /// Sets categorical column `column` of the last event (a `StableHash.category` value).
    public mutating func setCategory(_ column: Int, _ hash: UInt64) {
        categories[(count - 1) * layout.categories.count + column] = hash
    }

    /// Sets numeric column `column` of event `row`: how a keyed feature stage writes its outputs
    /// into the columns the layout adds for them.
    public mutating func setNumber(row: Int, column: Int, _ value: Double) {
        numbers[row * layout.numbers.count + column] = value
    }

    /// Appends event `i` of `other` (which must have the same layout).
    public mutating func append(from other: EventBatch, at i: Int) {
        precondition(other.layout == layout, "batches of different layouts")
        let n = layout.numbers.count
        let c = layout.categories.count
        keys.append(other.keys[i])
        times.append(other.times[i])
        numbers.append(contentsOf: other.numbers[i * n..<(i + 1) * n])
        categories.append(contentsOf: other.categories[i * c..<(i + 1) * c])
        count += 1
    }

    /// Empties the batch, keeping its memory for the next one.
    public mutating func removeAll() {
        keys.removeAll(keepingCapacity: true)
        times.removeAll(keepingCapacity: true)
        numbers.removeAll(keepingCapacity: true)
        categories.removeAll(keepingCapacity: true)
        count = 0
    }
}

/// Which event fields become columns of an `EventBatch`: numbers in one block, categorical
/// values (category, string and boolean fields) hashed in another. Timestamps live in `times`.
public struct EventLayout: Sendable, Hashable {
    /// Names of the numeric columns, in order.
    public let numbers: [String]
    /// Names of the categorical columns, in order.
    public let categories: [String]

    public init(numbers: [String], categories: [String]) {
        self.numbers = numbers
        self.categories = categories
    }

    /// Every number field, then every category, string and boolean field, in declaration order.
    public init(schema: Schema) {
        numbers = schema.fields.filter { $0.type == .number }.map(\.name)
        categories = schema.fields.filter { $0.type.isKeyLike || $0.type == .boolean }.map(\.name)
    }
}
