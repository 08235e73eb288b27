/// Alert figures per value of one segment field (country, channel, age band…) and the gaps
/// between the groups as Fairlearn defines them, so a team can show that alerts do not fall
/// unfairly on one group. Computed over the scored events with a label; the prediction is the
/// alert.
public struct SegmentReport: Codable, Sendable, Equatable {
    public var field: String
    public var groups: [Group]
    /// Largest minus smallest selection rate (Fairlearn's `demographic_parity_difference`).
    public var demographicParityDifference: Double?
    /// Smallest over largest selection rate (`demographic_parity_ratio`).
    public var demographicParityRatio: Double?
    /// The larger of the true and false positive rate differences
    /// (`equalized_odds_difference`, worst case).
    public var equalizedOddsDifference: Double?
    /// The smaller of the true and false positive rate ratios (`equalized_odds_ratio`).
    public var equalizedOddsRatio: Double?

    /// One value of the field.
    public struct Group: Codable, Sendable, Equatable {
        public var value: String
        public var events: Int
        public var positives: Int
        public var alerts: Int
        /// Alerts over events: Fairlearn's selection rate.
        public var selectionRate: Double?
        public var precision: Double?
        public var truePositiveRate: Double?
        public var falsePositiveRate: Double?
    }

    /// The figures a gate may name, as `NAME:FIELD` (for example
    /// `demographic_parity_difference:country`).
    public static let gateNames = [
        "demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference",
        "equalized_odds_ratio",
    ]

    /// The figure a gate names (one of `gateNames`); nil when undefined or unknown.
    public func value(named name: String) -> Double? {
        switch name {
        case "demographic_parity_difference": demographicParityDifference
        case "demographic_parity_ratio": demographicParityRatio
        case "equalized_odds_difference": equalizedOddsDifference
        case "equalized_odds_ratio": equalizedOddsRatio
        default: nil
        }
    }

    /// The report of segment field number `f` of `data`.
    static func of(_ data: EvaluatedEvents, field f: Int) -> SegmentReport {
        let values = data.segmentValues[f]
        var counts = [SegmentCounts](repeating: SegmentCounts(), count: values.count)
        for i in 0..<data.count where data.isLabelled(i) {
            counts[Int(data.segmentCodes[f][i])].add(fraud: data.labels[i] == 1, alerted: data.outcomes[i] == .alerted)
        }
        return SegmentReport(field: data.segmentFields[f], counts: zip(values, counts).map { ($0, $1) })
    }

    /// Every segment field's report over the labelled events `recorder` saw: the figures
    /// `vigil evaluate` shows, from any recorded run (the live figures are checked against them).
    public static func reports(_ recorder: OutcomeRecorder, labels: [UInt64: Bool]) -> [SegmentReport] {
        let data = EvaluatedEvents(recorder, labels: labels)
        return data.segmentFields.indices.map { of(data, field: $0) }
    }

    /// Fairlearn's between-groups aggregates: max − min, and min / max (undefined when max is 0).
    static func between(_ rates: [Double]) -> (difference: Double, ratio: Double?)? {
        guard let lo = rates.min(), let hi = rates.max() else { return nil }
        return (hi - lo, hi > 0 ? lo / hi : nil)
    }
}

extension SegmentReport {
    /// The report of `field` from each value's counts (values without events are left out).
    init(field: String, counts: [(value: String, counts: SegmentCounts)]) {
        func rate(_ a: Int, _ b: Int) -> Double? { b > 0 ? Double(a) / Double(b) : nil }
        let groups = counts.filter { $0.counts.events > 0 }.map { value, c in
            Group(
                value: value, events: c.events, positives: c.positives, alerts: c.alerts,
                selectionRate: rate(c.alerts, c.events), precision: rate(c.hits, c.alerts),
                truePositiveRate: rate(c.hits, c.positives),
                falsePositiveRate: rate(c.alerts - c.hits, c.events - c.positives))
        }.sorted { $0.value < $1.value }
        self.init(field: field, groups: groups)
        let selection = Self.between(groups.compactMap(\.selectionRate))
        // As Fairlearn does (scikit-learn's normalised confusion matrix), a group without fraud
        // counts a true positive rate of 0, and one without legitimate events a false positive
        // rate of 0, in the gaps; the group table shows them as undefined.
        let tpr = Self.between(groups.map { $0.truePositiveRate ?? 0 })
        let fpr = Self.between(groups.map { $0.falsePositiveRate ?? 0 })
        demographicParityDifference = selection?.difference
        demographicParityRatio = selection?.ratio
        if let tpr, let fpr {
            equalizedOddsDifference = max(tpr.difference, fpr.difference)
            if let a = tpr.ratio, let b = fpr.ratio { equalizedOddsRatio = min(a, b) }
        }
    }
}
