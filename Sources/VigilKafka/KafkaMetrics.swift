import Metrics
import Synchronization

/// The metrics of one Kafka client, created when the client is built (per-partition gauges when
/// a partition first appears). Dimensions are the client, topic and partition only.
final class KafkaMetrics: @unchecked Sendable {
    // Invariant: every stored property is immutable or synchronised; `factory` is a
    // MetricsFactory, which swift-metrics requires to be thread-safe.
    let client: String
    let errors: Counter
    let delivered: Counter
    let deliveryFailed: Counter
    let queuedMessages: Gauge
    private let lag = Mutex<[TopicPartition: Gauge]>([:])
    private let deliveredTotal = Atomic<Int>(0)
    private let failedTotal = Atomic<Int>(0)
    /// What `publishDeliveries` has already added to the counters.
    private let published = Mutex<(delivered: Int, failed: Int)>((0, 0))

    var deliveredCount: Int { deliveredTotal.load(ordering: .relaxed) }
    var failedCount: Int { failedTotal.load(ordering: .relaxed) }

    /// Called per delivery report: one relaxed atomic add, nothing more on this hot path.
    func recordDelivery(ok: Bool) {
        if ok { deliveredTotal.add(1, ordering: .relaxed) } else { failedTotal.add(1, ordering: .relaxed) }
    }

    /// Adds the deliveries counted since the last call to the metrics counters (the producer's
    /// poll thread calls it when idle, and statistics reports do too).
    func publishDeliveries() {
        let now = (deliveredCount, failedCount)
        let delta = published.withLock { last -> (Int, Int) in
            defer { last = now }
            return (now.0 - last.delivered, now.1 - last.failed)
        }
        if delta.0 > 0 { delivered.increment(by: Int64(delta.0)) }
        if delta.1 > 0 { deliveryFailed.increment(by: Int64(delta.1)) }
    }

    private let factory: any MetricsFactory

    init(client: String, factory: any MetricsFactory) {
        self.client = client
        self.factory = factory
        let dims = [("client", client)]
        errors = Counter(label: "vigil_kafka_errors_total", dimensions: dims, factory: factory)
        delivered = Counter(label: "vigil_kafka_delivered_total", dimensions: dims, factory: factory)
        deliveryFailed = Counter(label: "vigil_kafka_delivery_failed_total", dimensions: dims, factory: factory)
        queuedMessages = Gauge(label: "vigil_kafka_queued_messages", dimensions: dims, factory: factory)
    }

    /// Publishes a statistics report: local queue depth and consumer lag per partition.
    func record(_ stats: KafkaStatistics) {
        publishDeliveries()
        queuedMessages.record(stats.queuedMessages)
        guard stats.type == "consumer" else { return }
        for (tp, p) in stats.partitions where p.consumerLag >= 0 {
            // Created outside the lock (the metrics factory may lock too), once per partition.
            var gauge = lag.withLock { $0[tp] }
            if gauge == nil {
                let made = Gauge(
                    label: "vigil_kafka_consumer_lag",
                    dimensions: [("client", client), ("topic", tp.topic), ("partition", String(tp.partition))],
                    factory: factory)
                gauge = lag.withLock { gauges in
                    if let existing = gauges[tp] { return existing }
                    gauges[tp] = made
                    return made
                }
            }
            gauge?.record(p.consumerLag)
        }
    }
}
