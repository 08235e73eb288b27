import Foundation
import Logging
import Synchronization
import VigilCore
import VigilKafka
import VigilModels

/// Keeps a topology's checkpoints: publishes each to the checkpoint topic, cut into parts that
/// fit a Kafka record, and optionally to a local directory; finds them again, newest first, for a
/// restore or a listing.
///
/// Part records are keyed `<topology>/<slot>/<part>` with slot = sequence mod `keep`, so a
/// compacted topic holds the newest `keep` checkpoints and no more. Each part carries its
/// checkpoint's sequence, so parts left from an older checkpoint in the same slot are never
/// mixed in; a checkpoint missing a part (a crash while publishing) is skipped.
public final class CheckpointStore: Sendable {
    public let spec: CheckpointSpec
    public let topology: String
    private let brokers: [String]
    private let properties: [String: String]
    private let logger: Logger
    private let producer: Mutex<KafkaProducer?> = Mutex(nil)
    private let acks = Mutex<[UInt64: KafkaError?]>([:])
    private let nextToken = Atomic<UInt64>(1)

    /// Bytes of checkpoint per part record (librdkafka's default `message.max.bytes` is 1 MB).
    public static let partBytes = 900_000
    static let partMagic: [UInt8] = Array("VGPT".utf8)
    static let partHeaderBytes = 4 + 2 + 8 + 4 + 4 + 8

    public init(
        spec: CheckpointSpec, topology: String, brokers: [String], properties: [String: String] = [:], logger: Logger
    ) {
        self.spec = spec
        self.topology = topology
        self.brokers = brokers
        self.properties = properties
        self.logger = logger
    }

    /// Creates the checkpoint topic if it is missing: one partition (the parts stay in order),
    /// compacted.
    public func ensureTopic() throws(KafkaError) {
        let admin = try KafkaAdmin(
            configuration: KafkaConfiguration(bootstrapServers: brokers, clientID: "vigil-admin"), logger: logger)
        if try admin.createTopic(spec.topic, partitions: 1, config: ["cleanup.policy": "compact"]) {
            logger.info("Created the checkpoint topic", metadata: ["topic": "\(spec.topic)"])
        }
    }

    // MARK: Writing

    /// Publishes `bytes` (an encoded `EngineCheckpoint`) as checkpoint `sequence` and waits for
    /// the broker to acknowledge every part; then writes the file copy and prunes old files.
    /// - Throws: when a part is not acknowledged within `deadline`; the checkpoint then does not
    ///   count (a restore skips incomplete ones).
    public func publish(_ bytes: [UInt8], sequence: UInt64, deadline: Duration = .seconds(60)) throws {
        let producer = try producerHandle()
        let parts = max(1, (bytes.count + Self.partBytes - 1) / Self.partBytes)
        var tokens: [UInt64] = []
        let topic = producer.topic(spec.topic)
        for index in 0..<parts {
            let start = index * Self.partBytes
            let end = min(bytes.count, start + Self.partBytes)
            var value: [UInt8] = Self.partMagic
            value.reserveCapacity(Self.partHeaderBytes + end - start)
            append(UInt16(1), to: &value)
            append(sequence, to: &value)
            append(UInt32(index), to: &value)
            append(UInt32(parts), to: &value)
            append(UInt64(bytes.count), to: &value)
            bytes.withUnsafeBytes { value.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
            let key = Array("\(topology)/\(sequence % UInt64(spec.keep))/\(index)".utf8)
            let token = nextToken.add(1, ordering: .relaxed).newValue
            acks.withLock { $0[token] = .some(nil) }
            tokens.append(token)
            try key.withUnsafeBytes { k in
                try value.withUnsafeBytes { v in
                    try producer.send(
                        to: topic, key: k, value: v,
                        headers: [
                            KafkaHeader(name: "vigil.topology", value: Array(topology.utf8)),
                            KafkaHeader(name: "vigil.checkpoint", value: Array(String(sequence).utf8)),
                        ], partition: 0, token: token, queueFullWait: deadline)
                }
            }
        }
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: deadline)
        while true {
            try? producer.flush(timeout: .milliseconds(200))
            let state = acks.withLock { a in tokens.map { a[$0] } }
            if let failure = state.compactMap({ $0 ?? nil }).first {
                acks.withLock { a in for t in tokens { a[t] = nil } }
                throw failure
            }
            if state.allSatisfy({ $0 == nil }) { break }
            if clock.now >= end {
                acks.withLock { a in for t in tokens { a[t] = nil } }
                throw KafkaError(
                    .timedOut, "checkpoint \(sequence): parts not acknowledged after \(deadline)", isRetriable: true)
            }
        }
        if let directory = spec.directory { try writeFile(bytes, sequence: sequence, directory: directory) }
    }

    private func producerHandle() throws -> KafkaProducer {
        try producer.withLock { (p: inout KafkaProducer?) throws -> KafkaProducer in
            if let p { return p }
            var config = KafkaProducerConfiguration(
                common: KafkaConfiguration(bootstrapServers: brokers, clientID: "vigil-\(topology)-checkpoints"))
            config.linger = .milliseconds(1)
            config.compression = "none"  // the checkpoint is LZ4 already
            config.queueMaxBytes = 256 << 20
            let made = try KafkaProducer(configuration: config, logger: logger) { [weak self] report in
                self?.acknowledged(report)
            }
            p = made
            return made
        }
    }

    private func acknowledged(_ report: DeliveryReport) {
        acks.withLock { a in
            guard a[report.token] != nil else { return }
            if let error = report.error { a[report.token] = .some(error) } else { a[report.token] = nil }
        }
    }

    /// Closes the producer (flushing what is left).
    public func close() {
        let p = producer.withLock { p in
            let taken = p
            p = nil
            return taken
        }
        try? p?.close(deadline: .seconds(5))
    }

    private func writeFile(_ bytes: [UInt8], sequence: UInt64, directory: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let name = fileName(sequence)
        let temporary = URL(fileURLWithPath: directory).appendingPathComponent(".\(name).tmp")
        try Data(bytes).write(to: temporary)
        let final = URL(fileURLWithPath: directory).appendingPathComponent(name)
        _ = try? fm.removeItem(at: final)
        try fm.moveItem(at: temporary, to: final)
        for (seq, path) in files(in: directory).dropFirst(spec.keep) where seq != sequence {
            try? fm.removeItem(atPath: path)
        }
    }

    func fileName(_ sequence: UInt64) -> String {
        "\(topology)-\(String(sequence).leftPadded(to: 12)).vgck"
    }

    /// The directory's checkpoint files of this topology, newest first.
    private func files(in directory: String) -> [(UInt64, String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let prefix = topology + "-"
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix(prefix), name.hasSuffix(".vgck") else { return nil }
            let digits = name.dropFirst(prefix.count).dropLast(5)
            guard let seq = UInt64(digits) else { return nil }
            return (seq, directory + "/" + name)
        }.sorted { $0.0 > $1.0 }
    }

    // MARK: Reading

    /// One stored checkpoint, as found: its bytes are checked only when decoded.
    public struct Stored: Sendable {
        public var sequence: UInt64
        /// `topic` or the file's path.
        public var location: String
        public var bytes: [UInt8]
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
            limit: limit, timeout: timeout, skipped: &result.skipped, highest: &result.highestSequence)
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

    private func readTopic(
        limit: Int, timeout: Duration, skipped: inout [(sequence: UInt64, location: String, reason: String)],
        highest: inout UInt64?
    ) throws -> [Stored] {
        let common = KafkaConfiguration(
            bootstrapServers: brokers, clientID: "vigil-\(topology)-restore", properties: properties)
        let admin = try KafkaAdmin(
            configuration: KafkaConfiguration(bootstrapServers: brokers, clientID: "vigil-admin"), logger: logger)
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
        var tails: [TopicPartition: Int64] = [:]
        for (tp, end) in ends {
            let parts = try probeLast(consumer, tp, end: end, deadline: timeout).map { Int64($0.count) } ?? Int64(end)
            tails[tp] = max(lows[tp]!, end - Int64(limit + 1) * parts - 16)
        }
        var found = try readRange(
            consumer, from: tails, to: ends, limit: limit, timeout: timeout, skipped: &skipped, highest: &highest)
        if found.isEmpty, tails.contains(where: { $0.value > lows[$0.key]! }) {
            found = try readRange(
                consumer, from: lows, to: ends, limit: limit, timeout: timeout, skipped: &skipped, highest: &highest)
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
        skipped: inout [(sequence: UInt64, location: String, reason: String)], highest: inout UInt64?
    ) throws -> [Stored] {
        try consumer.assign(starts)
        var open: [UInt64: Assembly] = [:]
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
                guard let part = Self.parsePart(value) else {
                    skipped.append((0, "\(spec.topic)@\(record.offset)", "not a checkpoint part"))
                    continue
                }
                highest = max(highest ?? 0, part.sequence)
                var a =
                    open[part.sequence] ?? Assembly(parts: Array(repeating: nil, count: part.count), total: part.total)
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
                    open[part.sequence] = nil
                    if bytes.count == a.total {
                        complete.append(Stored(sequence: part.sequence, location: "topic \(spec.topic)", bytes: bytes))
                        // Keep memory bounded: only the newest `limit` complete ones matter.
                        complete.sort { $0.sequence > $1.sequence }
                        if complete.count > limit { complete.removeLast(complete.count - limit) }
                    } else {
                        skipped.append(
                            (part.sequence, spec.topic, "parts add up to \(bytes.count) bytes, not \(a.total)"))
                    }
                } else {
                    open[part.sequence] = a
                }
            }
        }
        // Parts of a checkpoint that began before the range are not evidence of damage.
        for (seq, a) in open where seq > (complete.last?.sequence ?? 0) && a.parts[0] != nil {
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

private func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
    withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

extension Topology {
    /// Creates every topic this topology names that is missing: the checkpoint topic with one
    /// partition and compaction, the others with `source.kafka.partitions`.
    /// - Returns: the topics created.
    public func createMissingTopics(_ admin: KafkaAdmin) throws(KafkaError) -> [String] {
        var created: [String] = []
        for topic in topics {
            if topic == checkpoints?.topic {
                if try admin.createTopic(topic, partitions: 1, config: ["cleanup.policy": "compact"]) {
                    created.append(topic)
                }
            } else if try admin.createTopic(topic, partitions: source.kafka.partitions) {
                created.append(topic)
            }
        }
        return created
    }
}
