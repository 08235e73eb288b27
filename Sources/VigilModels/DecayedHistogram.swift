import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A streaming quantile sketch for scores in [0, 1] that forgets: fixed bins whose counts decay
/// with a half-life in events, so the quantile follows the recent scores (and adapts after a
/// drift) at a constant cost per score. Two sketches merge by adding bins, so replicas on several
/// workers can pool them. P² was the alternative; it neither forgets nor merges.
public struct DecayedHistogram: Sendable, Equatable {
    /// Number of bins over [0, 1].
    public let bins: Int
    /// Events after which an old score weighs half as much.
    public let halfLifeEvents: Double
    private(set) var counts: [Double]
    /// New scores are added with this weight, which grows by 1/decay per event; rescaling it back
    /// to 1 from time to time keeps the numbers finite (the same as decaying every bin).
    private var increment = 1.0
    private let growth: Double
    /// Total weight (in the current scale).
    private(set) var total = 0.0
    /// A Fenwick tree over `counts`, so a percentile costs O(log bins) rather than a walk over
    /// every bin (measured: the walk cost about 1 µs per model per event in the engine).
    private var tree: [Double]

    public init(bins: Int = 4096, halfLifeEvents: Double) {
        precondition(bins >= 2 && halfLifeEvents >= 1)
        self.bins = bins
        self.halfLifeEvents = halfLifeEvents
        counts = Array(repeating: 0, count: bins)
        tree = Array(repeating: 0, count: bins + 1)
        growth = exp2(1 / halfLifeEvents)
    }

    public static func == (a: DecayedHistogram, b: DecayedHistogram) -> Bool {
        a.bins == b.bins && a.halfLifeEvents == b.halfLifeEvents && a.counts == b.counts && a.increment == b.increment
            && a.total == b.total
    }

    /// Rebuilds the Fenwick tree from `counts` in O(bins).
    private mutating func rebuildTree() {
        for k in tree.indices { tree[k] = 0 }
        for i in 0..<bins {
            let k = i + 1
            tree[k] += counts[i]
            let parent = k + (k & -k)
            if parent <= bins { tree[parent] += tree[k] }
        }
    }

    /// The sum of `counts[0..<i]`.
    @inline(__always)
    private func prefix(_ i: Int) -> Double {
        var k = i
        var sum = 0.0
        while k > 0 {
            sum += tree[k]
            k &= k - 1
        }
        return sum
    }

    /// Adds one score (clamped to [0, 1]; NaN is ignored).
    public mutating func add(_ score: Double) {
        guard !score.isNaN else { return }
        let i = Swift.min(bins - 1, Swift.max(0, Int(score * Double(bins))))
        counts[i] += increment
        var k = i + 1
        while k <= bins {
            tree[k] += increment
            k += k & -k
        }
        total += increment
        increment *= growth
        if increment > 1e150 { rescale() }
    }

    private mutating func rescale() {
        let f = 1 / increment
        for i in counts.indices { counts[i] *= f }
        for k in tree.indices { tree[k] *= f }
        total *= f
        increment = 1
    }

    /// The score above which a share `rate` of the (decayed) scores lie, interpolating inside a
    /// bin as if its scores were spread evenly. nil while empty.
    public func upperQuantile(_ rate: Double) -> Double? {
        guard total > 0 else { return nil }
        let target = rate * total
        var above = 0.0
        var i = bins - 1
        while i >= 0 {
            let c = counts[i]
            if above + c >= target, c > 0 {
                // The fraction of this bin that lies above the threshold.
                let inside = (target - above) / c
                return (Double(i + 1) - inside) / Double(bins)
            }
            above += c
            i -= 1
        }
        return 0
    }

    /// The share of remembered scores below `score` (its percentile, 0...1), interpolating
    /// inside its bin. 0.5 while empty.
    public func fractionBelow(_ score: Double) -> Double {
        guard total > 0, !score.isNaN else { return 0.5 }
        let x = Swift.min(1, Swift.max(0, score)) * Double(bins)
        let i = Swift.min(bins - 1, Int(x))
        let below = prefix(i) + counts[i] * (x - Double(i))
        return Swift.min(1, Swift.max(0, below / total))
    }

    /// Marks the exact encoding (format 2); format 1 began with the bin count instead.
    static let exactMarker: UInt32 = 0xDEC0_0002

    /// Appends the sketch exactly as it is in memory (counts, prefix tree, scale), so a restored
    /// histogram answers bit for bit what the original would have: restoring must not change a
    /// single later threshold decision.
    public func encode(into out: inout BinaryWriter) {
        out.write(Self.exactMarker)
        out.write(UInt32(bins))
        out.write(halfLifeEvents)
        out.write(increment)
        out.write(total)
        for c in counts { out.write(c) }
        for t in tree { out.write(t) }
    }

    /// Reads what `encode` wrote, or the format-1 encoding of earlier builds (counts brought to
    /// scale 1, no tree).
    public init(decoding input: inout BinaryReader) throws(CheckpointError) {
        let first = try input.checkpoint { r throws(VigilError) in try r.uint32() }
        let exact = first == Self.exactMarker
        let bins = exact ? Int(try input.checkpoint { r throws(VigilError) in try r.uint32() }) : Int(first)
        let halfLife = try input.checkpoint { r throws(VigilError) in try r.double() }
        let needed = exact ? 8 * (2 + bins + bins + 1) : 8 * (bins + 1)
        guard (2...1 << 20).contains(bins), halfLife >= 1, halfLife.isFinite, input.remaining >= needed else {
            throw CheckpointError(.corrupt, "a histogram of \(bins) bins")
        }
        self.init(bins: bins, halfLifeEvents: halfLife)
        if exact {
            increment = try input.checkpoint { r throws(VigilError) in try r.double() }
            guard increment >= 1, increment.isFinite else {
                throw CheckpointError(.corrupt, "histogram scale \(increment)")
            }
            total = try input.checkpoint { r throws(VigilError) in try r.double() }
        }
        for i in 0..<bins {
            let c = try input.checkpoint { r throws(VigilError) in try r.double() }
            guard c >= 0, c.isFinite else { throw CheckpointError(.corrupt, "a negative histogram count") }
            counts[i] = c
        }
        if exact {
            for k in 0...bins {
                let t = try input.checkpoint { r throws(VigilError) in try r.double() }
                guard t >= 0, t.isFinite else { throw CheckpointError(.corrupt, "a negative histogram sum") }
                tree[k] = t
            }
        } else {
            total = try input.checkpoint { r throws(VigilError) in try r.double() }
            rebuildTree()
        }
        guard total >= 0, total.isFinite else { throw CheckpointError(.corrupt, "histogram total \(total)") }
    }

    /// Adds `peer`'s scores (same shape).
    public mutating func merge(_ peer: DecayedHistogram) {
        precondition(
            peer.bins == bins && peer.halfLifeEvents == halfLifeEvents, "merging histograms of different shapes")
        // Bring both to a common scale: weight 1 for a score added now.
        let mine = 1 / increment
        let theirs = 1 / peer.increment
        for i in counts.indices { counts[i] = counts[i] * mine + peer.counts[i] * theirs }
        total = total * mine + peer.total * theirs
        increment = 1
        rebuildTree()
    }
}
