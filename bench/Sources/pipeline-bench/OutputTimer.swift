import Foundation
import Logging
import Synchronization
import VigilKafka

/// Times outputs against their events' sends, for `latency` and `soak`: keeps each event's send
/// time, and reads the output topic on its own thread, timing every record that names a sent
/// event (an alert's `event_id`, or a relayed event's `txn_id`).
///
/// Each latency is also split at the output record's timestamp (set by the output's producer
/// when it was handed the record, in wall-clock ms): the part before it is the engine's or the
/// relay's (consume, process, hand over), the part after it is the output's way to the reader.
final class OutputTimer: Sendable {
    /// When an event was sent: the monotonic instant, and wall-clock ms for the split.
    struct Send {
        var at: ContinuousClock.Instant
        var wallMs: Double
    }

    /// One output's latency and its split (ms).
    struct Sample {
        var total: Double
        var toOutput: Double
        var afterOutput: Double
    }

    /// Send times by event id: the current generation and the one before (`rotate()`).
    private let sent = Mutex<(current: [String: Send], previous: [String: Send])>(([:], [:]))
    private let samples = Mutex<[Sample]>([])
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
                let wallMs = Self.wallMs()
                for i in 0..<batch.count {
                    guard let value = batch[i].value, let id = Latency.eventID(Array(value)) else { continue }
                    if let send = sent.withLock({ $0.current[id] ?? $0.previous[id] }) {
                        let stamped = batch[i].timestampMilliseconds.map(Double.init) ?? wallMs
                        let sample = Sample(
                            total: seconds(now - send.at) * 1000, toOutput: stamped - send.wallMs,
                            afterOutput: wallMs - stamped)
                        samples.withLock { $0.append(sample) }
                    }
                }
            }
            consumer.close()
        }
        reader.start()
        Thread.sleep(forTimeInterval: 5)
    }

    /// The event `id` was sent now.
    func sent(_ id: String) {
        let send = Send(at: .now, wallMs: Self.wallMs())
        sent.withLock { $0.current[id] = send }
    }

    static func wallMs() -> Double { Date().timeIntervalSince1970 * 1000 }

    /// Forgets the sends of the generation before the current one: an output names an event sent
    /// at most a few seconds before it, so long runs need not keep every send.
    func rotate() { sent.withLock { $0 = (current: [:], previous: $0.current) } }

    /// The samples timed since the last call, sorted by total latency.
    func takeSamples() -> [Sample] {
        samples.withLock { l in
            defer { l.removeAll(keepingCapacity: true) }
            return l.sorted { $0.total < $1.total }
        }
    }

    /// The latencies (ms) timed since the last call, sorted.
    func take() -> [Double] { takeSamples().map(\.total) }

    /// Stops the reader after its last poll.
    func stop() {
        stopped.store(true, ordering: .releasing)
        Thread.sleep(forTimeInterval: 0.3)
    }
}
