import ArgumentParser
import Foundation
import VigilCore
import VigilEngine

/// `vigil replay`: the whole pipeline from a file to files, no broker needed.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a topology's pipeline over a JSON-lines file of events, writing scores and alerts to files.")

    @Option(help: "Topology file (with --verify: the manifest's).")
    var topology: String?

    @Option(help: "Events, one JSON object per line (with --verify: the manifest's).")
    var input: String?

    @Option(help: "Write one score line per input event here, in input order ('-' for standard output).")
    var scores: String?

    @Option(help: "Write alerts here, one JSON object per line ('-' for standard output).")
    var alerts: String?

    @Option(help: "Labels, one JSON object per line, joined to the events by id (see docs/alerts.md).")
    var labels: String?

    @Option(name: .customLong("dead-letters"), help: "Write dead letters here, one JSON object per line.")
    var deadLetters: String?

    @Option(
        help:
            "Write the run's manifest here: input and labels by SHA-256, the topology's hash, model versions, seeds, build, and the SHA-256 of the scores and alerts."
    )
    var manifest: String?

    @Option(
        help:
            "Rerun the replay a manifest records, and exit 1 unless the input, labels, topology, scores and alerts are identical."
    )
    var verify: String?

    @Option(
        name: .customLong("metrics-out"),
        help:
            "Write the replay's figures here at the end, in the Prometheus text format, as `vigil run` serves them on /metrics: records read, scored, alerts, dead letters by reason, the score histogram and the process stage (a node_exporter textfile collector reads such a file)."
    )
    var metricsOut: String?

    @OptionGroup var workers: WorkerOption

    func validate() throws {
        if verify != nil {
            guard topology == nil, input == nil, labels == nil, workers.workers == nil else {
                throw ValidationError("--verify takes the topology, input, labels and workers from the manifest")
            }
        } else if topology == nil || input == nil {
            throw ValidationError("give --topology and --input (or --verify MANIFEST)")
        }
    }

    func run() throws {
        if let verify { return try Self.verify(verify) }
        guard let path = self.topology, let input else { return }
        let topology = try loadTopology(path)
        var replay = Replay(topology: topology, input: input)
        replay.scores = scores
        replay.alerts = alerts
        replay.labels = labels
        replay.deadLetters = deadLetters
        replay.workers = workers.count
        if metricsOut != nil { replay.metrics = EngineMetrics() }
        let bar = ProgressBar(enabled: isatty(2) == 1 && scores != "-" && alerts != "-")
        let clock = ContinuousClock()
        let start = clock.now
        replay.progress = { done, total in bar.update(done: done, total: total) }
        let summary: Pipeline.Summary
        do throws(VigilError) {
            let outcome = try replay.recorded()
            summary = outcome.summary
            if let manifest {
                try RunManifest.of(
                    replay, topologyPath: path, outcome: outcome, input: try .of(input),
                    labels: try labels.map { l throws(VigilError) in try .of(l) }
                ).write(to: manifest)
            }
            if let metricsOut, let metrics = replay.metrics {
                // Whole or not at all: a collector reading the file never sees half of it.
                let partial = metricsOut + ".partial"
                guard (try? Data(metrics.text.utf8).write(to: URL(fileURLWithPath: partial))) != nil,
                    rename(partial, metricsOut) == 0
                else {
                    throw VigilError(.ioFailed, "cannot write \(metricsOut): \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            bar.clear()
            printError("replay: \(error.reason)")
            throw ExitCode(1)
        }
        bar.clear()
        printError(SummaryText.render(summary, elapsed: clock.now - start, title: "replay of \(input)"))
    }

    /// `--verify MANIFEST`: the files first (a changed input needs no rerun to be found), then
    /// the rerun's score and alert digests.
    static func verify(_ path: String) throws {
        do {
            let recorded = try RunManifest.read(path)
            var problems: [String] = []
            let input = try RunManifest.FileDigest.of(recorded.input.path)
            if input.sha256 != recorded.input.sha256 {
                problems.append(
                    "input \(input.path) changed: sha256 \(input.sha256), the manifest records \(recorded.input.sha256)"
                )
            }
            if let labels = recorded.labels {
                let now = try RunManifest.FileDigest.of(labels.path)
                if now.sha256 != labels.sha256 {
                    problems.append(
                        "labels \(labels.path) changed: sha256 \(now.sha256), the manifest records \(labels.sha256)")
                }
            }
            let topology = try loadTopology(recorded.topology.path)
            if topology.configHash != recorded.topology.configHash {
                problems.append(
                    "topology \(recorded.topology.path) changed: hash \(topology.configHash ?? "none"), the manifest records \(recorded.topology.configHash)"
                )
            }
            if !problems.isEmpty {
                printError("verify: FAILED\n  " + problems.joined(separator: "\n  "))
                throw ExitCode(1)
            }
            var replay = Replay(topology: topology, input: recorded.input.path)
            replay.labels = recorded.labels?.path
            replay.workers = recorded.workers
            replay.chunkLines = recorded.chunkLines
            let outcome = try replay.recorded()
            let build = RunManifest.Build.current
            if build != recorded.build {
                printError(
                    "verify: note: recorded by vigil \(recorded.build.vigil) at \(recorded.build.gitCommit), rerun by \(build.vigil) at \(build.gitCommit)"
                )
            }
            if outcome.scoresSHA256 != recorded.outputs.scoresSha256 {
                problems.append(
                    "scores differ: sha256 \(outcome.scoresSHA256), the manifest records \(recorded.outputs.scoresSha256)"
                )
            }
            if outcome.alertsSHA256 != recorded.outputs.alertsSha256 {
                problems.append(
                    "alerts differ: sha256 \(outcome.alertsSHA256), the manifest records \(recorded.outputs.alertsSha256)"
                )
            }
            guard problems.isEmpty else {
                printError("verify: FAILED\n  " + problems.joined(separator: "\n  "))
                throw ExitCode(1)
            }
            print(
                "verified: \(outcome.summary.events) events, \(outcome.summary.alerts) alerts; scores and alerts identical to \(path)"
            )
        } catch let error as VigilError {
            printError("verify: \(error.reason)")
            throw ExitCode(1)
        }
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
            "  entities \(s.entities) (evicted: capacity \(s.evictedForCapacity), idle \(s.evictedIdle)), state \(s.stateBytes / 1_048_576) MiB, live threshold \(String(format: "%.4f", s.threshold))"
        )
        if s.labelsReceived > 0 {
            let malformed = s.labelsMalformed > 0 ? " (and \(s.labelsMalformed) unreadable, dead-lettered)" : ""
            let early = s.labelsJoinedEarly > 0 ? " (\(s.labelsJoinedEarly) of them read before their event)" : ""
            lines.append(
                "  labels \(s.labelsReceived) received\(malformed), \(s.labelsJoined) joined to their events\(early)")
            let q = s.quality
            func f(_ v: Double?) -> String { v.map { String(format: "%.4f", $0) } ?? "n/a" }
            lines.append(
                "  quality over \(q.events) labelled events (\(q.positives) fraud): ROC-AUC \(f(q.rocAUC)), average precision \(f(q.averagePrecision)), precision \(f(q.precision)), recall \(f(q.recall)) at the live threshold"
            )
        }
        return lines.joined(separator: "\n")
    }
}
