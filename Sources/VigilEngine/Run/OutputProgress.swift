import Foundation

/// Lets one thread wait until outputs are acknowledged without polling: the sink signals after
/// it marks records done (a finished chunk, a delivery report), and the waiter re-checks its
/// condition then. The checkpoint thread waits on it before a checkpoint may be published.
///
/// A signal costs a lock and a broadcast: once per chunk and once per acknowledged alert or dead
/// letter, not per event.
final class OutputProgress: @unchecked Sendable {
    // Invariant: `condition` is an NSCondition, which is thread-safe; nothing else is stored.
    private let condition = NSCondition()

    /// Something was marked done: waiters re-check.
    func signal() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `done()` holds or `timeout` passes; `done` is evaluated after each signal.
    /// - Returns: whether `done()` held.
    func wait(timeout: Duration, until done: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout.seconds)
        condition.lock()
        defer { condition.unlock() }
        while !done() {
            // A signal can only be sent with the lock held, so none is lost between the check
            // and the wait.
            if !condition.wait(until: deadline) { return done() }
        }
        return true
    }
}
