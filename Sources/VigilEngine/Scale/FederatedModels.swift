import VigilCore
import VigilModels

/// One instance's models as the federation publishes them to the models topic: per model, its
/// version, the examples it learned from (its FedAvg weight) and its parameters. The value is
/// LZ4-compressed; the key is `<topology>/<instance>`, so a compacted topic keeps each
/// instance's newest.
struct FederatedModels: Sendable {
    struct Entry: Sendable {
        var version: String
        var weight: Double
        /// The model's `OnlineModel` encoding.
        var body: [UInt8]
    }

    static let magic: [UInt8] = Array("VGFD".utf8)
    static let formatVersion: UInt8 = 1

    var topology: String
    var instance: String
    /// Wall-clock milliseconds when it was published (peers leave out what is older than
    /// `max_age`).
    var publishedMs: Int64
    var entries: [Entry]

    var key: String { "\(topology)/\(instance)" }

    func encoded() -> [UInt8] {
        var out = BinaryWriter(capacity: entries.reduce(64) { $0 + $1.body.count + 64 })
        for b in Self.magic { out.write(b) }
        out.write(Self.formatVersion)
        out.write(topology)
        out.write(instance)
        out.write(publishedMs)
        out.write(entries.count)
        for e in entries {
            out.write(e.version)
            out.write(e.weight)
            out.write(UInt64(e.body.count))
            e.body.withUnsafeBytes { out.write(raw: $0) }
        }
        return LZ4.compress(out.bytes)
    }

    init(topology: String, instance: String, publishedMs: Int64, entries: [Entry]) {
        self.topology = topology
        self.instance = instance
        self.publishedMs = publishedMs
        self.entries = entries
    }

    /// Reads what `encoded()` wrote.
    init(decoding bytes: [UInt8]) throws(VigilError) {
        var r = BinaryReader(try LZ4.decompress(bytes, maxSize: 1 << 28))
        for b in Self.magic {
            guard try r.uint8() == b else { throw VigilError(.malformedInput, "not a Vigil models record") }
        }
        let version = try r.uint8()
        guard version == Self.formatVersion else {
            throw VigilError(.malformedInput, "models record format \(version), this build reads \(Self.formatVersion)")
        }
        topology = try r.string()
        instance = try r.string()
        publishedMs = try r.int64()
        let count = try r.int(in: 0...1024, "model count")
        entries = []
        for _ in 0..<count {
            let version = try r.string()
            let weight = try r.double()
            let size = Int(try r.uint64())
            guard size <= r.remaining, weight.isFinite, weight >= 0 else {
                throw VigilError(.malformedInput, "models record entry \(version) is damaged")
            }
            entries.append(Entry(version: version, weight: weight, body: try r.values(size, of: UInt8.self)))
        }
        try r.expectEnd("models record")
    }
}

extension ModelSet.Decoded {
    /// Appends the model's `OnlineModel` encoding.
    func encode(into out: inout BinaryWriter) {
        switch self {
        case .forest(let m): m.encode(into: &out)
        case .countingForest(let m): m.encode(into: &out)
        case .regression(let m): m.encode(into: &out)
        }
    }

    /// Reads a model of the same kind as this one from `bytes` (a peer's replica of it).
    func decodeReplica(_ bytes: [UInt8]) throws(CheckpointError) -> ModelSet.Decoded {
        var r = BinaryReader(bytes)
        let model: ModelSet.Decoded
        switch self {
        case .forest: model = .forest(try IsolationForest(decoding: &r))
        case .countingForest: model = .countingForest(try CountingIsolationForest(decoding: &r))
        case .regression: model = .regression(try LogisticRegression(decoding: &r))
        }
        guard r.isAtEnd else { throw CheckpointError(.corrupt, "a peer's model has bytes left over") }
        return model
    }

    /// Whether `other` is a replica of this model: the same kind and shape, so they can be
    /// averaged.
    func isReplica(of other: ModelSet.Decoded) -> Bool {
        switch (self, other) {
        case (.forest(let a), .forest(let b)):
            return a.featureNames == b.featureNames && a.trees == b.trees && a.sample == b.sample
        case (.countingForest(let a), .countingForest(let b)):
            return a.featureNames == b.featureNames && a.trees == b.trees && a.sample == b.sample
        case (.regression(let a), .regression(let b)):
            return a.featureNames == b.featureNames && a.categoryBuckets == b.categoryBuckets
                && a.parameters == b.parameters
        default: return false
        }
    }
}
