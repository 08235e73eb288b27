import ArgumentParser
import Foundation
import VigilEngine

/// `vigil reload`: asks a running engine to reload its topology file now (as the file watcher
/// would), and says what it did.
struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract: "Make a running engine reload its topology file now, and show the outcome.",
        discussion:
            "Needs the admin token (the topology's admin.token_env or token_file). Exit status: 0 applied or unchanged, 2 refused or invalid (the running configuration stays), 1 no endpoint or not authorised."
    )

    @OptionGroup var admin: ModelsCommand.AdminOption

    func run() async throws {
        let (base, token) = try admin.base()
        guard let token else {
            printError("error: no admin token: set the topology's admin.token_env variable or token_file")
            throw ExitCode(1)
        }
        let (status, body) = try await ModelsCommand.request("POST", base + "/reload", token: token)
        let o = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        let outcome = o["outcome"] as? String
        guard let outcome else {
            printError(
                "error: POST /reload answered \(status): \(body.trimmingCharacters(in: .whitespacesAndNewlines))")
            throw ExitCode(1)
        }
        var line = "reload: \(outcome)"
        if let reason = o["reason"] as? String, !reason.isEmpty { line += ": \(reason)" }
        for c in o["changes"] as? [[String: Any]] ?? [] {
            line += "\n  \(c["path"] as? String ?? "?"): \(c["from"] as? String ?? "") → \(c["to"] as? String ?? "")"
        }
        if outcome == "applied" || outcome == "unchanged" {
            print(line)
        } else {
            printError(line)
            throw ExitCode(2)
        }
    }
}
