import Synchronization
import VigilKafka

/// Follows the consumer's events for the read-outs: whether the brokers are reachable, and the
/// high watermarks its statistics report (consumer lag is the watermark minus the done offset).
final class LagTracker: Sendable {
    private let marks = Mutex<[TopicPartition: Int64]>([:])

    /// A consumer event (on the poll thread, or a librdkafka thread for errors).
    func observe(_ event: KafkaEvent, stats: EngineStats) {
        switch event {
        case .statistics(let s):
            stats.brokerUp.store(s.brokerStates.values.contains("UP"), ordering: .relaxed)
            let high = s.partitions.filter { $0.value.highWatermark >= 0 }.mapValues(\.highWatermark)
            marks.withLock { $0.merge(high) { $1 } }
        case .assigned: stats.brokerUp.store(true, ordering: .relaxed)
        case .error(let e) where e.code == .brokerUnavailable: stats.brokerUp.store(false, ordering: .relaxed)
        default: break
        }
    }

    /// The latest high watermark of every partition the statistics named.
    var highWatermarks: [TopicPartition: Int64] { marks.withLock { $0 } }
}
