import Foundation
import Logging
import Synchronization

/// Alerts and dead letters that could not be published, as the operator sees them: per topic, one
/// warning when a streak of failures starts, a summary at most every 10 s while it lasts, and a
/// notice when that topic takes writes again; the cause and the count for `/status` and
/// `/metrics`; and when the ingest thread may send the failed outputs again (100 ms, doubling up to
/// 5 s, while any topic fails), so that a topic that refuses every write is not retried in a
/// tight loop.
final class OutputFailures: Sendable {
    /// One topic's streak of failures, as `/status` shows it.
    struct Streak: Sendable {
        var topic: String
        var since: Date
        var lastError: String
        /// Failures in this streak.
        var count: Int
        var loggedAt: ContinuousClock.Instant
        var loggedCount: Int
    }

    private struct State {
        var streaks: [String: Streak] = [:]
        var total = 0
        var backoff: Duration = .zero
        var nextRetry: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    /// Set while any topic fails (changed under the lock): a successful delivery then has to end
    /// its topic's streak; otherwise it costs one atomic load.
    private let failing = Atomic<Bool>(false)
    private let logger: Logger
    static let logEvery: Duration = .seconds(10)
    static let firstBackoff: Duration = .milliseconds(100)
    static let maxBackoff: Duration = .seconds(5)

    init(logger: Logger) { self.logger = logger }

    /// An output was refused by the producer or by the broker (any thread).
    func failed(topic: String, error: any Error) {
        let now = ContinuousClock.now
        let message = "\(error)"
        let (first, summary) = state.withLock { s -> (Bool, (count: Int, of: Int)?) in
            s.total += 1
            failing.store(true, ordering: .releasing)
            s.backoff = s.streaks.isEmpty ? Self.firstBackoff : min(Self.maxBackoff, s.backoff * 2)
            s.nextRetry = now.advanced(by: s.backoff)
            guard var streak = s.streaks[topic] else {
                s.streaks[topic] = Streak(
                    topic: topic, since: Date(), lastError: message, count: 1, loggedAt: now, loggedCount: 1)
                return (true, nil)
            }
            streak.count += 1
            streak.lastError = message
            var summary: (Int, Int)?
            if now - streak.loggedAt >= Self.logEvery {
                summary = (streak.count - streak.loggedCount, streak.count)
                streak.loggedAt = now
                streak.loggedCount = streak.count
            }
            s.streaks[topic] = streak
            return (false, summary)
        }
        if first {
            logger.warning(
                "Outputs not published; holding them (offsets stop before them) and retrying",
                metadata: ["topic": "\(topic)", "error": "\(message)"])
        } else if let summary {
            logger.warning(
                "Outputs still not published",
                metadata: [
                    "failures": "\(summary.count) in the last \(Self.logEvery)", "streak": "\(summary.of)",
                    "topic": "\(topic)", "error": "\(message)",
                ])
        }
    }

    /// An output to `topic` was acknowledged (a producer thread): ends that topic's streak.
    func delivered(topic: String) {
        guard failing.load(ordering: .acquiring) else { return }
        let ended = state.withLock { s -> Streak? in
            guard let ended = s.streaks.removeValue(forKey: topic) else { return nil }
            if s.streaks.isEmpty {
                s.backoff = .zero
                s.nextRetry = nil
                failing.store(false, ordering: .releasing)
            }
            return ended
        }
        if let ended {
            logger.notice(
                "Outputs are published again",
                metadata: [
                    "topic": "\(topic)", "after_s": "\(Int(Date().timeIntervalSince(ended.since)))",
                    "failures": "\(ended.count)",
                ])
        }
    }

    /// Whether held outputs may be sent again now (the backoff has passed).
    var retryDue: Bool {
        guard failing.load(ordering: .acquiring) else { return true }
        return state.withLock { s in s.nextRetry.map { ContinuousClock.now >= $0 } ?? true }
    }

    /// The topics failing now, the newest failure first.
    var current: [Streak] { state.withLock { $0.streaks.values.sorted { $0.since > $1.since } } }

    /// Failures since the engine started.
    var total: Int { state.withLock { $0.total } }
}
