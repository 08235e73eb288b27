import VigilCore
import VigilModels

/// Where a checkpoint resumes one source partition: the offset of the first record its state
/// does not cover.
public struct SourceOffset: Sendable, Hashable, Comparable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }

    public static func < (a: SourceOffset, b: SourceOffset) -> Bool {
        (a.topic, a.partition, a.offset) < (b.topic, b.partition, b.offset)
    }
}

/// The whole engine's state at one cut of the input (as in Flink: state + the positions it
/// covers): every worker's windows, models, ensemble memory, threshold, waiting events and
/// metrics, and for every source and labels partition the offset after the last record the state
/// has seen. Written in the `Checkpoint` container (versioned, LZ4, checksummed), kind
/// `vigil_engine`, keyed to the topology's name.
public struct EngineCheckpoint: Sendable {
    /// Counts up by one per checkpoint of a topology; the newest valid one is restored.
    public var sequence: UInt64
    /// Wall-clock milliseconds since 1970 when the cut was taken.
    public var createdMs: Int64
    public var topology: String
    /// `FeaturePlan.signature` of the features the windows were computed for.
    public var planSignature: UInt64
    /// Model versions (`name@hash`), in topology order.
    public var modelVersions: [String]
    /// Next offset to read, per source and labels partition, sorted.
    public var offsets: [SourceOffset]
    /// Why it was taken: `interval`, `events`, `shutdown`, `reload`, `admin`.
    public var reason: String
    /// One entry per worker, in shard order.
    var workers: [WorkerState]

    public static let kind = "vigil_engine"
    static let bodyVersion: UInt8 = 1

    /// The container's schema field: checkpoints of another topology are refused as such.
    static func schema(topology: String) -> UInt64 { StableHash.hash("vigil-engine|" + topology) }

    public var workerCount: Int { workers.count }

    /// Bytes of state per section name (summed over workers), for listings and the bench.
    public var sectionBytes: [(name: String, bytes: Int)] {
        var totals: [String: Int] = [:]
        var order: [String] = []
        for w in workers {
            for s in w.sections {
                if totals[s.name] == nil { order.append(s.name) }
                totals[s.name, default: 0] += s.bytes.count
            }
        }
        return order.map { ($0, totals[$0]!) }
    }

    /// Uncompressed megabytes by kind of section (`features=…,models=…,labels=…`), for the log.
    public var sectionSummary: String {
        var kinds: [String: Int] = [:]
        for (name, bytes) in sectionBytes {
            let kind = name.hasPrefix("model:") ? "models" : name.hasPrefix("ensemble:") ? "ensemble" : name
            kinds[kind, default: 0] += bytes
        }
        return kinds.sorted { $0.value > $1.value }.map { "\($0.key)=\(String(format: "%.1f", Double($0.value) / 1e6))" }
            .joined(separator: ",")
    }

    /// Entities held in the windows, over all workers (read from the feature sections).
    public var entities: Int { workers.map(\.entities).reduce(0, +) }

    /// The bytes of section `name` (`features`, `model:<version>`, `threshold`, …) of worker
    /// `worker`: tests and tools compare states with it.
    public func section(_ name: String, worker: Int) -> [UInt8]? { workers[worker].section(name) }

    /// Section names of worker `worker`, in order.
    public func sectionNames(worker: Int) -> [String] { workers[worker].sections.map(\.name) }

    /// The checkpoint as a `Checkpoint` container.
    public func encode() -> [UInt8] {
        var out = BinaryWriter(capacity: workers.map(\.byteCount).reduce(1024, +))
        out.write(Self.bodyVersion)
        out.write(sequence)
        out.write(createdMs)
        out.write(topology)
        out.write(planSignature)
        out.write(reason)
        out.write(UInt32(modelVersions.count))
        for v in modelVersions { out.write(v) }
        out.write(UInt32(offsets.count))
        for o in offsets {
            out.write(o.topic)
            out.write(UInt32(bitPattern: o.partition))
            out.write(o.offset)
        }
        out.write(UInt32(workers.count))
        for w in workers {
            out.write(UInt64(w.entities))
            out.write(UInt32(w.sections.count))
            for s in w.sections {
                out.write(s.name)
                out.write(UInt64(s.bytes.count))
                s.bytes.withUnsafeBytes { out.write(raw: $0) }
            }
        }
        return Checkpoint.encode(kind: Self.kind, schema: Self.schema(topology: topology), body: out.bytes)
    }

    /// Reads and checks a checkpoint of `topology` (checksum, version, kind, topology).
    public static func decode(_ bytes: [UInt8], topology: String) throws(CheckpointError) -> EngineCheckpoint {
        let body = try Checkpoint.decode(bytes, kind: kind, schema: schema(topology: topology))
        var r = BinaryReader(body)
        let version = try r.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == bodyVersion else {
            throw CheckpointError(.newerVersion, "engine body version \(version); this build reads \(bodyVersion)")
        }
        let sequence = try r.checkpoint { r throws(VigilError) in try r.uint64() }
        let created = try r.checkpoint { r throws(VigilError) in try r.int64() }
        let name = try r.checkpoint { r throws(VigilError) in try r.string() }
        let signature = try r.checkpoint { r throws(VigilError) in try r.uint64() }
        let reason = try r.checkpoint { r throws(VigilError) in try r.string() }
        let versionCount = Int(try r.checkpoint { r throws(VigilError) in try r.uint32() })
        guard versionCount <= 1024 else { throw CheckpointError(.corrupt, "\(versionCount) models") }
        var versions: [String] = []
        for _ in 0..<versionCount { versions.append(try r.checkpoint { r throws(VigilError) in try r.string() }) }
        let offsetCount = Int(try r.checkpoint { r throws(VigilError) in try r.uint32() })
        guard offsetCount <= 1 << 20 else { throw CheckpointError(.corrupt, "\(offsetCount) partitions") }
        var offsets: [SourceOffset] = []
        for _ in 0..<offsetCount {
            let topic = try r.checkpoint { r throws(VigilError) in try r.string() }
            let partition = Int32(bitPattern: try r.checkpoint { r throws(VigilError) in try r.uint32() })
            let offset = try r.checkpoint { r throws(VigilError) in try r.int64() }
            offsets.append(SourceOffset(topic: topic, partition: partition, offset: offset))
        }
        let workerCount = Int(try r.checkpoint { r throws(VigilError) in try r.uint32() })
        guard (1...4096).contains(workerCount) else { throw CheckpointError(.corrupt, "\(workerCount) workers") }
        var workers: [WorkerState] = []
        for _ in 0..<workerCount {
            var w = WorkerState()
            w.entities = Int(try r.checkpoint { r throws(VigilError) in try r.uint64() })
            let sectionCount = Int(try r.checkpoint { r throws(VigilError) in try r.uint32() })
            guard sectionCount <= 4096 else { throw CheckpointError(.corrupt, "\(sectionCount) sections") }
            for _ in 0..<sectionCount {
                let sectionName = try r.checkpoint { r throws(VigilError) in try r.string() }
                let length = try r.checkpoint { r throws(VigilError) in try r.uint64() }
                guard length <= UInt64(r.remaining) else { throw CheckpointError(.truncated, "section \(sectionName) cut short") }
                let start = r.offset
                try r.checkpoint { r throws(VigilError) in try r.skip(Int(length)) }
                let bytes = Array(body[start..<start + Int(length)])
                w.sections.append((sectionName, bytes))
            }
            workers.append(w)
        }
        guard r.isAtEnd else { throw CheckpointError(.corrupt, "\(r.remaining) bytes after the last worker") }
        return EngineCheckpoint(
            sequence: sequence, createdMs: created, topology: name, planSignature: signature, modelVersions: versions,
            offsets: offsets, reason: reason, workers: workers)
    }
}

/// One worker's part of a checkpoint: named sections, each written by the stage that owns it
/// (`features`, `model:<version>`, `ensemble:<version>`, `threshold`, `labels`, `metrics`).
struct WorkerState: Sendable {
    var entities = 0
    var sections: [(name: String, bytes: [UInt8])] = []

    var byteCount: Int { sections.map { $0.bytes.count + $0.name.utf8.count + 16 }.reduce(12, +) }

    func section(_ name: String) -> [UInt8]? { sections.first { $0.name == name }?.bytes }
}
