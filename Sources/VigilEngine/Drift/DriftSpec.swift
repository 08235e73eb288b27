import VigilCore

/// Drift monitoring that acts (`drift:`): a Page-Hinkley test on the stream of final scores and
/// the population stability index of every numeric feature run in each worker. A detection
/// writes a drift record to `topic` and, optionally, acts on models.
public struct DriftSpec: Sendable, Hashable {
    /// What a detection does besides the record.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        /// Record only.
        case none
        /// Start the listed models afresh (default: every isolation forest), learning only
        /// what comes after the drift.
        case reset
        /// Start the listed shadows afresh as challengers trained on post-drift data; the guard
        /// judges them from there and promotes one that wins (with `auto_promote`).
        case retrain
    }

    /// Key `topic` (required): where drift records go.
    public var topic: String
    /// Page-Hinkley tolerance per score. Key `score_delta` (default 0.1, 0...1): the final
    /// score is a percentile, whose mean wanders by about 0.08 on a stationary stream as the
    /// models renew themselves (measured on the generator, docs/models.md).
    public var scoreDelta: Double = 0.1
    /// Page-Hinkley evidence needed. Key `score_lambda` (default 100, > 0).
    public var scoreLambda: Double = 100
    /// The features whose PSI is watched. Key `features` (default: the features of kind
    /// `value`; window aggregates move on their own while their windows fill, so they are
    /// watched only when listed).
    public var features: [String]?
    /// PSI above which a feature has shifted. Key `psi_threshold` (default 0.25, > 0).
    public var psiThreshold: Double = 0.25
    /// Events in the PSI reference and in its recent window, per worker. Key `window_events`
    /// (default 10000, 100...10000000).
    public var windowEvents: Int = 10_000
    /// Events each worker lets pass before its reference starts: windows fill and features
    /// settle first. Key `warmup_events` (default 20000, ≥ 0).
    public var warmupEvents: Int = 20_000
    /// Key `action` (default `none`).
    public var action: Action = .none
    /// The models the action touches. Key `models` (reset: default every isolation forest;
    /// retrain: required, shadows only).
    public var models: [String]?

    public init(topic: String) { self.topic = topic }

    static func decode(_ o: ConfigObject, modelNames: [String], featureNames: [String]) -> DriftSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        var s = DriftSpec(topic: topic ?? "")
        s.scoreDelta = o.double("score_delta", in: .unit) ?? s.scoreDelta
        s.scoreLambda = o.double("score_lambda", in: NumberRange(0, 1e9, lowerOpen: true)) ?? s.scoreLambda
        s.psiThreshold = o.double("psi_threshold", in: NumberRange(0, 100, lowerOpen: true)) ?? s.psiThreshold
        s.windowEvents = o.int("window_events", in: 100...10_000_000) ?? s.windowEvents
        s.warmupEvents = o.int("warmup_events", in: 0...100_000_000) ?? s.warmupEvents
        s.action = o.choice("action", as: Action.self, noun: "drift action") ?? .none
        s.models = o.strings("models")
        s.features = o.strings("features")
        for name in s.features ?? [] where !featureNames.contains(name) {
            o.report("features", "unknown feature '\(name)'")
        }
        for name in s.models ?? [] where !modelNames.contains(name) {
            o.report("models", "unknown model '\(name)'")
        }
        if s.action == .retrain, s.models?.isEmpty ?? true {
            o.report("models", "action retrain needs the shadows to retrain")
        }
        o.finish()
        return topic == nil ? nil : s
    }
}
