import VigilCore

/// The automatic guard of a rollout (`guard:`): each challenger (a shadow or canary the file
/// declares) is compared with what it would replace over the same labelled events, with
/// MLflow's `MetricThreshold` semantics. A canary that fails is rolled back; a challenger that
/// passes is promoted when `auto_promote` is set.
public struct GuardSpec: Sendable, Hashable {
    /// The figures the guard can compare (greater is better for all of them).
    public enum Metric: String, Sendable, Hashable, CaseIterable {
        case rocAUC = "roc_auc"
        case averagePrecision = "average_precision"
        case f1, precision, recall
    }

    /// Key `metric` (default `roc_auc`).
    public var metric: Metric = .rocAUC
    /// Labelled events a challenger is judged on, counted from when it took its role or was
    /// last judged. Key `min_labels` (default 2000, 100...10000000).
    public var minLabels: Int = 2000
    /// Absolute floor: the challenger's figure must reach it. Key `threshold` (optional).
    public var threshold: Double?
    /// The challenger must beat the baseline by at least this much. Key `min_absolute_change`
    /// (optional; 0 when none of the three bounds is given: at least as good).
    public var minAbsoluteChange: Double?
    /// …and by at least this share of the baseline. Key `min_relative_change` (optional).
    public var minRelativeChange: Double?
    /// Promote a challenger that passes. Key `auto_promote` (default false).
    public var autoPromote: Bool = false
    /// Roll back a canary that fails. Key `auto_rollback` (default true).
    public var autoRollback: Bool = true
    /// How often the figures are read. Key `check_every` (default 5s, 100ms...1h).
    public var checkEvery: Duration = .seconds(5)

    public init() {}

    /// Whether `candidate` passes against `baseline` (nil: the baseline is undefined, and only
    /// the floor applies). A candidate without a figure fails.
    public func passes(candidate: Double?, baseline: Double?) -> Bool {
        guard let candidate else { return false }
        if let threshold, candidate < threshold { return false }
        guard let baseline else { return true }
        let absolute = minAbsoluteChange ?? (threshold == nil && minRelativeChange == nil ? 0 : nil)
        if let absolute, candidate - baseline < absolute { return false }
        if let minRelativeChange, baseline != 0, (candidate - baseline) / abs(baseline) < minRelativeChange {
            return false
        }
        return true
    }

    static func decode(_ o: ConfigObject) -> GuardSpec {
        var g = GuardSpec()
        g.metric = o.choice("metric", as: Metric.self, noun: "guard metric") ?? .rocAUC
        g.minLabels = o.int("min_labels", in: 100...10_000_000) ?? 2000
        g.threshold = o.double("threshold", in: .unit)
        g.minAbsoluteChange = o.double("min_absolute_change", in: NumberRange(-1, 1))
        g.minRelativeChange = o.double("min_relative_change", in: NumberRange(-1, 100))
        g.autoPromote = o.bool("auto_promote") ?? false
        g.autoRollback = o.bool("auto_rollback") ?? true
        g.checkEvery = o.duration("check_every", in: .milliseconds(100) ... .seconds(3600)) ?? .seconds(5)
        o.finish()
        return g
    }
}
