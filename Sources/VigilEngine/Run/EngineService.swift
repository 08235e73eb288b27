import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `KafkaEngine` as a service of a `ServiceGroup`: `run()` runs the engine on a thread of its
/// own; a graceful shutdown (SIGTERM, SIGINT) stops intake, and the engine drains the rings,
/// flushes the producer, writes a final checkpoint and commits. If that takes longer than
/// `deadline`, the process exits with status 1, saying which step did not finish.
public struct EngineService: Service {
    public let engine: KafkaEngine
    public let deadline: Duration
    private let logger: Logger

    public init(engine: KafkaEngine, deadline: Duration, logger: Logger) {
        self.engine = engine
        self.deadline = deadline
        self.logger = logger
    }

    public func run() async throws {
        let finished = Finished()
        let engine = engine
        let deadline = deadline
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    do {
                        try engine.run()
                        finished.flag.store(true, ordering: .releasing)
                        c.resume()
                    } catch {
                        finished.flag.store(true, ordering: .releasing)
                        c.resume(throwing: error)
                    }
                }
                thread.name = "vigil-ingest"
                thread.stackSize = 4 << 20
                thread.start()
            }
        } onGracefulShutdown: {
            FileHandle.standardError.write(
                Data(
                    "vigil: stopping: draining the workers, flushing outputs, final checkpoint, committing (deadline \(deadline))\n"
                        .utf8))
            engine.stop()
            Self.watch(finished, engine: engine, deadline: deadline)
        }
    }

    private final class Finished: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// Exits with status 1 if the engine has not finished within `deadline`.
    private static func watch(_ finished: Finished, engine: KafkaEngine, deadline: Duration) {
        let thread = Thread {
            let end = ContinuousClock.now.advanced(by: deadline)
            while ContinuousClock.now < end {
                if finished.flag.load(ordering: .acquiring) { return }
                usleep(20_000)
            }
            if finished.flag.load(ordering: .acquiring) { return }
            FileHandle.standardError.write(
                Data(
                    "vigil: shutdown deadline of \(deadline) passed while \(engine.phase); exiting with status 1 (not finished: \(engine.phase); unacknowledged outputs are read again after the restart)\n"
                        .utf8))
            exit(1)
        }
        thread.name = "vigil-shutdown-deadline"
        thread.start()
    }
}

/// Reloads the topology on SIGHUP, until the group shuts down.
public struct ReloadOnSignal: Service {
    public let engine: KafkaEngine

    public init(engine: KafkaEngine) { self.engine = engine }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        let engine = engine
        for await _ in signals.cancelOnGracefulShutdown() {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                Thread {
                    _ = engine.reload(source: .signal)
                    c.resume()
                }.start()
            }
        }
    }
}
