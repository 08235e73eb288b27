import Synchronization

/// Lets async code wait until a condition on shared state holds, without polling: whoever
/// changes that state calls `signal()`, which resumes the waiters whose condition now holds.
final class AsyncCondition: Sendable {
    private struct Waiter {
        let id: Int
        let condition: @Sendable () -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var waiters: [Waiter] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    /// The state changed: resumes the waiters whose condition holds (a lock and an empty check
    /// when nobody waits).
    func signal() {
        let waiting = state.withLock { $0.waiters }
        guard !waiting.isEmpty else { return }
        let ready = Set(waiting.filter { $0.condition() }.map(\.id))
        guard !ready.isEmpty else { return }
        let resumed = state.withLock { s -> [Waiter] in
            let taken = s.waiters.filter { ready.contains($0.id) }
            s.waiters.removeAll { ready.contains($0.id) }
            return taken
        }
        for w in resumed { w.continuation.resume(returning: true) }
    }

    /// Returns true once `condition` holds (checked now and after each signal), false when
    /// `timeout` passes on `clock` first or the task is cancelled.
    func wait(
        timeout: Duration, clock: EngineClock = .continuous, until condition: @escaping @Sendable () -> Bool
    ) async -> Bool {
        if condition() { return true }
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                try? await clock.sleep(for: timeout)
                resume(id, with: false)
            }
            let result = await withTaskCancellationHandler {
                await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                    state.withLock { $0.waiters.append(Waiter(id: id, condition: condition, continuation: c)) }
                    // It may have come true between the first check and the registration.
                    if condition() { resume(id, with: true) }
                }
            } onCancel: {
                resume(id, with: false)
            }
            group.cancelAll()
            return result
        }
    }

    private func resume(_ id: Int, with value: Bool) {
        let waiter = state.withLock { s -> Waiter? in
            guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return s.waiters.remove(at: i)
        }
        waiter?.continuation.resume(returning: value)
    }
}
