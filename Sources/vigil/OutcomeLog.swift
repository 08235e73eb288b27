import ArgumentParser
import Foundation
import VigilEngine

#if canImport(Glibc)
    import Glibc
#endif

/// `vigil run --record-outcomes FILE`: one line per source record as its chunk finishes —
/// `topic partition offset outcome [alert_id]`, tab-separated — appended with one `write(2)` per
/// chunk, so the lines of every finished chunk survive even a SIGKILL. For audits ("was this
/// record scored, by which instance?") and for the scale-out tests, which check every record of
/// a group's run against the alerts topic.
final class OutcomeLog: Sendable {
    private let fd: Int32

    init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ValidationError("--record-outcomes \(path): \(String(cString: strerror(errno)))") }
    }

    deinit { close(fd) }

    func record(_ chunk: InputChunk) {
        var alerts: [Int: String] = [:]
        for alert in chunk.allAlerts { alerts[alert.index] = alert.id }
        var text = ""
        text.reserveCapacity(chunk.count * 48)
        for i in 0..<chunk.count {
            let p = chunk.position(i)
            let outcome: String
            switch chunk.outcome(i) {
            case .pending: outcome = "pending"
            case .scored: outcome = "scored"
            case .alerted: outcome = "alerted"
            case .deadLettered: outcome = "dead_letter"
            }
            text += "\(p.topic)\t\(p.partition)\t\(p.offset)\t\(outcome)"
            if let id = alerts[i] { text += "\t\(id)" }
            text += "\n"
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
