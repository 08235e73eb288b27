import ServiceLifecycle

extension EngineClock {
    /// The wait between two rounds of a periodic service (the guard, the federation): sleeps
    /// `every`, and says false once the service group shuts down or the task is cancelled.
    func nextRound(after every: Duration) async -> Bool {
        do {
            try await cancelWhenGracefulShutdown { try await sleep(for: every) }
        } catch {
            return false
        }
        return !(Task.isCancelled || Task.isShuttingDownGracefully)
    }
}
