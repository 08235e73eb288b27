import Foundation

/// The terminal form of an evaluation: the overall figures side by side, then per slice and
/// per segment, then the gate's checks.
public enum EvaluationText {
    public static func render(_ e: Evaluation, checks: [QualityGate.Check]?) -> String {
        var out: [String] = []
        let c = e.candidate
        let b = e.baseline
        out.append("candidate \(c.name) (\(c.manifest.topology.path), \(c.manifest.topology.configHash.prefix(12)))")
        if let b {
            out.append(
                "baseline  \(b.name) (\(b.manifest.topology.path), \(b.manifest.topology.configHash.prefix(12)))")
        }
        out.append(
            "input \(c.manifest.input.path) (sha256 \(c.manifest.input.sha256.prefix(12))), \(c.overall.events) events")
        out.append("")
        var rows = [["metric", "candidate"] + (b == nil ? [] : ["baseline", "change"])]
        func row(_ name: String, _ key: KeyPath<QualityFigures, Double?>, digits: Int = 4) {
            let cv = c.overall[keyPath: key]
            var r = [name, number(cv, digits)]
            if let b {
                let bv = b.overall[keyPath: key]
                r += [number(bv, digits), cv.flatMap { x in bv.map { y in signed(x - y, digits) } } ?? "n/a"]
            }
            rows.append(r)
        }
        func count(_ name: String, _ key: KeyPath<QualityFigures, Int>) {
            var r = [name, String(c.overall[keyPath: key])]
            if let b {
                r += [String(b.overall[keyPath: key]), String(c.overall[keyPath: key] - b.overall[keyPath: key])]
            }
            rows.append(r)
        }
        count("events", \.events)
        count("scored", \.scored)
        count("labelled", \.labelled)
        count("fraud", \.positives)
        count("alerts", \.alerts)
        row("roc_auc", \.rocAuc)
        row("average_precision", \.averagePrecision)
        row("precision", \.precision)
        row("recall", \.recall)
        row("f1", \.f1)
        row("alert_rate", \.alertRate, digits: 5)
        row("alerts_per_day", \.alertsPerDay, digits: 1)
        row("dead_letter_share", \.deadLetterShare, digits: 5)
        row("mean_threshold", \.meanThreshold)
        row("events_per_second", \.eventsPerSecond, digits: 0)
        out += table(rows)
        if let newly = e.newlyDeadLettered { out.append("dead-lettered by the candidate only: \(newly)") }

        out.append("")
        out.append("by slice of event time (candidate\(b == nil ? "" : "; baseline ROC-AUC alongside")):")
        var slices = [
            ["start (UTC)", "events", "fraud", "alert_rate", "roc_auc", "avg_prec", "f1", "threshold", "psi"]
        ]
        if b != nil { slices[0].append("base_auc") }
        for (k, s) in c.slices.enumerated() {
            let f = s.figures
            var r = [
                JSONText.rfc3339(milliseconds: s.startMs), String(f.events), String(f.positives),
                number(f.alertRate, 5), number(f.rocAuc, 4), number(f.averagePrecision, 4), number(f.f1, 4),
                number(f.meanThreshold, 4), number(f.scorePsi, 4),
            ]
            if let b { r.append(k < b.slices.count ? number(b.slices[k].figures.rocAuc, 4) : "n/a") }
            slices.append(r)
        }
        out += table(slices)

        for s in c.segments {
            out.append("")
            out.append("by \(s.field) (candidate, labelled events; the prediction is the alert):")
            var rows = [["value", "events", "fraud", "alerts", "selection", "precision", "tpr", "fpr"]]
            for g in s.groups {
                rows.append([
                    g.value, String(g.events), String(g.positives), String(g.alerts), number(g.selectionRate, 5),
                    number(g.precision, 4), number(g.truePositiveRate, 4), number(g.falsePositiveRate, 5),
                ])
            }
            out += table(rows)
            out.append(
                "  demographic parity difference \(number(s.demographicParityDifference, 5)), ratio \(number(s.demographicParityRatio, 4)); equalized odds difference \(number(s.equalizedOddsDifference, 5)), ratio \(number(s.equalizedOddsRatio, 4))"
            )
        }

        if let checks {
            out.append("")
            let failed = checks.filter { !$0.passed }
            out.append(
                failed.isEmpty
                    ? "gate: PASSED (\(checks.count) checks)"
                    : "gate: FAILED (\(failed.count) of \(checks.count) checks)")
            for check in checks {
                out.append(
                    "  \(check.passed ? "pass" : "FAIL") \(check.metric): \(check.rule); candidate \(number(check.candidate, 6)), baseline \(number(check.baseline, 6))"
                )
            }
        }
        return out.joined(separator: "\n")
    }

    static func number(_ v: Double?, _ digits: Int) -> String {
        guard let v else { return "n/a" }
        return String(format: "%.\(digits)f", v)
    }

    static func signed(_ v: Double, _ digits: Int) -> String { String(format: "%+.\(digits)f", v) }

    /// Columns padded to their widest cell, the first left-aligned and the rest right-aligned.
    static func table(_ rows: [[String]]) -> [String] {
        guard let width = rows.map(\.count).max() else { return [] }
        let widths = (0..<width).map { k in rows.map { k < $0.count ? $0[k].count : 0 }.max() ?? 0 }
        return rows.map { r in
            "  "
                + r.enumerated().map { k, cell in
                    let pad = String(repeating: " ", count: widths[k] - cell.count)
                    return k == 0 ? cell + pad : pad + cell
                }.joined(separator: "  ")
        }
    }
}
