import Foundation
import ServiceLifecycle

/// Exits the process with status 1 when a stopping engine has not finished within `deadline`
/// (on the engine's clock), naming the step it was in: a stop that hangs must not hang forever.
/// Unacknowledged outputs are read again after the restart.
public struct ShutdownWatchdog: Service {
    public let engine: KafkaEngine
    public let deadline: Duration
    private let clock: EngineClock
    private let onExpiry: @Sendable (EnginePhase) -> Void

    /// - Parameter onExpiry: what happens when the deadline passes (default: say so on standard
    ///   error and exit with status 1).
    public init(
        engine: KafkaEngine, deadline: Duration, clock: EngineClock = .continuous,
        onExpiry: (@Sendable (EnginePhase) -> Void)? = nil
    ) {
        self.engine = engine
        self.deadline = deadline
        self.clock = clock
        self.onExpiry =
            onExpiry ?? { phase in
                FileHandle.standardError.write(
                    Data(
                        "vigil: shutdown deadline of \(deadline) passed while \(phase.rawValue); exiting with status 1 (unacknowledged outputs are read again after the restart)\n"
                            .utf8))
                exit(1)
            }
    }

    public func run() async throws {
        await watch()
        // A service of the group returns only when the group shuts it down (first in the list,
        // the watchdog is shut down last, after the engine).
        try? await gracefulShutdown()
    }

    private func watch() async {
        await engine.waitFor(.draining)
        guard !Task.isCancelled else { return }
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask { [engine] in
                await engine.waitFor(.stopped)
                return true
            }
            group.addTask { [clock, deadline] in
                try? await clock.sleep(for: deadline)
                return false
            }
            let first = await group.next() ?? true
            group.cancelAll()
            return first
        }
        // The deadline and the end may come together: only a stop still under way has expired.
        let phase = engine.phase
        if !finished, phase != .stopped, !Task.isCancelled { onExpiry(phase) }
    }
}
