import Synchronization
import VigilCore
import VigilFeatures

/// Where an input record came from: topic, partition and offset (for a file, the line number as
/// the offset of partition 0), and the timestamp its producer gave it.
public struct SourcePosition: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch; nil when unknown.
    public var timestampMs: Int64?

    public init(topic: String, partition: Int32, offset: Int64, timestampMs: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestampMs = timestampMs
    }
}

/// What happened to one input record.
public enum EventOutcome: UInt8, Sendable {
    /// Not finished yet.
    case pending
    /// Scored, no alert.
    case scored
    /// Scored and alerted.
    case alerted
    /// Sent to the dead letters (`InputChunk.deadLetters` says why).
    case deadLettered
}

/// One batch of input records on its way through the pipeline: what ingest decoded, and the
/// results the workers fill in. Ingest builds it, each worker writes the rows of its own shard,
/// and whichever thread finishes last hands it to the sink, which publishes its alerts and dead
/// letters and then marks its records done.
///
/// `@unchecked Sendable` invariant: ingest writes the decoded part before publishing the chunk to
/// any ring (the ring's release/acquire orders it); afterwards it is read-only. The result
/// buffers are written by workers at disjoint rows (each row belongs to one shard), and `alerts`
/// and `lateDeadLetters` at the worker's own shard slot; the sink reads them only after the
/// acquiring decrement of `remaining` that saw every worker's releasing one.
public final class InputChunk: @unchecked Sendable {
    /// Increasing per pipeline: the order records were read in.
    public let sequence: Int
    /// When ingest started on the chunk (right after the poll that returned its records).
    public let createdAt = ContinuousClock.now
    /// Records in the chunk (decoded or not).
    public let count: Int
    /// Models per record in `modelScores`.
    public let models: Int
    public let topics: [String]
    let topicIndex: UnsafeMutableBufferPointer<Int32>
    let partitions: UnsafeMutableBufferPointer<Int32>
    let offsets: UnsafeMutableBufferPointer<Int64>
    let timestamps: UnsafeMutableBufferPointer<Int64>
    /// Key and id text of each record, copied out of the input (for alerts and score lines).
    var text: [UInt8] = []
    let keyRanges: UnsafeMutableBufferPointer<TextRange>
    let idRanges: UnsafeMutableBufferPointer<TextRange>
    /// Event time in ms (decoded records only).
    let times: UnsafeMutableBufferPointer<Int64>
    /// The newest event time among the decoded records (`Int64.min` when none).
    public internal(set) var newestTime = Int64.min
    /// The event time the source had reached before this chunk (`.max`: the events' own times):
    /// the label join expires events by it, so that a partition read ahead of the others does
    /// not expire the events of the others before their labels are read.
    public internal(set) var joinClock = Int64.max
    /// Dead letters found by ingest, by record index.
    public internal(set) var deadLetters: [Int: DeadLetterReason] = [:]
    /// The raw input, kept for dead-letter records.
    let raw: any RawRecords

    // Results, written by the workers.
    let outcomes: UnsafeMutableBufferPointer<EventOutcome>
    let scores: UnsafeMutableBufferPointer<Double>
    let modelScores: UnsafeMutableBufferPointer<Double>
    /// Per record: the models whose own thresholds flagged it, as bits (`ModelTracks`).
    let modelFlags: UnsafeMutableBufferPointer<UInt64>
    let thresholds: UnsafeMutableBufferPointer<Double>
    /// Per shard: the alerts it raised (JSON records) and its late events for the dead letters.
    let alerts: UnsafeMutableBufferPointer<[AlertRecord]>
    let lateDeadLetters: UnsafeMutableBufferPointer<[Int]>
    let remaining = Atomic<Int>(0)

    /// A range of `text`; `start < 0` means absent.
    struct TextRange {
        var start: Int32
        var count: Int32
        static let none = TextRange(start: -1, count: 0)
    }

    init(sequence: Int, count: Int, models: Int, shards: Int, topics: [String], raw: any RawRecords) {
        self.sequence = sequence
        self.count = count
        self.models = models
        self.topics = topics
        self.raw = raw
        func buffer<T>(_ n: Int, _ value: T) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, n))
            b.initialize(repeating: value)
            return UnsafeMutableBufferPointer(rebasing: b[0..<n])
        }
        topicIndex = buffer(count, 0)
        partitions = buffer(count, 0)
        offsets = buffer(count, 0)
        timestamps = buffer(count, -1)
        keyRanges = buffer(count, .none)
        idRanges = buffer(count, .none)
        times = buffer(count, 0)
        outcomes = buffer(count, .pending)
        scores = buffer(count, .nan)
        modelScores = buffer(count * models, .nan)
        modelFlags = buffer(count, 0)
        thresholds = buffer(count, .nan)
        alerts = buffer(shards, [])
        lateDeadLetters = buffer(shards, [])
    }

    deinit {
        topicIndex.baseAddress?.deallocate()
        partitions.baseAddress?.deallocate()
        offsets.baseAddress?.deallocate()
        timestamps.baseAddress?.deallocate()
        keyRanges.baseAddress?.deallocate()
        idRanges.baseAddress?.deallocate()
        times.baseAddress?.deallocate()
        outcomes.baseAddress?.deallocate()
        scores.baseAddress?.deallocate()
        modelScores.baseAddress?.deallocate()
        modelFlags.baseAddress?.deallocate()
        thresholds.baseAddress?.deallocate()
        alerts.baseAddress.map { base in
            base.deinitialize(count: alerts.count)
            base.deallocate()
        }
        lateDeadLetters.baseAddress.map { base in
            base.deinitialize(count: lateDeadLetters.count)
            base.deallocate()
        }
    }

    // MARK: Reading results (sink side)

    /// The source position of record `i`.
    public func position(_ i: Int) -> SourcePosition {
        SourcePosition(
            topic: topics[Int(topicIndex[i])], partition: partitions[i], offset: offsets[i],
            timestampMs: timestamps[i] < 0 ? nil : timestamps[i])
    }

    public func outcome(_ i: Int) -> EventOutcome { outcomes[i] }
    /// The final (ensemble) score of record `i`; NaN when it was not scored.
    public func score(_ i: Int) -> Double { scores[i] }
    /// Model `m`'s score of record `i`.
    public func modelScore(_ i: Int, _ m: Int) -> Double { modelScores[i * models + m] }

    /// Whether model `m`'s own threshold flagged record `i` (its live quality counts this as the
    /// model's alert, whatever its role).
    public func modelFlagged(_ i: Int, _ m: Int) -> Bool { m < 56 && modelFlags[i] & (1 << UInt64(m)) != 0 }
    /// The threshold record `i` was compared with.
    public func threshold(_ i: Int) -> Double { thresholds[i] }
    /// The event id's text (escapes kept), if the event had one.
    public func idText(_ i: Int) -> String? { textOf(idRanges[i]) }
    /// The entity key's text (escapes kept).
    public func keyText(_ i: Int) -> String? { textOf(keyRanges[i]) }
    /// Event time of a decoded record, ms since the epoch.
    public func eventTime(_ i: Int) -> Int64 { times[i] }

    func textOf(_ r: TextRange) -> String? {
        guard r.start >= 0 else { return nil }
        return String(decoding: text[Int(r.start)..<Int(r.start + r.count)], as: UTF8.self)
    }

    func appendText(_ r: TextRange, to out: inout [UInt8]) {
        guard r.start >= 0 else { return }
        out.append(contentsOf: text[Int(r.start)..<Int(r.start + r.count)])
    }

    /// Writes record `i`'s id as a JSON string (its text as it came, escapes kept), or `null`.
    func appendIDJSON(_ i: Int, to out: inout [UInt8]) {
        guard idRanges[i].start >= 0 else {
            out += "null".utf8
            return
        }
        out.append(0x22)
        appendText(idRanges[i], to: &out)
        out.append(0x22)
    }

    /// Every alert of the chunk, in record order.
    public var allAlerts: [AlertRecord] { alerts.joined().sorted { $0.index < $1.index } }

    /// Every dead letter of the chunk (ingest's and the workers' late events), in record order.
    public var allDeadLetters: [(index: Int, reason: DeadLetterReason)] {
        var out = deadLetters.map { (index: $0.key, reason: $0.value) }
        for shard in lateDeadLetters {
            for i in shard {
                out.append(
                    (
                        i,
                        DeadLetterReason(
                            .late, "later than source.time.allowed_lateness behind its entity's newest event")
                    ))
            }
        }
        return out.sorted { $0.index < $1.index }
    }

    /// Calls `body` with record `i`'s raw value (nil for a tombstone).
    public func withRawValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R { raw.withValue(i, body) }
    /// Record `i`'s raw key (Kafka only).
    public func rawKey(_ i: Int) -> [UInt8]? { raw.key(i) }
}

/// The raw records behind a chunk, kept so dead letters can carry their exact bytes.
public protocol RawRecords: Sendable {
    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R
    func key(_ i: Int) -> [UInt8]?
}

/// One alert as the sink publishes it: the record it belongs to, its id and its JSON.
public struct AlertRecord: Sendable {
    /// Record index in the chunk.
    public var index: Int
    /// The deterministic alert id (also inside `json`).
    public var id: String
    /// The alert, as docs/alerts.md describes it.
    public var json: [UInt8]
}
