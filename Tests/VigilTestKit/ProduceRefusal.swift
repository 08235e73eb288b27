/// Kafka's Produce request and response (versions 3 to 12), read and written just far enough for
/// `FaultProxy` to refuse one topic's writes as a broker would, e.g. with
/// TOPIC_AUTHORIZATION_FAILED when an ACL is revoked: Tansu has no ACLs and creates any topic it
/// is asked for, so it cannot make a topic unwritable itself.
enum ProduceRefusal {
    /// Kafka's error code for a write the topic's ACLs do not allow.
    static let topicAuthorizationFailed: Int16 = 29

    /// The answer to `frame` (one request without its size prefix) if it is a Produce request
    /// that writes to `topic`: every partition of the request refused with `error`. Nil for any
    /// other request, and for acks=0 (no answer is expected).
    static func response(to frame: [UInt8], refusing topic: String, error: Int16) -> [UInt8]? {
        var r = Reader(bytes: frame)
        guard let apiKey = r.int16(), apiKey == 0, let version = r.int16(), (3...12).contains(version),
            let correlationID = r.int32(), r.skipString()
        else { return nil }
        let flexible = version >= 9
        if flexible { guard r.skipTaggedFields() else { return nil } }
        // transactional_id, acks, timeout_ms
        guard flexible ? r.skipCompactString() : r.skipString(), let acks = r.int16(), acks != 0, r.int32() != nil,
            let topicCount = flexible ? r.compactCount() : r.int32().map(Int.init)
        else { return nil }
        var topics: [(name: [UInt8], partitions: [Int32])] = []
        for _ in 0..<max(0, topicCount) {
            guard let name = flexible ? r.compactString() : r.string(),
                let partitionCount = flexible ? r.compactCount() : r.int32().map(Int.init)
            else { return nil }
            var partitions: [Int32] = []
            for _ in 0..<max(0, partitionCount) {
                guard let index = r.int32(), flexible ? r.skipCompactBytes() : r.skipBytes() else { return nil }
                if flexible { guard r.skipTaggedFields() else { return nil } }
                partitions.append(index)
            }
            if flexible { guard r.skipTaggedFields() else { return nil } }
            topics.append((name, partitions))
        }
        guard topics.contains(where: { $0.name == Array(topic.utf8) }) else { return nil }

        var w = Writer()
        w.int32(correlationID)
        if flexible { w.uvarint(0) }  // the response header's tagged fields
        flexible ? w.uvarint(UInt32(topics.count + 1)) : w.int32(Int32(topics.count))
        for t in topics {
            flexible ? w.compactString(t.name) : w.string(t.name)
            flexible ? w.uvarint(UInt32(t.partitions.count + 1)) : w.int32(Int32(t.partitions.count))
            for p in t.partitions {
                w.int32(p)
                w.int16(error)
                w.int64(-1)  // base_offset
                w.int64(-1)  // log_append_time_ms
                if version >= 5 { w.int64(-1) }  // log_start_offset
                if version >= 8 {
                    flexible ? w.uvarint(1) : w.int32(0)  // record_errors: none
                    flexible ? w.uvarint(0) : w.int16(-1)  // error_message: null
                }
                if flexible { w.uvarint(0) }
            }
            if flexible { w.uvarint(0) }
        }
        w.int32(0)  // throttle_time_ms
        if flexible { w.uvarint(0) }
        return w.bytes
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0

        mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
            guard n >= 0, at + n <= bytes.count else { return nil }
            defer { at += n }
            return bytes[at..<at + n]
        }
        mutating func int16() -> Int16? { take(2).map { Int16(bitPattern: UInt16($0.first!) << 8 | UInt16($0.last!)) } }
        mutating func int32() -> Int32? {
            take(4).map { Int32(bitPattern: $0.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) }
        }
        mutating func uvarint() -> UInt32? {
            var value: UInt32 = 0
            for shift in stride(from: 0, through: 28, by: 7) {
                guard let b = take(1)?.first else { return nil }
                value |= UInt32(b & 0x7F) << UInt32(shift)
                if b & 0x80 == 0 { return value }
            }
            return nil
        }
        mutating func string() -> [UInt8]? {
            guard let n = int16() else { return nil }
            return n < 0 ? [] : take(Int(n)).map(Array.init)
        }
        mutating func compactString() -> [UInt8]? {
            guard let n = uvarint() else { return nil }
            return n == 0 ? [] : take(Int(n) - 1).map(Array.init)
        }
        /// An array's length in a flexible version (stored + 1; 0 is null).
        mutating func compactCount() -> Int? { uvarint().map { Int($0) - 1 } }
        mutating func skipString() -> Bool { string() != nil }
        mutating func skipCompactString() -> Bool { compactString() != nil }
        mutating func skipBytes() -> Bool {
            guard let n = int32() else { return false }
            return n < 0 || take(Int(n)) != nil
        }
        mutating func skipCompactBytes() -> Bool { compactString() != nil }
        mutating func skipTaggedFields() -> Bool {
            guard let count = uvarint() else { return false }
            for _ in 0..<count {
                guard uvarint() != nil, let size = uvarint(), take(Int(size)) != nil else { return false }
            }
            return true
        }
    }

    private struct Writer {
        var bytes: [UInt8] = []
        mutating func int16(_ v: Int16) { bytes += [UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
        mutating func int32(_ v: Int32) {
            for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> Int32(s))) }
        }
        mutating func int64(_ v: Int64) {
            for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> Int64(s))) }
        }
        mutating func uvarint(_ v: UInt32) {
            var v = v
            while v >= 0x80 {
                bytes.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            bytes.append(UInt8(v))
        }
        mutating func string(_ s: [UInt8]) {
            int16(Int16(s.count))
            bytes += s
        }
        mutating func compactString(_ s: [UInt8]) {
            uvarint(UInt32(s.count + 1))
            bytes += s
        }
    }
}
