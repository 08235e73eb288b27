import Dispatch
import Synchronization

/// Worker states gathered at a checkpoint cut, filled in by each worker's thread.
public final class CapturedState: Sendable {
    private let states: Mutex<[WorkerState?]>
    private let longest = Mutex<Duration>(.zero)
    private let group = DispatchGroup()

    /// The keyed feature stages' state, captured on the ingest thread at the cut; it goes with
    /// worker 0's.
    private let keyed: [UInt8]?

    init(workers: Int, keyed: [UInt8]? = nil) {
        self.keyed = keyed
        states = Mutex(Array(repeating: nil, count: workers))
        for _ in 0..<workers { group.enter() }
    }

    func store(_ shard: Int, _ state: WorkerState, took: Duration) {
        states.withLock { $0[shard] = state }
        longest.withLock { $0 = max($0, took) }
        group.leave()
    }

    /// The longest time a worker spent capturing its state: how long the cut held it up.
    var pause: Duration { longest.withLock { $0 } }

    /// Waits until every worker has captured its state.
    func wait() -> [WorkerState] {
        group.wait()
        var all = states.withLock { $0.map { $0! } }
        if let keyed { all[0].sections.append((Pipeline.keyedSection, keyed)) }
        return all
    }
}
