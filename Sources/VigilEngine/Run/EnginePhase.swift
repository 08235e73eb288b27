import Synchronization

/// What `KafkaEngine` is doing. Phases only move forward, in this order; `/status`, readiness,
/// the shutdown watchdog and tests read them.
public enum EnginePhase: String, Sendable, CaseIterable, Comparable {
    /// Built, `run()` not called yet.
    case starting
    /// Creating topics and loading a checkpoint.
    case restoring
    /// Reading, scoring and publishing.
    case running
    /// Stopped reading; the workers finish what they were given.
    case draining
    /// Waiting until every output is acknowledged.
    case flushing
    /// Writing the last checkpoint.
    case finalCheckpoint = "final checkpoint"
    /// Committing the done offsets and leaving the group.
    case committing
    /// `run()` has returned (or is about to).
    case stopped

    private var order: Int { Self.allCases.firstIndex(of: self)! }

    public static func < (a: EnginePhase, b: EnginePhase) -> Bool { a.order < b.order }
}

/// The engine's phase, written by the ingest thread and read or awaited by anyone.
final class PhaseTracker: Sendable {
    private struct State {
        var phase = EnginePhase.starting
        var waiters: [(id: Int, until: EnginePhase, continuation: CheckedContinuation<Void, Never>)] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    var current: EnginePhase { state.withLock { $0.phase } }

    /// Moves to `next`, which must not be earlier than the current phase, and wakes whoever
    /// waits for it.
    func advance(to next: EnginePhase) {
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard next >= s.phase else { fatalError("\(#function) from \(s.phase) to \(next)") }
            s.phase = next
            let ready = s.waiters.filter { $0.until <= next }
            s.waiters.removeAll { $0.until <= next }
            return ready.map(\.continuation)
        }
        for c in woken { c.resume() }
    }

    /// Returns once the phase is `phase` or later, or when the task is cancelled.
    func wait(until phase: EnginePhase) async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.phase >= phase || Task.isCancelled { return true }
                    s.waiters.append((id, phase, c))
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { s -> CheckedContinuation<Void, Never>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).continuation
            }
            cancelled?.resume()
        }
    }
}
