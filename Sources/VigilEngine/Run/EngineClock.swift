/// The clock the engine's timers read (commits, checkpoint intervals, the file watcher, the
/// run-time bound, the shutdown deadline): any `Clock` measured in `Duration`, so tests drive the
/// timers with a manual clock instead of waiting on wall time.
public struct EngineClock: Sendable {
    private let read: @Sendable () -> Duration
    private let pause: @Sendable (Duration) async throws -> Void

    /// Time on `clock`, counted from now.
    public init<C: Clock>(_ clock: C) where C.Duration == Duration {
        let origin = clock.now
        read = { origin.duration(to: clock.now) }
        pause = { try await clock.sleep(for: $0) }
    }

    /// The system's monotonic clock.
    public static var continuous: EngineClock { EngineClock(ContinuousClock()) }

    /// Time since this clock was made.
    public var now: Duration { read() }

    /// Suspends for `duration` of this clock's time.
    /// - Throws: `CancellationError` when the task is cancelled.
    public func sleep(for duration: Duration) async throws { try await pause(duration) }
}
