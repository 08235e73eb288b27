import Foundation

/// An instance's share of the stream: the source partitions it holds, out of all of them. Its
/// forests keep that share of their window, so that they describe the same stretch of the stream
/// however many instances of the group share it (docs/scaling.md, "Forest windows").
extension KafkaEngine {
    /// How many partitions the source topics have in all, for the forests' share of the stream;
    /// 0 (every forest keeps its whole window) when the broker does not say.
    func sourcePartitionCount() -> Int {
        do {
            let metadata = try clients.admin(logger: logger).metadata(timeout: .seconds(10))
            return sourceTopics.reduce(0) { $0 + (metadata.topics[$1] ?? 0) }
        } catch {
            logger.warning(
                "Source partitions not counted: forests keep their whole window whatever this instance's share",
                metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// Logs a new share of the stream (nil: unchanged).
    func sharedStream(_ share: Double?) {
        guard let share else { return }
        stats.streamShareMillionths.store(Int((share * 1e6).rounded()), ordering: .relaxed)
        logger.notice(
            "Share of the stream changed: forest windows scaled to it",
            metadata: [
                "partitions": "\(ingest.ownedSources.count) of \(ingest.sourcePartitions)",
                "share": "\(String(format: "%.3f", share))",
            ])
    }
}
