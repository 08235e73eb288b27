import ArgumentParser
import Foundation
import VigilEngine

#if canImport(Glibc)
    import Glibc
#endif

/// `vigil run --record-outcomes FILE`: one line per source record as its chunk finishes —
/// `topic partition offset outcome score finished_ms event_id alert_id`, tab-separated, `-` for
/// what a record has not — appended with one `write(2)` per chunk, so the lines of every
/// finished chunk survive even a SIGKILL. For audits ("was this record scored, when, by which
/// instance?"), for the scale-out tests, which check every record of a group's run against the
/// alerts topic, and for bench/scale-out.sh (pauses per partition, quality across instances).
final class OutcomeLog: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("--record-outcomes \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    /// A text as one cell: tabs and line breaks become spaces, and an empty text is `-`.
    static func cell(_ text: String) -> String {
        text.isEmpty ? "-" : String(text.map { $0 == "\t" || $0.isNewline ? " " : $0 })
    }

    func record(_ chunk: InputChunk) {
        var alerts: [Int: String] = [:]
        for alert in chunk.allAlerts { alerts[alert.index] = alert.id }
        let finished = Int64(Date().timeIntervalSince1970 * 1000)
        var text = ""
        text.reserveCapacity(chunk.count * 96)
        for i in 0..<chunk.count {
            let p = chunk.position(i)
            let outcome: String
            var score = "-"
            switch chunk.outcome(i) {
            case .pending: outcome = "pending"
            case .scored, .alerted:
                outcome = chunk.outcome(i) == .alerted ? "alerted" : "scored"
                score = String(format: "%.6f", chunk.score(i))
            case .deadLettered: outcome = "dead_letter"
            }
            let id = chunk.idText(i).map { Self.cell($0) } ?? "-"
            text +=
                "\(p.topic)\t\(p.partition)\t\(p.offset)\t\(outcome)\t\(score)\t\(finished)\t\(id)\t\(alerts[i] ?? "-")\n"
        }
        var bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n <= 0 { return }
            written += n
        }
        bytes.removeAll()
    }
}
