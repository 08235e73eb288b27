import Synchronization

/// A clock that moves only when a test says so: timers that sleep on it (the file watcher, the
/// run-time bound, the shutdown deadline, the checkpoint interval) fire when the test advances
/// it past their deadline, never because wall time passed.
public final class ManualClock: Clock, Sendable {
    /// A point on the manual timeline: time since the clock was made.
    public struct Instant: InstantProtocol, Sendable {
        public var offset: Duration

        public func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Duration { other.offset - offset }
        public static func < (a: Instant, b: Instant) -> Bool { a.offset < b.offset }
    }

    private struct Sleeper {
        let id: Int
        let deadline: Instant
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID = 0
        /// Sleeps begun so far (a test waits for a loop to come round to its next sleep).
        var sleepsBegun = 0
        var watchers: [(atLeast: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .zero }

    /// How many sleeps have begun so far, finished or not.
    public var sleepsBegun: Int { state.withLock { $0.sleepsBegun } }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let (now, watchers) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
                    s.sleepsBegun += 1
                    let reached = s.watchers.filter { $0.atLeast <= s.sleepsBegun }.map(\.continuation)
                    s.watchers.removeAll { $0.atLeast <= s.sleepsBegun }
                    if deadline <= s.now { return (true, reached) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: c))
                    return (false, reached)
                }
                for w in watchers { w.resume() }
                if now { c.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { s -> Sleeper? in
                guard let i = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: i)
            }
            cancelled?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward by `duration`, waking every sleep whose deadline it reaches.
    public func advance(by duration: Duration) {
        let woken = state.withLock { s -> [Sleeper] in
            s.now = s.now.advanced(by: duration)
            let due = s.sleepers.filter { $0.deadline <= s.now }
            s.sleepers.removeAll { $0.deadline <= s.now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Returns once `count` sleeps have begun in all (so a loop has come round to its next sleep
    /// and advancing the clock will wake it).
    public func waitForSleeps(_ count: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.sleepsBegun >= count { return true }
                s.watchers.append((count, c))
                return false
            }
            if now { c.resume() }
        }
    }
}
