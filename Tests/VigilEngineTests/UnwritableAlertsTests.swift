import Foundation
import Testing
import VigilKafka
import VigilTestKit

#if canImport(Glibc)
    import Glibc
#endif

/// The alerts topic stops taking writes (the proxy answers every Produce request to it with
/// TOPIC_AUTHORIZATION_FAILED, as a broker does when an ACL is revoked): the engine goes on
/// reading, its committed offsets stop before the first alert it could not publish, `/status`
/// names the cause, and once the topic takes writes again it publishes what waited, commits to
/// the end, and has raised exactly the alerts of an uninterrupted run.
@Suite(.ownThread)
struct UnwritableAlertsTests {
    @Test func offsetsStopWhileTheAlertsTopicRefusesWritesAndNoAlertIsLost() async throws {
        let n = 40_000
        let half = n / 2
        let data = EngineIntegrationTests.generated(n, seed: 37)
        let proxyPort = try PrivateBroker.freePort()
        let broker = try PrivateBroker(advertisedPort: proxyPort)
        defer { broker.stop() }
        let proxy = try FaultProxy(port: proxyPort, target: broker.port)
        defer { proxy.stop() }
        let reference = try OperationsSetup("unwritable-ref", targetRate: "0.01", brokers: proxy.address)
        let faulted = try OperationsSetup(
            "unwritable", source: reference.source, every: "2s", admin: true, targetRate: "0.01",
            brokers: proxy.address)
        let port = try #require(faulted.adminPort)
        try await offPool {
            try reference.produce(Array(data.events[..<half]), keys: Array(data.cards[..<half]))
        }

        let run = try RunningVigil(OperationsTests.runArguments(faulted))
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        let committedHalf = await faulted.waitForCommitted(atLeast: Int64(half), timeout: .seconds(180))
        #expect(committedHalf == Int64(half), "\(run.stderr.suffix(3000))")

        // The alerts topic refuses writes while the second half arrives and is read.
        proxy.set(.refuseWrites(topic: faulted.alerts))
        try await offPool {
            try reference.produce(Array(data.events[half...]), keys: Array(data.cards[half...]))
        }
        let readAll = await run.waitForStatus(port: port, timeout: .seconds(180)) {
            ($0.number("events") ?? 0) >= Double(n)
        }
        #expect(readAll != nil, "the engine goes on reading: \(run.stderr.suffix(3000))")
        try await Task.sleep(for: .seconds(8))
        let stalled = try await offPool { try faulted.committed() }
        try await Task.sleep(for: .seconds(6))
        let stillStalled = try await offPool { try faulted.committed() }
        let status = await AdminClient.status(port: port) ?? [:]
        let outputs = status["outputs"] as? [String: any Sendable] ?? [:]
        let held = outputs.number("held") ?? 0
        let failing = outputs["failing"] as? [[String: any Sendable]] ?? []
        let cause = failing.first?["error"] as? String ?? ""
        let warnings = run.stderr.components(separatedBy: "Outputs not published").count - 1
        let refused = proxy.counts.refusedWrites
        #expect(refused > 0, "the proxy refused no write")
        #expect(
            stalled == stillStalled && (Int64(half)..<Int64(n)).contains(stalled),
            "committed \(stalled), then \(stillStalled): the offsets stop before the first unpublished alert")
        #expect(
            held > 0 && failing.count == 1 && failing.first?["topic"] as? String == faulted.alerts
                && cause.lowercased().contains("authorization"),
            "/status outputs: \(outputs)")
        #expect(warnings == 1, "one warning when the failures start, not one per attempt: \(warnings)")
        #expect(run.process.isRunning, "\(run.stderr.suffix(3000))")

        // Writable again: what waited is published and the offsets reach the end.
        proxy.set(.pass)
        let writable = ContinuousClock.now
        let committedAll = await faulted.waitForCommitted(atLeast: Int64(n), timeout: .seconds(120))
        #expect(committedAll == Int64(n), "\(run.stderr.suffix(3000))")
        let recovery = ContinuousClock.now - writable
        let recovered = await AdminClient.status(port: port) ?? [:]
        let after = recovered["outputs"] as? [String: any Sendable] ?? [:]
        let heldAfter = after.number("held")
        let failingAfter = (after["failing"] as? [Any])?.count
        #expect(heldAfter == 0 && failingAfter == 0, "/status outputs after: \(after)")
        #expect(run.stderr.contains("Outputs are published again"), "\(run.stderr.suffix(3000))")
        print(run.stderr.split(separator: "\n").filter { $0.contains("Outputs") }.joined(separator: "\n"))
        run.signal(SIGTERM)
        let exit = try await offPool { run.waitExit(timeout: .seconds(90)) }
        #expect(exit == 0, "\(run.stderr.suffix(3000))")

        let c = try await AlertComparison.uninterrupted(reference, against: faulted)
        #expect(c.expected > 100, "too few alerts to compare: \(c.expected)")
        #expect(
            c.missing == 0 && c.extra == 0 && c.repeated == 0,
            "missing \(c.missing), extra \(c.extra) and repeated \(c.repeated) of \(c.expected) alerts")
        print(
            "[unwritable] \(n) events: \(refused) writes refused, offsets held at \(stalled) of \(n) while failing (cause: \(cause), \(Int(held)) held), committed to the end \(recovery) after the topic took writes again; \(c.expected) alerts expected, \(c.missing) missing, \(c.extra) extra, \(c.repeated) repeated"
        )
    }
}
