/// A batch of consumed records stored compactly: every key, value and header is copied once
/// from librdkafka into one byte buffer, and each record is a fixed-size entry pointing into it.
/// One batch costs a handful of allocations however many records it holds.
public struct KafkaBatch: Sendable, RandomAccessCollection {
    /// The topics of this batch's records; `KafkaRecord.topic` indexes into it.
    public let topics: [String]
    let entries: [Entry]
    let headerEntries: [HeaderEntry]
    let bytes: [UInt8]

    struct Entry: Sendable {
        var topicIndex: Int32
        var partition: Int32
        var offset: Int64
        var timestamp: Int64  // -1 when unknown
        var keyStart: Int
        var keyCount: Int  // -1 = null key
        var valueStart: Int
        var valueCount: Int  // -1 = null value (tombstone)
        var headerStart: Int32
        var headerCount: Int32
    }

    struct HeaderEntry: Sendable {
        var nameStart: Int
        var nameCount: Int
        var valueStart: Int
        var valueCount: Int  // -1 = null
    }

    init(topics: [String], entries: [Entry], headerEntries: [HeaderEntry], bytes: [UInt8]) {
        self.topics = topics
        self.entries = entries
        self.headerEntries = headerEntries
        self.bytes = bytes
    }

    /// An empty batch.
    public static let empty = KafkaBatch(topics: [], entries: [], headerEntries: [], bytes: [])

    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count }
    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// Total key and value bytes in the batch.
    public var byteCount: Int { bytes.count }

    public subscript(i: Int) -> KafkaRecord { KafkaRecord(batch: self, index: i) }

    /// The records as owned messages (copies each payload again: for tests and low rates).
    public var messages: [KafkaMessage] { map(\.message) }

    /// The position of record `i`, to mark it done.
    public func position(_ i: Int) -> KafkaPosition {
        let e = entries[i]
        return KafkaPosition(TopicPartition(topics[Int(e.topicIndex)], e.partition), e.offset)
    }

    func slice(_ start: Int, _ count: Int) -> ArraySlice<UInt8>? {
        count < 0 ? nil : bytes[start..<(start + count)]
    }
}

/// A view of one record of a `KafkaBatch`: reading it copies nothing.
public struct KafkaRecord: Sendable {
    let batch: KafkaBatch
    let index: Int

    var entry: KafkaBatch.Entry { batch.entries[index] }

    public var topic: String { batch.topics[Int(entry.topicIndex)] }
    /// The index of `topic` in the batch's `topics`.
    public var topicIndex: Int { Int(entry.topicIndex) }
    public var partition: Int32 { entry.partition }
    public var offset: Int64 { entry.offset }
    public var position: KafkaPosition { batch.position(index) }
    /// Milliseconds since the epoch; nil when the broker sent none.
    public var timestampMilliseconds: Int64? { entry.timestamp < 0 ? nil : entry.timestamp }
    /// nil for a record without a key.
    public var key: ArraySlice<UInt8>? { batch.slice(entry.keyStart, entry.keyCount) }
    /// nil for a tombstone.
    public var value: ArraySlice<UInt8>? { batch.slice(entry.valueStart, entry.valueCount) }

    /// Calls `body` with the value's bytes in place (nil for a tombstone).
    public func withValueBytes<R>(_ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
        let e = entry
        if e.valueCount < 0 { return try body(nil) }
        return try batch.bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[e.valueStart..<(e.valueStart + e.valueCount)]))
        }
    }

    public var headers: [KafkaHeader] {
        let e = entry
        return (0..<Int(e.headerCount)).map { i in
            let h = batch.headerEntries[Int(e.headerStart) + i]
            return KafkaHeader(
                name: String(decoding: batch.bytes[h.nameStart..<(h.nameStart + h.nameCount)], as: UTF8.self),
                value: batch.slice(h.valueStart, h.valueCount).map(Array.init))
        }
    }

    /// An owned copy.
    public var message: KafkaMessage {
        KafkaMessage(
            topic: topic, partition: partition, offset: offset, key: key.map(Array.init), value: value.map(Array.init),
            headers: headers, timestampMilliseconds: timestampMilliseconds)
    }
}
