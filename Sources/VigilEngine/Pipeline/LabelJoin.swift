import VigilCore
import VigilModels

/// One ground-truth label: the `StableHash` of an event id, and whether that event was fraud.
public struct LabelRecord: Sendable, Hashable {
    public var idHash: UInt64
    public var isFraud: Bool

    public init(idHash: UInt64, isFraud: Bool) {
        self.idHash = idHash
        self.isFraud = isFraud
    }
}

/// Recent scored events waiting for their labels, in one worker: the feature row each was scored
/// with, its final score and whether it alerted. A label that finds its event trains the
/// label-learning models on exactly that row and feeds the prequential metrics.
///
/// Bounded two ways (docs/alerts.md, "Labels"): an event waits at most `expireMs` of event time
/// (the worker's newest event time, not the wall clock), and at most `capacity` events wait; the
/// oldest go first. Labels for events no longer waiting are counted as unmatched.
///
/// The ring is allocated at its full capacity up front but never initialised as a whole: the
/// kernel backs its pages only when a slot is first written, so memory follows use, and nothing
/// is ever copied to grow it (growing by doubling paused a worker for milliseconds). The index
/// reserves room for its first 262,144 entries for the same reason.
///
/// A class owned by one worker (see `Worker`'s invariant): not shared between threads.
final class LabelJoin {
    let expireMs: Int64
    let capacity: Int
    let columns: Int
    let categoryColumns: Int
    /// Models whose own scores and flags each waiting event keeps (their live quality).
    let models: Int
    /// Segment fields whose value codes each waiting event keeps (`LiveSegments`).
    let segments: Int
    private var index: [UInt64: Int32] = [:]
    // A ring of slots in arrival order.
    private let ids: UnsafeMutablePointer<UInt64>
    private let times: UnsafeMutablePointer<Int64>
    private let scoreSlots: UnsafeMutablePointer<Double>
    private let alertedSlots: UnsafeMutablePointer<Bool>
    private let modelScoreSlots: UnsafeMutablePointer<Double>
    private let flagSlots: UnsafeMutablePointer<UInt64>
    private let values: UnsafeMutablePointer<Double>
    private let buckets: UnsafeMutablePointer<UInt32>
    private let segmentSlots: UnsafeMutablePointer<UInt64>
    private var head = 0  // oldest
    private var used = 0
    /// Labels that arrived before their event (a labels topic read ahead of the events, as after
    /// a restart), in a direct-mapped table: slot `idHash % earlyCapacity` holds the newest such
    /// label (its id, 0 for none, and the label). Every worker sees every label and holds those
    /// of other workers' events too, so this must cost O(1) without allocating.
    private var earlyIds: [UInt64]
    private var earlyLabels: [Bool]
    let earlyCapacity: Int

    init(
        expireMs: Int64, capacity: Int, earlyCapacity: Int, columns: Int, categoryColumns: Int, models: Int,
        segments: Int = 0
    ) {
        self.expireMs = expireMs
        self.earlyCapacity = max(1, earlyCapacity)
        earlyIds = Array(repeating: 0, count: max(1, earlyCapacity))
        earlyLabels = Array(repeating: false, count: max(1, earlyCapacity))
        let capacity = max(1, capacity)
        self.capacity = capacity
        self.columns = columns
        self.categoryColumns = categoryColumns
        self.models = models
        self.segments = segments
        ids = .allocate(capacity: capacity)
        times = .allocate(capacity: capacity)
        scoreSlots = .allocate(capacity: capacity)
        alertedSlots = .allocate(capacity: capacity)
        modelScoreSlots = .allocate(capacity: max(1, capacity * models))
        flagSlots = .allocate(capacity: capacity)
        values = .allocate(capacity: max(1, capacity * columns))
        buckets = .allocate(capacity: max(1, capacity * categoryColumns))
        segmentSlots = .allocate(capacity: max(1, capacity * segments))
        index.reserveCapacity(min(capacity, 1 << 18))  // the early doublings; later ones are rare
    }

    deinit {
        ids.deallocate()
        times.deallocate()
        scoreSlots.deallocate()
        alertedSlots.deallocate()
        modelScoreSlots.deallocate()
        flagSlots.deallocate()
        values.deallocate()
        buckets.deallocate()
        segmentSlots.deallocate()
    }

    var waiting: Int { index.count }

    /// The final score event `slot` was given.
    func score(_ slot: Int) -> Double { scoreSlots[slot] }
    /// Whether event `slot` alerted.
    func alerted(_ slot: Int) -> Bool { alertedSlots[slot] }
    /// Model `k`'s own score of event `slot`.
    func modelScore(_ slot: Int, _ k: Int) -> Double { modelScoreSlots[slot * models + k] }
    /// The models whose own thresholds flagged event `slot`, as bits.
    func flags(_ slot: Int) -> UInt64 { flagSlots[slot] }
    /// The segment value codes of event `slot`, one per segment field.
    func segmentValues(_ slot: Int) -> UnsafePointer<UInt64> { UnsafePointer(segmentSlots + slot * segments) }

    /// Remembers event `row` of `matrix`, scored `score` (and `modelScores` by each model, which
    /// flagged it as `flags`), at event time `time`, with its segment value codes `segmentCodes`.
    /// Events older than `expireMs` before `min(time, clock)` stop waiting: `clock` is the event
    /// time the whole source has reached, when partitions are read unevenly (`SourceWatermark`).
    func add(
        idHash: UInt64, time: Int64, clock: Int64 = .max, score: Double, alerted wasAlerted: Bool,
        modelScores: UnsafePointer<Double>, flags: UInt64, segmentCodes: UnsafePointer<UInt64>,
        matrix: FeatureMatrix, row: Int
    ) {
        let now = min(time, clock)
        expire(before: now < .min + expireMs ? .min : now - expireMs)
        if used == capacity { dropOldest() }
        let slot = (head + used) % capacity
        used += 1
        ids[slot] = idHash
        times[slot] = time
        scoreSlots[slot] = score
        alertedSlots[slot] = wasAlerted
        for k in 0..<models { modelScoreSlots[slot * models + k] = modelScores[k] }
        flagSlots[slot] = flags
        for f in 0..<segments { segmentSlots[slot * segments + f] = segmentCodes[f] }
        matrix.values.withUnsafeBufferPointer { v in
            for c in 0..<columns { values[slot * columns + c] = v[row * columns + c] }
        }
        matrix.buckets.withUnsafeBufferPointer { b in
            for c in 0..<categoryColumns { buckets[slot * categoryColumns + c] = b[row * categoryColumns + c] }
        }
        // A repeated id: the newer event wins the label.
        index[idHash] = Int32(slot)
    }

    /// The slot of the event with this id, removed from the index (a label is used once).
    func take(_ idHash: UInt64) -> Int? {
        guard let slot = index.removeValue(forKey: idHash) else { return nil }
        return Int(slot)
    }

    /// Holds a label whose event has not been seen yet (replacing whatever held its slot).
    func holdEarly(_ label: LabelRecord) {
        let slot = Int(label.idHash % UInt64(earlyCapacity))
        earlyIds[slot] = label.idHash
        earlyLabels[slot] = label.isFraud
    }

    /// The held label of this event, if one arrived before it.
    func takeEarly(_ idHash: UInt64) -> Bool? {
        let slot = Int(idHash % UInt64(earlyCapacity))
        guard earlyIds[slot] == idHash, idHash != 0 else { return nil }
        earlyIds[slot] = 0
        return earlyLabels[slot]
    }

    /// Copies slot `slot`'s row into row 0 of `matrix` (reset to one row).
    func copyRow(_ slot: Int, into matrix: inout FeatureMatrix) {
        matrix.reset(rows: 1)
        for c in 0..<columns { matrix.values[c] = values[slot * columns + c] }
        for c in 0..<categoryColumns { matrix.buckets[c] = buckets[slot * categoryColumns + c] }
    }

    // MARK: Checkpoint

    /// Appends the events still waiting (oldest first, with their rows) and the early labels, as
    /// columns: a worker holds up to a million waiting events, and copying columns keeps the
    /// checkpoint's pause short.
    func encode(into out: inout BinaryWriter) {
        out.write(UInt8(3))  // body version
        out.write(UInt32(columns))
        out.write(UInt32(categoryColumns))
        out.write(UInt32(models))
        out.write(UInt32(segments))
        var live: [Int] = []
        live.reserveCapacity(index.count)
        for k in 0..<used {
            let slot = (head + k) % capacity
            if let indexed = index[ids[slot]], Int(indexed) == slot { live.append(slot) }
        }
        out.write(UInt64(live.count))
        func column<T: BitwiseCopyable>(_ width: Int, _ source: UnsafeMutablePointer<T>) {
            var gathered: [T] = []
            gathered.reserveCapacity(live.count * width)
            for slot in live { for c in 0..<width { gathered.append(source[slot * width + c]) } }
            gathered.withUnsafeBufferPointer { out.write(contentsOf: $0) }
        }
        column(1, ids)
        column(1, times)
        column(1, scoreSlots)
        column(1, alertedSlots)
        column(models, modelScoreSlots)
        column(1, flagSlots)
        column(columns, values)
        column(categoryColumns, buckets)
        column(segments, segmentSlots)
        let early = (0..<earlyCapacity).filter { earlyIds[$0] != 0 }
        out.write(UInt64(early.count))
        early.map { earlyIds[$0] }.withUnsafeBufferPointer { out.write(contentsOf: $0) }
        early.map { earlyLabels[$0] }.withUnsafeBufferPointer { out.write(contentsOf: $0) }
    }

    /// Refills an empty join with what `encode` wrote (the newest `capacity` events, if fewer
    /// fit now). With `keepSegments` false (the checkpoint was cut for other segment fields),
    /// the events' segment values are unknown and their labels count in no segment.
    func restore(from input: inout BinaryReader, keepSegments: Bool = true) throws(CheckpointError) {
        precondition(used == 0 && index.isEmpty, "restore into a fresh join only")
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard (1...3).contains(version) else {
            throw CheckpointError(.newerVersion, "label-join body version \(version)")
        }
        let cols = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        let cats = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        // Version 1 kept no per-model scores: those events count as unscored for the models.
        let stored = version == 1 ? 0 : Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        // Versions before 3 kept no segment values.
        let storedSegments = version < 3 ? 0 : Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard cols == columns, cats == categoryColumns else {
            throw CheckpointError(
                .wrongSchema, "waiting events have \(cols)+\(cats) columns, this topology \(columns)+\(categoryColumns)"
            )
        }
        let n = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int(Int32.max), "waiting events") }
        guard
            input.remaining >= n * (25 + 8 * stored + (version == 1 ? 0 : 8) + 8 * cols + 4 * cats + 8 * storedSegments)
        else {
            throw CheckpointError(.truncated, "waiting events cut short")
        }
        func column<T: BitwiseCopyable>(_ count: Int, _: T) throws(CheckpointError) -> [T] {
            try input.checkpoint { r throws(VigilError) in try r.values(count, of: T.self) }
        }
        let newIds = try column(n, UInt64(0))
        let newTimes = try column(n, Int64(0))
        let newScores = try column(n, 0.0)
        let newAlerted = try column(n, UInt8(0))
        let newModelScores = try column(n * stored, 0.0)
        let newFlags = version == 1 ? [UInt64](repeating: 0, count: n) : try column(n, UInt64(0))
        let newValues = try column(n * cols, 0.0)
        let newBuckets = try column(n * cats, UInt32(0))
        let newSegments = try column(n * storedSegments, UInt64(0))
        let segmentsKept = keepSegments && storedSegments == segments
        for i in 0..<n {
            if used == capacity { dropOldest() }
            let slot = (head + used) % capacity
            used += 1
            ids[slot] = newIds[i]
            times[slot] = newTimes[i]
            scoreSlots[slot] = newScores[i]
            alertedSlots[slot] = newAlerted[i] != 0
            // Models added since keep NaN scores for these events; a model's score is kept
            // only when the model count is unchanged (a structural reload restores no join).
            for k in 0..<models {
                modelScoreSlots[slot * models + k] = stored == models ? newModelScores[i * stored + k] : .nan
            }
            flagSlots[slot] = stored == models ? newFlags[i] : 0
            for c in 0..<cols { values[slot * columns + c] = newValues[i * cols + c] }
            for c in 0..<cats { buckets[slot * categoryColumns + c] = newBuckets[i * cats + c] }
            for f in 0..<segments {
                segmentSlots[slot * segments + f] =
                    segmentsKept ? newSegments[i * storedSegments + f] : LiveSegments.unknown
            }
            index[newIds[i]] = Int32(slot)
        }
        let m = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int(Int32.max), "early labels") }
        guard input.remaining >= 9 * m else { throw CheckpointError(.truncated, "early labels cut short") }
        let earlyIDs = try column(m, UInt64(0))
        let earlyValues = try column(m, UInt8(0))
        for i in 0..<m { holdEarly(LabelRecord(idHash: earlyIDs[i], isFraud: earlyValues[i] != 0)) }
    }

    private func expire(before cutoff: Int64) {
        while used > 0, times[head] < cutoff { dropOldest() }
    }

    private func dropOldest() {
        guard used > 0 else { return }
        let id = ids[head]
        if let slot = index[id], Int(slot) == head { index[id] = nil }
        head = (head + 1) % capacity
        used -= 1
    }
}
