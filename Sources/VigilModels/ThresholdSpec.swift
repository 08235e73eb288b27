import VigilCore

/// How a topology turns scores into alerts. Key `threshold:`; every value here is live-reloadable.
public struct ThresholdSpec: Sendable, Hashable {
    /// Key `mode` (default `quantile`).
    public var mode: Mode
    /// Share of events that should alert, held by a streaming quantile of recent scores. Key
    /// `target_alert_rate` (default 0.01, 0 < x < 1; mode quantile).
    public var targetAlertRate: Double
    /// Precision to hold using labels. Key `target_precision` (0 < x < 1; required in mode precision).
    public var targetPrecision: Double?
    /// The fixed alert score. Key `score` (0 < x < 1; required in mode fixed).
    public var fixedScore: Double?
    /// No alert below this score, whatever the quantile says. Key `min_score` (default 0.5, 0...1).
    public var minScore: Double
    /// The threshold never rises above this. Key `max_score` (default 1, 0...1, ≥ min_score).
    public var maxScore: Double
    /// The threshold moves only when the estimate moves by more than this. Key `hysteresis`
    /// (default 0, 0...0.5).
    public var hysteresis: Double
    /// At most one alert per entity in this interval. Key `suppress` (default 0s = off, ≤ 7d).
    public var suppress: Duration
    /// Flagged events are not learned as normal, so fraud does not become the norm. Key `protect`
    /// (default true).
    public var protect: Bool
    /// Events scored before any alert can fire, while models and the quantile warm up. Key
    /// `warmup_events` (default 1000, 0...10000000).
    public var warmupEvents: Int

    public init(
        mode: Mode = .quantile, targetAlertRate: Double = 0.01, targetPrecision: Double? = nil,
        fixedScore: Double? = nil, minScore: Double = 0.5, maxScore: Double = 1, hysteresis: Double = 0,
        suppress: Duration = .zero, protect: Bool = true, warmupEvents: Int = 1000
    ) {
        self.mode = mode
        self.targetAlertRate = targetAlertRate
        self.targetPrecision = targetPrecision
        self.fixedScore = fixedScore
        self.minScore = minScore
        self.maxScore = maxScore
        self.hysteresis = hysteresis
        self.suppress = suppress
        self.protect = protect
        self.warmupEvents = warmupEvents
    }

    /// Threshold strategies.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Hold a target alert rate with a streaming quantile.
        case quantile
        /// Hold a target precision, from labels.
        case precision
        /// A fixed score.
        case fixed
    }
}
