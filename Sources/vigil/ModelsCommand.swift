import ArgumentParser
import Foundation
import VigilEngine

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `vigil models list|promote|rollback|history`: the model lifecycle of a running engine,
/// through its admin endpoint.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Live model quality, promotion and rollback on a running engine (through its admin endpoint).",
        subcommands: [List.self, Promote.self, Rollback.self, History.self])

    /// Where the admin endpoint is, and the token the mutating commands send.
    struct AdminOption: ParsableArguments {
        @Option(help: "Topology file: its admin.listen and admin.token_env / token_file are used.")
        var topology: String?

        @Option(help: "Admin endpoint, host:port (default: the topology's admin.listen, else 127.0.0.1:9464).")
        var admin: String?

        func base() throws -> (url: String, token: String?) {
            // Only the admin section: a reload must reach the engine even when the rest of the file
            // is broken (the engine then says what is wrong with it).
            let spec =
                try topology.map { path -> AdminSpec? in
                    guard FileManager.default.fileExists(atPath: path) else {
                        throw ValidationError("no topology file at \(path)")
                    }
                    return TopologyLoader.adminSpec(path: path)
                } ?? nil
            // An endpoint on every interface is reached on this host's loopback.
            let host = spec.map { ["0.0.0.0", "::", "[::]"].contains($0.host) ? "127.0.0.1" : $0.host }
            let address = admin ?? spec.map { "\(host!):\($0.port)" } ?? "127.0.0.1:9464"
            let token = AdminServer.token(spec ?? AdminSpec(host: "127.0.0.1", port: 9464))
            return ("http://\(address)", token)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each model's role and live quality: ROC-AUC, AP, and P/R/F1 and alert rate at its own threshold."
        )
        @OptionGroup var admin: AdminOption
        @Flag(help: "Print the JSON the endpoint returns.") var json = false

        func run() async throws {
            let (base, _) = try admin.base()
            let body = try await ModelsCommand.call("GET", base + "/models", token: nil)
            if json {
                print(body, terminator: "")
                return
            }
            let o = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
            print(ModelsCommand.table(o["models"] as? [[String: Any]] ?? []), terminator: "")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Make a shadow or canary (or a group of them) active; the models it replaces go on as shadows.")
        @OptionGroup var admin: AdminOption
        @Argument(help: "The model or group to promote.") var name: String
        @Option(help: "Who asks (audited; default $USER).") var by: String?
        @Option(help: "Why (audited).") var reason = ""

        func run() async throws {
            let (base, token) = try admin.base()
            let url =
                base + "/models/promote?"
                + ModelsCommand.query(["name": name, "by": by ?? ModelsCommand.user, "reason": reason])
            print(try await ModelsCommand.call("POST", url, token: token), terminator: "")
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Undo the last promotion (of NAME): the models it replaced are active again, warm. A canary named here stops alerting."
        )
        @OptionGroup var admin: AdminOption
        @Argument(help: "The promoted model or group, or a canary (default: the last promotion).") var name: String?
        @Option(help: "Who asks (audited; default $USER).") var by: String?
        @Option(help: "Why (audited).") var reason = ""

        func run() async throws {
            let (base, token) = try admin.base()
            let url =
                base + "/models/rollback?"
                + ModelsCommand.query(["name": name ?? "", "by": by ?? ModelsCommand.user, "reason": reason])
            print(try await ModelsCommand.call("POST", url, token: token), terminator: "")
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every promotion and rollback, oldest first.")
        @OptionGroup var admin: AdminOption

        func run() async throws {
            let (base, _) = try admin.base()
            print(try await ModelsCommand.call("GET", base + "/models/history", token: nil), terminator: "")
        }
    }

    static var user: String { ProcessInfo.processInfo.environment["USER"] ?? "cli" }

    static func query(_ items: [String: String]) -> String {
        var c = URLComponents()
        c.queryItems = items.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        return c.percentEncodedQuery ?? ""
    }

    /// The response body; an error naming the status when it is not 2xx.
    static func call(_ method: String, _ url: String, token: String?) async throws -> String {
        let (status, body) = try await request(method, url, token: token)
        guard (200..<300).contains(status) else {
            printError(
                "error: \(method) \(URL(string: url)?.path ?? url) answered \(status): \(body.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
            throw ExitCode(1)
        }
        return body
    }

    /// The status and body of one request; exits 1 with a message when nothing answers.
    static func request(_ method: String, _ url: String, token: String?) async throws -> (status: Int, body: String) {
        guard let u = URL(string: url) else { throw ValidationError("not a URL: \(url)") }
        var request = URLRequest(url: u)
        request.httpMethod = method
        request.timeoutInterval = 120
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response): (Data, URLResponse)
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            printError("error: no admin endpoint answers at \(url): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// The models as a fixed-width table.
    static func table(_ models: [[String: Any]]) -> String {
        let columns = [
            "name", "role", "version", "labelled", "roc_auc", "average_precision", "precision", "recall", "f1",
            "alert_rate", "alert_overlap", "rank_correlation",
        ]
        let heads = [
            "MODEL", "ROLE", "VERSION", "LABELLED", "ROC-AUC", "AP", "PRECISION", "RECALL", "F1", "ALERT RATE",
            "OVERLAP", "RANK CORR",
        ]
        func cell(_ v: Any?) -> String {
            switch v {
            case let s as String: return s
            case let n as NSNumber:
                let d = n.doubleValue
                return d == d.rounded() && abs(d) < 1e12 ? String(Int64(d)) : String(format: "%.4f", d)
            default: return "-"
            }
        }
        var rows = [heads]
        for m in models {
            var row = columns.map { cell(m[$0]) }
            if let share = m["share"] as? NSNumber { row[1] += String(format: " %.0f%%", share.doubleValue * 100) }
            rows.append(row)
        }
        let widths = heads.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { c, v in v.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
