import VigilCore
import VigilModels

/// The state of one source partition at one cut: the windows of the entities it delivers and
/// the offset of the first record they do not cover. It is published to the checkpoint topic
/// under a key that names the partition, at every checkpoint and when the partition is revoked,
/// so whichever instance is given the partition next continues from it (Kafka Streams' state
/// store with its changelog). Written in the `Checkpoint` container, kind `vigil_partition`.
public struct PartitionState: Sendable {
    public var topic: String
    public var partition: Int32
    /// Next offset to read: the windows cover every record before it.
    public var offset: Int64
    /// `FeaturePlan.signature` of the features the windows were computed for.
    public var planSignature: UInt64
    /// Wall-clock milliseconds of the cut.
    public var createdMs: Int64
    /// The instance that wrote it, and why (`interval`, `revoke`, `shutdown`, …).
    public var instance: String
    public var reason: String
    /// The windows, one encoded feature state per worker of the writer.
    public var windows: [[UInt8]]

    public static let kind = "vigil_partition"
    static let bodyVersion: UInt8 = 1

    static func schema(topology: String) -> UInt64 { StableHash.hash("vigil-partition|" + topology) }

    public init(
        topic: String, partition: Int32, offset: Int64, planSignature: UInt64, createdMs: Int64, instance: String,
        reason: String, windows: [[UInt8]]
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.planSignature = planSignature
        self.createdMs = createdMs
        self.instance = instance
        self.reason = reason
        self.windows = windows
    }

    /// Entities held (summed over the writer's workers).
    public var entities: Int {
        windows.map { w in
            w.count >= 100 ? Int(w.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 92, as: UInt64.self) }) : 0
        }.reduce(0, +)
    }

    public func encode(topology: String) -> [UInt8] {
        var out = BinaryWriter(capacity: windows.map(\.count).reduce(256, +))
        out.write(Self.bodyVersion)
        out.write(topic)
        out.write(UInt32(bitPattern: partition))
        out.write(offset)
        out.write(planSignature)
        out.write(createdMs)
        out.write(instance)
        out.write(reason)
        out.write(UInt32(windows.count))
        for w in windows {
            out.write(UInt64(w.count))
            w.withUnsafeBytes { out.write(raw: $0) }
        }
        return Checkpoint.encode(kind: Self.kind, schema: Self.schema(topology: topology), body: out.bytes)
    }

    public static func decode(_ bytes: [UInt8], topology: String) throws(CheckpointError) -> PartitionState {
        let body = try Checkpoint.decode(bytes, kind: kind, schema: schema(topology: topology))
        var r = BinaryReader(body)
        do throws(VigilError) {
            let version = try r.uint8()
            guard version == bodyVersion else {
                throw VigilError(.malformedInput, "partition state version \(version); this build reads \(bodyVersion)")
            }
            let topic = try r.string()
            let partition = Int32(bitPattern: try r.uint32())
            let offset = try r.int64()
            let signature = try r.uint64()
            let created = try r.int64()
            let instance = try r.string()
            let reason = try r.string()
            let count = Int(try r.uint32())
            guard count <= 4096 else { throw VigilError(.malformedInput, "\(count) workers") }
            var windows: [[UInt8]] = []
            for _ in 0..<count {
                let n = try r.uint64()
                guard n <= UInt64(r.remaining) else { throw VigilError(.malformedInput, "windows cut short") }
                windows.append(try r.values(Int(n), of: UInt8.self))
            }
            try r.expectEnd("partition state")
            return PartitionState(
                topic: topic, partition: partition, offset: offset, planSignature: signature, createdMs: created,
                instance: instance, reason: reason, windows: windows)
        } catch {
            throw CheckpointError(.corrupt, "partition state: \(error.reason)")
        }
    }
}
