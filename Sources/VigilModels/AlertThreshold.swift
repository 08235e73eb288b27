import VigilCore

/// Turns scores into alerts, as the topology's `threshold:` says: hold a target alert rate over
/// recent scores (or a precision, from labels, or a fixed score), within a floor and a ceiling,
/// moving only past the hysteresis, silent during warm-up, at most one alert per entity per
/// suppression interval. It also says whether an event may be learned as normal (`protect`).
///
/// One per worker. Each worker holds the target rate over its own share of the events, so the
/// rate holds overall as well.
public struct AlertThreshold: Sendable {
    /// The settings in force; `apply` swaps in a reloaded one without losing what was learned.
    public private(set) var spec: ThresholdSpec
    /// The threshold alerts are compared with now.
    public private(set) var current: Double
    /// Scores seen.
    public private(set) var events = 0
    private var scores: DecayedHistogram
    /// Recent labelled scores, for mode `precision`: a ring of (score, label).
    private var labelled: [(score: Double, label: Bool)] = []
    private var labelledNext = 0
    private var labelsSinceUpdate = 0
    /// Last alert time per entity, for suppression; pruned as it grows.
    private var lastAlert: [UInt64: Int64] = [:]
    private var pruneAt = 1024

    /// Recompute the quantile every this many scores: it moves slowly, and a walk over the bins
    /// costs microseconds.
    static let updateEvery = 128
    /// Labelled scores kept for mode `precision`.
    static let labelWindow = 10_000
    /// Mode `precision` needs this many labels, with some positives, before it leaves the
    /// quantile's threshold.
    static let minimumLabels = 500
    static let minimumPositives = 10

    /// What to do with one scored event.
    public struct Decision: Sendable, Equatable {
        /// The score reached the threshold (after warm-up).
        public var flagged: Bool
        /// Flagged, but this entity alerted less than `suppress` ago.
        public var suppressed: Bool
        /// Publish an alert.
        public var alert: Bool { flagged && !suppressed }
        /// The models may learn this event as normal.
        public var learn: Bool
        /// The threshold it was compared with.
        public var threshold: Double
    }

    public init(_ spec: ThresholdSpec) {
        self.spec = spec
        // Remember roughly 50 expected alerts' worth of scores, and at least 10,000.
        let halfLife = Swift.max(10_000, 50 / Swift.max(spec.targetAlertRate, 1e-6))
        scores = DecayedHistogram(halfLifeEvents: halfLife)
        current = spec.mode == .fixed ? (spec.fixedScore ?? spec.maxScore) : spec.maxScore
    }

    /// Takes new settings (a live reload). The remembered scores and labels stay; the threshold
    /// is recomputed at once.
    public mutating func apply(_ newSpec: ThresholdSpec) {
        spec = newSpec
        recompute(force: true)
    }

    /// Whether warm-up is over.
    public var warmedUp: Bool { events >= spec.warmupEvents }

    /// Decides for one event with `score`, of `entity`, at event time `time` (ms), and learns the
    /// score.
    public mutating func decide(score: Double, entity: UInt64, time: Int64) -> Decision {
        events += 1
        scores.add(score)
        if events == Swift.max(1, spec.warmupEvents) {
            recompute(force: true)  // leave the starting ceiling whatever the hysteresis
        } else if events % Self.updateEvery == 0 {
            recompute(force: false)
        }
        let flagged = warmedUp && score >= current
        var suppressed = false
        if flagged {
            let window = spec.suppress.wholeMilliseconds
            if window > 0, let last = lastAlert[entity], time - last < window, time >= last {
                suppressed = true
            } else {
                lastAlert[entity] = time
                if lastAlert.count >= pruneAt { prune(now: time, window: window) }
            }
        }
        return Decision(flagged: flagged, suppressed: suppressed, learn: !(spec.protect && flagged), threshold: current)
    }

    /// The decision for an event that has no score yet (no model ready): no alert, learn it.
    /// Such events do not count toward warm-up or the quantile.
    public var unscored: Decision { Decision(flagged: false, suppressed: false, learn: true, threshold: current) }

    /// Records a label for an event scored `score` (mode `precision` learns from these).
    public mutating func observe(score: Double, label: Bool) {
        if labelled.count < Self.labelWindow {
            labelled.append((score, label))
        } else {
            labelled[labelledNext] = (score, label)
            labelledNext = (labelledNext + 1) % Self.labelWindow
        }
        labelsSinceUpdate += 1
        if spec.mode == .precision, labelsSinceUpdate >= 1024 { recompute(force: false) }
    }

    private mutating func prune(now: Int64, window: Int64) {
        lastAlert = lastAlert.filter { now - $0.value < window }
        pruneAt = Swift.max(1024, lastAlert.count * 2)
    }

    private mutating func recompute(force: Bool) {
        labelsSinceUpdate = 0
        let estimate: Double
        switch spec.mode {
        case .fixed:
            current = spec.fixedScore ?? spec.maxScore
            return
        case .quantile:
            guard let q = scores.upperQuantile(spec.targetAlertRate) else { return }
            estimate = q
        case .precision:
            if let p = precisionThreshold() {
                estimate = p
            } else if let q = scores.upperQuantile(spec.targetAlertRate) {
                estimate = q  // too few labels yet: hold the alert rate meanwhile
            } else {
                return
            }
        }
        let clamped = Swift.min(spec.maxScore, Swift.max(spec.minScore, estimate))
        if force || abs(clamped - current) > spec.hysteresis || current > spec.maxScore || current < spec.minScore {
            current = clamped
        }
    }

    /// The lowest score whose alerts, over the recent labels, reach the target precision.
    private func precisionThreshold() -> Double? {
        guard let target = spec.targetPrecision, labelled.count >= Self.minimumLabels,
            labelled.filter(\.label).count >= Self.minimumPositives
        else { return nil }
        let sorted = labelled.sorted { $0.score > $1.score }
        var truePositives = 0
        var best: Double?
        for (i, entry) in sorted.enumerated() {
            if entry.label { truePositives += 1 }
            let next = i + 1 < sorted.count ? sorted[i + 1].score : -1
            // Thresholds sit between distinct scores only.
            if next < entry.score, i + 1 >= Self.minimumPositives, Double(truePositives) / Double(i + 1) >= target {
                best = entry.score
            }
        }
        return best ?? sorted.first?.score
    }

    /// Pools another worker's score memory into this one (replicas, or a restore after a
    /// rebalance).
    public mutating func merge(scoresOf peer: AlertThreshold) {
        scores.merge(peer.scores)
        recompute(force: true)
    }

    // MARK: Checkpoint

    /// Appends what the threshold has learned (not its settings, which come from the topology):
    /// the score sketch, the labelled window, the suppression times and the current threshold.
    public func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(events)
        out.write(labelsSinceUpdate)
        out.write(current)
        scores.encode(into: &out)
        // The labelled window, oldest first.
        let ordered =
            labelled.count < Self.labelWindow ? labelled : Array(labelled[labelledNext...] + labelled[..<labelledNext])
        out.write(UInt32(ordered.count))
        for entry in ordered {
            out.write(entry.score)
            out.write(entry.label)
        }
        out.write(UInt32(lastAlert.count))
        for (entity, time) in lastAlert.sorted(by: { $0.key < $1.key }) {
            out.write(entity)
            out.write(time)
        }
    }

    /// A threshold with settings `spec` and the state `encode` wrote.
    public init(_ spec: ThresholdSpec, decoding input: inout BinaryReader) throws(CheckpointError) {
        self.init(spec)
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "threshold body version \(version)") }
        events = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "events") }
        labelsSinceUpdate = try input.checkpoint { r throws(VigilError) in
            try r.int(in: 0...Int.max, "labels since an update")
        }
        current = try input.checkpoint { r throws(VigilError) in try r.double() }
        guard current.isFinite else { throw CheckpointError(.corrupt, "threshold \(current)") }
        scores = try DecayedHistogram(decoding: &input)
        let n = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard n <= Self.labelWindow, input.remaining >= 9 * n else { throw CheckpointError(.corrupt, "\(n) labels") }
        for _ in 0..<n {
            let score = try input.checkpoint { r throws(VigilError) in try r.double() }
            let label = try input.checkpoint { r throws(VigilError) in try r.bool() }
            labelled.append((score, label))
        }
        let m = Int(try input.checkpoint { r throws(VigilError) in try r.uint32() })
        guard input.remaining >= 16 * m else { throw CheckpointError(.truncated, "suppression times cut short") }
        for _ in 0..<m {
            let entity = try input.checkpoint { r throws(VigilError) in try r.uint64() }
            lastAlert[entity] = try input.checkpoint { r throws(VigilError) in try r.int64() }
        }
        pruneAt = Swift.max(1024, lastAlert.count * 2)
    }
}
