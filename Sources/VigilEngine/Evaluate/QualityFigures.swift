import Foundation
import VigilModels

/// The quality of one topology over a set of events, as `vigil evaluate` reports and gates it.
/// Ranking and alert figures cover the scored events with a label; undefined figures (no
/// positives, no alerts) are absent.
public struct QualityFigures: Codable, Sendable, Equatable {
    /// Input records.
    public var events = 0
    public var scored = 0
    public var deadLetters = 0
    /// Dead letters over input records.
    public var deadLetterShare: Double?
    /// Scored events with a label.
    public var labelled = 0
    public var positives = 0
    /// Alerts raised (among all scored events).
    public var alerts = 0
    /// Alerts over scored events.
    public var alertRate: Double?
    /// Alerts per day of event time.
    public var alertsPerDay: Double?
    public var rocAuc: Double?
    public var averagePrecision: Double?
    /// Of the labelled events: the share of alerts that were fraud, of fraud that alerted, and
    /// their harmonic mean (the alert decision at the live threshold, not a best cut-off).
    public var precision: Double?
    public var recall: Double?
    public var f1: Double?
    /// The mean of the thresholds the scores were compared with.
    public var meanThreshold: Double?
    /// Slices only: the population stability index of the scores against the previous slice.
    public var scorePsi: Double?
    /// Overall only: input records per second of wall time.
    public var eventsPerSecond: Double?

    /// The figures a gate may name, by the name it uses (the JSON key).
    public static let gateNames = [
        "roc_auc", "average_precision", "precision", "recall", "f1", "alert_rate", "alerts_per_day",
        "dead_letter_share", "events_per_second",
    ]

    /// The figure a gate names (one of `gateNames`); nil when undefined or unknown.
    public func value(named name: String) -> Double? {
        switch name {
        case "roc_auc": rocAuc
        case "average_precision": averagePrecision
        case "precision": precision
        case "recall": recall
        case "f1": f1
        case "alert_rate": alertRate
        case "alerts_per_day": alertsPerDay
        case "dead_letter_share": deadLetterShare
        case "events_per_second": eventsPerSecond
        default: nil
        }
    }

    /// The figures of the events at `rows` of an evaluation.
    static func of(_ data: EvaluatedEvents, rows: some Sequence<Int>) -> QualityFigures {
        var q = QualityFigures()
        var scores: [Double] = []
        var labels: [Bool] = []
        var alerted: [Bool] = []
        var thresholdSum = 0.0
        var thresholdCount = 0
        var first = Int64.max
        var last = Int64.min
        for i in rows {
            q.events += 1
            let outcome = data.outcomes[i]
            guard outcome == .scored || outcome == .alerted else {
                if outcome == .deadLettered { q.deadLetters += 1 }
                continue
            }
            q.scored += 1
            first = min(first, data.times[i])
            last = max(last, data.times[i])
            if outcome == .alerted { q.alerts += 1 }
            if data.thresholds[i].isFinite {
                thresholdSum += data.thresholds[i]
                thresholdCount += 1
            }
            guard let label = data.label(i), data.scores[i].isFinite else { continue }
            scores.append(data.scores[i])
            labels.append(label)
            alerted.append(outcome == .alerted)
        }
        q.labelled = scores.count
        q.deadLetterShare = q.events > 0 ? Double(q.deadLetters) / Double(q.events) : nil
        q.alertRate = q.scored > 0 ? Double(q.alerts) / Double(q.scored) : nil
        if last > first { q.alertsPerDay = Double(q.alerts) / (Double(last - first) / 86_400_000) }
        q.meanThreshold = thresholdCount > 0 ? thresholdSum / Double(thresholdCount) : nil
        let r = PrequentialMetrics.report(scores: scores, labels: labels, alerted: alerted)
        q.positives = r.positives
        q.rocAuc = r.rocAUC
        q.averagePrecision = r.averagePrecision
        q.precision = r.precision
        q.recall = r.recall
        q.f1 = r.f1
        return q
    }
}

/// The figures of one stretch of event time.
public struct SliceFigures: Codable, Sendable, Equatable {
    /// Event time, ms since the epoch: `start` included, `end` excluded.
    public var startMs: Int64
    public var endMs: Int64
    public var figures: QualityFigures
}

/// Events of one replay with their labels joined: the rows every figure is computed from.
struct EvaluatedEvents {
    let times: [Int64]
    let scores: [Double]
    let thresholds: [Double]
    let outcomes: [EventOutcome]
    /// Per row: 1 fraud, 0 legitimate, -1 no label.
    let labels: [Int8]
    let segmentCodes: [[Int32]]
    let segmentValues: [[String]]
    let segmentFields: [String]

    init(_ recorder: OutcomeRecorder, labels: [UInt64: Bool]) {
        times = recorder.times
        scores = recorder.scores
        thresholds = recorder.thresholds
        outcomes = recorder.outcomes
        self.labels = recorder.idHashes.map { h in h == 0 ? -1 : labels[h].map { $0 ? 1 : 0 } ?? -1 }
        segmentCodes = recorder.segmentCodes
        segmentValues = recorder.segmentValues
        segmentFields = recorder.segmentFields
    }

    var count: Int { outcomes.count }

    func label(_ i: Int) -> Bool? { labels[i] < 0 ? nil : labels[i] == 1 }
    func isScored(_ i: Int) -> Bool { outcomes[i] == .scored || outcomes[i] == .alerted }
    /// Scored, labelled, with a finite score: the rows ranking and fairness figures use.
    func isLabelled(_ i: Int) -> Bool { isScored(i) && labels[i] >= 0 && scores[i].isFinite }

    /// The event-time range of the scored events, nil when none.
    var timeRange: ClosedRange<Int64>? {
        var lo = Int64.max
        var hi = Int64.min
        for i in 0..<count where isScored(i) {
            lo = min(lo, times[i])
            hi = max(hi, times[i])
        }
        return lo <= hi ? lo...hi : nil
    }

    /// Slices an evaluation makes at most: a slice length far below the input's span is widened.
    static let maxSlices: Int64 = 10_000

    /// The rows of each slice of event time: `length` ms each from the first event, or `count`
    /// equal slices of the whole range when `length` is nil. Dead letters (no time) are in none.
    func slices(length: Int64?, count wanted: Int) -> [(start: Int64, end: Int64, rows: [Int])] {
        guard let range = timeRange else { return [] }
        let span = range.upperBound - range.lowerBound + 1
        let widest = (span + Self.maxSlices - 1) / Self.maxSlices
        let step = max(1, widest, length ?? (span + Int64(wanted) - 1) / Int64(wanted))
        let n = Int((span + step - 1) / step)
        var rows = [[Int]](repeating: [], count: n)
        for i in 0..<count where isScored(i) { rows[Int((times[i] - range.lowerBound) / step)].append(i) }
        return rows.enumerated().map { k, r in
            (range.lowerBound + Int64(k) * step, range.lowerBound + Int64(k + 1) * step, r)
        }
    }
}

/// The population stability index of one sample of scores against another, over fixed bins:
/// `sum((q - p) * ln(q / p))` over the bins' shares, empty bins counting 0.0001. Below 0.1 is
/// usually read as stable, above 0.25 as a shift.
struct PopulationStability {
    /// Bin edges: the deciles of every score of the run (repeated edges dropped), so that a
    /// slice whose scores are all alike still falls into well-spread bins.
    let cuts: [Double]

    init(pooled: [Double]) {
        let sorted = pooled.sorted()
        var cuts: [Double] = []
        if !sorted.isEmpty {
            for k in 1..<10 {
                let c = sorted[k * sorted.count / 10]
                if cuts.last != c { cuts.append(c) }
            }
        }
        self.cuts = cuts
    }

    func shares(_ values: [Double]) -> [Double] {
        var counts = [Double](repeating: 0, count: cuts.count + 1)
        for v in values {
            var lo = 0
            var hi = cuts.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if v < cuts[mid] { hi = mid } else { lo = mid + 1 }
            }
            counts[lo] += 1
        }
        return counts.map { max($0 / Double(max(values.count, 1)), 0.0001) }
    }

    func index(reference: [Double], sample: [Double]) -> Double? {
        guard !reference.isEmpty, !sample.isEmpty, !cuts.isEmpty else { return nil }
        return zip(shares(reference), shares(sample)).reduce(0) { $0 + ($1.1 - $1.0) * log($1.1 / $1.0) }
    }
}
