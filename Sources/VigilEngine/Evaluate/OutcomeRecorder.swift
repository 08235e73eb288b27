import Synchronization
import VigilCore

/// Every event's outcome from one replay, in input order, as columns: what `vigil evaluate`
/// measures quality from. It is filled on the replay writer's thread, one chunk at a time, and
/// read once the replay has finished.
public final class OutcomeRecorder: @unchecked Sendable {
    // Invariant: `observe` runs on one thread (the replay writer's); the columns are read only
    // after `Replay` returned, which joined that thread.
    /// Event time (ms since the epoch); `Int64.min` for dead letters.
    public private(set) var times: [Int64] = []
    /// Final score; NaN for dead letters.
    public private(set) var scores: [Double] = []
    /// The threshold each score was compared with; NaN for dead letters.
    public private(set) var thresholds: [Double] = []
    public private(set) var outcomes: [EventOutcome] = []
    /// The hash labels join on (`StableHash` of the event id); 0 without an id.
    public private(set) var idHashes: [UInt64] = []
    /// Per segment field: each event's value, as an index into `segmentValues`.
    public private(set) var segmentCodes: [[Int32]]
    /// Per segment field: the values seen, in order of first appearance; `(missing)` for events
    /// without the field.
    public private(set) var segmentValues: [[String]]
    public let segmentFields: [String]
    private var segmentIndex: [[String: Int32]]
    private let fieldBytes: [[UInt8]]

    /// The value events without a segment field are grouped under.
    public static let missingValue = "(missing)"

    public init(segments: [String]) {
        segmentFields = segments
        fieldBytes = segments.map { Array($0.utf8) }
        segmentCodes = segments.map { _ in [] }
        segmentValues = segments.map { _ in [] }
        segmentIndex = segments.map { _ in [:] }
    }

    public var count: Int { outcomes.count }

    /// Records a finished chunk (the replay's observer).
    public func observe(_ chunk: InputChunk) {
        for i in 0..<chunk.count {
            let outcome = chunk.outcome(i)
            outcomes.append(outcome)
            let dead = outcome == .deadLettered
            times.append(dead ? .min : chunk.eventTime(i))
            scores.append(dead ? .nan : chunk.score(i))
            thresholds.append(dead ? .nan : chunk.threshold(i))
            idHashes.append(Self.idHash(chunk.idText(i)))
            if !segmentFields.isEmpty {
                let values = chunk.withRawValue(i) { raw in Self.topLevelValues(raw, fields: fieldBytes) }
                for f in segmentFields.indices { segmentCodes[f].append(code(values[f] ?? Self.missingValue, f)) }
            }
        }
    }

    private func code(_ value: String, _ f: Int) -> Int32 {
        if let c = segmentIndex[f][value] { return c }
        let c = Int32(segmentValues[f].count)
        segmentValues[f].append(value)
        segmentIndex[f][value] = c
        return c
    }

    /// The label-join hash of an id as the chunk keeps it (escapes kept, as in the input), equal
    /// to what `EventDecoder` and `LabelDecoder` compute from the decoded text.
    static func idHash(_ text: String?) -> UInt64 {
        guard let text else { return 0 }
        guard text.utf8.contains(UInt8(ascii: "\\")) else { return StableHash.hash(text) }
        let quoted = Array(("\"" + text + "\"").utf8)
        return quoted.withUnsafeBytes { bytes -> UInt64 in
            var scanner = JSONScanner(bytes)
            var out: [UInt8] = []
            do throws(JSONScanner.Failure) {
                try scanner.unescape(try scanner.string(), into: &out)
            } catch {
                return StableHash.hash(text)
            }
            return out.withUnsafeBytes { StableHash.hash($0) }
        }
    }

    /// The text of the named top-level members of a JSON object: strings unescaped, numbers and
    /// booleans as written; nil for absent members, nulls, objects and arrays.
    static func topLevelValues(_ raw: UnsafeRawBufferPointer?, fields: [[UInt8]]) -> [String?] {
        var out = [String?](repeating: nil, count: fields.count)
        guard let raw else { return out }
        var scanner = JSONScanner(raw)
        do throws(JSONScanner.Failure) {
            try scanner.beginObject()
            while let token = try scanner.nextKey() {
                var name: [UInt8] = []
                try scanner.unescape(token, into: &name)
                guard let f = fields.firstIndex(of: name) else {
                    try scanner.skipValue()
                    continue
                }
                switch try scanner.valueKind() {
                case .string:
                    var text: [UInt8] = []
                    try scanner.unescape(try scanner.string(), into: &text)
                    out[f] = String(decoding: text, as: UTF8.self)
                case .number:
                    let n = try scanner.number()
                    out[f] = String(decoding: UnsafeRawBufferPointer(rebasing: raw[n.start..<n.end]), as: UTF8.self)
                case .true:
                    try scanner.literal("true")
                    out[f] = "true"
                case .false:
                    try scanner.literal("false")
                    out[f] = "false"
                default:
                    try scanner.skipValue()
                }
            }
        } catch {
            return out
        }
        return out
    }
}
