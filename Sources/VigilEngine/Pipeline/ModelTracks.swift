import VigilCore
import VigilModels

/// Each model's live quality in one worker, whatever its role: a threshold of its own over its
/// own percentiles (what it would alert on if it alone decided), its prequential metrics over
/// the joined labels, and how much it agrees with the live ensemble (alert overlap and the rank
/// correlation of scores), which is what there is to compare before labels arrive.
///
/// Owned by one worker and touched on its thread only; `snapshot` copies it for the control
/// plane between two items.
struct ModelTracks: Sendable {
    /// The flag bits that belong to models (the top byte carries an experiment arm).
    static let modelBits: UInt64 = (1 << 56) - 1

    /// Labelled events each model's window keeps, per worker.
    static let labelWindow = 200_000
    /// Recent (model score, final score) pairs kept per worker for the rank correlation.
    static let pairWindow = 10_000

    /// One model's figures.
    struct Track: Sendable {
        var threshold: AlertThreshold
        /// Model score, label, and whether its own threshold flagged the event.
        var metrics: PrequentialMetrics
        /// Events the model had a percentile for (its own threshold decided them).
        var decided = 0
        /// Of those, flagged by its own threshold.
        var flagged = 0
        /// Events both the model and the live ensemble flagged, and either of them flagged.
        var bothFlagged = 0
        var eitherFlagged = 0
        /// Ring of recent model scores and the final scores of the same events.
        var modelScores: [Double] = []
        var finalScores: [Double] = []
        var pairNext = 0

        mutating func pair(_ model: Double, _ final: Double) {
            if modelScores.count < ModelTracks.pairWindow {
                modelScores.append(model)
                finalScores.append(final)
            } else {
                modelScores[pairNext] = model
                finalScores[pairNext] = final
                pairNext = (pairNext + 1) % ModelTracks.pairWindow
            }
        }
    }

    private(set) var tracks: [Track]

    init(models: Int, threshold: ThresholdSpec) {
        var own = threshold
        own.suppress = .zero  // a model's own decision is per event, not per entity
        tracks = (0..<models).map { _ in
            Track(threshold: AlertThreshold(own), metrics: PrequentialMetrics(window: Self.labelWindow))
        }
    }

    /// Takes reloaded threshold settings.
    mutating func apply(_ threshold: ThresholdSpec) {
        var own = threshold
        own.suppress = .zero
        for k in tracks.indices { tracks[k].threshold.apply(own) }
    }

    /// Records one scored event: each model's raw score and percentile (NaN: none yet), the
    /// final score and whether the live ensemble flagged it. Returns the models their own
    /// thresholds flagged, as bits.
    mutating func record(
        scores: [Double], percentiles: [Double], final: Double?, ensembleFlagged: Bool, entity: UInt64, time: Int64
    ) -> UInt64 {
        var bits: UInt64 = 0
        for k in tracks.indices where !percentiles[k].isNaN {
            let flagged = tracks[k].threshold.decide(score: percentiles[k], entity: entity, time: time).flagged
            tracks[k].decided += 1
            if flagged {
                tracks[k].flagged += 1
                if k < 56 { bits |= 1 << UInt64(k) }
            }
            if flagged && ensembleFlagged { tracks[k].bothFlagged += 1 }
            if flagged || ensembleFlagged { tracks[k].eitherFlagged += 1 }
            if let final { tracks[k].pair(scores[k], final) }
        }
        return bits
    }

    /// Records a label for an event: each model's score of it and whether it flagged it.
    mutating func label(_ isFraud: Bool, scores: (Int) -> Double, flagged: UInt64) {
        for k in tracks.indices where !scores(k).isNaN {
            tracks[k].metrics.add(score: scores(k), label: isFraud, alerted: k < 56 && flagged & (1 << UInt64(k)) != 0)
        }
    }
}

extension ModelTracks.Track {
    /// Appends what the track has learned: its threshold's memory, its labelled window and its
    /// counts (the recent score pairs start again after a restore).
    func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        threshold.encode(into: &out)
        metrics.encode(into: &out)
        for n in [decided, flagged, bothFlagged, eitherFlagged] { out.write(n) }
    }

    /// Reads what `encode` wrote, under the threshold settings `spec`.
    init(_ spec: ThresholdSpec, decoding input: inout BinaryReader) throws(CheckpointError) {
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "model quality body version \(version)") }
        threshold = try AlertThreshold(spec, decoding: &input)
        metrics = try PrequentialMetrics(window: ModelTracks.labelWindow, decoding: &input)
        var counts: [Int] = []
        for _ in 0..<4 {
            counts.append(try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "count") })
        }
        (decided, flagged, bothFlagged, eitherFlagged) = (counts[0], counts[1], counts[2], counts[3])
    }
}

extension ModelTracks {
    /// Starts model `k`'s figures afresh (the model was reset), under `threshold`.
    mutating func reset(_ k: Int) {
        tracks[k] = Track(
            threshold: AlertThreshold(tracks[k].threshold.spec), metrics: PrequentialMetrics(window: Self.labelWindow))
    }

    /// Replaces model `k`'s track with a restored one.
    mutating func restore(_ k: Int, _ track: Track) { tracks[k] = track }
}

/// One experiment arm's figures in one worker: events, alerts, and the prequential metrics of
/// its labelled events (the final score and the real alert).
struct ArmFigures: Sendable {
    var events = 0
    var alerts = 0
    var metrics = PrequentialMetrics(window: ModelTracks.labelWindow)
}

/// One experiment arm's figures over every worker (`/status`, `/metrics`).
public struct ArmQuality: Sendable, Equatable {
    public var experiment: String
    public var arm: String
    public var share: Double
    /// Events scored for the arm's entities, and alerts raised for them.
    public var events: Int
    public var alerts: Int
    /// Over the arm's labelled events: final scores and real alerts.
    public var report: PrequentialMetrics.Report

    static func gather(_ spec: ExperimentSpec, _ parts: [TrackCopy]) -> [ArmQuality] {
        spec.arms.enumerated().map { a, arm in
            let figures = parts.compactMap { a < $0.arms.count ? $0.arms[a] : nil }
            return ArmQuality(
                experiment: spec.name, arm: arm.name, share: arm.share, events: figures.map(\.events).reduce(0, +),
                alerts: figures.map(\.alerts).reduce(0, +), report: PrequentialMetrics.merged(figures.map(\.metrics)))
        }
    }
}

/// One model's live quality over every worker, as `/status`, `/metrics`, `vigil models list` and
/// the guard read it.
public struct ModelQuality: Sendable, Equatable {
    public var name: String
    public var version: String
    public var role: ModelSpec.Role
    /// The canary's share of entities (canaries only).
    public var share: Double?
    /// Labelled events in the window, and the positives among them.
    public var labelled: Int
    public var positives: Int
    public var rocAUC: Double?
    public var averagePrecision: Double?
    /// At the model's own threshold, over the labelled window.
    public var precision: Double?
    public var recall: Double?
    public var f1: Double?
    /// Share of the events it decided that its own threshold flagged (all events, not only
    /// labelled ones).
    public var alertRate: Double?
    /// Events its own threshold decided.
    public var decided: Int
    /// Jaccard index of its flags and the live ensemble's (nil before either flagged).
    public var alertOverlap: Double?
    /// Spearman correlation of its scores with the final scores over recent events.
    public var rankCorrelation: Double?
    /// The weight the ensemble gives it now, averaged over the workers: learned from the labels
    /// when they come (docs/models.md), else the topology's (0 for a shadow).
    public var ensembleWeight: Double? = nil
}

/// Every worker's `ModelTracks`, copied between two items: the raw material of `ModelQuality`.
struct TrackSnapshot: Sendable {
    var workers: [[ModelTracks.Track]]

    /// Model `k`'s figures over every worker.
    func quality(_ k: Int, name: String, version: String, role: ModelSpec.Role, share: Double?) -> ModelQuality {
        let tracks = workers.compactMap { k < $0.count ? $0[k] : nil }
        let decided = tracks.map(\.decided).reduce(0, +)
        let flagged = tracks.map(\.flagged).reduce(0, +)
        let both = tracks.map(\.bothFlagged).reduce(0, +)
        let either = tracks.map(\.eitherFlagged).reduce(0, +)
        let r = PrequentialMetrics.merged(tracks.map(\.metrics))
        return ModelQuality(
            name: name, version: version, role: role, share: share, labelled: r.events, positives: r.positives,
            rocAUC: r.rocAUC, averagePrecision: r.averagePrecision, precision: r.precision, recall: r.recall,
            f1: r.f1, alertRate: decided > 0 ? Double(flagged) / Double(decided) : nil, decided: decided,
            alertOverlap: either > 0 ? Double(both) / Double(either) : nil,
            rankCorrelation: RankingMetrics.spearman(
                tracks.flatMap(\.modelScores), tracks.flatMap(\.finalScores)))
    }
}
