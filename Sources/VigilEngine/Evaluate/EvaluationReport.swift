import Foundation
import VigilCore

/// `vigil evaluate --report FILE.html`: one self-contained page (inline SVG and CSS, no script,
/// nothing fetched) with the ROC and precision-recall curves of candidate and baseline, score
/// histograms by label, alert rate, threshold and drift over time, the segment tables, the
/// gate's checks and both run manifests.
public enum EvaluationReport {
    static let candidateColor = "#1f77b4"
    static let baselineColor = "#ff7f0e"
    static let fraudColor = "#d62728"
    static let legitimateColor = "#7f7f7f"

    public static func write(_ e: Evaluation, checks: [QualityGate.Check]?, to path: String) throws(VigilError) {
        let html = render(e, checks: checks)
        guard FileManager.default.createFile(atPath: path, contents: Data(html.utf8)) else {
            throw VigilError(.ioFailed, "cannot write \(path)")
        }
    }

    public static func render(_ e: Evaluation, checks: [QualityGate.Check]?) -> String {
        let runs =
            [(e.candidate, "candidate", candidateColor)] + (e.baseline.map { [($0, "baseline", baselineColor)] } ?? [])
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>Vigil evaluation: \(HTML.escape(e.candidate.name))</title>
            <style>
            body { font: 14px/1.4 sans-serif; margin: 24px; color: #222; }
            h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
            table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
            td:first-child, th:first-child { text-align: left; }
            .charts { display: flex; flex-wrap: wrap; gap: 16px; }
            .chart text { font: 11px sans-serif; fill: #333; } .chart .title { font-size: 13px; font-weight: bold; }
            .pass { color: #2a7d2a; } .fail { color: #c62828; font-weight: bold; }
            code { font-size: 12px; word-break: break-all; }
            </style></head><body>
            <h1>Vigil evaluation of <code>\(HTML.escape(e.candidate.manifest.topology.path))</code></h1>

            """
        if let checks {
            let failed = checks.filter { !$0.passed }.count
            h +=
                failed == 0
                ? #"<p class="pass">Quality gate passed (\#(checks.count) checks).</p>"#
                : #"<p class="fail">Quality gate FAILED: \#(failed) of \#(checks.count) checks.</p>"#
        }
        h += "<h2>Curves</h2><div class=\"charts\">"
        var roc = SVGChart(
            title: "ROC", xLabel: "false positive rate", yLabel: "true positive rate", x: 0...1, y: 0...1)
        roc.diagonal = true
        roc.legendBelow = true
        h += roc.lines(
            runs.map { .init(name: "\($0.1) AUC \(num($0.0.overall.rocAuc, 3))", color: $0.2, points: $0.0.curves.roc) }
        )
        let pr = SVGChart(title: "Precision-recall", xLabel: "recall", yLabel: "precision", x: 0...1, y: 0...1)
        h += pr.lines(
            runs.map {
                .init(
                    name: "\($0.1) AP \(num($0.0.overall.averagePrecision, 3))", color: $0.2,
                    points: $0.0.curves.precisionRecall)
            })
        h += "</div>"
        h += "<h2>Overall</h2><table><tr><th>metric</th>"
        h += runs.map { "<th>\($0.1) (\(HTML.escape($0.0.name)))</th>" }.joined() + "</tr>"
        let rows: [(String, (QualityFigures) -> String)] = [
            ("events", { String($0.events) }), ("scored", { String($0.scored) }),
            ("labelled", { String($0.labelled) }), ("fraud", { String($0.positives) }),
            ("alerts", { String($0.alerts) }), ("ROC-AUC", { num($0.rocAuc, 4) }),
            ("average precision", { num($0.averagePrecision, 4) }), ("precision", { num($0.precision, 4) }),
            ("recall", { num($0.recall, 4) }), ("F1", { num($0.f1, 4) }), ("alert rate", { num($0.alertRate, 5) }),
            ("alerts per day", { num($0.alertsPerDay, 1) }), ("dead-letter share", { num($0.deadLetterShare, 5) }),
            ("mean threshold", { num($0.meanThreshold, 4) }), ("events/s", { num($0.eventsPerSecond, 0) }),
        ]
        for (name, value) in rows {
            h += "<tr><td>\(name)</td>" + runs.map { "<td>\(value($0.0.overall))</td>" }.joined() + "</tr>"
        }
        h += "</table>"
        if let newly = e.newlyDeadLettered { h += "<p>Events dead-lettered by the candidate only: \(newly).</p>" }

        if let checks {
            h +=
                "<h2>Quality gate</h2><table><tr><th>result</th><th>metric</th><th>rule</th><th>candidate</th><th>baseline</th></tr>"
            for c in checks {
                h +=
                    "<tr><td class=\"\(c.passed ? "pass" : "fail")\">\(c.passed ? "pass" : "FAIL")</td><td>\(HTML.escape(c.metric))</td><td>\(HTML.escape(c.rule))</td><td>\(num(c.candidate, 6))</td><td>\(num(c.baseline, 6))</td></tr>"
            }
            h += "</table>"
        }
        h += "<h2>Score histograms by label</h2><div class=\"charts\">"
        for run in runs {
            let c = run.0.curves
            let fraud = shares(c.fraudCounts)
            let legit = shares(c.legitimateCounts)
            let top = max(fraud.max() ?? 0, legit.max() ?? 0, 1e-9)
            let chart = SVGChart(
                title: "\(run.1): share of each class per score bin", xLabel: "score", yLabel: "share of the class",
                x: c.histogramLow...c.histogramHigh, y: 0...top)
            h += chart.bars([("fraud", fraudColor, fraud), ("legitimate", legitimateColor, legit)])
        }
        h += "</div><h2>Over time</h2><div class=\"charts\">"
        let allSlices = runs.flatMap(\.0.slices)
        if let first = allSlices.map(\.startMs).min(), let last = allSlices.map(\.endMs).max() {
            let hours = Double(last - first) / 3_600_000
            func series(_ value: @escaping (QualityFigures) -> Double?) -> [SVGChart.Series] {
                runs.map { run in
                    .init(
                        name: run.1, color: run.2,
                        points: run.0.slices.compactMap { s in
                            value(s.figures).map {
                                [Double(s.startMs + s.endMs) / 2 / 3_600_000 - Double(first) / 3_600_000, $0]
                            }
                        })
                }
            }
            for (title, label, value) in [
                ("Alert rate", "alerts / scored", { (f: QualityFigures) in f.alertRate }),
                ("Threshold", "mean live threshold", { (f: QualityFigures) in f.meanThreshold }),
                ("Drift: score PSI against the previous slice", "PSI", { (f: QualityFigures) in f.scorePsi }),
                ("ROC-AUC per slice", "ROC-AUC", { (f: QualityFigures) in f.rocAuc }),
            ] {
                let s = series(value)
                let ys = s.flatMap(\.points).map { $0[1] }
                let chart = SVGChart(
                    title: title, xLabel: "hours from the first event", yLabel: label, x: 0...max(hours, 1e-6),
                    y: min(0, ys.min() ?? 0)...max(ys.max() ?? 1, 1e-6) * 1.05)
                h += chart.lines(s)
            }
        }
        h += "</div>"

        for run in runs {
            h +=
                "<h2>Slices of event time: \(run.1)</h2><table><tr><th>start (UTC)</th><th>events</th><th>fraud</th><th>alert rate</th><th>ROC-AUC</th><th>AP</th><th>F1</th><th>threshold</th><th>PSI</th></tr>"
            for s in run.0.slices {
                let f = s.figures
                h +=
                    "<tr><td>\(JSONText.rfc3339(milliseconds: s.startMs))</td><td>\(f.events)</td><td>\(f.positives)</td><td>\(num(f.alertRate, 5))</td><td>\(num(f.rocAuc, 4))</td><td>\(num(f.averagePrecision, 4))</td><td>\(num(f.f1, 4))</td><td>\(num(f.meanThreshold, 4))</td><td>\(num(f.scorePsi, 4))</td></tr>"
            }
            h += "</table>"
        }

        for run in runs {
            for s in run.0.segments {
                h += "<h2>Segments by <code>\(HTML.escape(s.field))</code>: \(run.1)</h2>"
                h +=
                    "<table><tr><th>value</th><th>events</th><th>fraud</th><th>alerts</th><th>selection rate</th><th>precision</th><th>TPR</th><th>FPR</th></tr>"
                for g in s.groups {
                    h +=
                        "<tr><td>\(HTML.escape(g.value))</td><td>\(g.events)</td><td>\(g.positives)</td><td>\(g.alerts)</td><td>\(num(g.selectionRate, 5))</td><td>\(num(g.precision, 4))</td><td>\(num(g.truePositiveRate, 4))</td><td>\(num(g.falsePositiveRate, 5))</td></tr>"
                }
                h +=
                    "</table><p>Demographic parity difference \(num(s.demographicParityDifference, 5)), ratio \(num(s.demographicParityRatio, 4)); equalized odds difference \(num(s.equalizedOddsDifference, 5)), ratio \(num(s.equalizedOddsRatio, 4)).</p>"
            }
        }

        h += "<h2>Run manifests</h2>"
        for run in runs {
            let data = (try? JSONEncoder.snakeCase.encode(run.0.manifest)) ?? Data()
            h += "<h3>\(run.1)</h3><pre><code>\(HTML.escape(String(decoding: data, as: UTF8.self)))</code></pre>"
        }
        return h + "</body></html>\n"
    }

    static func num(_ v: Double?, _ digits: Int) -> String { EvaluationText.number(v, digits) }

    static func shares(_ counts: [Int]) -> [Double] {
        let total = counts.reduce(0, +)
        return counts.map { total > 0 ? Double($0) / Double(total) : 0 }
    }
}
