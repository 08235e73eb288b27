import VigilCore

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
struct LabelJoin {
    let expireMs: Int64
    let capacity: Int
    let columns: Int
    let categoryColumns: Int
    private var index: [UInt64: Int32] = [:]
    // A ring of slots in arrival order.
    private var ids: [UInt64]
    private var times: [Int64]
    private(set) var scores: [Double]
    private(set) var alerted: [Bool]
    private(set) var values: [Double]
    private(set) var buckets: [UInt32]
    private var head = 0  // oldest
    private var used = 0
    /// Labels that arrived before their event (a labels topic read ahead of the events, as after
    /// a restart), in a direct-mapped table: slot `idHash % earlyCapacity` holds the newest such
    /// label (its id, 0 for none, and the label). Every worker sees every label and holds those
    /// of other workers' events too, so this must cost O(1) without allocating.
    private var earlyIds: [UInt64]
    private var earlyLabels: [Bool]
    let earlyCapacity: Int

    init(expireMs: Int64, capacity: Int, earlyCapacity: Int, columns: Int, categoryColumns: Int) {
        self.expireMs = expireMs
        self.earlyCapacity = max(1, earlyCapacity)
        earlyIds = Array(repeating: 0, count: max(1, earlyCapacity))
        earlyLabels = Array(repeating: false, count: max(1, earlyCapacity))
        self.capacity = max(1, capacity)
        self.columns = columns
        self.categoryColumns = categoryColumns
        // Grown on demand up to `capacity`.
        ids = []
        times = []
        scores = []
        alerted = []
        values = []
        buckets = []
    }

    var waiting: Int { index.count }

    /// Remembers event `row` of `matrix`, scored `score`, at event time `time`.
    mutating func add(idHash: UInt64, time: Int64, score: Double, alerted wasAlerted: Bool, matrix: FeatureMatrix, row: Int) {
        expire(before: time &- expireMs)
        if used == ids.count {
            if ids.count < capacity { grow() } else { dropOldest() }
        }
        let slot = (head + used) % ids.count
        used += 1
        ids[slot] = idHash
        times[slot] = time
        scores[slot] = score
        alerted[slot] = wasAlerted
        for c in 0..<columns { values[slot * columns + c] = matrix.values[row * columns + c] }
        for c in 0..<categoryColumns { buckets[slot * categoryColumns + c] = matrix.buckets[row * categoryColumns + c] }
        // A repeated id: the newer event wins the label.
        index[idHash] = Int32(slot)
    }

    /// The slot of the event with this id, removed from the index (a label is used once).
    mutating func take(_ idHash: UInt64) -> Int? {
        guard let slot = index.removeValue(forKey: idHash) else { return nil }
        return Int(slot)
    }

    /// Holds a label whose event has not been seen yet (replacing whatever held its slot).
    mutating func holdEarly(_ label: LabelRecord) {
        let slot = Int(label.idHash % UInt64(earlyCapacity))
        earlyIds[slot] = label.idHash
        earlyLabels[slot] = label.isFraud
    }

    /// The held label of this event, if one arrived before it.
    mutating func takeEarly(_ idHash: UInt64) -> Bool? {
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

    /// Doubles the ring (up to `capacity`), oldest slot first.
    private mutating func grow() {
        let n = ids.count
        let size = min(capacity, max(1024, n * 2))
        func reordered<T>(_ a: [T], _ width: Int, _ fill: T) -> [T] {
            var out: [T] = []
            out.reserveCapacity(size * width)
            for k in 0..<used {
                let s = (head + k) % n
                out.append(contentsOf: a[(s * width)..<((s + 1) * width)])
            }
            out.append(contentsOf: repeatElement(fill, count: (size - used) * width))
            return out
        }
        ids = reordered(ids, 1, 0)
        times = reordered(times, 1, 0)
        scores = reordered(scores, 1, 0)
        alerted = reordered(alerted, 1, false)
        values = reordered(values, columns, 0)
        buckets = reordered(buckets, categoryColumns, 0)
        if n > 0 { index = index.mapValues { Int32((Int($0) - head + n) % n) } }
        head = 0
    }

    private mutating func expire(before cutoff: Int64) {
        while used > 0, times[head] < cutoff { dropOldest() }
    }

    private mutating func dropOldest() {
        guard used > 0 else { return }
        let id = ids[head]
        if let slot = index[id], Int(slot) == head { index[id] = nil }
        head = (head + 1) % ids.count
        used -= 1
    }
}
