import VigilCore

#if canImport(Glibc)
    import Glibc
#endif

/// One worker's per-entity state: fixed-size rows in one dense arena, found through an
/// open-addressing table of (tag, row) pairs. Bounded by a maximum entity count; the worker that
/// owns it is the only thread that touches it, so it needs no locks.
///
/// `@unchecked Sendable` invariant: one thread at a time uses a store (it moves to a worker
/// thread once and stays there); nothing in it is shared.
final class EntityStore: @unchecked Sendable {
    let stride: Int
    let maxEntities: Int
    private(set) var count = 0
    private(set) var rowCapacity: Int
    private(set) var rows: UnsafeMutableRawPointer
    /// Each entry is `tag << 32 | (row + 1)`; 0 is an empty slot.
    private(set) var table: UnsafeMutablePointer<UInt64>
    private(set) var tableMask: Int
    private var tableShift: UInt64
    private let tableSeed: UInt64

    /// The rows live in address space reserved for `maxEntities` rows up front: the kernel backs
    /// pages only when first written, so memory follows the live entity count, growth never
    /// copies, and no doubling leaves half an arena unused. `reservedBytes` is 0 when the
    /// reservation failed and the arena grows by reallocation instead.
    private let reservedBytes: Int

    init(stride: Int, maxEntities: Int, tableSeed: UInt64) {
        self.stride = stride
        self.maxEntities = maxEntities
        self.tableSeed = tableSeed
        if let (base, bytes) = Self.reserve(bytes: maxEntities * stride) {
            rows = base
            reservedBytes = bytes
            rowCapacity = maxEntities
        } else {
            reservedBytes = 0
            rowCapacity = min(1024, maxEntities)
            rows = Self.allocate(bytes: rowCapacity * stride)
        }
        let tableSize = Self.tableSize(for: min(1024, maxEntities))  // grows with the entities
        table = Self.allocate(bytes: tableSize * 8).bindMemory(to: UInt64.self, capacity: tableSize)
        table.initialize(repeating: 0, count: tableSize)
        tableMask = tableSize - 1
        tableShift = UInt64(64 - tableSize.trailingZeroBitCount)
    }

    deinit {
        if reservedBytes > 0 {
            #if os(Linux)
                munmap(rows, reservedBytes)
            #endif
        } else {
            rows.deallocate()
        }
        table.deallocate()
    }

    /// Reserves address space for large arenas (Linux; elsewhere, or for small ones, nil).
    private static func reserve(bytes: Int) -> (UnsafeMutableRawPointer, Int)? {
        #if os(Linux)
            let huge = 2 << 20
            guard bytes >= 4 * huge else { return nil }
            let size = (bytes + huge - 1) / huge * huge
            let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            guard let p, p != MAP_FAILED else { return nil }
            _ = madvise(p, size, MADV_HUGEPAGE)  // advice only: failure changes nothing but speed
            return (p, size)
        #else
            return nil
        #endif
    }

    /// Raw memory for rows or table. Large blocks are 2 MiB-aligned and marked for transparent
    /// huge pages: random access to a few hundred MB otherwise misses the TLB on almost every
    /// event (measured: 1M entities, 8 features).
    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let huge = 2 << 20
        guard bytes >= 2 * huge else { return .allocate(byteCount: bytes, alignment: 64) }
        let size = (bytes + huge - 1) / huge * huge
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: huge)
        #if os(Linux)
            _ = madvise(p, size, MADV_HUGEPAGE)  // advice only: failure changes nothing but speed
        #endif
        return p
    }

    /// Table slots for `rows` rows: a power of two at most 80% full.
    private static func tableSize(for rows: Int) -> Int {
        var size = 16
        while size * 4 < rows * 5 { size <<= 1 }
        return size
    }

    /// Bytes of memory the state occupies: rows in use (a reserved arena is backed only where
    /// written) or allocated, plus the table.
    var allocatedBytes: Int {
        let rowBytes = reservedBytes > 0 ? (count * stride + 4095) / 4096 * 4096 : rowCapacity * stride
        return rowBytes + (tableMask + 1) * 8
    }

    @inline(__always)
    func row(_ index: Int) -> UnsafeMutableRawPointer { rows + index * stride }

    @inline(__always)
    private func home(_ fp: UInt64) -> Int {
        Int(truncatingIfNeeded: ((fp ^ tableSeed) &* 0x9E37_79B9_7F4A_7C15) >> tableShift)
    }

    @inline(__always)
    private static func tag(_ fp: UInt64) -> UInt64 { fp & 0xFFFF_FFFF }

    /// Prefetching for a whole batch before it is processed, in two passes of independent loads
    /// (all table slots, then all rows they point to), so the memory system overlaps them
    /// (memory-level parallelism) and a batch pays about one latency per pass instead of two per
    /// event. Returns a value depending on every load, so the optimiser keeps them.
    func touch(_ keys: UnsafeBufferPointer<UInt64>, scratch: UnsafeMutablePointer<Int>) -> UInt64 {
        for (i, fp) in keys.enumerated() {
            // Probe like `find`, trusting the tag (a wrong guess only costs a useless load).
            var j = home(fp)
            let tag = Self.tag(fp)
            var e = table[j]
            while e != 0, e >> 32 != tag {
                j = (j + 1) & tableMask
                e = table[j]
            }
            scratch[i] = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1  // -1 when not found
        }
        var acc: UInt64 = 0
        for i in 0..<keys.count {
            let r = scratch[i]
            guard r >= 0, r < count else { continue }
            let p = row(r)
            acc &+= p.load(as: UInt64.self)
            var offset = 64
            while offset < stride {
                acc &+= UInt64(p.load(fromByteOffset: offset, as: UInt8.self))
                offset += 64
            }
        }
        return acc
    }

    /// The row of `fp`, or nil.
    @inline(__always)
    func find(_ fp: UInt64) -> Int? {
        var i = home(fp)
        let tag = Self.tag(fp)
        while true {
            let e = table[i]
            if e == 0 { return nil }
            if e >> 32 == tag {
                let r = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1
                if row(r).load(as: UInt64.self) == fp { return r }
            }
            i = (i + 1) & tableMask
        }
    }

    /// Adds a zeroed row for `fp` (not present) and returns its index. The caller evicts first
    /// when the store is full.
    func insert(_ fp: UInt64) -> Int {
        precondition(count < maxEntities, "insert into a full entity store")
        if count == rowCapacity { growRows() }
        if (count + 1) * 5 > (tableMask + 1) * 4 { rehash(size: (tableMask + 1) * 2) }
        let r = count
        count += 1
        let p = row(r)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: stride)
        p.storeBytes(of: fp, as: UInt64.self)
        place(fp, row: r)
        return r
    }

    private func place(_ fp: UInt64, row r: Int) {
        var i = home(fp)
        while table[i] != 0 { i = (i + 1) & tableMask }
        table[i] = Self.tag(fp) << 32 | UInt64(r + 1)
    }

    /// Removes row `r`; the last row moves into its place (the arena stays dense). Returns the
    /// index that moved (the old last row), or nil when `r` was the last.
    @discardableResult
    func remove(_ r: Int) -> Int? {
        let fp = row(r).load(as: UInt64.self)
        deleteEntry(fp: fp, row: r)
        let last = count - 1
        count -= 1
        guard r != last else { return nil }
        let lastFp = row(last).load(as: UInt64.self)
        row(r).copyMemory(from: row(last), byteCount: stride)
        // Point the moved row's table entry at its new index.
        var i = home(lastFp)
        while true {
            let e = table[i]
            if Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1 == last {
                table[i] = Self.tag(lastFp) << 32 | UInt64(r + 1)
                break
            }
            i = (i + 1) & tableMask
        }
        return last
    }

    /// Linear-probing deletion with backward shift, so no tombstones accumulate.
    private func deleteEntry(fp: UInt64, row r: Int) {
        var i = home(fp)
        while Int(truncatingIfNeeded: table[i] & 0xFFFF_FFFF) - 1 != r { i = (i + 1) & tableMask }
        var hole = i
        var j = (i + 1) & tableMask
        while table[j] != 0 {
            let e = table[j]
            let er = Int(truncatingIfNeeded: e & 0xFFFF_FFFF) - 1
            let h = home(row(er).load(as: UInt64.self))
            // Move e into the hole if its home is not in (hole, j] cyclically.
            let inRange = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j)
            if !inRange {
                table[hole] = e
                hole = j
            }
            j = (j + 1) & tableMask
        }
        table[hole] = 0
    }

    private func growRows() {
        let newCapacity = min(maxEntities, rowCapacity * 2)
        let fresh = Self.allocate(bytes: newCapacity * stride)
        fresh.copyMemory(from: rows, byteCount: count * stride)
        rows.deallocate()
        rows = fresh
        rowCapacity = newCapacity
    }

    private func rehash(size: Int) {
        table.deallocate()
        table = Self.allocate(bytes: size * 8).bindMemory(to: UInt64.self, capacity: size)
        table.initialize(repeating: 0, count: size)
        tableMask = size - 1
        tableShift = UInt64(64 - size.trailingZeroBitCount)
        for r in 0..<count { place(row(r).load(as: UInt64.self), row: r) }
    }

    /// Empties the store and sizes it for `n` rows (used by restore).
    func reset(reserving n: Int) {
        count = 0
        if reservedBytes == 0, n > rowCapacity {
            rows.deallocate()
            rowCapacity = min(maxEntities, max(n, 1024))
            rows = Self.allocate(bytes: rowCapacity * stride)
        }
        let size = Self.tableSize(for: max(n, min(1024, maxEntities)))
        table.deallocate()
        table = Self.allocate(bytes: size * 8).bindMemory(to: UInt64.self, capacity: size)
        table.initialize(repeating: 0, count: size)
        tableMask = size - 1
        tableShift = UInt64(64 - size.trailingZeroBitCount)
    }

    /// Appends a row copied from `bytes` (restore); the fingerprint is its first 8 bytes.
    func appendRow(_ bytes: UnsafeRawPointer) -> Int {
        if count == rowCapacity { growRows() }
        if (count + 1) * 5 > (tableMask + 1) * 4 { rehash(size: (tableMask + 1) * 2) }
        let r = count
        count += 1
        row(r).copyMemory(from: bytes, byteCount: stride)
        place(row(r).load(as: UInt64.self), row: r)
        return r
    }
}
