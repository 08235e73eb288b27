import Synchronization

/// Lets async code wait until a condition on shared state holds, without polling: whoever
/// changes that state calls `signal()`, which resumes the waiters whose condition now holds.
/// `PhaseTracker` and `EngineStats` are built on it.
final class AsyncCondition: Sendable {
    private struct Waiter {
        let condition: @Sendable () -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var waiters: [Int: Waiter] = [:]
        /// Waits begun whose continuation is not registered yet.
        var registering = Set<Int>()
        /// Those of them already settled (timed out, cancelled): registration resumes them.
        var settledEarly: [Int: Bool] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// The state changed: resumes the waiters whose condition holds (a lock and an empty check
    /// when nobody waits).
    func signal() {
        let waiting = state.withLock { $0.waiters }
        guard !waiting.isEmpty else { return }
        for (id, waiter) in waiting where waiter.condition() { settle(id, true) }
    }

    /// Returns true once `condition` holds (checked now and after each signal); false when
    /// `timeout` (if any) passes on `clock` first, or when the task is cancelled.
    func wait(
        timeout: Duration? = nil, clock: EngineClock = .continuous, until condition: @escaping @Sendable () -> Bool
    ) async -> Bool {
        if condition() { return true }
        let id = state.withLock { s -> Int in
            s.nextID += 1
            s.registering.insert(s.nextID)
            return s.nextID
        }
        return await withTaskGroup(of: Void.self) { group in
            if let timeout {
                group.addTask { [self] in
                    guard (try? await clock.sleep(for: timeout)) != nil else { return }  // cancelled: done
                    settle(id, false)
                }
            }
            let result = await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                    let early = state.withLock { s -> Bool? in
                        s.registering.remove(id)
                        if let value = s.settledEarly.removeValue(forKey: id) { return value }
                        s.waiters[id] = Waiter(condition: condition, continuation: c)
                        return nil
                    }
                    if let early {
                        c.resume(returning: early)
                    } else if condition() {
                        // It may have come true between the first check and the registration.
                        settle(id, true)
                    }
                }
            } onCancel: {
                settle(id, false)
            }
            group.cancelAll()
            return result
        }
    }

    /// Resumes wait `id` with `value`, once; a wait not registered yet gets it when it
    /// registers; a wait already over is left alone.
    private func settle(_ id: Int, _ value: Bool) {
        let waiter = state.withLock { s -> Waiter? in
            if let w = s.waiters.removeValue(forKey: id) { return w }
            if s.registering.contains(id), s.settledEarly[id] == nil { s.settledEarly[id] = value }
            return nil
        }
        waiter?.continuation.resume(returning: value)
    }
}
