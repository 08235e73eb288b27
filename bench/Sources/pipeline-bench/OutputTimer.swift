import Foundation
import Logging
import Synchronization
import VigilKafka

/// Times outputs against their events' sends, for `latency` and `soak`: keeps each event's send
/// time, and reads the output topic on its own thread, timing every record that names a sent
/// event (an alert's `event_id`, or a relayed event's `txn_id`).
final class OutputTimer: Sendable {
    /// Send times by event id: the current generation and the one before (`rotate()`).
    private let sent = Mutex<(current: [String: ContinuousClock.Instant], previous: [String: ContinuousClock.Instant])>(
        ([:], [:]))
    private let latencies = Mutex<[Double]>([])
    private let stopped = Atomic<Bool>(false)

    /// Subscribes to `output` from its end and starts reading; returns once the reader had time
    /// to join its group (5 s).
    init(common: KafkaConfiguration, output: String, fetchWaitMs: Int) throws {
        var config = KafkaConsumerConfiguration(common: common, groupID: "latency-\(UUID().uuidString)")
        config.startFrom = .latest
        config.fetchWaitMax = .milliseconds(fetchWaitMs)
        let consumer = try KafkaConsumer(configuration: config, logger: Logger(label: "bench"))
        try consumer.subscribe(topics: [output])
        let reader = Thread { [self] in
            while !stopped.load(ordering: .acquiring) {
                guard let batch = try? consumer.poll(maxMessages: 1000, timeout: .milliseconds(20)) else { continue }
                let now = ContinuousClock.now
                for i in 0..<batch.count {
                    guard let value = batch[i].value, let id = Latency.eventID(Array(value)) else { continue }
                    if let at = sent.withLock({ $0.current[id] ?? $0.previous[id] }) {
                        latencies.withLock { $0.append(seconds(now - at) * 1000) }
                    }
                }
            }
            consumer.close()
        }
        reader.start()
        Thread.sleep(forTimeInterval: 5)
    }

    /// The event `id` was sent now.
    func sent(_ id: String) { sent.withLock { $0.current[id] = .now } }

    /// Forgets the sends of the generation before the current one: an output names an event sent
    /// at most a few seconds before it, so long runs need not keep every send.
    func rotate() { sent.withLock { $0 = (current: [:], previous: $0.current) } }

    /// The latencies (ms) timed since the last call, sorted.
    func take() -> [Double] {
        latencies.withLock { l in
            defer { l.removeAll(keepingCapacity: true) }
            return l.sorted()
        }
    }

    /// Stops the reader after its last poll.
    func stop() {
        stopped.store(true, ordering: .releasing)
        Thread.sleep(forTimeInterval: 0.3)
    }
}
