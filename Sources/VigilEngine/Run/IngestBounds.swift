/// How much the ingest loop reads at once and how much it lets the engine hold: records polled
/// per batch, and records in flight between poll and outputs handed to the producer. Reading
/// stops while the engine holds the limit, so a backlog is read as fast as the workers go
/// without waiting in the engine (bench/RESULTS.md, "Bounded in-flight records": with 10,000
/// per poll and no bound, records waited 0.7–1.1 s at p50 while the engine caught up; with these
/// values 20–23 ms, at the same rate).
enum IngestBounds {
    /// Records one poll returns at most (one chunk).
    static let pollBatch = 4_096
    /// Records in flight at most: the next poll waits until its batch fits.
    static let inFlightRecords = 8_192
}
