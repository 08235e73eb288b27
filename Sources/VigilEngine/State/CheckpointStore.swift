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
/// Part records are keyed `<topology>/<scope>/<slot>/<part>` with slot = sequence mod `keep`,
/// so a compacted topic holds the newest `keep` records of each scope and no more. The scope is
/// `i/<instance>` for an instance's own checkpoint (its models, thresholds, metrics), and
/// `p/<topic>/<partition>` for a source partition's windows (`PartitionState`), which any
/// instance may load when it is given the partition. Instances therefore never read each
/// other's checkpoints. Releases before December 2026 keyed `<topology>/<slot>/<part>`; those
/// are read as the instance's own. Each part carries its record's sequence, so parts left from
/// an older record in the same slot are never mixed in; a record missing a part (a crash while
/// publishing) is skipped.
public final class CheckpointStore: Sendable {
    public let spec: CheckpointSpec
    public let topology: String
    /// This instance's name (`vigil run --instance`): its checkpoints are keyed by it. Nil reads
    /// and writes the keys of releases before December 2026 (tools, tests of the old layout).
    public let instance: String?
    /// The topology's Kafka client configuration (TLS, SASL): the writer and the reader use it.
    let clients: KafkaClients
    let logger: Logger
    private let producer: Mutex<KafkaProducer?> = Mutex(nil)
    private let acks = Mutex<[UInt64: KafkaError?]>([:])
    private let nextToken = Atomic<UInt64>(1)

    /// Bytes of checkpoint per part record (librdkafka's default `message.max.bytes` is 1 MB).
    public static let partBytes = 900_000
    static let partMagic: [UInt8] = Array("VGPT".utf8)
    static let partHeaderBytes = 4 + 2 + 8 + 4 + 4 + 8

    public init(spec: CheckpointSpec, clients: KafkaClients, instance: String? = nil, logger: Logger) {
        self.spec = spec
        self.instance = instance
        topology = clients.topology
        self.clients = clients
        self.logger = logger
    }

    // MARK: Writing

    /// Publishes `bytes` (an encoded `EngineCheckpoint`) as checkpoint `sequence` and waits for
    /// the broker to acknowledge every part; then writes the file copy and prunes old files.
    /// - Throws: when a part is not acknowledged within `deadline`; the checkpoint then does not
    ///   count (a restore skips incomplete ones). `CheckpointFileError` when only the file copy
    ///   failed (the checkpoint is on the topic).
    public func publish(_ bytes: [UInt8], sequence: UInt64, deadline: Duration = .seconds(60)) throws {
        let scope = instance.map { "i/\($0)/" } ?? ""
        try publish(bytes, sequence: sequence, key: "\(topology)/\(scope)", deadline: deadline)
        if let directory = spec.directory { try writeFile(bytes, sequence: sequence, directory: directory) }
    }

    /// The scope of a source partition's records.
    static func partitionScope(_ tp: TopicPartition) -> String { "p/\(tp.topic)/\(tp.partition)" }

    /// Publishes a source partition's windows (`PartitionState`, encoded) as record `sequence`
    /// of its scope, and waits for the broker's acknowledgements.
    public func publish(
        partition bytes: [UInt8], of tp: TopicPartition, sequence: UInt64, deadline: Duration = .seconds(60)
    )
        throws
    {
        try publish(bytes, sequence: sequence, key: "\(topology)/\(Self.partitionScope(tp))/", deadline: deadline)
    }

    private func publish(_ bytes: [UInt8], sequence: UInt64, key prefix: String, deadline: Duration) throws {
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
            let key = Array("\(prefix)\(sequence % UInt64(spec.keep))/\(index)".utf8)
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
    }

    private func producerHandle() throws -> KafkaProducer {
        try producer.withLock { (p: inout KafkaProducer?) throws -> KafkaProducer in
            if let p { return p }
            var config = clients.producer("checkpoints")
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

    /// Writes the file copy whole and flushed to the disk under a temporary name, then gives it
    /// its checkpoint name: a full disk or a crash leaves no partial file under a checkpoint's
    /// name, and a failed write leaves no temporary file behind.
    private func writeFile(_ bytes: [UInt8], sequence: UInt64, directory: String) throws {
        let fm = FileManager.default
        let name = fileName(sequence)
        let temporary = directory + "/.\(name).tmp"
        let final = directory + "/" + name
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
            guard fm.createFile(atPath: temporary, contents: nil) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
            guard rename(temporary, final) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw CheckpointFileError(sequence: sequence, directory: directory, cause: "\(error)")
        }
        for (seq, path) in files(in: directory).dropFirst(spec.keep) where seq != sequence {
            try? fm.removeItem(atPath: path)
        }
    }

    func fileName(_ sequence: UInt64) -> String {
        "\(topology)-\(String(sequence).leftPadded(to: 12)).vgck"
    }

    /// The directory's checkpoint files of this topology, newest first.
    func files(in directory: String) -> [(UInt64, String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let prefix = topology + "-"
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasPrefix(prefix), name.hasSuffix(".vgck") else { return nil }
            let digits = name.dropFirst(prefix.count).dropLast(5)
            guard let seq = UInt64(digits) else { return nil }
            return (seq, directory + "/" + name)
        }.sorted { $0.0 > $1.0 }
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

/// The checkpoint is on the topic, but its file copy could not be written (a full disk, a
/// directory that is not writable); nothing was left under a checkpoint's name.
public struct CheckpointFileError: Error, CustomStringConvertible {
    public var sequence: UInt64
    public var directory: String
    public var cause: String
    public var description: String {
        "checkpoint \(sequence) is on the topic, but its file copy in \(directory) failed: \(cause)"
    }
}
