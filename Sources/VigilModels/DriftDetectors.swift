#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Page-Hinkley test on a stream of values (the scores): signals when their mean moves up or
/// down by more than the noise explains, then starts over. The cumulative deviation from the
/// running mean, less a tolerance `delta` per value, is compared with `lambda`.
public struct PageHinkley: Sendable, Equatable {
    /// Changes smaller than this per value are tolerated.
    public let delta: Double
    /// How much accumulated evidence signals a change.
    public let lambda: Double
    /// Values before any signal.
    public let minimumValues: Int
    private var count = 0
    /// The running mean of the values since the last start.
    public private(set) var mean = 0.0
    private var up = 0.0, upMin = 0.0
    private var down = 0.0, downMax = 0.0
    private var upMinAt = 0, downMaxAt = 0
    /// At the last detection: how many values back the change began (where the cumulative
    /// deviation turned), and the mean before the restart.
    public private(set) var lastOnsetAgo = 0
    public private(set) var lastMean = 0.0
    /// Changes signalled so far.
    public private(set) var detections = 0

    /// Direction of a detected change.
    public enum Change: Sendable, Equatable { case increase, decrease }

    public init(delta: Double = 0.005, lambda: Double = 50, minimumValues: Int = 1000) {
        self.delta = delta
        self.lambda = lambda
        self.minimumValues = minimumValues
    }

    /// Adds a value; returns a change when one is detected (and restarts).
    public mutating func add(_ x: Double) -> Change? {
        guard x.isFinite else { return nil }
        count += 1
        mean += (x - mean) / Double(count)
        up += x - mean - delta
        if up < upMin {
            upMin = up
            upMinAt = count
        }
        down += x - mean + delta
        if down > downMax {
            downMax = down
            downMaxAt = count
        }
        guard count >= minimumValues else { return nil }
        var change: Change?
        if up - upMin > lambda {
            change = .increase
        } else if downMax - down > lambda {
            change = .decrease
        }
        if let change {
            detections += 1
            let kept = detections
            let onset = count - (change == .increase ? upMinAt : downMaxAt)
            let before = mean
            self = PageHinkley(delta: delta, lambda: lambda, minimumValues: minimumValues)
            detections = kept
            lastOnsetAgo = onset
            lastMean = before
        }
        return change
    }
}

/// Population stability index of each feature against a reference: how far the recent
/// distribution of a feature has moved from what it was. Bins are the reference's deciles; the
/// recent distribution is the last `window` values. Common reading: below 0.1 stable, 0.1–0.25
/// moving, above 0.25 shifted.
public struct FeatureDrift: Sendable {
    public let features: Int
    public let referenceSize: Int
    public let window: Int
    static let bins = 10
    private var reference: [[Double]]
    /// Per feature, the inner bin edges (9 for deciles), once the reference is complete.
    private var edges: [[Double]] = []
    private var referenceShares: [[Double]] = []
    /// Per feature, bin counts over the recent window, and the ring of recent bins.
    private var counts: [[Int]] = []
    private var recent: [[UInt8]] = []
    private var next = 0
    private var filled = 0

    public init(features: Int, referenceSize: Int = 10_000, window: Int = 10_000) {
        precondition(features >= 0 && referenceSize >= Self.bins && window >= Self.bins)
        self.features = features
        self.referenceSize = referenceSize
        self.window = window
        reference = Array(repeating: [], count: features)
    }

    /// Whether the reference is complete (the first `referenceSize` rows).
    public var hasReference: Bool { !edges.isEmpty }

    /// Adds one row of feature values (NaN values go to a bin of their own, the lowest).
    public mutating func add(_ row: some Collection<Double>) {
        precondition(row.count == features)
        if !hasReference {
            for (j, x) in row.enumerated() { reference[j].append(x) }
            if reference.first?.count ?? referenceSize >= referenceSize { freeze() }
            return
        }
        for (j, x) in row.enumerated() {
            let b = bin(j, x)
            if filled == window { counts[j][Int(recent[j][next])] -= 1 }
            recent[j][next] = UInt8(b)
            counts[j][b] += 1
        }
        next = (next + 1) % window
        filled = Swift.min(window, filled + 1)
    }

    private func bin(_ j: Int, _ x: Double) -> Int {
        guard !x.isNaN else { return 0 }
        var b = 0
        while b < edges[j].count, x >= edges[j][b] { b += 1 }
        return b
    }

    private mutating func freeze() {
        for j in 0..<features {
            let sorted = reference[j].filter { !$0.isNaN }.sorted()
            var e: [Double] = []
            if !sorted.isEmpty {
                for k in 1..<Self.bins { e.append(sorted[sorted.count * k / Self.bins]) }
            }
            edges.append(e)
        }
        for j in 0..<features {
            var c = Array(repeating: 0.0, count: Self.bins)
            for x in reference[j] { c[bin(j, x)] += 1 }
            referenceShares.append(c.map { $0 / Double(reference[j].count) })
        }
        reference = []
        counts = Array(repeating: Array(repeating: 0, count: Self.bins), count: features)
        recent = Array(repeating: Array(repeating: 0, count: window), count: features)
    }

    /// PSI per feature over the recent window; nil until the reference and a full window exist.
    public func psi() -> [Double]? {
        guard hasReference, filled == window else { return nil }
        let epsilon = 1e-4  // empty bins would make the logarithm infinite
        return (0..<features).map { j in
            var sum = 0.0
            for b in 0..<Self.bins {
                let actual = Swift.max(epsilon, Double(counts[j][b]) / Double(window))
                let expected = Swift.max(epsilon, referenceShares[j][b])
                sum += (actual - expected) * log(actual / expected)
            }
            return sum
        }
    }
}
