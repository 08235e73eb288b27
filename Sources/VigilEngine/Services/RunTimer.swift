import ServiceLifecycle

/// `vigil run --duration`: stops the engine once `duration` has passed on the engine's clock.
public struct RunTimer: Service {
    public let engine: KafkaEngine
    public let duration: Duration
    private let clock: EngineClock

    public init(engine: KafkaEngine, duration: Duration, clock: EngineClock = .continuous) {
        self.engine = engine
        self.duration = duration
        self.clock = clock
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await clock.sleep(for: duration) }
        } catch {
            return  // the group is shutting down before the time was up
        }
        engine.stop()
    }
}
