import VigilCore

/// Splits batches by the worker that owns each event's entity (`StableHash.shard`), keeping the
/// events' order within each part: with one ring per worker, every entity's events reach its one
/// worker in arrival order, so no two workers ever share an entity's state.
public struct ShardRouter: Sendable {
    /// Number of workers.
    public let shards: Int

    public init(shards: Int) {
        precondition(shards >= 1, "a router needs at least one shard")
        self.shards = shards
    }

    /// The worker owning the entity with key hash `key`.
    @inline(__always)
    public func shard(of key: UInt64) -> Int { StableHash.shard(of: key, count: shards) }

    /// One part per worker (possibly empty), and for each part the positions its events had in
    /// `batch`, so results can be put back in input order.
    public func split(_ batch: EventBatch) -> [(batch: EventBatch, positions: [Int])] {
        var parts = (0..<shards).map { _ in
            (batch: EventBatch(layout: batch.layout, capacity: batch.count / shards + 1), positions: [Int]())
        }
        for i in 0..<batch.count {
            let s = shard(of: batch.keys[i])
            parts[s].batch.append(from: batch, at: i)
            parts[s].positions.append(i)
        }
        return parts
    }
}
