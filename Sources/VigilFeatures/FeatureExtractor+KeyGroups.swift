import VigilCore

/// Key groups: each entity's row carries the key group that delivers it (the engine uses the
/// source partition), so the state of one partition can be cut out of a worker, published, and
/// loaded into whichever worker of whichever instance takes the partition over (Kafka Streams'
/// per-partition stores; Flink's key groups).
extension FeatureExtractor {
    /// The key group of row `r`'s entity (0: none recorded).
    @inline(__always)
    func keyGroup(ofRow r: Int) -> UInt32 {
        store.row(r).load(fromByteOffset: Layout.keyGroup, as: UInt32.self)
    }

    /// Entities held per key group.
    public var keyGroupCounts: [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for r in 0..<store.count { counts[keyGroup(ofRow: r), default: 0] += 1 }
        return counts
    }

    /// Appends the state of the entities in `groups` only, in `encodeState`'s format (so
    /// `restoreState(merging:keep:)` and `addState` read it); the clock and counters are the
    /// worker's.
    public func encodeState(into out: inout BinaryWriter, groups: Set<UInt32>) {
        var rows: [Int] = []
        for r in 0..<store.count where groups.contains(keyGroup(ofRow: r)) { rows.append(r) }
        writeHeader(into: &out, rows: rows.count)
        for r in rows { out.write(raw: UnsafeRawBufferPointer(start: store.row(r), count: store.stride)) }
    }

    /// Forgets the entities of `groups` (their partitions moved to another member).
    /// - Returns: how many were removed.
    @discardableResult
    public func removeEntities(inGroups groups: Set<UInt32>) -> Int {
        var removed = 0
        var r = 0
        while r < store.count {
            if groups.contains(keyGroup(ofRow: r)) {
                store.remove(r)  // the last row moves here: examine it next
                removed += 1
            } else {
                r += 1
            }
        }
        if sweepCursor >= store.count { sweepCursor = 0 }
        return removed
    }

    /// Adds the entities `keep` accepts (by key hash) from an encoded state to those held, each
    /// row copied as it was; an entity already held is replaced. The clock moves to the state's
    /// if that is newer. On any error nothing is changed.
    /// - Returns: how many entities were added.
    @discardableResult
    public func addState(_ bytes: [UInt8], keep: (UInt64) -> Bool) throws(VigilError) -> Int {
        var r = BinaryReader(bytes)
        let state = try decodeState(from: &r)
        let stride = plan.layout.stride
        var accepted: [Int] = []
        state.rows.withUnsafeBytes { raw in
            for k in 0..<state.count where keep(raw.baseAddress!.load(fromByteOffset: k * stride, as: UInt64.self)) {
                accepted.append(k)
            }
        }
        var fresh = 0
        state.rows.withUnsafeBytes { raw in
            for k in accepted
            where store.find(raw.baseAddress!.load(fromByteOffset: k * stride, as: UInt64.self)) == nil {
                fresh += 1
            }
        }
        guard store.count + fresh <= store.maxEntities else {
            throw VigilError(
                .malformedInput,
                "adding \(fresh) entities would exceed this worker's limit of \(store.maxEntities)")
        }
        state.rows.withUnsafeBytes { raw in
            for k in accepted {
                let row = raw.baseAddress! + k * stride
                if let existing = store.find(row.load(as: UInt64.self)) {
                    store.row(existing).copyMemory(from: row, byteCount: stride)
                } else {
                    _ = store.appendRow(row)
                }
            }
        }
        clock = max(clock, state.clock)
        return accepted.count
    }
}

extension FeatureExtractor {
    /// Bytes before the rows in `encodeState`'s format.
    static let stateHeaderBytes = 100

    /// Splits an encoded state (`encodeState`) into one encoded state per key group, each with
    /// the same header and only its group's rows: a checkpoint's windows, published per source
    /// partition.
    /// - Throws: when `encoded` is not a feature state.
    public static func splitByKeyGroup(_ encoded: [UInt8]) throws(VigilError) -> [UInt32: [UInt8]] {
        let h = stateHeaderBytes
        guard encoded.count >= h,
            encoded.withUnsafeBytes({ $0.loadUnaligned(as: UInt32.self) }) == stateMagic
        else {
            throw VigilError(.malformedInput, "not a feature-state record")
        }
        let stride = Int(encoded.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) })
        let count = Int(encoded.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: h - 8, as: UInt64.self) })
        guard stride >= 32, encoded.count == h + count * stride else {
            throw VigilError(.malformedInput, "feature state of \(encoded.count) bytes does not hold \(count) rows")
        }
        var rows: [UInt32: [Int]] = [:]
        encoded.withUnsafeBytes { raw in
            for r in 0..<count {
                let group = raw.loadUnaligned(fromByteOffset: h + r * stride + Layout.keyGroup, as: UInt32.self)
                rows[group, default: []].append(r)
            }
        }
        var out: [UInt32: [UInt8]] = [:]
        for (group, indices) in rows {
            var bytes = Array(encoded[0..<h - 8])
            bytes.reserveCapacity(h + indices.count * stride)
            withUnsafeBytes(of: UInt64(indices.count).littleEndian) { bytes.append(contentsOf: $0) }
            for r in indices { bytes.append(contentsOf: encoded[h + r * stride..<h + (r + 1) * stride]) }
            out[group] = bytes
        }
        return out
    }
}
