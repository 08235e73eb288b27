import Foundation
import Testing
import VigilTestKit

@testable import VigilEngine

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The admin endpoint as an attacker meets it (issue 19): every mutating endpoint refuses a
/// missing or wrong token, the token shows nowhere (responses, logs at debug level), a large
/// request body is refused before any route runs, and a reload reads only the engine's own file.
@Suite(
    .ownThread, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct AdminSurfaceTests {
    /// One request; the status code and the body.
    static func call(
        _ port: Int, _ method: String, _ path: String, token: String? = nil, body: Data? = nil
    ) async throws -> (Int, String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        request.httpBody = body
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    @Test func theAdminSurfaceRefusesWhatItShouldAndNeverShowsTheToken() async throws {
        let setup = try OperationsSetup("admin-surface", every: "1h", admin: true)
        let port = try #require(setup.adminPort)
        let data = EngineIntegrationTests.generated(5000, seed: 31)
        try setup.produce(data.events, keys: data.cards)
        let token = "tok-\(UUID().uuidString)"
        let wrong = "wrong-\(UUID().uuidString)"
        let run = try RunningVigil(
            ["run", "--topology", setup.file, "--workers", "2", "--no-watch", "--log-level", "debug"],
            environment: ["VIGIL_TEST_ADMIN_TOKEN": token])
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        let ready = await run.waitForStatus(port: port) { ($0.number("events") ?? 0) >= 5000 }
        #expect(ready != nil, "\(run.stderr.suffix(800))")

        // Every mutating endpoint: 401 without a token and with a wrong one.
        for path in ["/reload", "/checkpoint", "/models/promote?name=iforest", "/models/rollback"] {
            #expect(try await Self.call(port, "POST", path).0 == 401, "\(path) without a token")
            #expect(try await Self.call(port, "POST", path, token: wrong).0 == 401, "\(path) with a wrong token")
        }
        // A reload cannot be pointed elsewhere: it reads the file the engine started with.
        let (code, reply) = try await Self.call(port, "POST", "/reload?path=/etc/passwd&file=/etc/passwd", token: token)
        #expect(code == 200, "\(reply)")
        #expect(reply.contains("\"unchanged\"") && !reply.contains("passwd"), "\(reply)")
        // Bodies: refused over 64 KiB, before the token is even looked at.
        let big = Data(repeating: 0x41, count: 1 << 20)
        #expect(try await Self.call(port, "POST", "/reload", token: token, body: big).0 == 413)
        #expect(try await Self.call(port, "POST", "/checkpoint", body: big).0 == 413)
        #expect(try await Self.call(port, "POST", "/reload", token: token, body: Data("{}".utf8)).0 == 200)

        // The token in no response, and the engine still answers.
        for path in ["/", "/status", "/metrics", "/models", "/models/history", "/healthz", "/readyz"] {
            let (code, body) = try await Self.call(port, "GET", path)
            #expect(code == 200, "\(path)")
            #expect(!body.contains(token) && !body.contains(wrong), "\(path) shows a token")
        }
        run.signal(SIGTERM)
        #expect(run.waitExit(timeout: .seconds(120)) == 0, "\(run.stderr.suffix(800))")
        // Nor in the log, at debug level, nor the wrong one that was tried.
        let log = run.stderr + run.stdout
        #expect(log.contains("Admin endpoint"), "the log is there: \(log.prefix(300))")
        #expect(!log.contains(token) && !log.contains(wrong), "a token in the log")
    }

    /// An `admin` section without `listen` binds loopback.
    @Test func theAdminEndpointIsLoopbackUnlessConfigured() throws {
        let text = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let edited = lines.map { $0.hasPrefix("admin:") ? "admin: { token_env: VIGIL_ADMIN_TOKEN }" : $0 }
        #expect(edited != lines, "the shipped topology has an admin section")
        let topology = try TopologyLoader.parse(edited.joined(separator: "\n"))
        #expect(topology.admin?.host == "127.0.0.1" && topology.admin?.port == 9464)
    }
}
