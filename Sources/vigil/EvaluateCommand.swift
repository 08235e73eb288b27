import ArgumentParser
import Foundation
import VigilCore
import VigilEngine
import VigilModels

/// `vigil evaluate`: a candidate topology against a baseline on recorded events and labels,
/// with a quality gate for CI.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Replay events through a candidate topology and a baseline, and compare their quality.",
        discussion: """
            Both topologies run through the replay pipeline (the code of `vigil run`). Every event is \
            joined to its label; ROC-AUC, average precision, precision, recall and F1 at the live \
            threshold, alert and dead-letter figures are given overall, per slice of event time and \
            per segment. With --gate, exits 1 when any rule fails (docs/evaluate.md).
            """)

    @Option(help: "The candidate topology file.")
    var topology: String

    @Option(help: "The baseline topology file, run on the same input.")
    var baseline: String?

    @Option(
        name: .customLong("baseline-results"),
        help: "A baseline's evaluation result (an earlier --json FILE), instead of running --baseline.")
    var baselineResults: String?

    @Option(help: "Events, one JSON object per line.")
    var input: String

    @Option(help: "Labels, one JSON object per line.")
    var labels: String

    @Option(name: .customLong("label-key"), help: "Label field holding the event id (default: from a model's labels).")
    var labelKey: String?

    @Option(name: .customLong("label-field"), help: "Label field holding the truth (default: from a model's labels).")
    var labelField: String?

    @Option(
        name: .customLong("segment"),
        help: "An event field to break figures down by (repeatable; default: the candidate's segments:).")
    var segments: [String] = []

    @Option(help: "Slice length in event time, e.g. 1h or 1d (default: ten equal slices).")
    var slice: String?

    @Option(help: "Quality gate file (YAML): exit 1 when a rule fails.")
    var gate: String?

    @Option(help: "Write the whole result as JSON here.")
    var json: String?

    @Option(help: "Write a self-contained HTML report here.")
    var report: String?

    @OptionGroup var workers: WorkerOption

    func validate() throws {
        if baseline != nil && baselineResults != nil {
            throw ValidationError("give --baseline or --baseline-results, not both")
        }
        if (labelKey == nil) != (labelField == nil) {
            throw ValidationError("--label-key and --label-field go together")
        }
    }

    func run() throws {
        let candidate = try loadTopology(topology)
        var evaluator = Evaluator(
            candidate: .init(topology: candidate, path: topology), input: input, labels: labels)
        if let baseline { evaluator.baseline = .init(topology: try loadTopology(baseline), path: baseline) }
        if let labelKey, let labelField {
            evaluator.labelSource = LabelSource(topic: "labels", key: labelKey, field: labelField)
        }
        evaluator.segments = segments.isEmpty ? candidate.segments : segments
        evaluator.workers = workers.count
        if let slice {
            guard let d = DurationText.parse(slice), d > .zero else {
                throw ValidationError("--slice \(slice): expected a duration such as 30m, 1h or 1d")
            }
            evaluator.slice = d
        }
        do {
            // Files that can be refused are read before the replays.
            let qualityGate = try gate.map { path throws(VigilError) in try QualityGate.load(path) }
            let earlier = try baselineResults.map { path throws(VigilError) in try Evaluation.read(path) }
            let clock = ContinuousClock()
            let started = clock.now
            var evaluation = try evaluator.run()
            let evaluated = (clock.now - started).seconds
            if let baselineResults, let earlier {
                evaluation.baseline = earlier.candidate
                if earlier.candidate.manifest.input.sha256 != evaluation.candidate.manifest.input.sha256 {
                    printError(
                        "evaluate: warning: \(baselineResults) was measured on another input (sha256 \(earlier.candidate.manifest.input.sha256.prefix(12)))"
                    )
                }
            }
            let checks = qualityGate?.check(evaluation)
            print(EvaluationText.render(evaluation, checks: checks))
            if let json { try evaluation.write(to: json) }
            let reportStart = clock.now
            if let report { try EvaluationReport.write(evaluation, checks: checks, to: report) }
            // Where the time went (what bench/evaluate.sh reads): the replays, then the rest.
            let replays = [evaluation.candidate, evaluator.baseline == nil ? nil : evaluation.baseline].compactMap {
                $0.flatMap { e in e.overall.eventsPerSecond.map { Double(e.overall.events) / $0 } }
            }
            printError(
                "evaluate: replays "
                    + replays.map { String(format: "%.2f s", $0) }.joined(separator: " + ")
                    + String(
                        format: ", figures %.2f s, report %.2f s", evaluated - replays.reduce(0, +),
                        (clock.now - reportStart).seconds))
            if let checks, checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
        } catch let error as VigilError {
            printError("evaluate: \(error.reason)")
            throw ExitCode(1)
        }
    }
}
