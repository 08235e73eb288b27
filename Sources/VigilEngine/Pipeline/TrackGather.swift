import VigilModels

/// Every worker's model tracks and ensemble metrics (`/status`, `/metrics`, the guard).
typealias TrackGather = WorkerGather<TrackCopy>

/// One worker's copy of its model tracks and ensemble metrics.
struct TrackCopy: Sendable {
    var tracks: [ModelTracks.Track]
    /// The live ensemble's own metrics (final score, real alerts).
    var ensemble: PrequentialMetrics
    /// Each experiment arm's figures.
    var arms: [ArmFigures]
    /// The segment counts of its labelled events.
    var segments: SegmentTally
    /// The weight its ensemble gives each model now (learned from labels, or the topology's).
    var weights: [Double]
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
                        TrackCopy(
                            tracks: worker.tracks.tracks, ensemble: worker.metrics, arms: worker.arms,
                            segments: worker.segments.tally, weights: worker.ensemble.effectiveWeights))
                })
        }
        return gather
    }
}
