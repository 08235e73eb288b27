import CoreMetrics
import Prometheus

/// A metric's help text and histogram buckets, for ``DescribedMetricsFactory``.
struct MetricDescription: Sendable {
    var help: String
    var buckets: [Double] = []
}

/// A swift-metrics backend over a Prometheus registry that gives the metrics it knows their help
/// text and buckets (swift-prometheus's own factory writes neither), and sorts their labels, so
/// the engine's instruments render as documented families. Labels it does not know go to
/// swift-prometheus's factory unchanged.
struct DescribedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let descriptions: [String: MetricDescription]
    private let plain: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry, descriptions: [String: MetricDescription]) {
        self.registry = registry
        self.descriptions = descriptions
        plain = PrometheusMetricsFactory(registry: registry)
    }

    private func descriptor(_ label: String) -> (MetricNameDescriptor, MetricDescription)? {
        descriptions[label].map { (MetricNameDescriptor(metricName: label, unitName: "", helpText: $0.help), $0) }
    }

    private func sorted(_ dimensions: [(String, String)]) -> [(String, String)] {
        dimensions.sorted { $0.0 < $1.0 }
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let (name, _) = descriptor(label) else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: name, labels: sorted(dimensions))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        guard let (name, _) = descriptor(label) else {
            return plain.makeFloatingPointCounter(label: label, dimensions: dimensions)
        }
        return registry.makeCounter(descriptor: name, labels: sorted(dimensions))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard let (name, d) = descriptor(label) else {
            return plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
        }
        guard aggregate else { return registry.makeGauge(descriptor: name, labels: sorted(dimensions)) }
        return registry.makeValueHistogram(descriptor: name, labels: sorted(dimensions), buckets: d.buckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        guard let (name, _) = descriptor(label) else { return plain.makeMeter(label: label, dimensions: dimensions) }
        return registry.makeGauge(descriptor: name, labels: sorted(dimensions))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let (name, d) = descriptor(label) else { return plain.makeTimer(label: label, dimensions: dimensions) }
        return registry.makeDurationHistogram(
            descriptor: name, labels: sorted(dimensions), buckets: d.buckets.map { .nanoseconds(Int64($0 * 1e9)) })
    }

    func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        plain.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
}
