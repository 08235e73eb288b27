import Glibc
import VigilCore

/// Turns one JSON event into a row of an `EventBatch`, checking it against the topology's
/// declared fields on the way: the entity key hashed for routing, the event time in
/// milliseconds, numbers as doubles and categorical values hashed. An event that does not fit
/// is refused with a `DeadLetterReason` and leaves the batch untouched.
///
/// A hand-written single-pass reader: no allocation per event, no tree of values. Fields not
/// declared are skipped (their grammar still checked); a field given twice keeps its last value.
/// Category and string fields take JSON strings, and also numbers and booleans, hashed by their
/// text (merchant category codes often arrive as numbers).
public struct EventDecoder: Sendable {
    /// The columns the decoded rows fill.
    public let layout: EventLayout
    /// The declared fields' names, for error details.
    let fieldNames: [String]
    /// The declared fields without strings: what the per-event path reads (copying one retains
    /// nothing).
    let infos: [FieldInfo]
    /// Field names as bytes, for matching keys: all in one buffer, with each name's start and
    /// length (so a lookup touches one array, not one per candidate).
    let nameBytes: [UInt8]
    let nameStarts: [Int]
    let nameLengths: [Int]
    let keyField: Int
    let idField: Int?
    let timeField: Int?
    let timeFormat: EventTimeSpec.Format
    let missingTime: EventTimeSpec.MissingPolicy
    /// `source.time.max_future` in ms, and what happens beyond it.
    let maxFutureMs: Int64
    let future: EventTimeSpec.FuturePolicy
    /// The two newest times read from time fields (bounded or not): for a record without a
    /// broker timestamp, the reference is the second newest, this event's included, so that no
    /// single event can move it while a stream that really jumps moves it with its second event.
    private var timesRead: (newest: Int64, second: Int64) = (.min, .min)
    let maxEventBytes: Int
    // Per-event scratch, reused.
    private var numbers: [Double]
    private var categories: [UInt64]
    private var seen: [Bool]
    private var scratch: [UInt8] = []

    /// A declared field's type, bounds and columns.
    struct FieldInfo: Sendable {
        var type: FieldType
        var required: Bool
        var min: Double?
        var max: Double?
        var numberColumn: Int?
        var categoryColumn: Int?
    }

    /// What decoding found besides the row: the entity key, id and time, and where the key's and
    /// id's text sit in the input (for alerts and dead letters).
    public struct Decoded: Sendable {
        public var key: UInt64 = 0
        public var time: Int64 = 0
        /// `StableHash` of the id's text, 0 without an id: labels are joined on it.
        public var idHash: UInt64 = 0
        /// The id's JSON text as it appears in the input, without quotes (escapes kept).
        public var idRange: Range<Int>?
        /// The entity key's text, likewise.
        public var keyRange: Range<Int> = 0..<0
    }

    /// - Parameter layout: the batch columns, when they add columns to the schema's (the keyed
    ///   features' outputs, left missing here and filled by `KeyedFeatureStage`).
    public init(source: SourceSpec, schema: Schema, layout: EventLayout? = nil) {
        let layout = layout ?? EventLayout(schema: schema)
        self.layout = layout
        let names = schema.names
        fieldNames = names
        infos = schema.fields.map {
            FieldInfo(
                type: $0.type, required: $0.required, min: $0.min, max: $0.max,
                numberColumn: layout.numbers.firstIndex(of: $0.name),
                categoryColumn: layout.categories.firstIndex(of: $0.name))
        }
        nameBytes = names.flatMap { Array($0.utf8) }
        let lengths = names.map(\.utf8.count)
        nameLengths = lengths
        nameStarts = lengths.indices.map { k in lengths[..<k].reduce(0, +) }
        keyField = names.firstIndex(of: source.key)!
        idField = source.id.flatMap { names.firstIndex(of: $0) }
        timeField = source.time.flatMap { names.firstIndex(of: $0.field) }
        timeFormat = source.time?.format ?? .auto
        missingTime = source.time?.missing ?? .arrivalTime
        maxFutureMs = source.time.map { $0.maxFuture.wholeMilliseconds } ?? .max
        future = source.time?.future ?? .deadLetter
        maxEventBytes = source.maxEventBytes
        numbers = Array(repeating: .nan, count: layout.numbers.count)
        categories = Array(repeating: 0, count: layout.categories.count)
        seen = Array(repeating: false, count: names.count)
    }

    /// Decodes `bytes` (one record's value; nil for a tombstone) and appends its row to `batch`.
    /// - Parameters:
    ///   - arrivalMs: the time used when the event has none and the topology allows it.
    ///   - referenceMs: the record's broker timestamp: what the event time may be at most
    ///     `source.time.max_future` ahead of, and the time it gets instead with `future:
    ///     arrival_time`. Without one, the second newest time read so far (this one included).
    /// - Returns: what was decoded, or why the event goes to the dead letters (the batch is then
    ///   unchanged).
    public mutating func decode(
        _ bytes: UnsafeRawBufferPointer?, arrivalMs: Int64, referenceMs: Int64? = nil, into batch: inout EventBatch
    ) -> Result<Decoded, DeadLetterReason> {
        guard let bytes, !bytes.isEmpty else {
            return .failure(DeadLetterReason(.emptyEvent, "the record has no value"))
        }
        guard bytes.count <= maxEventBytes else {
            return .failure(
                DeadLetterReason(
                    .oversized, "\(bytes.count) bytes, more than source.max_event_bytes (\(maxEventBytes))"))
        }
        for k in numbers.indices { numbers[k] = .nan }
        for k in categories.indices { categories[k] = 0 }
        for k in seen.indices { seen[k] = false }
        var out = Decoded()
        var timeValue: TimeValue?
        var scanner = JSONScanner(bytes)
        do throws(JSONScanner.Failure) {
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: "{") else {
                if scanner.atEnd { return .failure(DeadLetterReason(.malformedJSON, "only whitespace")) }
                _ = try scanner.valueKind()
                try scanner.skipValue()
                try scanner.finish()
                return .failure(DeadLetterReason(.notAnObject, "an event must be a JSON object"))
            }
            try scanner.beginObject()
            while let name = try scanner.nextKey() {
                if let f = try lookup(name, scanner) {
                    if let reason = try readField(f, &scanner, &out, &timeValue) { return .failure(reason) }
                } else {
                    try scanner.skipValue()
                }
            }
            try scanner.finish()
        } catch {
            return .failure(DeadLetterReason(.malformedJSON, error.message))
        }
        // Presence checks, in declaration order.
        guard seen[keyField] else {
            return .failure(DeadLetterReason(.missingKey, "the entity key field '\(fieldNames[keyField])' is missing"))
        }
        for k in infos.indices where infos[k].required && !seen[k] && k != timeField {
            return .failure(DeadLetterReason(.missingField, "required field '\(fieldNames[k])' is missing"))
        }
        if let timeField {
            if let timeValue {
                do throws(TimeError) {
                    out.time = try eventTime(timeValue, bytes)
                } catch {
                    return .failure(DeadLetterReason(.badTime, "field '\(fieldNames[timeField])': \(error.detail)"))
                }
                if out.time > timesRead.newest {
                    timesRead = (out.time, timesRead.newest)
                } else if out.time > timesRead.second {
                    timesRead.second = out.time
                }
                let reference = referenceMs ?? (timesRead.second == .min ? nil : timesRead.second)
                if let reference, out.time > reference &+ min(maxFutureMs, .max - max(0, reference)) {
                    switch future {
                    case .deadLetter:
                        let against =
                            referenceMs != nil ? "the record's timestamp" : "the second newest event time read"
                        return .failure(
                            DeadLetterReason(
                                .futureTime,
                                "field '\(fieldNames[timeField])': \(out.time &- reference) ms ahead of \(against) (max_future \(DurationText.format(.milliseconds(maxFutureMs))))"
                            ))
                    case .arrivalTime:
                        out.time = reference
                    }
                }
            } else if missingTime == .deadLetter || infos[timeField].required {
                return .failure(
                    DeadLetterReason(.missingTime, "the event time field '\(fieldNames[timeField])' is missing"))
            } else {
                out.time = arrivalMs
            }
        } else {
            out.time = arrivalMs
        }
        batch.append(key: out.key, time: out.time, numbers: numbers, categories: categories)
        return .success(out)
    }

    /// A time field's raw value, interpreted once every field is read.
    private enum TimeValue {
        case number(Double)
        case text(Range<Int>)
    }

    /// The declared field a key names (unescaped first if it has escapes), or nil.
    private func lookup(_ name: JSONScanner.StringToken, _ scanner: JSONScanner) throws(JSONScanner.Failure) -> Int? {
        guard name.escaped else {
            return lookup(UnsafeRawBufferPointer(rebasing: scanner.bytes[name.start..<name.end]))
        }
        var plain: [UInt8] = []
        try scanner.unescape(name, into: &plain)
        return plain.withUnsafeBytes { lookup($0) }
    }

    private func lookup(_ key: UnsafeRawBufferPointer) -> Int? {
        nameBytes.withUnsafeBytes { all -> Int? in
            for k in nameLengths.indices where nameLengths[k] == key.count {
                if key.isEmpty || memcmp(all.baseAddress! + nameStarts[k], key.baseAddress!, key.count) == 0 {
                    return k
                }
            }
            return nil
        }
    }

    static let trueHash = StableHash.category("true")
    static let falseHash = StableHash.category("false")

    /// Reads declared field `f`'s value into the scratch row.
    private mutating func readField(
        _ f: Int, _ scanner: inout JSONScanner, _ out: inout Decoded, _ time: inout TimeValue?
    ) throws(JSONScanner.Failure) -> DeadLetterReason? {
        let field = infos[f]
        let kind = try scanner.valueKind()
        if kind == .null {
            try scanner.literal("null")
            seen[f] = false
            if f == timeField { time = nil }
            return nil
        }
        seen[f] = true
        func wrongType() -> DeadLetterReason {
            let got: String
            switch kind {
            case .object: got = "an object"
            case .array: got = "an array"
            case .string: got = "a string"
            case .number: got = "a number"
            case .true, .false: got = "a boolean"
            case .null: got = "null"
            }
            let expected: String
            switch field.type {
            case .number: expected = "a number"
            case .boolean: expected = "true or false"
            case .timestamp: expected = "a time (RFC 3339 string or epoch number)"
            case .category, .string: expected = "a string"
            }
            return DeadLetterReason(.wrongType, "field '\(fieldNames[f])': expected \(expected), got \(got)")
        }
        // The raw text of the value (strings: between the quotes), for hashing and for ids.
        var text = 0..<0
        // The hash of the value's text (unescaped), once computed.
        var textHash: UInt64?
        switch field.type {
        case .number:
            guard kind == .number else { return wrongType() }
            let n = try scanner.number()
            if let min = field.min, n.value < min {
                return DeadLetterReason(.outOfRange, "field '\(fieldNames[f])': \(n.value) is below the minimum \(min)")
            }
            if let max = field.max, n.value > max {
                return DeadLetterReason(.outOfRange, "field '\(fieldNames[f])': \(n.value) is above the maximum \(max)")
            }
            if let c = field.numberColumn { numbers[c] = n.value }
            if f == timeField { time = .number(n.value) }
            text = n.start..<n.end
        case .timestamp:
            switch kind {
            case .number:
                let n = try scanner.number()
                time = .number(n.value)
            case .string:
                let s = try scanner.string()
                time = .text(s.start..<s.end)
            default: return wrongType()
            }
            return nil
        case .boolean:
            switch kind {
            case .true: try scanner.literal("true")
            case .false: try scanner.literal("false")
            default: return wrongType()
            }
            if let c = field.categoryColumn { categories[c] = kind == .true ? Self.trueHash : Self.falseHash }
            return nil
        case .category, .string:
            switch kind {
            case .string:
                let s = try scanner.string()
                text = s.start..<s.end
                if s.escaped {
                    try scanner.unescape(s, into: &scratch)
                    textHash = scratch.withUnsafeBytes { StableHash.hash($0) }
                }
            case .number:
                let n = try scanner.number()
                text = n.start..<n.end
            case .true, .false:
                let start = scanner.i
                try scanner.literal(kind == .true ? "true" : "false")
                text = start..<scanner.i
            default: return wrongType()
            }
            let hash = textHash ?? StableHash.hash(UnsafeRawBufferPointer(rebasing: scanner.bytes[text]))
            textHash = hash
            if f == keyField || f == idField {
                guard JSONScanner.isValidUTF8(UnsafeRawBufferPointer(rebasing: scanner.bytes[text])) else {
                    return DeadLetterReason(.malformedJSON, "field '\(fieldNames[f])' is not valid UTF-8")
                }
            }
            if let c = field.categoryColumn { categories[c] = hash == 0 ? 1 : hash }
            if f == keyField {
                out.key = hash
                out.keyRange = text
            }
        }
        if f == idField {
            out.idRange = text
            out.idHash = textHash ?? StableHash.hash(UnsafeRawBufferPointer(rebasing: scanner.bytes[text]))
        }
        return nil
    }

    private struct TimeError: Error {
        var detail: String
    }

    private func eventTime(_ value: TimeValue, _ bytes: UnsafeRawBufferPointer) throws(TimeError) -> Int64 {
        switch value {
        case .number(let v):
            guard v.isFinite else { throw TimeError(detail: "not a finite number") }
            let ms: Double
            switch timeFormat {
            case .unixMilliseconds: ms = v
            case .unixSeconds: ms = v * 1000
            case .auto: ms = abs(v) >= 1e11 ? v : v * 1000
            case .rfc3339: throw TimeError(detail: "expected an RFC 3339 string, got a number")
            }
            guard abs(ms) < 1e16 else { throw TimeError(detail: "\(v) is out of range") }
            return Int64(ms.rounded(.down))
        case .text(let range):
            guard timeFormat == .auto || timeFormat == .rfc3339 else {
                throw TimeError(
                    detail: "expected epoch \(timeFormat == .unixSeconds ? "seconds" : "milliseconds"), got a string")
            }
            guard let ms = RFC3339.milliseconds(UnsafeRawBufferPointer(rebasing: bytes[range])) else {
                throw TimeError(
                    detail:
                        "'\(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range.prefix(40)]), as: UTF8.self))' is not an RFC 3339 time"
                )
            }
            return ms
        }
    }
}
