import Foundation
import VigilKafka
import VigilModels

/// Finding checkpoints again: the directory's files and the topic's tail, assembled from their
/// parts, newest first.
extension CheckpointStore {
    /// One stored checkpoint, as found: its bytes are checked only when decoded.
    public struct Stored: Sendable {
        public var sequence: UInt64
        /// `topic` or the file's path.
        public var location: String
        public var bytes: [UInt8]
        /// What the record's key names after the topology: the instance (`i/<instance>`), a
        /// source partition (`p/<topic>/<partition>`), or "" for a record of a release before
        /// December 2026.
        public var scope: String = ""
    }

    /// What `scan` found: complete checkpoints, newest first (at most `keep`, file copies before
    /// topic copies of the same sequence), and what was skipped, with the reason.
    public struct Scan: Sendable {
        public var stored: [Stored] = []
        public var skipped: [(sequence: UInt64, location: String, reason: String)] = []
        /// The highest sequence seen anywhere, complete or not (the next one is one more).
        public var highestSequence: UInt64?
    }

    /// Reads the checkpoint topic (its tail: see `readTopic`) and the directory.
    /// - Parameter limit: how many of the newest checkpoints to find (default: `keep`); a
    ///   restore asks for the newest only, and for the others if it does not load.
    public func scan(limit: Int? = nil, timeout: Duration = .seconds(30)) throws -> Scan {
        let limit = max(1, min(limit ?? spec.keep, spec.keep))
        var result = Scan()
        var candidates: [UInt64: [Stored]] = [:]
        if let directory = spec.directory {
            for (seq, path) in files(in: directory).prefix(limit) {
                if let data = FileManager.default.contents(atPath: path) {
                    candidates[seq, default: []].append(Stored(sequence: seq, location: path, bytes: Array(data)))
                }
                result.highestSequence = max(result.highestSequence ?? 0, seq)
            }
        }
        let fromTopic = try readTopic(
            limit: limit, timeout: timeout, skipped: &result.skipped, highest: &result.highestSequence,
            scope: instanceScope)
        for s in fromTopic { candidates[s.sequence, default: []].append(s) }
        let newest = candidates.keys.sorted(by: >).prefix(limit)
        for seq in newest { result.stored += candidates[seq]! }
        return result
    }

    private struct Assembly {
        var parts: [[UInt8]?]
        var total: Int
        var received = 0
    }

    /// The newest complete partition records (`PartitionState`) of `partitions`, newest first
    /// per partition (at most `keep` each), whoever wrote them. Reads the whole topic: records of
    /// all partitions and instances interleave in it.
    public func partitionRecords(for partitions: Set<TopicPartition>, timeout: Duration = .seconds(30)) throws
        -> [TopicPartition: [Stored]]
    {
        guard !partitions.isEmpty else { return [:] }
        var wanted: [String: TopicPartition] = [:]
        for tp in partitions { wanted[Self.partitionScope(tp)] = tp }
        var skipped: [(sequence: UInt64, location: String, reason: String)] = []
        var highest: UInt64?
        let found = try readTopic(
            limit: spec.keep, timeout: timeout, skipped: &skipped, highest: &highest, whole: true
        ) { scope in wanted[scope] != nil ? scope : nil }
        for s in skipped {
            logger.warning("Partition record skipped", metadata: ["where": "\(s.location)", "reason": "\(s.reason)"])
        }
        var out: [TopicPartition: [Stored]] = [:]
        for s in found { out[wanted[s.scope]!, default: []].append(s) }
        return out.mapValues { Array($0.sorted { $0.sequence > $1.sequence }.prefix(spec.keep)) }
    }

    /// The scope of this store's own instance records: `i/<instance>`, and records of earlier
    /// releases (keyed `<topology>/<slot>/<part>`), which belonged to the one instance there was.
    func instanceScope(_ scope: String) -> String? {
        if let instance, scope == "i/" + instance { return scope }
        return scope.first?.isNumber == true || scope.isEmpty ? "" : nil
    }

    private func readTopic(
        limit: Int, timeout: Duration, skipped: inout [(sequence: UInt64, location: String, reason: String)],
        highest: inout UInt64?, whole: Bool = false, scope: (String) -> String?
    ) throws -> [Stored] {
        let common = clients.common("restore")
        let admin = try clients.admin(logger: logger)
        guard let partitions = try admin.metadata(timeout: .seconds(10)).topics[spec.topic] else {
            logger.info("No checkpoint topic yet", metadata: ["topic": "\(spec.topic)"])
            return []
        }
        // Large fetches: a checkpoint is hundreds of 900 KB records, and librdkafka's default of
        // 1 MB per partition and fetch would read it one record per round trip.
        var readerCommon = common
        readerCommon.properties.merge(
            [
                "max.partition.fetch.bytes": "67108864", "fetch.max.bytes": "134217728",
                "receive.message.max.bytes": "135000000",
                "fetch.wait.max.ms": "10",
            ]
        ) { $1 }
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                common: readerCommon, groupID: "vigil-restore-\(UUID().uuidString)"),
            logger: logger)
        defer { consumer.close() }
        var ends: [TopicPartition: Int64] = [:]
        var lows: [TopicPartition: Int64] = [:]
        for p in 0..<partitions {
            let tp = TopicPartition(spec.topic, Int32(p))
            let marks = try consumer.watermarks(tp)
            if marks.high > marks.low {
                ends[tp] = marks.high
                lows[tp] = marks.low
            }
        }
        guard !ends.isEmpty else { return [] }
        // Only the tail can hold the newest `keep` checkpoints: the last record says how many
        // parts its checkpoint has, so read back `keep + 1` times that. A compacted topic is
        // about that long anyway; one that is not (a broker without compaction) may hold every
        // checkpoint ever written. If the tail holds none that is complete, read it all.
        if whole {
            return try readRange(
                consumer, from: lows, to: ends, limit: limit, timeout: timeout, skipped: &skipped, highest: &highest,
                scope: scope)
        }
        var tails: [TopicPartition: Int64] = [:]
        for (tp, end) in ends {
            let parts = try probeLast(consumer, tp, end: end, deadline: timeout).map { Int64($0.count) } ?? Int64(end)
            tails[tp] = max(lows[tp]!, end - Int64(limit + 1) * parts - 16)
        }
        var found = try readRange(
            consumer, from: tails, to: ends, limit: limit, timeout: timeout, skipped: &skipped, highest: &highest,
            scope: scope)
        if found.isEmpty, tails.contains(where: { $0.value > lows[$0.key]! }) {
            found = try readRange(
                consumer, from: lows, to: ends, limit: limit, timeout: timeout, skipped: &skipped, highest: &highest,
                scope: scope)
        }
        return found
    }

    /// The part in the last record of `tp` (nil when it is not one).
    private func probeLast(_ consumer: KafkaConsumer, _ tp: TopicPartition, end: Int64, deadline: Duration) throws
        -> Part?
    {
        try consumer.assign([tp: end - 1])
        let stop = ContinuousClock.now.advanced(by: deadline)
        while ContinuousClock.now < stop {
            for record in try consumer.poll(maxMessages: 10, timeout: .milliseconds(100)) where record.offset == end - 1
            {
                return record.value.flatMap(Self.parsePart)
            }
        }
        throw KafkaError(.timedOut, "reading the last record of \(tp): nothing within \(deadline)", isRetriable: true)
    }

    /// Complete checkpoints of this topology in `[from, to)` of each partition, newest first (at
    /// most `keep`).
    private func readRange(
        _ consumer: KafkaConsumer, from starts: [TopicPartition: Int64], to ends: [TopicPartition: Int64], limit: Int,
        timeout: Duration,
        skipped: inout [(sequence: UInt64, location: String, reason: String)], highest: inout UInt64?,
        scope: (String) -> String?
    ) throws -> [Stored] {
        try consumer.assign(starts)
        var open: [String: Assembly] = [:]
        var complete: [Stored] = []
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var remaining = ends
        let prefix = Array("\(topology)/".utf8)
        while !remaining.isEmpty {
            guard clock.now < deadline else {
                throw KafkaError(
                    .timedOut, "reading the checkpoint topic \(spec.topic): not at its end after \(timeout)",
                    isRetriable: true)
            }
            let batch = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(200))
            for record in batch {
                let tp = TopicPartition(record.topic, record.partition)
                if let end = remaining[tp], record.offset + 1 >= end { remaining[tp] = nil }
                guard let key = record.key, key.starts(with: prefix), let value = record.value else { continue }
                // The key is <topology>/<scope…>/<slot>/<part>.
                let path = String(decoding: key.dropFirst(prefix.count), as: UTF8.self).split(separator: "/")
                guard path.count >= 2, let scope = scope(path.dropLast(2).joined(separator: "/")) else { continue }
                guard let part = Self.parsePart(value) else {
                    skipped.append((0, "\(spec.topic)@\(record.offset)", "not a checkpoint part"))
                    continue
                }
                highest = max(highest ?? 0, part.sequence)
                let id = "\(scope)|\(part.sequence)"
                var a = open[id] ?? Assembly(parts: Array(repeating: nil, count: part.count), total: part.total)
                guard a.parts.count == part.count, a.total == part.total, part.index < part.count else {
                    skipped.append((part.sequence, spec.topic, "parts disagree on the checkpoint's size"))
                    continue
                }
                if a.parts[part.index] == nil { a.received += 1 }
                a.parts[part.index] = Array(value.dropFirst(Self.partHeaderBytes))
                if a.received == a.parts.count {
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(a.total)
                    for p in a.parts { bytes += p! }
                    open[id] = nil
                    if bytes.count == a.total {
                        complete.append(
                            Stored(
                                sequence: part.sequence, location: "topic \(spec.topic)", bytes: bytes, scope: scope))
                        // Keep memory bounded: only the newest `limit` complete ones of a scope matter.
                        complete.sort { $0.sequence > $1.sequence }
                        if complete.count(where: { $0.scope == scope }) > limit,
                            let oldest = complete.lastIndex(where: { $0.scope == scope })
                        {
                            complete.remove(at: oldest)
                        }
                    } else {
                        skipped.append(
                            (part.sequence, spec.topic, "parts add up to \(bytes.count) bytes, not \(a.total)"))
                    }
                } else {
                    open[id] = a
                }
            }
        }
        // Parts of a checkpoint that began before the range are not evidence of damage.
        for (id, a) in open {
            let seq = UInt64(id.split(separator: "|").last ?? "") ?? 0
            guard seq > (complete.last?.sequence ?? 0), a.parts[0] != nil else { continue }
            skipped.append(
                (
                    seq, "topic \(spec.topic)",
                    "incomplete: \(a.received) of \(a.parts.count) parts (interrupted while publishing)"
                ))
        }
        return complete
    }

    struct Part {
        var sequence: UInt64
        var index: Int
        var count: Int
        var total: Int
    }

    static func parsePart(_ value: ArraySlice<UInt8>) -> Part? {
        guard value.count >= partHeaderBytes, value.prefix(4).elementsEqual(partMagic) else { return nil }
        let bytes = Array(value.prefix(partHeaderBytes))
        func load<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
        }
        guard load(4, UInt16.self) == 1 else { return nil }
        let count = Int(load(18, UInt32.self))
        let total = load(22, UInt64.self)
        guard count >= 1, count <= 1 << 20, total <= UInt64(Checkpoint.maxBodyBytes) * 2 else { return nil }
        return Part(sequence: load(6, UInt64.self), index: Int(load(14, UInt32.self)), count: count, total: Int(total))
    }
}
