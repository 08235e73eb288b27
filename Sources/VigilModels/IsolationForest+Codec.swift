import VigilCore

/// The forest in a checkpoint: its window, trees and random state, so a restored forest scores and
/// learns exactly as the original would have.
extension IsolationForest {
    public func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(UInt32(featureNames.count))
        for name in featureNames { out.write(name) }
        for n in [trees, sample, windowEvents, windowFilled, windowNext, rotation, sinceRebuild, learned] {
            out.write(n)
        }
        for w in random.state { out.write(w) }
        for v in window { out.write(v.bitPattern) }
        out.write(UInt32(forest.count))
        for tree in forest {
            out.write(UInt32(tree.nodes.count))
            for node in tree.nodes {
                out.write(UInt32(UInt16(bitPattern: node.feature)))
                out.write(node.value.bitPattern)
                out.write(UInt32(node.left))
            }
        }
    }

    public init(decoding input: inout BinaryReader) throws(CheckpointError) {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "isolation forest body version \(version)") }
        let names = try input.checkpointNames(limit: Int(Int16.max))
        let d = names.count
        func int(_ range: ClosedRange<Int>, _ what: String) throws(CheckpointError) -> Int {
            try input.checkpointInt(range, what)
        }
        let trees = try int(1...1000, "trees")
        let sample = try int(2...4096, "sample")
        let windowEvents = try int(sample...100_000_000, "window")
        guard windowEvents * d <= 1 << 28 else {
            throw CheckpointError(.corrupt, "window of \(windowEvents) × \(d) values")
        }
        self.init(features: names, spec: IsolationForestSpec(trees: trees, sample: sample, windowEvents: windowEvents))
        windowFilled = try int(0...windowEvents, "window fill")
        windowNext = try int(0...(windowEvents - 1), "window position")
        rotation = try int(0...(trees - 1), "rotation")
        sinceRebuild = try int(0...Int.max, "events since a rebuild")
        learned = try int(0...Int.max, "events learned")
        random = try input.checkpointRandom()
        guard input.remaining >= 4 * window.count else { throw CheckpointError(.truncated, "window cut short") }
        for i in window.indices {
            window[i] = Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
        }
        let count = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard count == 0 || count == trees else { throw CheckpointError(.corrupt, "\(count) trees, expected \(trees)") }
        for _ in 0..<count {
            let nodes = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
            guard (1...2 * sample).contains(nodes), input.remaining >= 12 * nodes else {
                throw CheckpointError(.corrupt, "a tree of \(nodes) nodes")
            }
            var tree: [Node] = []
            for _ in 0..<nodes {
                let feature = Int16(
                    bitPattern: UInt16(
                        truncatingIfNeeded: try input.checkpoint { r throws(VigilError) in try r.uint32() }))
                let value = Float(bitPattern: try input.checkpoint { r throws(VigilError) in try r.uint32() })
                let left = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
                // Children must exist and come after their parent, so every walk ends at a leaf.
                guard feature < Int16(d), feature >= -1,
                    feature == -1
                        ? (0...4096).contains(Int(left)) : (Int(left) > tree.count && Int(left) + 1 < nodes)
                else { throw CheckpointError(.corrupt, "a tree node points outside its tree") }
                tree.append(Node(feature: feature, value: value, left: left))
            }
            forest.append(Tree(nodes: tree))
        }
    }

    /// Bytes the model holds (window and trees), for the memory report.
    public var memoryBytes: Int {
        window.count * 4
            + forest.reduce(0) { $0 + $1.nodes.count * (2 * MemoryLayout<Node>.stride + MemoryLayout<Float>.stride) }
    }
}
