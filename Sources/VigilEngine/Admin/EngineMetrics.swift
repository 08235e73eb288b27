import CoreMetrics
import Prometheus
import Synchronization

/// The engine's event-path figures as swift-metrics instruments (counted once per chunk, scores
/// and latencies per value) over a Prometheus registry of their own, which `/metrics` renders
/// together with the figures read at scrape time and the Kafka clients' registry. With
/// ``off`` the same calls go to swift-metrics' no-op backend: what the `metrics_overhead`
/// benchmark compares.
public final class EngineMetrics: Sendable {
    /// What `/metrics` renders (empty for ``off``).
    public let registry: PrometheusCollectorRegistry
    private let factory: any MetricsFactory
    private let events: CoreMetrics.Counter
    private let scored: CoreMetrics.Counter
    private let alerts: CoreMetrics.Counter
    private let acknowledged: CoreMetrics.Counter
    private let labels: CoreMetrics.Counter
    private let score: CoreMetrics.Recorder
    private let process: CoreMetrics.Recorder
    private let deliver: CoreMetrics.Recorder
    private let checkpointPause: CoreMetrics.Recorder
    private let deadLetters = Mutex<[String: CoreMetrics.Counter]>([:])
    /// The series the last scrape set, kept to add to counters and to drop what went away.
    let scraped = Mutex(ScrapeState())

    /// Scores' bucket bounds: 0.05 to 1.
    static let scoreBounds = (1...20).map { Double($0) / 20 }

    /// Instruments recording into a new registry.
    public convenience init() {
        let registry = PrometheusCollectorRegistry()
        self.init(
            registry: registry, factory: DescribedMetricsFactory(registry: registry, descriptions: Self.described))
    }

    /// Instruments that record nothing (swift-metrics' no-op backend).
    public static var off: EngineMetrics {
        EngineMetrics(registry: PrometheusCollectorRegistry(), factory: NOOPMetricsHandler.instance)
    }

    private init(registry: PrometheusCollectorRegistry, factory: any MetricsFactory) {
        self.registry = registry
        self.factory = factory
        events = CoreMetrics.Counter(label: "vigil_events_total", factory: factory)
        scored = CoreMetrics.Counter(label: "vigil_events_scored_total", factory: factory)
        alerts = CoreMetrics.Counter(label: "vigil_alerts_total", factory: factory)
        acknowledged = CoreMetrics.Counter(label: "vigil_alerts_acknowledged_total", factory: factory)
        labels = CoreMetrics.Counter(label: "vigil_labels_total", factory: factory)
        score = CoreMetrics.Recorder(label: "vigil_score", factory: factory)
        process = CoreMetrics.Recorder(
            label: "vigil_stage_seconds", dimensions: [("stage", "process")], factory: factory)
        deliver = CoreMetrics.Recorder(
            label: "vigil_stage_seconds", dimensions: [("stage", "deliver")], factory: factory)
        checkpointPause = Recorder(
            label: "vigil_stage_seconds", dimensions: [("stage", "checkpoint_pause")], factory: factory)
    }

    /// The help text and buckets of the instruments above (docs/operations.md lists them).
    static let described: [String: MetricDescription] = [
        "vigil_events_total": .init(help: "Source records read (events and malformed records)."),
        "vigil_events_scored_total": .init(help: "Events scored."),
        "vigil_alerts_total": .init(help: "Alerts raised."),
        "vigil_alerts_acknowledged_total": .init(help: "Alerts the broker acknowledged."),
        "vigil_labels_total": .init(help: "Label records read and handed to the workers."),
        "vigil_dead_letters_total": .init(help: "Records sent to the dead-letter topic, by reason."),
        "vigil_score": .init(help: "Final scores of scored events.", buckets: scoreBounds),
        "vigil_stage_seconds": .init(
            help:
                "Latency per stage: process = poll to outputs handed to the producer; deliver = poll to the broker's acknowledgement; checkpoint_pause = workers held by a checkpoint cut.",
            buckets: Histogram.latencyBounds),
    ]

    /// A finished chunk: its records, scores, alerts, dead letters and the time since its poll.
    func record(_ chunk: InputChunk) {
        var scoredHere = 0
        var reasons: [String: Int] = [:]
        for i in 0..<chunk.count {
            switch chunk.outcome(i) {
            case .scored, .alerted:
                let value = chunk.scores[i]
                if !value.isNaN { score.record(value) }
                scoredHere += 1
            default: break
            }
        }
        for (_, reason) in chunk.allDeadLetters { reasons[reason.code.rawValue, default: 0] += 1 }
        events.increment(by: chunk.count)
        scored.increment(by: scoredHere)
        alerts.increment(by: chunk.allAlerts.count)
        for (code, n) in reasons { deadLettered(code, n) }
        process.record(EngineStats.seconds(since: chunk.createdAt))
    }

    func deadLettered(_ code: String, _ n: Int) {
        let counter = deadLetters.withLock { counters in
            if let c = counters[code] { return c }
            let c = CoreMetrics.Counter(
                label: "vigil_dead_letters_total", dimensions: [("reason", code)], factory: factory)
            counters[code] = c
            return c
        }
        counter.increment(by: n)
    }

    func readLabels(_ n: Int) { labels.increment(by: n) }

    /// An output the broker acknowledged, `seconds` after the poll that read its record.
    func delivered(seconds: Double, alert: Bool) {
        deliver.record(seconds)
        if alert { acknowledged.increment() }
    }

    func checkpointPaused(seconds: Double) { checkpointPause.record(seconds) }

    /// The registry in the Prometheus text format.
    public var text: String { registry.emitToString() }
}
