import Prometheus

/// The series that the last scrape set in an engine's registry: gauges, and counters with the
/// value each was last brought to.
struct ScrapeState: Sendable {
    var gauges: [SeriesKey: Gauge] = [:]
    var counters: [SeriesKey: (counter: Counter, value: Int64)] = [:]
}

/// A metric name and its label pairs, sorted.
struct SeriesKey: Hashable, Sendable {
    var name: String
    var labels: [String]
}

/// Writes the figures read at scrape time (state sizes, the threshold, lag, checkpoints, model
/// quality) into the engine's Prometheus registry, as a collector does: gauges are set, counters
/// kept elsewhere are brought up to their value (or reset when it went down, as after a
/// rebuild), and the series the previous scrape set but this one did not (a model taken out,
/// a partition given away) are removed.
struct ScrapeWriter {
    private let registry: PrometheusCollectorRegistry
    private var previous: ScrapeState
    private var current = ScrapeState()
    private var families: [String: (help: String, type: String)] = [:]

    init(registry: PrometheusCollectorRegistry, previous: ScrapeState) {
        self.registry = registry
        self.previous = previous
    }

    /// Names a family and says what it is; its samples follow.
    mutating func header(_ name: String, _ help: String, _ type: String) {
        families[name] = (help, type)
    }

    /// One sample of a family named before.
    mutating func sample(_ name: String, _ labels: [String: String], _ value: Double) {
        guard let family = families[name] else { preconditionFailure("no header for \(name)") }
        let pairs = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        let key = SeriesKey(name: name, labels: pairs.map { "\($0.0)=\($0.1)" })
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "", helpText: family.help)
        if family.type == "counter" {
            let counter =
                current.counters[key]?.counter ?? previous.counters[key]?.counter
                ?? registry.makeCounter(descriptor: descriptor, labels: pairs)
            let last = current.counters[key]?.value ?? previous.counters[key]?.value ?? 0
            let now = value.isFinite ? Int64(max(0, value)) : last
            if now >= last {
                counter.increment(by: now - last)
            } else {
                counter.reset()
                counter.increment(by: now)
            }
            current.counters[key] = (counter, now)
        } else {
            let gauge =
                current.gauges[key] ?? previous.gauges[key] ?? registry.makeGauge(descriptor: descriptor, labels: pairs)
            gauge.set(value)
            current.gauges[key] = gauge
        }
    }

    mutating func counter(_ name: String, _ help: String, _ value: Int) {
        header(name, help, "counter")
        sample(name, [:], Double(value))
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double) {
        header(name, help, "gauge")
        sample(name, [:], value)
    }

    /// Removes what the previous scrape set and this one did not; the state for the next.
    func finish() -> ScrapeState {
        for (key, gauge) in previous.gauges where current.gauges[key] == nil { registry.unregisterGauge(gauge) }
        for (key, c) in previous.counters where current.counters[key] == nil { registry.unregisterCounter(c.counter) }
        return current
    }
}
