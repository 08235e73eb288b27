/// A 64-bit hash that is the same in every process, on every machine and in every release: it
/// routes entities to workers, identifies them in state and checkpoints, and hashes categorical
/// values. Swift's `Hasher` is seeded per process, so it cannot serve.
///
/// The function is SipHash-1-3 with a fixed, published key. With the key known, an attacker can
/// find two of *their own* keys that collide (about 2³² work), which only merges their own
/// entities; finding a key that collides with someone else's entity still takes about 2⁶⁴ work.
public enum StableHash {
    static let k0: UInt64 = 0x5669_6769_6C20_6B30  // "Vigil k0"
    static let k1: UInt64 = 0x5669_6769_6C20_6B31  // "Vigil k1"

    /// Hash of raw bytes.
    @inlinable
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var s = State()
        let count = bytes.count
        var i = 0
        while i + 8 <= count {
            s.compress(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self).littleEndian)
            i += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while i < count {
            last |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        s.compress(last)
        return s.finish()
    }

    /// Hash of a string's UTF-8 bytes.
    @inlinable
    public static func hash(_ string: String) -> UInt64 {
        var string = string
        return string.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// A category hash that is never 0, so 0 can mean "no value" in compact state.
    @inlinable
    public static func category(_ string: String) -> UInt64 {
        let h = hash(string)
        return h == 0 ? 1 : h
    }

    /// A hash as 16 lowercase hex digits, zero-padded: how ids and signatures are written.
    public static func hex(_ x: UInt64) -> String {
        let digits = String(x, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// The category hash of raw UTF-8 bytes: equal to `category(String)` of the same text.
    @inlinable
    public static func category(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let h = hash(bytes)
        return h == 0 ? 1 : h
    }

    /// The worker (0..<count) that owns an entity: a multiply-shift of the hash, so every worker
    /// gets an equal share and the mapping never changes for a fixed count.
    @inlinable
    public static func shard(of hash: UInt64, count: Int) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(count)).high)
    }

    @usableFromInline
    struct State {
        @usableFromInline var v0: UInt64 = k0 ^ 0x736f_6d65_7073_6575
        @usableFromInline var v1: UInt64 = k1 ^ 0x646f_7261_6e64_6f6d
        @usableFromInline var v2: UInt64 = k0 ^ 0x6c79_6765_6e65_7261
        @usableFromInline var v3: UInt64 = k1 ^ 0x7465_6462_7974_6573

        @inlinable init() {}

        @inlinable @inline(__always)
        mutating func round() {
            v0 &+= v1
            v1 = v1.rotated(13)
            v1 ^= v0
            v0 = v0.rotated(32)
            v2 &+= v3
            v3 = v3.rotated(16)
            v3 ^= v2
            v0 &+= v3
            v3 = v3.rotated(21)
            v3 ^= v0
            v2 &+= v1
            v1 = v1.rotated(17)
            v1 ^= v2
            v2 = v2.rotated(32)
        }

        @inlinable @inline(__always)
        mutating func compress(_ m: UInt64) {
            v3 ^= m
            round()
            v0 ^= m
        }

        @inlinable
        mutating func finish() -> UInt64 {
            v2 ^= 0xff
            round()
            round()
            round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }
}

extension UInt64 {
    @inlinable @inline(__always)
    func rotated(_ n: UInt64) -> UInt64 { (self << n) | (self >> (64 &- n)) }
}
