import Synchronization

/// A copy of something from every worker, each taken when that worker reaches the same point of
/// its ring (so the copies cover the same records), for the control plane to await: the model
/// tracks (`TrackGather`) and the models themselves (`ModelGather`).
final class WorkerGather<Part: Sendable>: Sendable {
    private let parts: Mutex<[Part?]>
    private let done = AsyncCondition()

    init(workers: Int) {
        parts = Mutex(Array(repeating: nil, count: workers))
    }

    func store(_ shard: Int, _ part: Part) {
        parts.withLock { $0[shard] = part }
        done.signal()
    }

    /// The parts, once every worker has given its own; nil when the task is cancelled first.
    func value() async -> [Part]? {
        guard await done.wait(until: { self.parts.withLock { $0.allSatisfy { $0 != nil } } }) else { return nil }
        return parts.withLock { $0.compactMap { $0 } }
    }
}
