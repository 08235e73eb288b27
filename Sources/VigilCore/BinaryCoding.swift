/// Appends little-endian values to a byte buffer: the body of every state and model checkpoint.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    public mutating func write(_ value: UInt8) { bytes.append(value) }
    public mutating func write(_ value: UInt32) { append(value.littleEndian) }
    public mutating func write(_ value: UInt64) { append(value.littleEndian) }
    public mutating func write(_ value: Int64) { append(value.littleEndian) }
    public mutating func write(_ value: Int) { write(Int64(value)) }
    public mutating func write(_ value: Double) { write(value.bitPattern) }
    public mutating func write(_ value: Bool) { write(UInt8(value ? 1 : 0)) }

    /// A length-prefixed string.
    public mutating func write(_ value: String) {
        let utf8 = Array(value.utf8)
        write(UInt32(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    /// Raw bytes, without a length.
    public mutating func write(raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
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
