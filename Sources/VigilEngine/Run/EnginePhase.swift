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
    private let phase = Mutex(EnginePhase.starting)
    private let changed = AsyncCondition()

    var current: EnginePhase { phase.withLock { $0 } }

    /// Moves to `next`, which must not be earlier than the current phase, and wakes whoever
    /// waits for it.
    func advance(to next: EnginePhase) {
        phase.withLock { p in
            guard next >= p else { fatalError("\(#function) from \(p) to \(next)") }
            p = next
        }
        changed.signal()
    }

    /// Returns once the phase is `phase` or later, or when the task is cancelled.
    func wait(until phase: EnginePhase) async {
        _ = await changed.wait { [self] in current >= phase }
    }
}
