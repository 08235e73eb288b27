import Foundation
import VigilKafka

/// Starting while the broker is away: the boot is retried, as a running engine waits out an
/// outage, rather than the run exiting.
extension KafkaEngine {
    /// `boot`, retried while the broker is away (a timeout or an unreachable broker while
    /// creating the topics or reading the checkpoints), as a running engine waits out an outage:
    /// `/readyz` stays false meanwhile, and `stop()` ends the wait.
    func bootWaitingForTheBroker(_ topology: Topology) throws(EngineError) {
        var pause = Duration.seconds(1)
        while true {
            do {
                return try boot(topology)
            } catch {
                guard Self.brokerAway(error), !stopping.load(ordering: .acquiring) else { throw error }
                logger.warning(
                    "The broker does not answer at start; waiting for it",
                    metadata: ["error": "\(error)", "retry in": "\(pause)"])
                let until = ContinuousClock.now.advanced(by: pause)
                while ContinuousClock.now < until, !stopping.load(ordering: .acquiring) {
                    Thread.sleep(forTimeInterval: 0.1)
                }
                if stopping.load(ordering: .acquiring) {
                    throw EngineError(.stopping, "stopped while waiting for the broker")
                }
                pause = min(pause * 2, .seconds(10))
            }
        }
    }

    /// Whether a boot failure is the broker being away (retried), not a configuration fault.
    static func brokerAway(_ error: EngineError) -> Bool {
        guard error.code == .kafkaFailed, let kafka = error.cause as? KafkaError else { return false }
        return kafka.isRetriable || kafka.code == .brokerUnavailable || kafka.code == .timedOut
    }
}
