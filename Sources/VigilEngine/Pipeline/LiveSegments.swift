import VigilCore
import VigilModels

/// Labelled events, fraud and alerts for one segment value: what the fairness figures of
/// `vigil evaluate` and of `/metrics` are computed from.
public struct SegmentCounts: Sendable, Equatable {
    /// Labelled events.
    public var events = 0
    /// Labelled fraud.
    public var positives = 0
    /// Labelled events that alerted.
    public var alerts = 0
    /// Fraud that alerted.
    public var hits = 0

    public init() {}

    mutating func add(fraud: Bool, alerted: Bool) {
        events += 1
        if fraud { positives += 1 }
        if alerted { alerts += 1 }
        if fraud && alerted { hits += 1 }
    }

    mutating func add(_ other: SegmentCounts) {
        events += other.events
        positives += other.positives
        alerts += other.alerts
        hits += other.hits
    }
}

/// One worker's segment counts since the topology's first run (they are checkpointed): per
/// segment field, each value the worker has seen, in order of first sight, with its hash, its
/// text and its counts. A value's place in that order is its code: what `LabelJoin` keeps.
struct SegmentTally: Sendable {
    let fields: [String]
    var hashes: [[UInt64]]
    var names: [[String]]
    var counts: [[SegmentCounts]]
    /// Each field's codes by value hash.
    var codes: [[UInt64: Int]]

    init(fields: [String]) {
        self.fields = fields
        hashes = fields.map { _ in [] }
        names = fields.map { _ in [] }
        counts = fields.map { _ in [] }
        codes = fields.map { _ in [:] }
    }

    /// Gives value `hash` of field `f`, called `name`, the next code.
    mutating func append(_ f: Int, hash: UInt64, name: String) -> Int {
        let code = hashes[f].count
        hashes[f].append(hash)
        names[f].append(name)
        counts[f].append(SegmentCounts())
        codes[f][hash] = code
        return code
    }

    /// Every field's fairness report over the tallies of all workers, values merged by text.
    static func reports(_ tallies: [SegmentTally], fields: [String]) -> [SegmentReport] {
        fields.enumerated().map { f, field in
            var merged: [String: SegmentCounts] = [:]
            for t in tallies where t.fields == fields {
                for (name, c) in zip(t.names[f], t.counts[f]) { merged[name, default: SegmentCounts()].add(c) }
            }
            return SegmentReport(field: field, counts: merged.map { ($0.key, $0.value) })
        }
    }

    // MARK: Checkpoint

    func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(fields.count)
        for (f, field) in fields.enumerated() {
            out.write(field)
            out.write(hashes[f].count)
            for code in hashes[f].indices {
                let c = counts[f][code]
                out.write(hashes[f][code])
                out.write(names[f][code])
                for n in [c.events, c.positives, c.alerts, c.hits] { out.write(n) }
            }
        }
    }

    /// What `encode` wrote; nil when it was written for other segment fields (the counts then
    /// start afresh).
    static func decode(_ input: inout BinaryReader, fields: [String]) throws(CheckpointError) -> SegmentTally? {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "segments body version \(version)") }
        return try input.checkpoint { r throws(VigilError) -> SegmentTally? in
            let n = try r.int(in: 0...1024, "segment fields")
            var stored: [String] = []
            var tally = SegmentTally(fields: fields)
            var entries: [[(UInt64, String, SegmentCounts)]] = []
            for _ in 0..<n {
                stored.append(try r.string())
                let values = try r.int(in: 0...(1 << 20), "segment values")
                var list: [(UInt64, String, SegmentCounts)] = []
                for _ in 0..<values {
                    let hash = try r.uint64()
                    let name = try r.string()
                    var c = SegmentCounts()
                    c.events = Int(try r.int64())
                    c.positives = Int(try r.int64())
                    c.alerts = Int(try r.int64())
                    c.hits = Int(try r.int64())
                    list.append((hash, name, c))
                }
                entries.append(list)
            }
            guard stored == fields else { return nil }
            for f in fields.indices {
                for (hash, name, c) in entries[f] { tally.counts[f][tally.append(f, hash: hash, name: name)] = c }
            }
            return tally
        }
    }
}

/// The segment values (`segments:`) of the events a worker holds for their labels, and the
/// counts their labels make: the live fairness figures of `/metrics`. Values are taken from the
/// decoded columns as hashes and kept as small codes (`SegmentTally`), so a joined label counts
/// with an array index; a value's text is read from the raw event only the first time a worker
/// sees it. At most `maxValues` values per field are told apart (metric labels must stay few);
/// the rest count as `(other)`.
///
/// Owned by one worker (see `Worker`'s invariant).
final class LiveSegments {
    /// Where a segment field's value sits in the decoded batch.
    enum Column {
        case category(Int)
        case number(Int)
    }

    let columns: [Column]
    private let fieldBytes: [[UInt8]]
    var tally: SegmentTally
    /// The current event's value codes, one per field (what `LabelJoin` keeps).
    let scratch: UnsafeMutablePointer<UInt64>
    /// Recently seen values, direct-mapped by hash: their key (hash plus field) and code. Most
    /// events find theirs here without a dictionary lookup.
    private var recentKeys: [UInt64]
    private var recentCodes: [UInt64]

    static let maxValues = 100
    /// Hash of a missing value.
    static let missing: UInt64 = 0
    /// Hash of the values past `maxValues`.
    static let other: UInt64 = .max - 1
    /// Code of a value not known (an event restored from a checkpoint written for other segment
    /// fields): its label is not counted.
    static let unknown: UInt64 = .max
    static let otherValue = "(other)"

    var count: Int { columns.count }

    init(fields: [String], layout: EventLayout) {
        columns = fields.map { name in
            if let c = layout.categories.firstIndex(of: name) { return .category(c) }
            // Topology decoding admits only declared fields, so a non-category is a number.
            return .number(layout.numbers.firstIndex(of: name) ?? 0)
        }
        fieldBytes = fields.map { Array($0.utf8) }
        tally = SegmentTally(fields: fields)
        scratch = .allocate(capacity: max(1, fields.count))
        recentKeys = Array(repeating: .max, count: 256)
        recentCodes = Array(repeating: 0, count: 256)
    }

    deinit { scratch.deallocate() }

    /// Fills `scratch` with the segment value codes of `batch` row `r` (record `i` of `chunk`),
    /// giving values this worker has not seen before a code.
    func codes(_ batch: EventBatch, row r: Int, chunk: InputChunk, record i: Int) {
        let categories = batch.layout.categories.count
        let numbers = batch.layout.numbers.count
        for (f, column) in columns.enumerated() {
            let hash: UInt64
            switch column {
            case .category(let c):
                hash = batch.categories[r * categories + c]
            case .number(let c):
                let v = batch.numbers[r * numbers + c]
                hash = v.isNaN ? Self.missing : ((v == 0 ? 0 : v.bitPattern) &* 0x9E37_79B9_7F4A_7C15) | 1
            }
            let key = hash &+ UInt64(f)
            let slot = Int(truncatingIfNeeded: (key ^ (key >> 29)) & 255)
            if recentKeys[slot] == key {
                scratch[f] = recentCodes[slot]
                continue
            }
            let code: Int
            if let known = tally.codes[f][hash] {
                code = known
            } else if tally.hashes[f].count < Self.maxValues {
                code = tally.append(f, hash: hash, name: name(hash, f, chunk: chunk, record: i))
            } else {
                code = tally.codes[f][Self.other] ?? tally.append(f, hash: Self.other, name: Self.otherValue)
            }
            recentKeys[slot] = key
            recentCodes[slot] = UInt64(code)
            scratch[f] = UInt64(code)
        }
    }

    private func name(_ hash: UInt64, _ f: Int, chunk: InputChunk, record i: Int) -> String {
        guard hash != Self.missing else { return OutcomeRecorder.missingValue }
        let text = chunk.withRawValue(i) { raw in OutcomeRecorder.topLevelValues(raw, fields: [fieldBytes[f]]) }
        return text[0] ?? OutcomeRecorder.missingValue
    }

    /// Counts one joined label of an event whose value codes `LabelJoin` kept.
    func count(_ codes: UnsafePointer<UInt64>, fraud: Bool, alerted: Bool) {
        for f in 0..<columns.count {
            let code = codes[f]
            guard code < UInt64(tally.counts[f].count) else { continue }  // unknown
            tally.counts[f][Int(code)].add(fraud: fraud, alerted: alerted)
        }
    }
}
