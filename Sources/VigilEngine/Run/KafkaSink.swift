import Foundation
import Logging
import Synchronization
import VigilCore
import VigilKafka

/// Publishes what the workers decided: each alert to the alerts topic (keyed by entity), each
/// dead letter to the dead-letter topic (the raw record, with the reason and source position in
/// `vigil.*` headers). A record is marked done for the consumer when it was only scored at once,
/// otherwise when the broker acknowledges its alert or dead letter. A failed delivery is held and
/// sent again (``OutputFailures`` paces it and reports it), so nothing is committed past an
/// unpublished output.
///
/// `@unchecked Sendable` invariant: `producer`, `consumer` and the topic handles are set once, by
/// `attach`, before the pipeline starts and so before any other method runs; the rest is behind
/// mutexes or atomic.
final class KafkaSink: PipelineSink, @unchecked Sendable {
    private let topology: Topology
    private let logger: Logger
    private let onChunk: (@Sendable (InputChunk) -> Void)?
    /// Stop the consumer once this many source records have finished.
    private let stopAfter: Int?
    private let onAlertDelivered: (@Sendable (AlertRecord) -> Void)?
    let stats: EngineStats
    /// Signalled whenever records are marked done (the checkpoint thread waits on it).
    let progress: OutputProgress
    private var producer: KafkaProducer!
    private var consumer: KafkaConsumer!
    private var alertsTopic: KafkaTopic!
    private var deadLetterTopic: KafkaTopic!
    private let pending = Mutex<[UInt64: Output]>([:])
    private let failed = Mutex<[Output]>([])
    /// The failures' reports and the pace of the retries.
    let failures: OutputFailures
    private let nextToken = Atomic<UInt64>(1)
    private let completed = Atomic<Int>(0)
    private let alertsAcked = Atomic<Int>(0)
    private let deadLettersAcked = Atomic<Int>(0)
    private let labelErrors = Atomic<Int>(0)
    /// Milliseconds from each chunk's poll to its outputs handed to the producer (the engine's
    /// own share of the latency), for the closing summary; the first million chunks.
    private let chunkTimes = Mutex<[(polled: ContinuousClock.Instant, ms: Double)]>([])
    /// When the engine was created: the first scored event is reported against it.
    private let startedAt = ContinuousClock.now
    private let firstScored = Atomic<Bool>(false)
    /// `stopAfter` records have finished: the engine stops reading.
    let reachedBound = Atomic<Bool>(false)

    /// One record sent and not yet acknowledged.
    struct Output: Sendable {
        var position: KafkaPosition
        var isAlert: Bool
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [KafkaHeader]
        var alert: AlertRecord?
        /// When the record's chunk was polled (for the delivery latency).
        var polledAt: ContinuousClock.Instant
    }

    init(
        topology: Topology, logger: Logger, stopAfter: Int?, onChunk: (@Sendable (InputChunk) -> Void)?,
        onAlertDelivered: (@Sendable (AlertRecord) -> Void)?, stats: EngineStats, progress: OutputProgress
    ) {
        self.stats = stats
        self.progress = progress
        self.topology = topology
        self.logger = logger
        self.onChunk = onChunk
        self.stopAfter = stopAfter
        self.onAlertDelivered = onAlertDelivered
        failures = OutputFailures(logger: logger)
    }

    func attach(producer: KafkaProducer, consumer: KafkaConsumer) {
        self.producer = producer
        self.consumer = consumer
        alertsTopic = producer.topic(topology.alerts.topic)
        deadLetterTopic = producer.topic(topology.deadLetter.topic)
    }

    var published: (alerts: Int, deadLetters: Int) {
        (alertsAcked.load(ordering: .relaxed), deadLettersAcked.load(ordering: .relaxed))
    }
    var labelsMalformed: Int { labelErrors.load(ordering: .relaxed) }

    /// Publishes a drift record (best effort, like audit records: no source offset waits for it).
    func drift(_ record: [UInt8], topic: String) {
        stats.driftRecorded(record)
        do {
            try producer.send(topic: topic, key: Array(topology.name.utf8), value: record)
        } catch {
            logger.error("Drift record not sent to \(topic)", metadata: ["error": "\(error)"])
        }
    }

    func complete(_ chunk: InputChunk) {
        var done: [KafkaPosition] = []
        done.reserveCapacity(chunk.count)
        for i in 0..<chunk.count where chunk.outcome(i) == .scored {
            let p = chunk.position(i)
            done.append(KafkaPosition(TopicPartition(p.topic, p.partition), p.offset))
        }
        for alert in chunk.allAlerts {
            let p = chunk.position(alert.index)
            send(
                Output(
                    position: KafkaPosition(TopicPartition(p.topic, p.partition), p.offset), isAlert: true,
                    key: chunk.keyText(alert.index).map { Array($0.utf8) }, value: alert.json, headers: [],
                    alert: alert,
                    polledAt: chunk.createdAt))
        }
        for (i, reason) in chunk.allDeadLetters {
            let p = chunk.position(i)
            let value = chunk.withRawValue(i) { $0.map(Array.init) }
            send(
                Output(
                    position: KafkaPosition(TopicPartition(p.topic, p.partition), p.offset), isAlert: false,
                    key: chunk.rawKey(i), value: value, headers: headers(reason, p), alert: nil,
                    polledAt: chunk.createdAt))
        }
        consumer.markDone(done)
        progress.signal()
        stats.record(chunk)
        let elapsed = ContinuousClock.now - chunk.createdAt
        let ms = elapsed.seconds * 1000
        chunkTimes.withLock { if $0.count < 1_000_000 { $0.append((chunk.createdAt, ms)) } }
        if !firstScored.exchange(true, ordering: .relaxed) {
            let d = ContinuousClock.now - startedAt
            logger.info(
                "First event scored",
                metadata: ["since_start_ms": "\(d.wholeMilliseconds)"])
        }
        let total = completed.add(chunk.count, ordering: .relaxed).newValue
        onChunk?(chunk)
        if let stopAfter, total >= stopAfter, total - chunk.count < stopAfter {
            reachedBound.store(true, ordering: .releasing)
        }
    }

    /// Quantiles (0...1) of the time from a chunk's poll to its outputs handed to the producer, in
    /// milliseconds; nil before the first chunk. `during`: only chunks whose time overlapped one
    /// of those intervals (true) or none of them (false); nil: all chunks.
    func chunkTime(
        quantile q: Double, during windows: [(ContinuousClock.Instant, ContinuousClock.Instant)]? = nil,
        inside: Bool = true
    ) -> Double? {
        var times = chunkTimes.withLock { $0 }
        if let windows {
            times = times.filter { t in
                let end = t.polled.advanced(by: .microseconds(Int(t.ms * 1000)))
                let overlaps = windows.contains { t.polled <= $0.1 && end >= $0.0 }
                return overlaps == inside
            }
        }
        let sorted = times.map(\.ms).sorted()
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
    }

    /// A label record that could not be read goes to the dead letters like a bad event.
    func deadLetterLabel(_ record: KafkaRecord, _ reason: DeadLetterReason) {
        labelErrors.add(1, ordering: .relaxed)
        stats.deadLettered(reason.code.rawValue)
        let p = SourcePosition(
            topic: record.topic, partition: record.partition, offset: record.offset,
            timestampMs: record.timestampMilliseconds)
        send(
            Output(
                position: record.position, isAlert: false, key: record.key.map(Array.init),
                value: record.value.map(Array.init),
                headers: headers(reason, p), alert: nil, polledAt: .now))
    }

    private func headers(_ reason: DeadLetterReason, _ p: SourcePosition) -> [KafkaHeader] {
        [
            KafkaHeader(name: "vigil.reason", value: Array(reason.code.rawValue.utf8)),
            KafkaHeader(name: "vigil.detail", value: Array(reason.detail.utf8)),
            KafkaHeader(name: "vigil.source.topic", value: Array(p.topic.utf8)),
            KafkaHeader(name: "vigil.source.partition", value: Array(String(p.partition).utf8)),
            KafkaHeader(name: "vigil.source.offset", value: Array(String(p.offset).utf8)),
            KafkaHeader(name: "vigil.topology", value: Array(topology.name.utf8)),
        ]
    }

    private func send(_ output: Output) {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        pending.withLock { $0[token] = output }
        do {
            let topic = output.isAlert ? alertsTopic! : deadLetterTopic!
            try withOptional(output.key) { key in
                try withOptional(output.value) { value in
                    try producer.send(to: topic, key: key, value: value, headers: output.headers, token: token)
                }
            }
        } catch {
            // The local queue stayed full for the whole wait, or the producer refuses the topic
            // (a permanent error the broker gave): keep the record and try again later.
            pending.withLock { _ = $0.removeValue(forKey: token) }
            failed.withLock { $0.append(output) }
            failures.failed(topic: output.isAlert ? topology.alerts.topic : topology.deadLetter.topic, error: error)
        }
    }

    /// A delivery report (on a producer thread).
    func delivered(_ report: DeliveryReport) {
        guard let output = pending.withLock({ $0.removeValue(forKey: report.token) }) else { return }
        if let error = report.error {
            failed.withLock { $0.append(output) }
            failures.failed(topic: report.topic, error: error)
            return
        }
        failures.delivered(topic: report.topic)
        consumer.markDone(output.position)
        progress.signal()
        stats.delivered(polledAt: output.polledAt, alert: output.isAlert)
        if output.isAlert {
            alertsAcked.add(1, ordering: .relaxed)
            if let alert = output.alert {
                stats.recentAlerts.record(alert)
                onAlertDelivered?(alert)
            }
        } else {
            deadLettersAcked.add(1, ordering: .relaxed)
        }
    }

    /// Outputs waiting to be sent again after a failure.
    var held: Int { failed.withLock { $0.count } }

    /// Sends again what failed (ingest thread, between batches) once the retry pace allows it;
    /// `now`: at once (the final drain).
    func retryFailed(now: Bool = false) {
        guard now || failures.retryDue else { return }
        let again = failed.withLock { list in
            let taken = list
            list.removeAll()
            return taken
        }
        for output in again { send(output) }
    }

    /// Waits until every output is acknowledged, retrying failures, for at most `deadline`.
    func drain(deadline: Duration) throws(KafkaError) {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: deadline)
        while true {
            retryFailed(now: true)
            try? producer.flush(timeout: .milliseconds(200))
            let left = pending.withLock { $0.count } + failed.withLock { $0.count }
            if left == 0 { return }
            if clock.now >= end {
                throw KafkaError(
                    .timedOut, "\(left) alerts or dead letters not acknowledged after \(deadline)", isRetriable: true)
            }
        }
    }
}

private func withOptional<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
    guard let bytes else { return try body(nil) }
    return try bytes.withUnsafeBytes { try body($0) }
}
