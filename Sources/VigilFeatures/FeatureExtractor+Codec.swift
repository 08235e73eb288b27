import VigilCore

#if _endian(big)
    #error("entity state is encoded as little-endian rows; big-endian hosts are not supported")
#endif

extension FeatureExtractor {
    static let stateMagic: UInt32 = 0x5453_4656  // "VFST"
    /// Version of the state encoding below; bump it and keep a decoder for every older one.
    static let stateVersion: UInt32 = 1

    /// Appends this worker's whole feature state (entities, clock, counters) to `out`. Rows are
    /// copied byte for byte, so a restore gives exactly the same features afterwards.
    public func encodeState(into out: inout BinaryWriter) {
        writeHeader(into: &out, rows: store.count)
        out.write(raw: UnsafeRawBufferPointer(start: store.rows, count: store.count * store.stride))
    }

    /// Everything of the state before its rows, for `rows` rows.
    func writeHeader(into out: inout BinaryWriter, rows: Int) {
        out.write(Self.stateMagic)
        out.write(Self.stateVersion)
        out.write(plan.signature)
        out.write(UInt32(plan.layout.stride))
        out.write(clock)
        for value in [
            counters.accepted, counters.lateScored, counters.lateRejected, counters.entitiesCreated,
            counters.evictedIdle, counters.evictedForCapacity,
        ] {
            out.write(value)
        }
        out.write(random)
        out.write(UInt64(sweepCursor))
        out.write(UInt64(rows))
    }

    /// Replaces this worker's state with what `encodeState` wrote. On any error the current
    /// state is kept and the error says what was wrong.
    public func restoreState(from input: inout BinaryReader) throws(VigilError) {
        let state = try checkedState(from: &input)
        install(state.rows, count: state.count)
        clock = state.clock
        counters = state.counters
        random = state.random
        sweepCursor = Int(truncatingIfNeeded: min(state.cursor, UInt64(state.count)))
    }

    /// Reads a record `encodeState` wrote and checks that it fits, without applying it: so that
    /// several extractors can be restored all or none.
    public func checkState(from input: inout BinaryReader) throws(VigilError) {
        _ = try checkedState(from: &input)
    }

    private func checkedState(from input: inout BinaryReader) throws(VigilError) -> DecodedState {
        let state = try decodeState(from: &input)
        guard state.count <= store.maxEntities else {
            throw VigilError(
                .malformedInput,
                "feature state holds \(state.count) entities, more than this worker's limit of \(store.maxEntities)")
        }
        return state
    }

    /// Replaces this worker's state with the rows of the entities `keep` accepts (by their key
    /// hash) from several encoded states: a checkpoint written by another number of workers is
    /// re-sharded this way, each entity's row copied byte for byte, so its windows are exactly
    /// those it had. The clock is the newest of the states; counters are summed over them.
    /// On any error the current state is kept.
    public func restoreState(merging inputs: [[UInt8]], keep: (UInt64) -> Bool) throws(VigilError) {
        var rows: [UInt8] = []
        var count = 0
        var clock = Int64.min
        var c = Counters()
        var seen = Set<UInt64>()
        for bytes in inputs {
            var r = BinaryReader(bytes)
            let state = try decodeState(from: &r)
            clock = max(clock, state.clock)
            c.accepted += state.counters.accepted
            c.lateScored += state.counters.lateScored
            c.lateRejected += state.counters.lateRejected
            c.entitiesCreated += state.counters.entitiesCreated
            c.evictedIdle += state.counters.evictedIdle
            c.evictedForCapacity += state.counters.evictedForCapacity
            let stride = plan.layout.stride
            state.rows.withUnsafeBytes { raw in
                for k in 0..<state.count {
                    let row = raw.baseAddress! + k * stride
                    let fingerprint = row.load(as: UInt64.self)
                    guard keep(fingerprint), seen.insert(fingerprint).inserted else { continue }
                    rows.append(contentsOf: UnsafeRawBufferPointer(start: row, count: stride))
                    count += 1
                }
            }
        }
        guard count <= store.maxEntities else {
            throw VigilError(
                .malformedInput,
                "the states hold \(count) entities for this worker, more than its limit of \(store.maxEntities)")
        }
        install(rows, count: count)
        if clock != .min { self.clock = clock }
        counters = c
        sweepCursor = 0
    }

    /// One encoded state, checked.
    struct DecodedState {
        var clock: Int64
        var counters: Counters
        var random: UInt64
        var cursor: UInt64
        var count: Int
        var rows: [UInt8]
    }

    func decodeState(from input: inout BinaryReader) throws(VigilError) -> DecodedState {
        guard try input.uint32() == Self.stateMagic else {
            throw VigilError(.malformedInput, "not a feature-state record (bad magic)")
        }
        let version = try input.uint32()
        guard version == Self.stateVersion else {
            throw VigilError(
                .malformedInput,
                "feature-state version \(version) is not supported (this build reads \(Self.stateVersion))")
        }
        guard try input.uint64() == plan.signature else {
            throw VigilError(
                .malformedInput,
                "feature state was written for different features (signature differs); it cannot be restored into this topology"
            )
        }
        let stride = Int(try input.uint32())
        guard stride == plan.layout.stride else {
            throw VigilError(.malformedInput, "feature-state row size \(stride) differs from \(plan.layout.stride)")
        }
        let clock = try input.int64()
        var c = Counters()
        c.accepted = try input.int(in: 0...Int.max, "counter")
        c.lateScored = try input.int(in: 0...Int.max, "counter")
        c.lateRejected = try input.int(in: 0...Int.max, "counter")
        c.entitiesCreated = try input.int(in: 0...Int.max, "counter")
        c.evictedIdle = try input.int(in: 0...Int.max, "counter")
        c.evictedForCapacity = try input.int(in: 0...Int.max, "counter")
        let random = try input.uint64()
        let cursor = try input.uint64()
        let count = try input.uint64()
        guard UInt64(input.remaining) == count &* UInt64(stride), count <= UInt64(Int32.max) else {
            throw VigilError(
                .malformedInput,
                "feature state should hold \(count) rows of \(stride) bytes, found \(input.remaining) bytes")
        }
        let n = Int(count)
        var rows = [UInt8](repeating: 0, count: n * stride)
        let read = rows.withUnsafeMutableBytes { bytes in
            Result { () throws(VigilError) in try input.read(into: bytes) }
        }
        try read.get()
        // Check every row before touching the live state.
        var seen = Set<UInt64>(minimumCapacity: n)
        let bad = rows.withUnsafeBytes { bytes -> Int? in
            for r in 0..<n {
                let row = bytes.baseAddress! + r * stride
                let tail = row.load(fromByteOffset: Layout.tailCount, as: UInt32.self)
                let newest = row.load(fromByteOffset: Layout.newest, as: Int64.self)
                let folded = row.load(fromByteOffset: Layout.folded, as: Int64.self)
                guard tail <= UInt32(plan.reorderBuffer), folded <= newest,
                    seen.insert(row.load(as: UInt64.self)).inserted
                else { return r }
            }
            return nil
        }
        if let bad { throw VigilError(.malformedInput, "feature-state row \(bad) is inconsistent") }
        return DecodedState(clock: clock, counters: c, random: random, cursor: cursor, count: n, rows: rows)
    }

    /// Makes `count` rows of `rows` the whole entity store.
    private func install(_ rows: [UInt8], count n: Int) {
        let stride = plan.layout.stride
        store.reset(reserving: n)
        rows.withUnsafeBytes { bytes in
            for r in 0..<n { _ = store.appendRow(bytes.baseAddress! + r * stride) }
        }
    }
}
