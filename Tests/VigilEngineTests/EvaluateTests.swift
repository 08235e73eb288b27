import Foundation
import Testing
import VigilCore
import VigilTestKit

@testable import VigilEngine

/// `vigil evaluate` and `vigil replay --manifest/--verify` as a user runs them: the built CLI on
/// generated card payments, checked against Fairlearn and looked at in Chromium. Serialized for
/// the reason ReplayTests is.
@Suite(.ownThread, .serialized) struct EvaluateTests {
    static let shipped = CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path

    /// The shipped topology with one text replacement, written beside the test's files.
    static func variant(_ files: ReplayTests.Files, _ name: String, replacing old: String, with new: String) throws
        -> String
    {
        let text = try String(contentsOfFile: shipped, encoding: .utf8)
        #expect(text.contains(old), "the shipped topology no longer has \(old)")
        let path = files.path(name)
        try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The isolation forest without its window features (counts, sums, means, z-score, distinct
    /// merchants): it keeps the amount, the new-country flag and the time since the last payment.
    /// On the generated stream of these tests (seed 3, 40,000 events) its ROC-AUC is 0.026 lower
    /// and its average precision 58 % lower; the forest on the amount alone is not clearly worse
    /// there (docs/evaluate.md).
    static func degraded(_ files: ReplayTests.Files) throws -> String {
        try variant(
            files, "degraded.yaml",
            replacing:
                "features: [amount, txn_count_10m, amount_sum_1h, amount_z, merchants_1h, new_country, since_last, amount_vs_day]",
            with: "features: [amount, new_country, since_last]")
    }

    static let gate = """
        metrics:
          roc_auc: { threshold: 0.7, min_absolute_change: -0.01 }
          average_precision: { min_relative_change: -0.25 }
          alert_rate: { threshold: 0.02, greater_is_better: false }
        """

    /// `vigil evaluate` of `candidate` on the files, with the gate above when `gated`.
    func evaluate(
        _ files: ReplayTests.Files, candidate: String, baseline: String?, gated: Bool = true, extra: [String] = []
    ) throws -> CLI.Result {
        try Data(Self.gate.utf8).write(to: URL(fileURLWithPath: files.path("gate.yaml")))
        var args = [
            "evaluate", "--topology", candidate, "--input", files.events, "--labels", files.labels, "--workers", "2",
        ]
        if gated { args += ["--gate", files.path("gate.yaml")] }
        if let baseline { args += ["--baseline", baseline] }
        return try CLI.run(args + extra)
    }

    @Test func theGatePassesATopologyAgainstItselfAndFailsADegradedCandidate() throws {
        let files = try ReplayTests.Files(events: 40_000)
        let same = try evaluate(
            files, candidate: Self.shipped, baseline: Self.shipped, extra: ["--json", files.path("same.json")])
        #expect(same.status == 0, "\(same.stdout)\n\(same.stderr)")
        #expect(same.stdout.contains("gate: PASSED"))
        let result = try Evaluation.read(files.path("same.json"))
        let baseline = try #require(result.baseline)
        #expect(
            result.candidate.overall == baseline.overall.with(eventsPerSecond: result.candidate.overall.eventsPerSecond)
        )
        #expect(result.candidate.overall.labelled == 40_000 && result.candidate.overall.positives > 50)
        #expect(result.candidate.slices.count == 10)
        #expect(result.candidate.slices.map(\.figures.events).reduce(0, +) == 40_000)
        #expect(result.newlyDeadLettered == 0)

        let worse = try evaluate(files, candidate: try Self.degraded(files), baseline: Self.shipped)
        #expect(worse.status == 1, "\(worse.stdout)\n\(worse.stderr)")
        #expect(worse.stdout.contains("gate: FAILED"))
        #expect(
            worse.stdout.contains("FAIL roc_auc: candidate - baseline >= -0.01 (min_absolute_change)"),
            "\(worse.stdout)")
        #expect(
            worse.stdout.contains(
                "FAIL average_precision: (candidate - baseline) / |baseline| >= -0.25 (min_relative_change)"))
    }

    @Test func aCandidateThatDeadLettersWhatTheBaselineScoredFailsTheGate() throws {
        let files = try ReplayTests.Files(events: 5_000)
        // A schema change: a field the events do not have becomes required.
        let stricter = try Self.variant(
            files, "stricter.yaml", replacing: "channel: { type: category, required: false }",
            with: "channel: { type: category, required: false }\n  device_id: string")
        let r = try evaluate(files, candidate: stricter, baseline: Self.shipped)
        #expect(r.status == 1)
        #expect(
            r.stdout.contains("FAIL dead_letters: no event the baseline scored is dead-lettered (5000 were)"),
            "\(r.stdout)")
    }

    @Test func aBaselineResultFromAnEarlierRunStandsInForTheBaselineTopology() throws {
        let files = try ReplayTests.Files(events: 40_000)
        let first = try evaluate(
            files, candidate: Self.shipped, baseline: nil, gated: false, extra: ["--json", files.path("b.json")])
        #expect(first.status == 0, "\(first.stdout)\n\(first.stderr)")
        let again = try evaluate(
            files, candidate: Self.shipped, baseline: nil, extra: ["--baseline-results", files.path("b.json")])
        #expect(again.status == 0, "\(again.stdout)\n\(again.stderr)")
        #expect(again.stdout.contains("pass roc_auc: candidate - baseline >= -0.01"))
        let worse = try evaluate(
            files, candidate: try Self.degraded(files), baseline: nil,
            extra: ["--baseline-results", files.path("b.json")])
        #expect(worse.status == 1)
    }

    @Test func theReportRendersInChromiumWithBothCurvesDrawn() throws {
        guard let python = try Self.tools(need: "PIL"), let chromium = Self.chromium() else { return }
        let files = try ReplayTests.Files(events: 40_000)
        let both = try evaluate(
            files, candidate: try Self.degraded(files), baseline: Self.shipped,
            extra: ["--report", files.path("both.html")])
        #expect(both.status == 1)  // the degraded candidate fails; the report is written all the same
        let alone = try evaluate(
            files, candidate: Self.shipped, baseline: nil, gated: false, extra: ["--report", files.path("alone.html")])
        #expect(alone.status == 0)
        let html = try String(contentsOfFile: files.path("both.html"), encoding: .utf8)
        for fetch in ["src=", "href=", "@import", "url("] {
            #expect(!html.contains(fetch), "the report fetches nothing")
        }
        #expect(html.contains("Quality gate FAILED"))
        for page in ["both", "alone"] {
            let status = try Self.run(
                chromium,
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1000,520",
                    "--screenshot=\(files.path(page + ".png"))", "file://\(files.path(page + ".html"))",
                ])
            #expect(status == 0)
        }
        // The top of the page holds the ROC and precision-recall charts only: count the pixels
        // of the candidate's and the baseline's colours there.
        let count = """
            import sys
            from PIL import Image
            def near(p, c): return sum(abs(a - b) for a, b in zip(p, c)) < 60
            for path in sys.argv[1:]:
                img = Image.open(path).convert("RGB")
                w, h = img.size
                px = img.load()
                blue = sum(1 for x in range(w) for y in range(h) if near(px[x, y], (0x1f, 0x77, 0xb4)))
                orange = sum(1 for x in range(w) for y in range(h) if near(px[x, y], (0xff, 0x7f, 0x0e)))
                print(blue, orange)
            """
        let out = try Self.output(python, ["-c", count, files.path("both.png"), files.path("alone.png")])
        let numbers = out.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        try #require(numbers.count == 4, "\(out)")
        // Two 2.5 px curves across a 350 px chart (and the legend's squares) are well over 1,000.
        #expect(numbers[0] > 1_000 && numbers[1] > 1_000, "candidate \(numbers[0]), baseline \(numbers[1]) pixels")
        #expect(numbers[2] > 1_000 && numbers[3] < 50, "without a baseline: \(numbers[2]), \(numbers[3]) pixels")
    }

    @Test func fairnessFiguresEqualFairlearnsOnTheSameAlerts() throws {
        guard let python = try Self.tools(need: "fairlearn") else { return }
        let files = try ReplayTests.Files(events: 30_000)
        let r = try evaluate(
            files, candidate: Self.shipped, baseline: nil, gated: false,
            extra: ["--segment", "channel", "--segment", "country", "--json", files.path("e.json")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        // The same alerts, from a replay's score lines (same topology and workers).
        let replay = try CLI.run([
            "replay", "--topology", Self.shipped, "--input", files.events, "--labels", files.labels, "--workers", "2",
            "--scores", files.path("scores.jsonl"),
        ])
        #expect(replay.status == 0, "\(replay.stderr)")
        let out = try Self.output(
            python,
            ["-c", Self.fairlearnScript, files.events, files.labels, files.path("scores.jsonl"), "channel,country"])
        let theirs = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: [String: Any]])
        let ours = try Evaluation.read(files.path("e.json")).candidate.segments
        #expect(ours.map(\.field) == ["channel", "country"])
        for s in ours {
            let f = try #require(theirs[s.field])
            let pairs: [(String, Double?)] = [
                ("demographic_parity_difference", s.demographicParityDifference),
                ("demographic_parity_ratio", s.demographicParityRatio),
                ("equalized_odds_difference", s.equalizedOddsDifference),
                ("equalized_odds_ratio", s.equalizedOddsRatio),
            ]
            for (name, value) in pairs {
                let expected = f[name] as? Double
                #expect(
                    value == expected || abs((value ?? .nan) - (expected ?? .nan)) < 1e-12,
                    "\(s.field) \(name): ours \(String(describing: value)), Fairlearn \(String(describing: expected))")
            }
            let groups = try #require(f["groups"] as? [String: [String: Double]])
            #expect(Set(groups.keys) == Set(s.groups.map(\.value)))
            for g in s.groups {
                let theirs = try #require(groups[g.value])
                #expect(abs((g.selectionRate ?? .nan) - theirs["selection_rate"]!) < 1e-12, "\(s.field)=\(g.value)")
                #expect(abs((g.truePositiveRate ?? 0) - theirs["tpr"]!) < 1e-12, "\(s.field)=\(g.value) tpr")
                #expect(abs((g.falsePositiveRate ?? 0) - theirs["fpr"]!) < 1e-12, "\(s.field)=\(g.value) fpr")
            }
        }
        #expect(ours.contains { $0.demographicParityDifference ?? 0 > 0 }, "the figures are not all trivially zero")
    }

    @Test func replayVerifyConfirmsARecordedRunAndFindsAChangedInput() throws {
        let files = try ReplayTests.Files(events: 15_000)
        let recorded = try CLI.run([
            "replay", "--topology", Self.shipped, "--input", files.events, "--labels", files.labels, "--workers", "2",
            "--manifest", files.path("m.json"), "--alerts", files.path("alerts.jsonl"),
        ])
        #expect(recorded.status == 0, "\(recorded.stderr)")
        let manifest = try RunManifest.read(files.path("m.json"))
        #expect(manifest.input.sha256 == (try SHA256Text.hex(ofFile: files.events)))
        #expect(manifest.topology.configHash == (try TopologyLoader.load(path: Self.shipped)).configHash)
        #expect(manifest.topology.seeds["iforest"] == 7)
        #expect(manifest.outputs.events == 15_000 && manifest.outputs.alerts > 0)
        #expect(manifest.build.librdkafka.hasPrefix("2."))
        let alerts = try String(contentsOfFile: files.path("alerts.jsonl"), encoding: .utf8)
        #expect(SHA256Text.hex(of: Array(alerts.utf8)) == manifest.outputs.alertsSha256)

        let verified = try CLI.run(["replay", "--verify", files.path("m.json")])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("verified: 15000 events"))

        // One changed amount.
        var lines = try files.lines("events.jsonl")
        lines[1_000] = lines[1_000].replacingOccurrences(
            of: #""amount":[0-9.]+"#, with: #""amount":99999.0"#, options: .regularExpression)
        try (lines.joined(separator: "\n") + "\n").write(toFile: files.events, atomically: true, encoding: .utf8)
        let changed = try CLI.run(["replay", "--verify", files.path("m.json")])
        #expect(changed.status == 1)
        #expect(changed.stderr.contains("input \(files.events) changed"), "\(changed.stderr)")
    }

    // MARK: Tools

    /// The Python with `module`; nil (the test is skipped) outside CI without it.
    static func tools(need module: String) throws -> String? {
        let python = ProcessInfo.processInfo.environment["VIGIL_PYTHON"] ?? "python3"
        if try run("/usr/bin/env", [python, "-c", "import \(module)"]) == 0 { return python }
        if TestBroker.isCI { Issue.record("\(python) has no \(module): scripts/setup.sh testtools installs it") }
        return nil
    }

    static func chromium() -> String? {
        for path in ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        if TestBroker.isCI { Issue.record("no chromium: scripts/setup.sh testtools installs it") }
        return nil
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    static func output(_ python: String, _ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [python] + arguments
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-py-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        p.standardOutput = try FileHandle(forWritingTo: out)
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "python \(arguments.dropFirst(2).joined(separator: " ")) failed")
        return try String(contentsOf: out, encoding: .utf8)
    }

    /// Fairlearn's figures on the events, labels and alert flags of a replay.
    static let fairlearnScript = #"""
        import json, sys, warnings
        import numpy as np
        from fairlearn.metrics import (MetricFrame, selection_rate, true_positive_rate, false_positive_rate,
            demographic_parity_difference, demographic_parity_ratio, equalized_odds_difference, equalized_odds_ratio)
        warnings.simplefilter("ignore")
        events, labels, scores, fields = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
        truth = {}
        for line in open(labels):
            l = json.loads(line)
            truth[l["txn_id"]] = bool(l["is_fraud"])
        rows = []
        for e, s in zip(open(events), open(scores)):
            e, s = json.loads(e), json.loads(s)
            if "dead_letter" not in s and e["txn_id"] in truth:
                rows.append((e, truth[e["txn_id"]], bool(s["alert"])))
        y = np.array([r[1] for r in rows])
        p = np.array([r[2] for r in rows])
        def n(v): return None if v != v else float(v)
        out = {}
        for f in fields:
            a = np.array([str(r[0].get(f, "(missing)")) for r in rows])
            mf = MetricFrame(metrics={"selection_rate": selection_rate, "tpr": true_positive_rate,
                "fpr": false_positive_rate}, y_true=y, y_pred=p, sensitive_features=a)
            out[f] = {
                "groups": {str(k): {m: float(v) for m, v in row.items()}
                           for k, row in mf.by_group.to_dict(orient="index").items()},
                "demographic_parity_difference": n(demographic_parity_difference(y, p, sensitive_features=a)),
                "demographic_parity_ratio": n(demographic_parity_ratio(y, p, sensitive_features=a)),
                "equalized_odds_difference": n(equalized_odds_difference(y, p, sensitive_features=a)),
                "equalized_odds_ratio": n(equalized_odds_ratio(y, p, sensitive_features=a)),
            }
        print(json.dumps(out))
        """#
}

extension QualityFigures {
    func with(eventsPerSecond: Double?) -> QualityFigures {
        var q = self
        q.eventsPerSecond = eventsPerSecond
        return q
    }
}
