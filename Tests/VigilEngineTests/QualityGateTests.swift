import Foundation
import Testing
import VigilCore
import VigilTestKit

@testable import VigilEngine

/// The quality gate's rules (MLflow's `MetricThreshold` semantics, negative changes as
/// tolerated drops), its file format, and the topology hash manifests and alerts carry.
@Suite struct QualityGateTests {
    static func evaluation(_ name: String, rocAuc: Double?, alertRate: Double? = 0.005, deadLetters: Int = 0)
        -> TopologyEvaluation
    {
        var q = QualityFigures()
        q.rocAuc = rocAuc
        q.alertRate = alertRate
        q.deadLetters = deadLetters
        let manifest = RunManifest(
            createdAt: "", build: .init(vigil: "t", gitCommit: "t", librdkafka: "t"),
            input: .init(path: "in", sha256: "x", bytes: 0), labels: nil,
            topology: .init(path: name, name: name, configHash: "h", modelVersions: [], seeds: [:]), workers: 2,
            chunkLines: 4096,
            outputs: .init(events: 0, alerts: 0, deadLetters: deadLetters, scoresSha256: "", alertsSha256: ""))
        var segment = SegmentReport(field: "country", groups: [])
        segment.demographicParityDifference = 0.03
        return TopologyEvaluation(
            name: name, manifest: manifest, labelsJoinedByPipeline: 0, overall: q, slices: [], segments: [segment],
            curves: ScoreCurves())
    }

    static func gate(_ text: String) throws -> QualityGate { try QualityGate.parse(text, file: "gate.yaml") }

    @Test func anAbsoluteThresholdFollowsTheMetricsDirection() throws {
        let gate = try Self.gate(
            "metrics: { roc_auc: { threshold: 0.9 }, alert_rate: { threshold: 0.01, greater_is_better: false }, 'demographic_parity_difference:country': { threshold: 0.02 } }"
        )
        let e = Evaluation(candidate: Self.evaluation("c", rocAuc: 0.91, alertRate: 0.02), baseline: nil)
        let checks = gate.check(e)
        #expect(checks.map(\.metric) == ["alert_rate", "demographic_parity_difference:country", "roc_auc"])
        #expect(checks.map(\.passed) == [false, false, true])
        #expect(checks[0].rule == "candidate <= 0.01")
        #expect(checks[1].rule == "candidate <= 0.02", "gaps between segments are lower-is-better by default")
        #expect(checks[1].candidate == 0.03)
    }

    @Test func changesAreMeasuredAgainstTheBaselineAndNegativeOnesAreToleratedDrops() throws {
        let gate = try Self.gate("metrics: { roc_auc: { min_absolute_change: -0.01, min_relative_change: 0.0 } }")
        func run(_ c: Double, _ b: Double) -> [Bool] {
            gate.check(
                Evaluation(candidate: Self.evaluation("c", rocAuc: c), baseline: Self.evaluation("b", rocAuc: b))
            )
            .map(\.passed)
        }
        #expect(run(0.90, 0.90) == [true, true, true], "a topology against itself passes (and the dead-letter rule)")
        #expect(run(0.895, 0.90) == [true, false, true], "within the tolerated absolute drop, but lower")
        #expect(run(0.88, 0.90) == [false, false, true])
        #expect(run(0.95, 0.90) == [true, true, true])
        // MLflow's own use: the candidate must improve by at least the change.
        let strict = try Self.gate("metrics: { roc_auc: { min_absolute_change: 0.02, min_relative_change: 0.05 } }")
        let e = Evaluation(candidate: Self.evaluation("c", rocAuc: 0.93), baseline: Self.evaluation("b", rocAuc: 0.90))
        #expect(strict.check(e).map(\.passed) == [true, false, true])
    }

    @Test func aLowerIsBetterChangeIsMeasuredTheOtherWay() throws {
        let gate = try Self.gate(
            "metrics: { alert_rate: { min_absolute_change: -0.001, min_relative_change: -0.1, greater_is_better: false } }"
        )
        func run(_ c: Double, _ b: Double) -> [QualityGate.Check] {
            gate.check(
                Evaluation(
                    candidate: Self.evaluation("c", rocAuc: 0.9, alertRate: c),
                    baseline: Self.evaluation("b", rocAuc: 0.9, alertRate: b)))
        }
        let rules = run(0.01, 0.01).prefix(2).map(\.rule)
        #expect(
            rules == [
                "baseline - candidate >= -0.001 (min_absolute_change)",
                "(baseline - candidate) / |baseline| >= -0.1 (min_relative_change)",
            ])
        #expect(run(0.0105, 0.01).prefix(2).map(\.passed) == [true, true], "5 % more alerts: within both")
        #expect(run(0.0115, 0.01).prefix(2).map(\.passed) == [false, false], "15 % more: beyond both")
        #expect(run(0.005, 0.01).prefix(2).map(\.passed) == [true, true], "fewer alerts are better here")
    }

    @Test func aRuleOnAChangeWithoutABaselineOrOnAnUndefinedMetricFails() throws {
        let gate = try Self.gate("metrics: { roc_auc: { min_absolute_change: -0.01 }, alert_rate: { threshold: 1 } }")
        let alone = gate.check(Evaluation(candidate: Self.evaluation("c", rocAuc: 0.9), baseline: nil))
        #expect(alone.first { $0.metric == "roc_auc" }?.passed == false)
        #expect(alone.first { $0.metric == "roc_auc" }?.rule.hasSuffix(": no baseline") == true)
        let undefined = gate.check(
            Evaluation(
                candidate: Self.evaluation("c", rocAuc: nil, alertRate: nil),
                baseline: Self.evaluation("b", rocAuc: 0.9)))
        #expect(undefined.filter { !$0.passed }.map(\.metric) == ["alert_rate", "roc_auc"])
    }

    @Test func newDeadLettersFailUnlessAllowed() throws {
        var e = Evaluation(
            candidate: Self.evaluation("c", rocAuc: 0.9, deadLetters: 3), baseline: Self.evaluation("b", rocAuc: 0.9))
        e.newlyDeadLettered = 3
        let block = try Self.gate("metrics: { roc_auc: { threshold: 0.5 } }")
        #expect(block.check(e).last?.metric == "dead_letters")
        #expect(block.check(e).last?.passed == false)
        let allow = try Self.gate("metrics: { roc_auc: { threshold: 0.5 } }\ndead_letters: allow")
        #expect(allow.check(e).allSatisfy { $0.passed })
        // A baseline read from a file has no per-event outcomes: the counts compare.
        e.newlyDeadLettered = nil
        #expect(block.check(e).last?.rule == "candidate dead letters <= baseline's")
        #expect(block.check(e).last?.passed == false)
    }

    @Test(arguments: [
        ("metrics: { auc: { threshold: 1 } }", "unknown metric 'auc'"),
        ("metrics: { roc_auc: { threshold: high } }", "metrics.roc_auc.threshold must be a number"),
        ("metrics: { roc_auc: {} }", "sets no threshold"),
        ("metrics: { roc_auc: { treshold: 1 } }", "unknown key 'treshold'"),
        ("metrics: { 'equalized_odds_ratio:': { threshold: 1 } }", "unknown metric"),
        ("metrics: { roc_auc: { threshold: 1 } }\ndead_letters: maybe", "dead_letters must be 'block' or 'allow'"),
        ("thresholds: {}", "unknown key 'thresholds'"),
        ("- a list", "expected a mapping"),
    ])
    func aBadGateFileIsRefusedWithItsProblemNamed(text: String, message: String) {
        #expect {
            try QualityGate.parse(text, file: "gate.yaml")
        } throws: { error in
            (error as? VigilError)?.reason.contains(message) == true
                && (error as? VigilError)?.reason.hasPrefix("gate.yaml: ") == true
        }
    }

    @Test func segmentsNameDeclaredFields() throws {
        let path = CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(try TopologyLoader.parse(text).segments == ["channel", "country"])
        let wrong = text.replacingOccurrences(of: "segments: [channel, country]", with: "segments: [channel, contry]")
        #expect {
            try TopologyLoader.parse(wrong)
        } throws: { error in
            "\(error)".contains("segments[1]: unknown field 'contry'; did you mean 'country'?")
        }
    }

    @Test func theTopologyHashIgnoresLayoutCommentsAndKeyOrderButNotValues() throws {
        let path = CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let original = try TopologyLoader.parse(text).configHash
        #expect(original?.count == 64)
        // Comments gone, and the `alerts` line moved to the top.
        let alertsLine = try #require(text.split(separator: "\n").first { $0.hasPrefix("alerts:") })
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            .filter { $0 != String(alertsLine) && !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") }
        lines.insert(String(alertsLine), at: 0)
        #expect(try TopologyLoader.parse(lines.joined(separator: "\n")).configHash == original)
        let changed = text.replacingOccurrences(of: "target_alert_rate: 0.005", with: "target_alert_rate: 0.004")
        #expect(try TopologyLoader.parse(changed).configHash != original)
        // A quoted number is a string, not the number.
        #expect(
            TopologyHash.of(ConfigNode(.scalar("4", plain: true)))
                != TopologyHash.of(ConfigNode(.scalar("4", plain: false))))
    }
}
