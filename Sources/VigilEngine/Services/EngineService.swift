import Foundation
import Logging
import ServiceLifecycle

/// `KafkaEngine` as a service of a `ServiceGroup`: `run()` runs the engine on a thread of its
/// own (the ingest thread); a graceful shutdown (SIGTERM, SIGINT) stops intake, and the engine
/// drains the rings, flushes the producer, writes a final checkpoint and commits.
/// `ShutdownWatchdog` bounds how long that may take.
public struct EngineService: Service {
    public let engine: KafkaEngine
    private let logger: Logger
    private let onStop: (@Sendable () -> Void)?

    /// - Parameter onStop: called when a graceful shutdown begins (the CLI tells the user what
    ///   the engine is doing meanwhile).
    public init(engine: KafkaEngine, logger: Logger, onStop: (@Sendable () -> Void)? = nil) {
        self.engine = engine
        self.logger = logger
        self.onStop = onStop
    }

    public func run() async throws {
        let engine = engine
        let logger = logger
        let onStop = onStop
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    do {
                        try engine.run()
                        c.resume()
                    } catch {
                        c.resume(throwing: error)
                    }
                }
                thread.name = "vigil-ingest"
                thread.stackSize = 4 << 20
                thread.start()
            }
        } onGracefulShutdown: {
            logger.notice("Stopping: draining the workers, flushing outputs, final checkpoint, committing")
            onStop?()
            engine.stop()
        }
    }
}
