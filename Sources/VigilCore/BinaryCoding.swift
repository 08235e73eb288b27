/// Appends little-endian values to a byte buffer: the body of every state and model checkpoint.
public struct BinaryWriter: Sendable {
    // Inlinable: encoders call these once per value (millions of times for a large state), and a
    // call across the module boundary per value costs more than the copy itself.
    @usableFromInline var storage: [UInt8] = []

    /// What was written so far.
    public var bytes: [UInt8] { storage }

    public init(capacity: Int = 0) {
        storage.reserveCapacity(capacity)
        if capacity >= 8 << 20 { adviseHugePages() }
    }

    /// Large writers fill fresh memory: huge pages make that one fault per 2 MiB.
    private mutating func adviseHugePages() {
        let capacity = storage.capacity
        storage.withUnsafeMutableBufferPointer {
            HugePages.advise(UnsafeMutableRawPointer($0.baseAddress), count: capacity)
        }
    }

    /// Writes into `buffer`'s memory (emptied, its capacity kept): a large writer filled again
    /// and again does not fault its pages in each time.
    public init(reusing buffer: [UInt8], capacity: Int = 0) {
        storage = buffer
        storage.removeAll(keepingCapacity: true)
        let had = storage.capacity
        storage.reserveCapacity(capacity)
        if storage.capacity != had, capacity >= 8 << 20 { adviseHugePages() }
    }

    @inlinable public mutating func write(_ value: UInt8) { storage.append(value) }
    @inlinable public mutating func write(_ value: UInt32) { append(value.littleEndian) }
    @inlinable public mutating func write(_ value: UInt64) { append(value.littleEndian) }
    @inlinable public mutating func write(_ value: Int64) { append(value.littleEndian) }
    @inlinable public mutating func write(_ value: Int) { write(Int64(value)) }
    @inlinable public mutating func write(_ value: Double) { write(value.bitPattern) }
    @inlinable public mutating func write(_ value: Bool) { write(UInt8(value ? 1 : 0)) }

    /// A length-prefixed string.
    public mutating func write(_ value: String) {
        let utf8 = Array(value.utf8)
        write(UInt32(utf8.count))
        storage.append(contentsOf: utf8)
    }

    /// Raw bytes, without a length.
    @inlinable public mutating func write(raw: UnsafeRawBufferPointer) { storage.append(contentsOf: raw) }

    /// The values' bytes, without a length (little-endian hosts: the memory as it is).
    @inlinable public mutating func write<T: BitwiseCopyable>(contentsOf values: UnsafeBufferPointer<T>) {
        storage.append(contentsOf: UnsafeRawBufferPointer(values))
    }

    @inlinable mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { storage.append(contentsOf: $0) }
    }
}

/// Reads what `BinaryWriter` wrote, failing with `VigilError.malformedInput` on truncated or
/// out-of-range input instead of trapping: checkpoint bytes come from outside the process.
public struct BinaryReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    public mutating func uint8() throws(VigilError) -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func uint32() throws(VigilError) -> UInt32 { UInt32(littleEndian: try load()) }
    public mutating func uint64() throws(VigilError) -> UInt64 { UInt64(littleEndian: try load()) }
    public mutating func int64() throws(VigilError) -> Int64 { Int64(littleEndian: try load()) }
    public mutating func double() throws(VigilError) -> Double { Double(bitPattern: try uint64()) }
    public mutating func bool() throws(VigilError) -> Bool {
        switch try uint8() {
        case 0: return false
        case 1: return true
        case let b: throw VigilError(.malformedInput, "byte \(b) at offset \(offset - 1) is not a boolean")
        }
    }

    /// An integer that must lie in `range`.
    public mutating func int(in range: ClosedRange<Int>, _ what: String) throws(VigilError) -> Int {
        let v = try int64()
        guard v >= Int64(range.lowerBound), v <= Int64(range.upperBound) else {
            throw VigilError(.malformedInput, "\(what) \(v) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return Int(v)
    }

    public mutating func string(maxBytes: Int = 1 << 16) throws(VigilError) -> String {
        let n = Int(try uint32())
        guard n <= maxBytes else { throw VigilError(.malformedInput, "string of \(n) bytes exceeds \(maxBytes)") }
        try need(n)
        defer { offset += n }
        return String(decoding: bytes[offset..<offset + n], as: UTF8.self)
    }

    /// Copies `count` raw bytes to `destination`.
    public mutating func read(into destination: UnsafeMutableRawBufferPointer) throws(VigilError) {
        try need(destination.count)
        bytes.withUnsafeBytes { src in
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[offset..<offset + destination.count]))
        }
        offset += destination.count
    }

    /// Fails unless every byte was read.
    /// `count` values written by `BinaryWriter.write(contentsOf:)`.
    public mutating func values<T: BitwiseCopyable>(_ count: Int, of _: T.Type) throws(VigilError) -> [T] {
        guard count >= 0, count <= Int.max / MemoryLayout<T>.stride else {
            throw VigilError(.malformedInput, "\(count) values")
        }
        let size = count * MemoryLayout<T>.stride
        try need(size)
        let start = offset
        offset += size
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { all in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: all[start..<start + size]))
            }
            initialized = count
        }
    }

    /// Moves past `count` bytes (read separately, from `bytes`).
    public mutating func skip(_ count: Int) throws(VigilError) {
        try need(count)
        offset += count
    }

    public func expectEnd(_ what: String) throws(VigilError) {
        guard isAtEnd else { throw VigilError(.malformedInput, "\(remaining) unexpected bytes after \(what)") }
    }

    private mutating func need(_ n: Int) throws(VigilError) {
        guard n >= 0, n <= remaining else {
            throw VigilError(.malformedInput, "truncated: needs \(n) bytes at offset \(offset), \(remaining) left")
        }
    }

    private mutating func load<T: FixedWidthInteger>() throws(VigilError) -> T {
        try need(MemoryLayout<T>.size)
        defer { offset += MemoryLayout<T>.size }
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
    }
}
