/// How much the ingest loop reads at once and how much it lets the engine hold: records polled
/// per batch, and records in flight between poll and outputs handed to the producer. Reading
/// stops while the engine holds the limit, so a backlog is read as fast as the workers go
/// without waiting in the engine (bench/RESULTS.md, "Bounded in-flight records": with 10,000
/// per poll and no bound, records waited 0.7–1.1 s at p50 while the engine caught up; with this
/// bound 50–59 ms). Polls of 4,096 gave 20–23 ms, but a backlog with its labels then joined 600k
/// labels of 3M against 1.1M: the label pacer releases labels up to the newest event time of
/// any partition, and smaller polls mix fewer partitions (issue 20's note).
enum IngestBounds {
    /// Records one poll returns at most (one chunk).
    static let pollBatch = 10_000
    /// Records in flight at most: the next poll waits until its batch fits.
    static let inFlightRecords = 20_000
}
