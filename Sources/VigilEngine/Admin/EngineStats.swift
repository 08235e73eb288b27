import Foundation
import Synchronization

/// The running engine's figures for `/metrics` and `/status`: counted once per finished chunk
/// (not per event) on whichever thread finished it, read by the admin endpoint at any time. The
/// event-path figures go to ``metrics`` (what `/metrics` renders) as well; the counts and bucket
/// counts here are what `/status`, the run summary and the tests read back.
public final class EngineStats: Sendable {
    /// The swift-metrics instruments behind `/metrics`.
    let metrics: EngineMetrics
    let eventsIn = Atomic<Int>(0)
    let scored = Atomic<Int>(0)
    let alerts = Atomic<Int>(0)
    let alertsAcknowledged = Atomic<Int>(0)
    /// The last acknowledged alerts (`/status`, the status page).
    let recentAlerts = RecentAlerts()
    let labels = Atomic<Int>(0)
    private let deadLetters = Mutex<[String: Int]>([:])
    /// Drift records by detector and subject.
    private let drifts = Mutex<[String: Int]>([:])
    /// Final scores of scored events.
    let scores = Histogram(bounds: (1...20).map { Double($0) / 20 })
    /// Seconds from the poll that returned a record to its outputs handed to the producer.
    let processSeconds = Histogram(bounds: Histogram.latencyBounds)
    /// Seconds from the poll to the broker's acknowledgement of an alert or dead letter.
    let deliverSeconds = Histogram(bounds: Histogram.latencyBounds)
    /// Seconds a checkpoint cut held the workers (capturing their state).
    let checkpointPauseSeconds = Histogram(bounds: Histogram.latencyBounds)
    let checkpointsWritten = Atomic<Int>(0)
    let checkpointsFailed = Atomic<Int>(0)
    /// Source partitions whose windows were loaded at an assignment / published at a revoke.
    let handoffsIn = Atomic<Int>(0)
    let handoffsOut = Atomic<Int>(0)
    let checkpointBytes = Atomic<Int>(0)
    /// This instance's share of the source partitions, in millionths (the forests' window scale).
    let streamShareMillionths = Atomic<Int>(1_000_000)
    /// Federation rounds that averaged at least one model with a peer's, and the peers the
    /// last round used.
    let federationRounds = Atomic<Int>(0)
    let federationPeers = Atomic<Int>(0)
    /// Size of the last models record this instance published.
    let federationBytes = Atomic<Int>(0)
    let checkpointSequence = Atomic<Int>(-1)
    let checkpointWriteNanos = Atomic<Int>(0)
    /// Wall-clock ms of the last checkpoint written (0: none yet).
    let checkpointTimeMs = Atomic<Int64>(0)
    let reloadsApplied = Atomic<Int>(0)
    let reloadsRefused = Atomic<Int>(0)
    /// Whether the consumer currently reaches the brokers (readiness).
    let brokerUp = Atomic<Bool>(false)
    let started = Date()

    /// Signalled whenever a figure changes (a chunk, a reload, a checkpoint).
    private let changed = AsyncCondition()

    init(metrics: EngineMetrics = EngineMetrics()) { self.metrics = metrics }

    /// Events scored so far.
    public var eventsScored: Int { scored.load(ordering: .relaxed) }
    /// Source records read so far (events and malformed records).
    public var eventsRead: Int { eventsIn.load(ordering: .relaxed) }
    /// Alerts raised so far.
    public var alertsRaised: Int { alerts.load(ordering: .relaxed) }
    /// Records dead-lettered so far, for every reason.
    public var deadLetterCount: Int { deadLetters.withLock { $0.values.reduce(0, +) } }
    /// Label records read so far.
    public var labelsRead: Int { labels.load(ordering: .relaxed) }
    /// Configuration changes applied or refused so far (boot not counted).
    public var reloads: Int { reloadsApplied.load(ordering: .relaxed) + reloadsRefused.load(ordering: .relaxed) }
    /// Checkpoints this engine has written.
    public var checkpoints: Int { checkpointsWritten.load(ordering: .relaxed) }
    /// Checkpoints this engine cut but gave up (outputs not acknowledged in time, a failed write).
    public var checkpointFailures: Int { checkpointsFailed.load(ordering: .relaxed) }

    /// Waits until `condition` holds for these figures (re-checked whenever one changes), at
    /// most `timeout`; false when it never did.
    public func waitUntil(
        timeout: Duration, _ condition: @escaping @Sendable (EngineStats) -> Bool
    ) async -> Bool {
        await changed.wait(timeout: timeout) { condition(self) }
    }

    /// Label records were read.
    func readLabels(_ n: Int) {
        guard n > 0 else { return }
        labels.add(n, ordering: .relaxed)
        metrics.readLabels(n)
        changed.signal()
    }

    /// Federation rounds that averaged models with peers' so far.
    public var federatedRounds: Int { federationRounds.load(ordering: .relaxed) }

    /// A federation round ended: a record of `bytes` was published, and `peers` instances'
    /// models were averaged into `averaged` models.
    func federated(peers: Int, averaged: Int, bytes: Int) {
        federationPeers.store(peers, ordering: .relaxed)
        federationBytes.store(bytes, ordering: .relaxed)
        if averaged > 0 { federationRounds.add(1, ordering: .relaxed) }
        changed.signal()
    }

    /// A configuration change was applied or refused.
    func reloaded(applied: Bool) {
        if applied {
            reloadsApplied.add(1, ordering: .relaxed)
        } else {
            reloadsRefused.add(1, ordering: .relaxed)
        }
        changed.signal()
    }

    /// A checkpoint was given up.
    func checkpointFailed() {
        checkpointsFailed.add(1, ordering: .relaxed)
        changed.signal()
    }

    /// A checkpoint was published.
    func checkpointWritten(sequence: UInt64, bytes: Int, createdMs: Int64, took: Duration) {
        checkpointBytes.store(bytes, ordering: .relaxed)
        checkpointSequence.store(Int(sequence), ordering: .relaxed)
        checkpointTimeMs.store(createdMs, ordering: .relaxed)
        checkpointWriteNanos.store(Int(took.seconds * 1e9), ordering: .relaxed)
        checkpointsWritten.add(1, ordering: .relaxed)
        changed.signal()
    }

    func deadLettered(_ code: String, _ n: Int = 1) {
        deadLetters.withLock { $0[code, default: 0] += n }
        metrics.deadLettered(code, n)
    }

    /// The broker acknowledged an output whose record was polled at `polledAt`.
    func delivered(polledAt: ContinuousClock.Instant, alert: Bool) {
        let seconds = Self.seconds(since: polledAt)
        deliverSeconds.observe(seconds)
        if alert { alertsAcknowledged.add(1, ordering: .relaxed) }
        metrics.delivered(seconds: seconds, alert: alert)
    }

    /// A checkpoint cut held the workers this long.
    func checkpointPaused(_ pause: Duration) {
        checkpointPauseSeconds.observe(pause.seconds)
        metrics.checkpointPaused(seconds: pause.seconds)
    }

    var deadLettersByReason: [String: Int] { deadLetters.withLock { $0 } }

    /// A drift record was written (its detector and subject are counted).
    func driftRecorded(_ record: [UInt8]) {
        let o = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any]
        let key = "\(o?["detector"] as? String ?? "?")\u{0}\(o?["subject"] as? String ?? "?")"
        drifts.withLock { $0[key, default: 0] += 1 }
        changed.signal()
    }

    /// Drift records so far, by detector and subject.
    public var driftRecords: [(detector: String, subject: String, count: Int)] {
        drifts.withLock { $0 }.map { k, v in
            let parts = k.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "", v)
        }.sorted { ($0.detector, $0.subject) < ($1.detector, $1.subject) }
    }

    /// Records a finished chunk.
    func record(_ chunk: InputChunk) {
        var scoredValues: [Double] = []
        scoredValues.reserveCapacity(chunk.count)
        var reasons: [String: Int] = [:]
        for i in 0..<chunk.count {
            switch chunk.outcome(i) {
            case .scored, .alerted: scoredValues.append(chunk.scores[i])
            default: break
            }
        }
        let scoredHere = scoredValues.count
        scores.observe(contentsOf: scoredValues)
        for (_, reason) in chunk.allDeadLetters { reasons[reason.code.rawValue, default: 0] += 1 }
        eventsIn.add(chunk.count, ordering: .relaxed)
        scored.add(scoredHere, ordering: .relaxed)
        alerts.add(chunk.allAlerts.count, ordering: .relaxed)
        if !reasons.isEmpty { deadLetters.withLock { for (k, v) in reasons { $0[k, default: 0] += v } } }
        processSeconds.observe(Self.seconds(since: chunk.createdAt))
        metrics.record(chunk)
        changed.signal()
    }

    static func seconds(since t: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - t).seconds
    }
}

/// A Prometheus-style histogram: cumulative counts per upper bound, a count and a sum.
public final class Histogram: Sendable {
    public let bounds: [Double]
    private let state: Mutex<(counts: [Int], count: Int, sum: Double)>

    /// 100 µs to 10 s.
    static let latencyBounds: [Double] = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ]

    init(bounds: [Double]) {
        self.bounds = bounds
        state = Mutex((Array(repeating: 0, count: bounds.count), 0, 0))
    }

    func observe(_ value: Double) {
        guard !value.isNaN else { return }
        let i = bounds.firstIndex { value <= $0 }
        state.withLock { s in
            if let i { s.counts[i] += 1 }
            s.count += 1
            s.sum += value
        }
    }

    /// Many values under one lock (a chunk's scores: not a lock per event).
    func observe(contentsOf values: some Collection<Double>) {
        var counts = [Int](repeating: 0, count: bounds.count)
        var count = 0
        var sum = 0.0
        for value in values where !value.isNaN {
            if let i = bounds.firstIndex(where: { value <= $0 }) { counts[i] += 1 }
            count += 1
            sum += value
        }
        guard count > 0 else { return }
        state.withLock { s in
            for i in counts.indices { s.counts[i] += counts[i] }
            s.count += count
            s.sum += sum
        }
    }

    /// Cumulative counts per bound, then the total count and sum.
    public var snapshot: (cumulative: [Int], count: Int, sum: Double) {
        let s = state.withLock { $0 }
        var running = 0
        return (
            s.counts.map {
                running += $0
                return running
            }, s.count, s.sum
        )
    }

    /// The value below which a share `q` of observations fall, read from the buckets (the
    /// bucket's upper bound); nil without observations.
    public func quantile(_ q: Double) -> Double? {
        let s = snapshot
        guard s.count > 0 else { return nil }
        let rank = Int((q * Double(s.count)).rounded(.up))
        for (i, c) in s.cumulative.enumerated() where c >= rank { return bounds[i] }
        return bounds.last.map { $0 * 2 }
    }
}
