import Synchronization
import VigilFeatures

/// Counts the records a pipeline was given whose chunk has not yet been handed to the sink, so
/// that the ingest loop can stop reading while the engine already holds enough work: a backlog
/// then waits on the broker, not in the engine's queues, and a record's time from poll to
/// output stays bounded while the engine catches up (issue 20; docs/ARCHITECTURE.md).
final class InFlightRecords: Sendable {
    private let count = Atomic<Int>(0)
    /// How many times a wait found too many records in flight.
    private let waits = Atomic<Int>(0)

    /// The most records in flight at once so far.
    private let highWater = Atomic<Int>(0)

    /// Records given to the pipeline (ingest thread).
    func add(_ n: Int) {
        let now = count.add(n, ordering: .relaxed).newValue
        if now > highWater.load(ordering: .relaxed) { highWater.store(now, ordering: .relaxed) }
    }

    /// Records whose chunk the sink has taken (whichever thread finished the chunk).
    func done(_ n: Int) {
        count.subtract(n, ordering: .releasing)
    }

    /// The most records in flight at once so far (only the ingest thread raises it).
    var peak: Int { highWater.load(ordering: .relaxed) }

    /// Records in flight now.
    var current: Int { count.load(ordering: .acquiring) }

    /// Waits while more than `limit` records are in flight (the ShardRing's backoff: a spin, then
    /// yields, then naps of up to 1 ms).
    func wait(atMost limit: Int) {
        guard count.load(ordering: .acquiring) > limit else { return }
        waits.add(1, ordering: .relaxed)
        var backoff = Backoff()
        while count.load(ordering: .acquiring) > limit { backoff.wait() }
    }

    /// How many waits found the limit reached: the backpressure ingest felt.
    var limitWaits: Int { waits.load(ordering: .relaxed) }
}
