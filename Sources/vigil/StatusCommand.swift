import ArgumentParser
import Foundation
import VigilEngine

/// `vigil status`: what a running engine is doing, from its admin endpoint, in a few lines.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running engine's state: readiness, rates, threshold, models, the newest alerts.",
        discussion: "Exit status: 0 ready, 3 answering but not ready, 1 no admin endpoint answers.")

    @OptionGroup var admin: ModelsCommand.AdminOption
    @Flag(help: "Print the JSON of /status as it is.") var json = false
    @Option(help: "Newest alerts to show.") var alerts = 5

    func run() async throws {
        let (base, _) = try admin.base()
        let body = try await ModelsCommand.call("GET", base + "/status", token: nil)
        let o = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
        if json {
            print(body, terminator: "")
        } else {
            print(Self.summary(o, alerts: alerts), terminator: "")
        }
        if o["ready"] as? Bool != true { throw ExitCode(3) }
    }

    static func summary(_ o: [String: Any], alerts shown: Int) -> String {
        func int(_ v: Any?) -> Int { (v as? NSNumber)?.intValue ?? 0 }
        func num(_ v: Any?, _ digits: Int) -> String {
            guard let d = (v as? NSNumber)?.doubleValue else { return "–" }
            return String(format: "%.\(digits)f", d)
        }
        let events = int(o["events"])
        let alerts = int(o["alerts"])
        let threshold = o["threshold"] as? [String: Any] ?? [:]
        let rates = o["rates_per_second"] as? [String: Any] ?? [:]
        let ready = o["ready"] as? Bool == true
        var out =
            "\(o["topology"] as? String ?? "?")  \(ready ? "ready" : "NOT READY")  (\(o["phase"] as? String ?? "?"))"
        out += ", up \(int(o["uptime_seconds"])) s, \(int(o["workers"])) workers\n"
        let rate = events > 0 ? String(format: "%.2f %%", 100 * Double(alerts) / Double(events)) : "–"
        out += "events \(events) read (\(num(rates["events"], 0))/s on average), alerts \(alerts) (\(rate)"
        out += ", target \(num((threshold["target_alert_rate"] as? NSNumber).map { $0.doubleValue * 100 }, 2)) %)"
        out += ", threshold \(num(threshold["current"], 4)) (\(threshold["mode"] as? String ?? "?"))\n"
        out +=
            "entities \(int(o["entities"])); partitions \((o["assignment"] as? [String] ?? []).joined(separator: ", "))\n"
        for m in o["models"] as? [[String: Any]] ?? [] {
            let q = m["quality"] as? [String: Any] ?? [:]
            out +=
                "model \(m["name"] as? String ?? "?") \(m["role"] as? String ?? "?") \(m["version"] as? String ?? "")"
            out += " weight \(num(q["ensemble_weight"] ?? m["weight"], 2)) ROC-AUC \(num(q["roc_auc"], 3))"
            out += " AP \(num(q["average_precision"], 3)) labelled \(int(q["labelled"]))\n"
        }
        if let c = o["last_checkpoint"] as? [String: Any] {
            let age = Date().timeIntervalSince1970 - Double(int(c["time_ms"])) / 1000
            out += "last checkpoint #\(int(c["sequence"])), \(Int(age)) s ago, \(int(c["bytes"]) / 1024) KiB\n"
        }
        if let r = o["last_reload"] as? [String: Any] {
            out +=
                "last reload \(r["outcome"] as? String ?? "?") (\(r["source"] as? String ?? "?"), \(r["time"] as? String ?? "?"))\n"
        }
        for a in (o["recent_alerts"] as? [[String: Any]] ?? []).prefix(shown) {
            let why = (a["features"] as? [[String: Any]] ?? []).map {
                "\($0["name"] as? String ?? "?")=\(num($0["value"], 2))"
            }
            out +=
                "alert \(a["event_time"] as? String ?? "") \(a["entity"] as? String ?? "") score \(num(a["score"], 4))"
            out += " \(why.joined(separator: ", ")) [\(a["alert_id"] as? String ?? "")]\n"
        }
        return out
    }
}
