import Foundation
import VigilCore
import VigilModels

/// `vigil evaluate`: replays one input through a candidate topology and a baseline, with the
/// very pipeline `vigil run` uses, joins every event to its label and reports quality overall,
/// per slice of event time and per segment, with the manifest of each run.
public struct Evaluator {
    /// A topology to evaluate and the file it came from.
    public struct Subject: Sendable {
        public var topology: Topology
        public var path: String
        public init(topology: Topology, path: String) {
            self.topology = topology
            self.path = path
        }
    }

    public var candidate: Subject
    public var baseline: Subject?
    public var input: String
    public var labels: String
    /// Where labels keep the event id and the truth; by default the first label source of the
    /// candidate's or the baseline's models.
    public var labelSource: LabelSource?
    /// Fields to break the figures down by.
    public var segments: [String] = []
    /// Slice length in event time; nil for `sliceCount` equal slices.
    public var slice: Duration?
    public var sliceCount = 10
    public var workers = 2

    public init(candidate: Subject, input: String, labels: String) {
        self.candidate = candidate
        self.input = input
        self.labels = labels
    }

    /// Runs the candidate, then the baseline.
    /// - Throws: `VigilError` for unreadable files, or labels no model says how to read.
    public func run() throws(VigilError) -> Evaluation {
        guard
            let source = labelSource ?? candidate.topology.models.compactMap(\.kind.labels).first
                ?? baseline?.topology.models.compactMap(\.kind.labels).first
        else {
            throw VigilError(
                .invalidArgument,
                "no model reads labels, so it is not known which label fields hold the event id and the truth: give --label-key and --label-field"
            )
        }
        let inputDigest = try RunManifest.FileDigest.of(input)
        let labelsDigest = try RunManifest.FileDigest.of(labels)
        let truth = try Self.loadLabels(labels, source: source, timeField: candidate.topology.source.time?.field)
        let c = try evaluate(candidate, truth: truth, input: inputDigest, labels: labelsDigest)
        let b = try baseline.map { s throws(VigilError) in
            try evaluate(s, truth: truth, input: inputDigest, labels: labelsDigest)
        }
        var evaluation = Evaluation(candidate: c.result, baseline: b?.result)
        if let b {
            evaluation.newlyDeadLettered =
                zip(c.outcomes, b.outcomes).filter {
                    $0 == .deadLettered && $1 != .deadLettered
                }.count
        }
        return evaluation
    }

    private func evaluate(
        _ subject: Subject, truth: [UInt64: Bool], input: RunManifest.FileDigest, labels: RunManifest.FileDigest
    ) throws(VigilError) -> (result: TopologyEvaluation, outcomes: [EventOutcome]) {
        let recorder = OutcomeRecorder(segments: segments)
        var replay = Replay(topology: subject.topology, input: self.input)
        replay.workers = workers
        replay.observer = { recorder.observe($0) }
        // Models that learn from labels get them, as in production; the rest only are measured.
        if subject.topology.models.contains(where: { $0.kind.labels != nil }) { replay.labels = self.labels }
        let outcome = try replay.recorded()
        let manifest = try RunManifest.of(
            replay, topologyPath: subject.path, outcome: outcome, input: input,
            labels: replay.labels == nil ? nil : labels)
        let data = EvaluatedEvents(recorder, labels: truth)
        var overall = QualityFigures.of(data, rows: 0..<data.count)
        let seconds = outcome.elapsed.seconds
        overall.eventsPerSecond = seconds > 0 ? Double(data.count) / seconds : nil
        let parts = data.slices(length: slice.map { $0.wholeMilliseconds }, count: sliceCount)
        let stability = PopulationStability(
            pooled: (0..<data.count).filter(data.isScored).map { data.scores[$0] }.filter(\.isFinite))
        var previous: [Double] = []
        let slices = parts.map { part -> SliceFigures in
            var figures = QualityFigures.of(data, rows: part.rows)
            let scores = part.rows.map { data.scores[$0] }.filter(\.isFinite)
            figures.scorePsi = stability.index(reference: previous, sample: scores)
            if !scores.isEmpty { previous = scores }
            return SliceFigures(startMs: part.start, endMs: part.end, figures: figures)
        }
        let result = TopologyEvaluation(
            name: subject.topology.name, manifest: manifest, labelsJoinedByPipeline: outcome.summary.labelsJoined,
            overall: overall, slices: slices,
            segments: segments.indices.map { SegmentReport.of(data, field: $0) }, curves: ScoreCurves.of(data))
        return (result, recorder.outcomes)
    }

    /// Each event id's label (the last one wins when an id is labelled twice).
    static func loadLabels(_ path: String, source: LabelSource, timeField: String?) throws(VigilError) -> [UInt64: Bool]
    {
        let labels = try LabelDecoder(source: source, timeField: timeField).decodeFile(path)
        return Dictionary(labels.map { ($0.record.idHash, $0.record.isFraud) }, uniquingKeysWith: { _, last in last })
    }
}

/// The evaluation of one topology: its run's manifest and every figure.
public struct TopologyEvaluation: Codable, Sendable, Equatable {
    public var name: String
    public var manifest: RunManifest
    /// Labels the pipeline itself joined for learning (the figures join every label).
    public var labelsJoinedByPipeline: Int
    public var overall: QualityFigures
    public var slices: [SliceFigures]
    public var segments: [SegmentReport]
    public var curves: ScoreCurves
}

/// What `vigil evaluate` found: the candidate, the baseline (run now, or read from an earlier
/// result), and the events only the candidate dead-lettered.
public struct Evaluation: Codable, Sendable, Equatable {
    public var version = 1
    public var candidate: TopologyEvaluation
    public var baseline: TopologyEvaluation?
    /// Events the candidate dead-lettered and the baseline scored (nil when the baseline was
    /// read from a file: then only the counts compare).
    public var newlyDeadLettered: Int?

    public init(candidate: TopologyEvaluation, baseline: TopologyEvaluation?) {
        self.candidate = candidate
        self.baseline = baseline
    }

    /// Writes the result as indented JSON with sorted keys.
    public func write(to path: String) throws(VigilError) { try JSONFile.write(self, to: path) }

    public static func read(_ path: String) throws(VigilError) -> Evaluation {
        try JSONFile.read(path, as: "an evaluation result")
    }
}
