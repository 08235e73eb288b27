import ServiceLifecycle
import UnixSignals

/// Reloads the topology on SIGHUP, until the group shuts down.
public struct ReloadOnSignal: Service {
    public let engine: KafkaEngine

    public init(engine: KafkaEngine) { self.engine = engine }

    public func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            _ = await engine.reload(source: .signal)
        }
    }
}
