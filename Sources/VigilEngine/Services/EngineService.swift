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

    public init(engine: KafkaEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    public func run() async throws {
        let engine = engine
        let logger = logger
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
            engine.stop()
        }
    }
}
