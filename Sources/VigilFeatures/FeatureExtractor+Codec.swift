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
        out.write(UInt64(store.count))
        out.write(raw: UnsafeRawBufferPointer(start: store.rows, count: store.count * store.stride))
    }

    /// Replaces this worker's state with what `encodeState` wrote. On any error the current
    /// state is kept and the error says what was wrong.
    public func restoreState(from input: inout BinaryReader) throws(VigilError) {
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
        guard count <= UInt64(store.maxEntities) else {
            throw VigilError(
                .malformedInput,
                "feature state holds \(count) entities, more than this worker's limit of \(store.maxEntities)")
        }
        guard UInt64(input.remaining) == count * UInt64(stride) else {
            throw VigilError(
                .malformedInput,
                "feature state should hold \(count) rows of \(stride) bytes, found \(input.remaining) bytes")
        }
        let n = Int(count)
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, n * stride), alignment: 64)
        defer { bytes.deallocate() }
        try input.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<n * stride]))
        // Check every row before touching the live state.
        var seen = Set<UInt64>(minimumCapacity: n)
        for r in 0..<n {
            let row = bytes.baseAddress! + r * stride
            let tail = row.load(fromByteOffset: Layout.tailCount, as: UInt32.self)
            let newest = row.load(fromByteOffset: Layout.newest, as: Int64.self)
            let folded = row.load(fromByteOffset: Layout.folded, as: Int64.self)
            guard tail <= UInt32(plan.reorderBuffer), folded <= newest, seen.insert(row.load(as: UInt64.self)).inserted
            else {
                throw VigilError(.malformedInput, "feature-state row \(r) is inconsistent")
            }
        }
        store.reset(reserving: n)
        for r in 0..<n { _ = store.appendRow(bytes.baseAddress! + r * stride) }
        self.clock = clock
        counters = c
        self.random = random
        sweepCursor = Int(truncatingIfNeeded: min(cursor, UInt64(n)))
    }
}
