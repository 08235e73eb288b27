import Metrics
import Prometheus
import Synchronization

/// The process's swift-metrics backend: a Prometheus registry (swift-prometheus) that `/metrics`
/// serves after the engine's own figures, so that what libraries record through swift-metrics
/// (the Kafka clients' deliveries, errors, queue depth and per-partition lag) comes out with them.
public enum MetricsBackend {
    /// Where the swift-metrics handlers record.
    public static let registry = PrometheusCollectorRegistry()
    private static let installed = Mutex(false)

    /// Makes the registry swift-metrics' backend, once per process, before any Kafka client is
    /// made (a client keeps the factory it was made with).
    public static func bootstrap() {
        installed.withLock { done in
            guard !done else { return }
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            done = true
        }
    }

    /// The registry's metrics in the Prometheus text format (empty when nothing was recorded).
    static var text: String { registry.emitToString() }
}
