import Dispatch
import Foundation
import Synchronization
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
    /// The layout it was read in (or is written in): 1 names model sections by the legacy
    /// versions (releases up to December 2026), 2 by the canonical ones. `migrated(to:…)`
    /// renames the former.
    public internal(set) var bodyVersion: UInt8 = Self.currentBodyVersion
    /// What produced the state: the topology file's hash, the build, the models' seeds (body
    /// version 3 on; nil in earlier checkpoints).
    public var manifest: CheckpointManifest? = nil

    public static let kind = "vigil_engine"
    /// The layout this build writes; it reads every earlier one. 3 added the manifest.
    public static let currentBodyVersion: UInt8 = 3

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
        return kinds.sorted { $0.value > $1.value }.map {
            "\($0.key)=\(String(format: "%.1f", Double($0.value) / 1e6))"
        }
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
        out.write(Self.currentBodyVersion)
        out.write(sequence)
        out.write(createdMs)
        out.write(topology)
        out.write(planSignature)
        out.write(reason)
        out.write(manifest?.json ?? "")
        out.write(UInt32(modelVersions.count))
        for v in modelVersions { out.write(v) }
        out.write(UInt32(offsets.count))
        for o in offsets {
            out.write(o.topic)
            out.write(UInt32(bitPattern: o.partition))
            out.write(o.offset)
        }
        // Each worker's sections are compressed on their own, in parallel: one LZ4 stream over
        // the whole state took most of a checkpoint's write time at a million entities. The
        // container compresses once more (fast on compressed bytes) and checksums everything.
        let blobs = Mutex([[UInt8]](repeating: [], count: workers.count))
        DispatchQueue.concurrentPerform(iterations: workers.count) { i in
            // Straight from the sections: each name and length, then its bytes.
            let w = workers[i]
            var heads: [[UInt8]] = []
            for (k, s) in w.sections.enumerated() {
                var head = BinaryWriter()
                if k == 0 { head.write(UInt32(w.sections.count)) }
                head.write(s.name)
                head.write(UInt64(s.bytes.count))
                heads.append(head.bytes)
            }
            let total = heads.map(\.count).reduce(0, +) + w.sections.map(\.bytes.count).reduce(0, +)
            if w.sections.isEmpty {
                var none = BinaryWriter()
                none.write(UInt32(0))
                blobs.withLock { $0[i] = LZ4.compress(none.bytes) }
                return
            }
            var frame = LZ4.FrameWriter(totalSize: total, pieces: 2 * w.sections.count, fast: true)
            for (head, s) in zip(heads, w.sections) {
                head.withUnsafeBytes { frame.append($0) }
                s.bytes.withUnsafeBytes { frame.append($0) }
            }
            let blob = frame.finish()
            blobs.withLock { $0[i] = blob }
        }
        out.write(UInt32(workers.count))
        for (w, blob) in zip(workers, blobs.withLock { $0 }) {
            out.write(UInt64(w.entities))
            out.write(UInt64(blob.count))
            blob.withUnsafeBytes { out.write(raw: $0) }
        }
        return Checkpoint.encode(kind: Self.kind, schema: Self.schema(topology: topology), body: out.bytes)
    }

    /// Reads and checks a checkpoint of `topology` (checksum, version, kind, topology).
    public static func decode(_ bytes: [UInt8], topology: String) throws(CheckpointError) -> EngineCheckpoint {
        let body = try Checkpoint.decode(bytes, kind: kind, schema: schema(topology: topology))
        var r = BinaryReader(body)
        let version = try r.checkpoint { r throws(VigilError) in try r.uint8() }
        guard (1...currentBodyVersion).contains(version) else {
            throw CheckpointError(
                .newerVersion, "engine body version \(version); this build reads 1 to \(currentBodyVersion)")
        }
        let sequence = try r.checkpoint { r throws(VigilError) in try r.uint64() }
        let created = try r.checkpoint { r throws(VigilError) in try r.int64() }
        let name = try r.checkpoint { r throws(VigilError) in try r.string() }
        let signature = try r.checkpoint { r throws(VigilError) in try r.uint64() }
        let reason = try r.checkpoint { r throws(VigilError) in try r.string() }
        let manifest = version >= 3 ? try r.checkpoint { r throws(VigilError) in try r.string() } : ""
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
        var entities: [Int] = []
        var blobs: [[UInt8]] = []
        for _ in 0..<workerCount {
            let count = try r.checkpoint { r throws(VigilError) in try r.uint64() }
            guard let entityCount = Int(exactly: count) else {
                throw CheckpointError(.corrupt, "a worker with \(count) entities")
            }
            entities.append(entityCount)
            let length = try r.checkpoint { r throws(VigilError) in try r.uint64() }
            guard length <= UInt64(r.remaining) else { throw CheckpointError(.truncated, "a worker's state cut short") }
            let start = r.offset
            try r.checkpoint { r throws(VigilError) in try r.skip(Int(length)) }
            blobs.append(Array(body[start..<start + Int(length)]))
        }
        let decoded = Mutex([Result<WorkerState, CheckpointError>?](repeating: nil, count: workerCount))
        let (allBlobs, allEntities) = (blobs, entities)
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let result = Result { () throws(CheckpointError) in
                try Self.decodeWorker(allBlobs[i], entities: allEntities[i])
            }
            decoded.withLock { $0[i] = result }
        }
        var workers: [WorkerState] = []
        for result in decoded.withLock({ $0 }) { workers.append(try result!.get()) }
        guard r.isAtEnd else { throw CheckpointError(.corrupt, "\(r.remaining) bytes after the last worker") }
        return EngineCheckpoint(
            sequence: sequence, createdMs: created, topology: name, planSignature: signature, modelVersions: versions,
            offsets: offsets, reason: reason, workers: workers, bodyVersion: version,
            manifest: CheckpointManifest(json: manifest))
    }
}

extension EngineCheckpoint {
    /// One worker's sections from their compressed blob.
    static func decodeWorker(_ blob: [UInt8], entities: Int) throws(CheckpointError) -> WorkerState {
        let bytes: [UInt8]
        do {
            bytes = try LZ4.decompress(blob, maxSize: Checkpoint.maxBodyBytes)
        } catch {
            throw CheckpointError(.corrupt, "a worker's state does not decompress: \(error.reason)")
        }
        var r = BinaryReader(bytes)
        var w = WorkerState()
        w.entities = entities
        let sectionCount = Int(try r.checkpoint { r throws(VigilError) in try r.uint32() })
        guard sectionCount <= 4096 else { throw CheckpointError(.corrupt, "\(sectionCount) sections") }
        for _ in 0..<sectionCount {
            let name = try r.checkpoint { r throws(VigilError) in try r.string() }
            let length = try r.checkpoint { r throws(VigilError) in try r.uint64() }
            guard length <= UInt64(r.remaining) else { throw CheckpointError(.truncated, "section \(name) cut short") }
            let start = r.offset
            try r.checkpoint { r throws(VigilError) in try r.skip(Int(length)) }
            w.sections.append((name, Array(bytes[start..<start + Int(length)])))
        }
        guard r.isAtEnd else { throw CheckpointError(.corrupt, "\(r.remaining) bytes after a worker's last section") }
        return w
    }
}

/// The evidence a checkpoint carries beside its state (docs/evaluate.md, "Reproducible runs"):
/// the topology file's canonical hash as it was when the state was cut (reloads included), the
/// build that wrote it, and each model's seed. The input is the checkpoint's own offsets.
public struct CheckpointManifest: Codable, Sendable, Equatable {
    public var configHash: String?
    public var build: RunManifest.Build
    public var seeds: [String: UInt64]

    public init(configHash: String?, build: RunManifest.Build = .current, seeds: [String: UInt64]) {
        self.configHash = configHash
        self.build = build
        self.seeds = seeds
    }

    /// Sorted, compact JSON (snake_case keys).
    var json: String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        return (try? e.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// The manifest of `json`; nil for an empty or unreadable one (it is evidence, never a reason
    /// to refuse a checkpoint).
    init?(json: String) {
        guard !json.isEmpty, let m = try? JSONDecoder.snakeCase.decode(Self.self, from: Data(json.utf8)) else {
            return nil
        }
        self = m
    }
}

/// One worker's part of a checkpoint: named sections, each written by the stage that owns it
/// (`features`, `model:<version>`, `ensemble:<version>`, `threshold`, `labels`, `metrics`).
struct WorkerState: Sendable {
    var entities = 0
    var sections: [(name: String, bytes: [UInt8])] = []
    /// How long each part of the capture took (for the log; not stored).
    var captureTimes: [(name: String, took: Duration)] = []

    var byteCount: Int { sections.map { $0.bytes.count + $0.name.utf8.count + 16 }.reduce(12, +) }

    func section(_ name: String) -> [UInt8]? { sections.first { $0.name == name }?.bytes }
}
