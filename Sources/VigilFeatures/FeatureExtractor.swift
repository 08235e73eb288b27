import VigilCore

/// One worker's feature stage: it owns the per-entity state of its shard and turns each batch of
/// events into feature vectors, updating the state as it goes. Synchronous and deterministic:
/// the same events in the same order give the same features and the same state.
///
/// Event-time semantics (docs/features.md has the full statement):
/// - An event is *accepted* when its time is at most `allowedLateness` behind its entity's newest
///   event (and not before what that entity already folded away). Accepted events get exactly the
///   features they would have had if every accepted event had arrived in time order.
/// - A later event is *late*: scored as if it happened at its entity's newest time, without
///   updating state (`scoreLate`), or not computed at all, for the dead letters.
///
/// `@unchecked Sendable` invariant: one thread at a time calls it (it is created, then moved to
/// the worker thread that owns its shard); nothing in it is shared.
public final class FeatureExtractor: @unchecked Sendable {
    public let plan: FeaturePlan
    /// Milliseconds an event may trail its entity's newest event and still update state.
    public let allowedLatenessMs: Int64
    /// Late events are scored (true) or left for the dead letters (false).
    public let scoreLate: Bool
    /// An entity idle this long (event time) is forgotten.
    public let idleTTLMs: Int64
    let store: EntityStore
    /// Newest accepted event time of this worker: the clock idle expiry runs on.
    public internal(set) var clock: Int64 = .min
    /// What has happened so far (never reset).
    public internal(set) var counters = Counters()
    var random: UInt64
    var sweepCursor = 0
    /// Keeps the prefetching loads of `process` observable, so the optimiser keeps them.
    private var touchSink: UInt64 = 0
    private var touchScratch: [Int] = []
    /// Events prefetched together: enough loads in flight to overlap memory latency, few enough
    /// that their rows are still in L2 when processed (measured: 256 beat 64, 1024 and 4096).
    static let prefetchChunk = 256
    // The plan's tables copied into raw buffers: the hot path reads them without reference
    // counting or bounds checks. Freed in deinit.
    let windows: UnsafeMutableBufferPointer<FeaturePlan.WindowGroup>
    let decays: UnsafeMutableBufferPointer<FeaturePlan.DecayGroup>
    let distincts: UnsafeMutableBufferPointer<FeaturePlan.DistinctState>
    let novelties: UnsafeMutableBufferPointer<FeaturePlan.NoveltyState>
    let shares: UnsafeMutableBufferPointer<FeaturePlan.ShareState>
    let columns: UnsafeMutableBufferPointer<FeaturePlan.Column>
    let tailNumbers: UnsafeMutableBufferPointer<Int>
    let tailCategories: UnsafeMutableBufferPointer<Int>
    let categoryFields: UnsafeMutableBufferPointer<Int>
    let categoryBuckets: UnsafeMutableBufferPointer<UInt64>
    let panes: Int
    let reorderBuffer: Int
    let tailOffset: Int
    let tailStride: Int
    // Scratch, reused per event: one aggregate per window group and per decay group.
    let windowScratch: UnsafeMutableBufferPointer<WindowSums>
    let decayScratch: UnsafeMutableBufferPointer<DecaySums>
    /// Decay factors from the entity's newest time to the last evaluation time, and those two
    /// times: `insert` reuses them instead of calling exp2 again.
    let decayFactors: UnsafeMutableBufferPointer<Double>
    var decayFactorsAt: (Int64, Int64) = (.min, .min)
    /// One unfolded-event entry, where an arriving event is encoded before it is placed.
    let entryScratch: UnsafeMutableRawPointer

    /// Counts of what the stage did, for metrics.
    public struct Counters: Sendable, Equatable {
        public var accepted = 0
        public var lateScored = 0
        public var lateRejected = 0
        public var entitiesCreated = 0
        public var evictedIdle = 0
        public var evictedForCapacity = 0
    }

    /// What happened to one event.
    public enum Outcome: UInt8, Sendable {
        /// Features computed and state updated.
        case accepted
        /// Too late: features computed against current state, state unchanged.
        case lateScored
        /// Too late and the topology sends late events to the dead letters: no features.
        case lateRejected
    }

    /// - Parameters:
    ///   - maxEntities: this worker's share of `state.max_entities`.
    ///   - seed: seeds eviction sampling (results depend on it only when the store is full).
    ///   - tableSeed: randomises table positions against crafted keys; results never depend on it.
    public init(
        plan: FeaturePlan, allowedLateness: Duration, scoreLate: Bool = true, idleTTL: Duration,
        maxEntities: Int, seed: UInt64 = 0, tableSeed: UInt64 = UInt64.random(in: .min ... .max)
    ) {
        self.plan = plan
        allowedLatenessMs = allowedLateness.wholeMilliseconds
        self.scoreLate = scoreLate
        idleTTLMs = idleTTL.wholeMilliseconds
        store = EntityStore(stride: plan.layout.stride, maxEntities: max(1, maxEntities), tableSeed: tableSeed)
        random = seed ^ 0x2545_F491_4F6C_DD1D
        func copy<T>(_ array: [T]) -> UnsafeMutableBufferPointer<T> {
            let buffer = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, array.count))
            _ = buffer.initialize(from: array)
            return UnsafeMutableBufferPointer(rebasing: buffer[0..<array.count])
        }
        windows = copy(plan.windows)
        decays = copy(plan.decays)
        distincts = copy(plan.distincts)
        novelties = copy(plan.novelties)
        shares = copy(plan.shares)
        columns = copy(plan.columns)
        tailNumbers = copy(plan.tailNumbers)
        tailCategories = copy(plan.tailCategories)
        categoryFields = copy(plan.categoryColumns.map(\.field))
        categoryBuckets = copy(plan.categoryColumns.map { UInt64($0.buckets) })
        panes = plan.panes
        reorderBuffer = plan.reorderBuffer
        tailOffset = plan.layout.tail
        tailStride = plan.layout.tailStride
        windowScratch = copy(Array(repeating: WindowSums(), count: plan.windows.count))
        decayScratch = copy(Array(repeating: DecaySums(), count: plan.decays.count))
        entryScratch = .allocate(byteCount: plan.layout.tailStride, alignment: 8)
        // Zeroed once: an entry's padding (a stride rounded up to 8 bytes) is never written, and
        // it is copied into the rows, whose checkpoint bytes must not depend on what the heap
        // held before (found by comparing keyed stages' states byte for byte).
        entryScratch.initializeMemory(as: UInt8.self, repeating: 0, count: plan.layout.tailStride)
        decayFactors = copy(Array(repeating: 1.0, count: plan.decays.count))
    }

    deinit {
        for buffer in [
            UnsafeMutableRawPointer(windows.baseAddress), UnsafeMutableRawPointer(decays.baseAddress),
            UnsafeMutableRawPointer(distincts.baseAddress), UnsafeMutableRawPointer(novelties.baseAddress),
            UnsafeMutableRawPointer(shares.baseAddress),
            UnsafeMutableRawPointer(columns.baseAddress), UnsafeMutableRawPointer(tailNumbers.baseAddress),
            UnsafeMutableRawPointer(tailCategories.baseAddress), UnsafeMutableRawPointer(categoryFields.baseAddress),
            UnsafeMutableRawPointer(categoryBuckets.baseAddress), UnsafeMutableRawPointer(windowScratch.baseAddress),
            UnsafeMutableRawPointer(decayScratch.baseAddress), UnsafeMutableRawPointer(decayFactors.baseAddress),
        ] {
            buffer?.deallocate()
        }
        entryScratch.deallocate()
    }

    /// Entities held now.
    public var entityCount: Int { store.count }
    /// Bytes allocated for entity state (rows and lookup table).
    public var stateBytes: Int { store.allocatedBytes }

    /// An empty matrix shaped for this plan's output.
    public func makeMatrix() -> FeatureMatrix {
        FeatureMatrix(names: plan.names, categoryNames: plan.categoryNames, categoryBuckets: plan.categoryBuckets)
    }

    /// Computes the features of every event in `batch` into `matrix` (one row per event, in order)
    /// and records each event's outcome in `outcomes`.
    /// - Parameters:
    ///   - groups: each event's key group (its source partition, + 1), stored in its entity's row
    ///     so that the state can move with the partition; empty for none.
    ///   - entityKeys: the entity of each event, when not the batch's own keys (a keyed stage's
    ///     merchant or device, `KeyedFeatureStage`).
    public func process(
        _ batch: EventBatch, groups: [UInt32] = [], entityKeys: [UInt64]? = nil, into matrix: inout FeatureMatrix,
        outcomes: inout [Outcome]
    ) {
        precondition(entityKeys == nil || entityKeys!.count == batch.count, "one entity key per event")
        precondition(groups.isEmpty || groups.count == batch.count, "one key group per event")
        matrix.reset(rows: batch.count)
        outcomes.removeAll(keepingCapacity: true)
        let nNum = batch.layout.numbers.count
        let nCat = batch.layout.categories.count
        let cols = plan.names.count
        let catCols = plan.categoryNames.count
        if touchScratch.count < Self.prefetchChunk { touchScratch = Array(repeating: 0, count: Self.prefetchChunk) }
        let keys = entityKeys ?? batch.keys
        let times = batch.times
        keys.withUnsafeBufferPointer { keys in
            batch.numbers.withUnsafeBufferPointer { numbers in
                batch.categories.withUnsafeBufferPointer { categories in
                    matrix.values.withUnsafeMutableBufferPointer { out in
                        matrix.buckets.withUnsafeMutableBufferPointer { outBuckets in
                            for i in 0..<batch.count {
                                if i % Self.prefetchChunk == 0 {
                                    // Bring the next chunk's table slots and rows toward the
                                    // cache first (see EntityStore.touch).
                                    let chunk = UnsafeBufferPointer(
                                        rebasing: keys[i..<min(batch.count, i + Self.prefetchChunk)])
                                    touchSink &+= touchScratch.withUnsafeMutableBufferPointer {
                                        store.touch(chunk, scratch: $0.baseAddress!)
                                    }
                                }
                                let event = Event(
                                    time: times[i],
                                    numbers: UnsafeBufferPointer(rebasing: numbers[i * nNum..<(i + 1) * nNum]),
                                    categories: UnsafeBufferPointer(rebasing: categories[i * nCat..<(i + 1) * nCat]))
                                let outcome = processOne(
                                    key: keys[i], group: groups.isEmpty ? 0 : groups[i], event,
                                    out: UnsafeMutableBufferPointer(rebasing: out[i * cols..<(i + 1) * cols]))
                                outcomes.append(outcome)
                                for c in 0..<catCols {
                                    let h = event.categories[categoryFields[c]]
                                    outBuckets[i * catCols + c] =
                                        h == 0 ? FeatureMatrix.missing : UInt32(h % categoryBuckets[c])
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// One event's view of its batch row.
    struct Event {
        var time: Int64
        var numbers: UnsafeBufferPointer<Double>
        var categories: UnsafeBufferPointer<UInt64>
    }

    /// Event times are clamped to ±2^50 ms (±35,000 years), so that no time arithmetic can
    /// overflow whatever a producer sends.
    static let timeLimit: Int64 = 1 << 50

    private func processOne(key: UInt64, group: UInt32, _ event: Event, out: UnsafeMutableBufferPointer<Double>)
        -> Outcome
    {
        var event = event
        event.time = min(Self.timeLimit, max(-Self.timeLimit, event.time))
        let t = event.time
        var index = store.find(key)
        if let r = index, idleTTLMs > 0,
            store.row(r).load(fromByteOffset: FeaturePlan.RowLayout.newest, as: Int64.self) < t - idleTTLMs
        {
            store.remove(r)  // idle longer than the TTL: forgotten, as the sweep would have
            counters.evictedIdle += 1
            index = nil
        }
        let row: UnsafeMutableRawPointer
        if let r = index {
            row = store.row(r)
        } else {
            // A new entity: nothing folded yet, so its first event is always accepted below.
            row = store.row(createRow(key))
            row.storeBytes(of: t, toByteOffset: FeaturePlan.RowLayout.newest, as: Int64.self)
            row.storeBytes(of: Int64.min, toByteOffset: FeaturePlan.RowLayout.folded, as: Int64.self)
        }
        if group != 0 { row.storeBytes(of: group, toByteOffset: FeaturePlan.RowLayout.keyGroup, as: UInt32.self) }
        let newest = row.load(fromByteOffset: FeaturePlan.RowLayout.newest, as: Int64.self)
        let folded = row.load(fromByteOffset: FeaturePlan.RowLayout.folded, as: Int64.self)
        guard t >= newest - allowedLatenessMs, t >= folded else {
            if !scoreLate {
                counters.lateRejected += 1
                for c in out.indices { out[c] = .nan }
                return .lateRejected
            }
            var late = event
            late.time = newest
            evaluate(row, late, at: newest, out: out)
            counters.lateScored += 1
            return .lateScored
        }
        evaluate(row, event, at: t, out: out)
        insert(row, event)
        counters.accepted += 1
        clock = max(clock, t)
        // A slow background sweep, one row every 16 accepted events: idle entities are also
        // dropped when touched and when the store is full, so this only returns the memory of
        // the long-gone. Paced by events, not batches, so the state does not depend on how the
        // events were batched (a restored engine and `replay` hold the same rows in the same
        // order as an uninterrupted `run`).
        if counters.accepted & 15 == 0 { sweepIdle(1) }
        return .accepted
    }

    // MARK: Entities

    private func createRow(_ key: UInt64) -> Int {
        if store.count == store.maxEntities { evictForCapacity() }
        counters.entitiesCreated += 1
        return store.insert(key)
    }

    /// Evicts the least recently active of a few sampled entities (approximate LRU, as Redis
    /// does): O(1) per insert and no per-entity bookkeeping.
    private func evictForCapacity() {
        var victim = -1
        var oldest = Int64.max
        for _ in 0..<8 {
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            let r = Int(random % UInt64(store.count))
            let newest = store.row(r).load(fromByteOffset: FeaturePlan.RowLayout.newest, as: Int64.self)
            if newest < oldest {
                oldest = newest
                victim = r
            }
        }
        store.remove(victim)
        counters.evictedForCapacity += 1
    }

    /// Forgets entities idle longer than the TTL, examining up to `budget` rows per call.
    private func sweepIdle(_ budget: Int) {
        guard idleTTLMs > 0, clock != .min, store.count > 0 else { return }
        let limit = clock - idleTTLMs
        var examined = 0
        while examined < budget, store.count > 0 {
            if sweepCursor >= store.count { sweepCursor = 0 }
            let newest = store.row(sweepCursor).load(fromByteOffset: FeaturePlan.RowLayout.newest, as: Int64.self)
            if newest < limit {
                store.remove(sweepCursor)  // the last row moves here: examine it next
                counters.evictedIdle += 1
            } else {
                sweepCursor += 1
            }
            examined += 1
        }
    }
}

/// Sums over the panes and unfolded events of one window group at one evaluation time.
struct WindowSums {
    var count: Double = 0
    var sum: Double = 0
    var squares: Double = 0
    var min: Double = .infinity
    var max: Double = -.infinity

    @inline(__always)
    mutating func add(_ x: Double) {
        count += 1
        sum += x
        squares += x * x
        if x < min { min = x }
        if x > max { max = x }
    }
}

/// Decayed weight, sum and sum of squares at one evaluation time. Power sums rather than a
/// running mean, because they can be re-referenced to another time with one multiplication and
/// an event can be taken out again by subtraction.
struct DecaySums {
    var weight: Double = 0
    var sum: Double = 0
    var squares: Double = 0

    @inline(__always)
    mutating func add(_ x: Double, weight w: Double) {
        weight += w
        sum += w * x
        squares += w * x * x
    }

    @inline(__always)
    mutating func remove(_ x: Double, weight w: Double) {
        weight -= w
        sum -= w * x
        squares -= w * x * x
    }

    var mean: Double { sum / weight }
    var variance: Double { max(0, squares / weight - mean * mean) }
}
