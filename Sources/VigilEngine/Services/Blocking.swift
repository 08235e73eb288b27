import Foundation

/// Runs blocking work (librdkafka calls that wait on the network) on a thread of its own, so a
/// control-plane task never holds one of the cooperative pool's few threads while it waits.
enum Blocking {
    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in
            Thread {
                do { c.resume(returning: try body()) } catch { c.resume(throwing: error) }
            }.start()
        }
    }
}
