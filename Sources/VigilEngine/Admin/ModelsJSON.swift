import Foundation
import VigilModels

/// The JSON of `/models`, `/models/history` and the `models` member of `/status`: each model's
/// role and live quality, and the promotions and rollbacks so far.
public enum ModelsJSON {
    /// One model's figures; undefined ones are null.
    static func object(_ q: ModelQuality) -> [String: Any] {
        func v(_ x: Double?) -> Any { x.map { $0 as Any } ?? NSNull() }
        var o: [String: Any] = [
            "name": q.name, "version": q.version, "role": q.role.rawValue, "labelled": q.labelled,
            "positives": q.positives, "roc_auc": v(q.rocAUC), "average_precision": v(q.averagePrecision),
            "precision": v(q.precision), "recall": v(q.recall), "f1": v(q.f1), "alert_rate": v(q.alertRate),
            "decided": q.decided, "alert_overlap": v(q.alertOverlap), "rank_correlation": v(q.rankCorrelation),
        ]
        if let share = q.share { o["share"] = share }
        if let weight = q.ensembleWeight { o["ensemble_weight"] = weight }
        return o
    }

    /// One experiment arm's figures; undefined ones are null.
    static func arm(_ a: ArmQuality) -> [String: Any] {
        func v(_ x: Double?) -> Any { x.map { $0 as Any } ?? NSNull() }
        let r = a.report
        return [
            "arm": a.arm, "share": a.share, "events": a.events, "alerts": a.alerts, "labelled": r.events,
            "positives": r.positives, "roc_auc": v(r.rocAUC), "average_precision": v(r.averagePrecision),
            "precision": v(r.precision), "recall": v(r.recall), "f1": v(r.f1),
        ]
    }

    static func history(_ events: [RolloutEvent]) -> [Any] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return events.compactMap { e in (try? encoder.encode(e)).flatMap { try? JSONSerialization.jsonObject(with: $0) }
        }
    }

    /// `/models`: the models, the guard's last verdicts and the history.
    public static func render(
        _ models: [ModelQuality], history: [RolloutEvent], verdicts: [String: GuardVerdict] = [:]
    ) -> String {
        text(["models": models.map(object), "history": Self.history(history), "guard": verdictObjects(verdicts)])
    }

    static func verdictObjects(_ verdicts: [String: GuardVerdict]) -> [String: Any] {
        verdicts.mapValues { v in
            [
                "version": v.version, "role": v.role, "labelled": v.labelled, "candidate": v.candidate ?? NSNull(),
                "baseline": v.baseline ?? NSNull(), "against": v.against, "passes": v.passes,
                "judged": v.judged, "passed": v.passed,
            ] as [String: Any]
        }
    }

    static func text(_ o: Any) -> String {
        let data =
            (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
