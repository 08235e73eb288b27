import ArgumentParser
import Foundation
import VigilEngine

/// `vigil replay`: the whole pipeline from a file to files, no broker needed.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a topology's pipeline over a JSON-lines file of events, writing scores and alerts to files.")

    @OptionGroup var topology: TopologyOption

    @Option(help: "Events, one JSON object per line.")
    var input: String

    @Option(help: "Write one score line per input event here, in input order ('-' for standard output).")
    var scores: String?

    @Option(help: "Write alerts here, one JSON object per line ('-' for standard output).")
    var alerts: String?

    @Option(help: "Labels, one JSON object per line, joined to the events by id (see docs/alerts.md).")
    var labels: String?

    @Option(name: .customLong("dead-letters"), help: "Write dead letters here, one JSON object per line.")
    var deadLetters: String?

    @OptionGroup var workers: WorkerOption

    func run() throws {
        let topology = try self.topology.load()
        var replay = Replay(topology: topology, input: input)
        replay.scores = scores
        replay.alerts = alerts
        replay.labels = labels
        replay.deadLetters = deadLetters
        replay.workers = workers.count
        let bar = ProgressBar(enabled: isatty(2) == 1 && scores != "-" && alerts != "-")
        let clock = ContinuousClock()
        let start = clock.now
        replay.progress = { done, total in bar.update(done: done, total: total) }
        let summary: Pipeline.Summary
        do {
            summary = try replay.run()
        } catch {
            bar.clear()
            printError("replay: \(error.reason)")
            throw ExitCode(1)
        }
        bar.clear()
        printError(SummaryText.render(summary, elapsed: clock.now - start, title: "replay of \(input)"))
    }
}

/// A one-line progress display on standard error, redrawn in place.
final class ProgressBar: Sendable {
    let enabled: Bool
    private let start = ContinuousClock.now

    init(enabled: Bool) { self.enabled = enabled }

    func update(done: Int, total: Int) {
        guard enabled, total > 0 else { return }
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let seconds = (ContinuousClock.now - start).seconds
        let rate = seconds > 0 ? Double(done) / seconds / 1e6 : 0
        let line =
            "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + String(format: "%3.0f%%  %.0f MB/s", fraction * 100, rate)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("\r" + String(repeating: " ", count: 60) + "\r").utf8))
    }
}

/// The closing summary of `replay` and `run`.
enum SummaryText {
    static func render(_ s: Pipeline.Summary, elapsed: Duration, title: String) -> String {
        let seconds = elapsed.seconds
        var lines = [
            "\(title): \(s.events) events in \(String(format: "%.2f", seconds)) s (\(Int(Double(s.events) / max(seconds, 1e-9))) events/s)"
        ]
        lines.append(
            "  scored \(s.scored), alerts \(s.alerts) (\(s.suppressed) more suppressed), late but scored \(s.lateScored)"
        )
        let dead = s.deadLetters.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
        lines.append(
            "  dead letters \(s.deadLetterTotal)" + (dead.isEmpty ? "" : " (" + dead.joined(separator: ", ") + ")"))
        lines.append(
            "  entities \(s.entities), state \(s.stateBytes / 1_048_576) MiB, live threshold \(String(format: "%.4f", s.threshold))"
        )
        if s.labelsReceived > 0 {
            let malformed = s.labelsMalformed > 0 ? " (and \(s.labelsMalformed) unreadable, dead-lettered)" : ""
            lines.append("  labels \(s.labelsReceived) received\(malformed), \(s.labelsJoined) joined to their events")
            let q = s.quality
            func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
            lines.append(
                "  quality over \(q.events) labelled events (\(q.positives) fraud): ROC-AUC \(f(q.rocAUC)), average precision \(f(q.averagePrecision)), precision \(f(q.precision)), recall \(f(q.recall)) at the live threshold"
            )
        }
        return lines.joined(separator: "\n")
    }
}
