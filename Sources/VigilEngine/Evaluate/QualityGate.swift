import Foundation
import VigilCore
import Yams

/// The rules a candidate must meet to pass `vigil evaluate`, with MLflow's `MetricThreshold`
/// semantics: per metric an absolute `threshold`, and changes against the baseline
/// (`min_absolute_change`, `min_relative_change`). As in TFMA's change thresholds, a negative
/// change is a tolerated drop. A candidate that dead-letters events the baseline scored fails
/// unless `dead_letters: allow`.
public struct QualityGate: Sendable, Equatable {
    /// The rule of one metric.
    public struct Rule: Sendable, Equatable {
        /// `roc_auc`, `alert_rate`…, or `demographic_parity_difference:FIELD` for a segment.
        public var metric: String
        public var threshold: Double?
        public var minAbsoluteChange: Double?
        public var minRelativeChange: Double?
        public var greaterIsBetter: Bool
    }

    public var rules: [Rule]
    /// Whether the candidate may dead-letter what the baseline scored.
    public var allowNewDeadLetters = false

    /// One rule applied: what it said, the values it saw, and whether it held.
    public struct Check: Sendable, Equatable, Codable {
        public var metric: String
        public var rule: String
        public var candidate: Double?
        public var baseline: Double?
        public var passed: Bool
    }

    /// Parses a gate file (YAML or JSON):
    /// `{metrics: {roc_auc: {threshold: 0.8, min_absolute_change: -0.01}}, dead_letters: block}`.
    /// - Throws: `VigilError(.invalidConfiguration)` naming the first problem.
    public static func parse(_ text: String, file: String) throws(VigilError) -> QualityGate {
        func bad(_ message: String) -> VigilError { VigilError(.invalidConfiguration, "\(file): \(message)") }
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw bad("not YAML: \(error)") }
        guard let top = root as? [String: Any] else { throw bad("expected a mapping with 'metrics'") }
        for key in top.keys where key != "metrics" && key != "dead_letters" {
            throw bad("unknown key '\(key)' (expected metrics, dead_letters)")
        }
        var gate = QualityGate(rules: [])
        switch top["dead_letters"] as? String {
        case nil where top["dead_letters"] == nil, "block": gate.allowNewDeadLetters = false
        case "allow": gate.allowNewDeadLetters = true
        default: throw bad("dead_letters must be 'block' or 'allow'")
        }
        guard let metrics = top["metrics"] as? [String: Any], !metrics.isEmpty else {
            throw bad("'metrics' must map metric names to rules")
        }
        for (metric, value) in metrics.sorted(by: { $0.key < $1.key }) {
            let base = metric.split(separator: ":", maxSplits: 1).map(String.init)
            let known =
                base.count == 1
                ? QualityFigures.gateNames.contains(base[0])
                : SegmentReport.gateNames.contains(base[0]) && !base[1].isEmpty
            guard known else {
                throw bad(
                    "unknown metric '\(metric)' (one of \(QualityFigures.gateNames.joined(separator: ", ")), or \(SegmentReport.gateNames.joined(separator: ", ")) followed by ':FIELD')"
                )
            }
            guard let spec = value as? [String: Any] else { throw bad("metrics.\(metric) must be a mapping") }
            func number(_ key: String) throws(VigilError) -> Double? {
                guard let v = spec[key] else { return nil }
                if let d = v as? Double { return d }
                if let i = v as? Int { return Double(i) }
                throw bad("metrics.\(metric).\(key) must be a number")
            }
            for key in spec.keys
            where !["threshold", "min_absolute_change", "min_relative_change", "greater_is_better"].contains(key) {
                throw bad(
                    "metrics.\(metric): unknown key '\(key)' (threshold, min_absolute_change, min_relative_change, greater_is_better)"
                )
            }
            let greater: Bool
            switch spec["greater_is_better"] {
            case nil: greater = Self.greaterIsBetterByDefault(base[0])
            case let b as Bool: greater = b
            default: throw bad("metrics.\(metric).greater_is_better must be true or false")
            }
            let rule = Rule(
                metric: metric, threshold: try number("threshold"),
                minAbsoluteChange: try number("min_absolute_change"),
                minRelativeChange: try number("min_relative_change"), greaterIsBetter: greater)
            guard rule.threshold != nil || rule.minAbsoluteChange != nil || rule.minRelativeChange != nil else {
                throw bad("metrics.\(metric) sets no threshold, min_absolute_change or min_relative_change")
            }
            gate.rules.append(rule)
        }
        return gate
    }

    /// Reads and parses a gate file.
    public static func load(_ path: String) throws(VigilError) -> QualityGate {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.ioFailed, "cannot read \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Lower is better for shares of dead letters and for gaps between segments; higher for the rest.
    static func greaterIsBetterByDefault(_ metric: String) -> Bool {
        !(metric == "dead_letter_share" || metric.hasSuffix("_difference"))
    }

    /// Applies every rule to an evaluation. A rule on a change needs a baseline; a metric that is
    /// undefined (no positives, no alerts) fails its rule.
    public func check(_ evaluation: Evaluation) -> [Check] {
        var checks: [Check] = []
        for rule in rules {
            let c = Self.value(rule.metric, in: evaluation.candidate)
            let b = evaluation.baseline.flatMap { Self.value(rule.metric, in: $0) }
            let sign = rule.greaterIsBetter ? 1.0 : -1.0
            let better = rule.greaterIsBetter ? ">=" : "<="
            func add(_ text: String, _ passed: Bool) {
                checks.append(Check(metric: rule.metric, rule: text, candidate: c, baseline: b, passed: passed))
            }
            if let t = rule.threshold {
                add("candidate \(better) \(Self.format(t))", c.map { sign * ($0 - t) >= 0 } ?? false)
            }
            /// A rule on the change against the baseline: `gain(c, b)` (oriented so that more is
            /// better) must reach `least`. Without a baseline it fails, saying so.
            func change(_ text: String, _ least: Double, _ gain: (Double, Double) -> Double) {
                guard evaluation.baseline != nil else { return add(text + ": no baseline", false) }
                add(text, c.flatMap { c in b.map { b in gain(c, b) >= least - 1e-12 } } ?? false)
            }
            let difference = rule.greaterIsBetter ? "candidate - baseline" : "baseline - candidate"
            if let least = rule.minAbsoluteChange {
                change("\(difference) >= \(Self.format(least)) (min_absolute_change)", least) { c, b in sign * (c - b) }
            }
            if let least = rule.minRelativeChange {
                change("(\(difference)) / |baseline| >= \(Self.format(least)) (min_relative_change)", least) { c, b in
                    // A zero baseline has no relative change: the candidate must merely not be worse.
                    b == 0 ? (sign * (c - b) >= 0 ? .infinity : -.infinity) : sign * (c - b) / abs(b)
                }
            }
        }
        if !allowNewDeadLetters, let baseline = evaluation.baseline {
            let c = evaluation.candidate.overall.deadLetters
            let b = baseline.overall.deadLetters
            if let newly = evaluation.newlyDeadLettered {
                checks.append(
                    Check(
                        metric: "dead_letters", rule: "no event the baseline scored is dead-lettered (\(newly) were)",
                        candidate: Double(c), baseline: Double(b), passed: newly == 0))
            } else {
                checks.append(
                    Check(
                        metric: "dead_letters", rule: "candidate dead letters <= baseline's", candidate: Double(c),
                        baseline: Double(b), passed: c <= b))
            }
        }
        return checks
    }

    /// A metric of one topology's evaluation: an overall figure, or `NAME:FIELD` of a segment.
    static func value(_ metric: String, in e: TopologyEvaluation) -> Double? {
        let parts = metric.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 1 { return e.overall.value(named: metric) }
        return e.segments.first { $0.field == parts[1] }?.value(named: parts[0])
    }

    static func format(_ v: Double) -> String { String(format: "%.6g", v) }
}
