import Dispatch
import Synchronization
import VigilCore
import VigilFeatures

/// Moving the windows of key groups (source partitions) in and out of the running workers, for
/// a rebalance handoff. Each runs between two items of every ring, so it sits exactly between
/// the records submitted before it and those submitted after.
extension Pipeline {
    /// Takes the entities of `groups` out of every worker once it has processed everything
    /// submitted so far, and returns them (one encoded state per worker). Blocks until every
    /// worker has done so (ingest thread).
    func release(groups: Set<UInt32>) -> [[UInt8]] {
        let states = Mutex([[UInt8]](repeating: [], count: workerCount))
        let done = DispatchGroup()
        for ring in rings {
            done.enter()
            _ = ring.push(
                .control { worker in
                    var out = BinaryWriter()
                    worker.extractor.encodeState(into: &out, groups: groups)
                    worker.extractor.removeEntities(inGroups: groups)
                    states.withLock { $0[worker.shard] = out.bytes }
                    done.leave()
                })
        }
        done.wait()
        return states.withLock { $0 }
    }

    /// Forgets the entities of `groups` (partitions lost without a handoff), in ring order.
    func drop(groups: Set<UInt32>) {
        for ring in rings { _ = ring.push(.control { $0.extractor.removeEntities(inGroups: groups) }) }
    }

    /// Adds the entities of encoded states (`release`'s, or a partition record's) to the
    /// workers that own them under this pipeline's worker count, before any record submitted
    /// after this call. `failed` is called (on a worker thread) for a state that does not load.
    func adopt(_ states: [[UInt8]], failed: @escaping @Sendable (VigilError) -> Void) {
        guard !states.isEmpty else { return }
        let count = workerCount
        for ring in rings {
            _ = ring.push(
                .control { worker in
                    let shard = worker.shard
                    for state in states {
                        do throws(VigilError) {
                            try worker.extractor.addState(state) { StableHash.shard(of: $0, count: count) == shard }
                        } catch {
                            failed(error)
                        }
                    }
                })
        }
    }
}
