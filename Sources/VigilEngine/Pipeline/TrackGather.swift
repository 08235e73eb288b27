import Synchronization
import VigilModels

/// Every worker's model tracks and ensemble metrics, copied when each worker reaches the same
/// point of its ring (so they cover the same records), for the control plane to await.
final class TrackGather: Sendable {
    /// One worker's copy.
    struct Part: Sendable {
        var tracks: [ModelTracks.Track]
        /// The live ensemble's own metrics (final score, real alerts).
        var ensemble: PrequentialMetrics
        /// Each experiment arm's figures.
        var arms: [ArmFigures]
    }

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

extension Pipeline {
    /// Copies every worker's model tracks between two items (ingest thread). Cheap for the
    /// workers: the copies share storage until a worker next writes.
    func gatherTracks() -> TrackGather {
        let gather = TrackGather(workers: workerCount)
        for ring in rings {
            _ = ring.push(
                .control { worker in
                    gather.store(
                        worker.shard,
                        TrackGather.Part(tracks: worker.tracks.tracks, ensemble: worker.metrics, arms: worker.arms))
                })
        }
        return gather
    }
}
