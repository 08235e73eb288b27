import Foundation
import Testing
import VigilTestKit

#if canImport(Glibc)
    import Glibc
#endif

/// Network faults between the engine and its broker, made by a proxy the test drives
/// (`FaultProxy`): 200 ms of latency on every read, every connection cut three times, then every
/// connection half-open for 20 s (open, and nothing passes, ever again: the clients must notice by
/// themselves). The engine raises exactly the alerts of an uninterrupted run.
@Suite(.ownThread)
struct ProxyFaultTests {
    @Test func latencyCutAndHalfOpenConnectionsCostNoAlert() async throws {
        let n = 40_000
        let data = EngineIntegrationTests.generated(n, seed: 33)
        let proxyPort = try PrivateBroker.freePort()
        let broker = try PrivateBroker(advertisedPort: proxyPort)
        defer { broker.stop() }
        let proxy = try FaultProxy(port: proxyPort, target: broker.port)
        defer { proxy.stop() }
        let reference = try OperationsSetup("proxy-ref", targetRate: "0.01", brokers: proxy.address)
        let faulted = try OperationsSetup(
            "proxy", source: reference.source, every: "2s", admin: true, targetRate: "0.01", brokers: proxy.address)
        let port = try #require(faulted.adminPort)
        func part(_ k: Int) -> (events: [[UInt8]], cards: [String]) {
            let range = (k * n / 4)..<((k + 1) * n / 4)
            return (Array(data.events[range]), Array(data.cards[range]))
        }
        let first = part(0)
        try await offPool { try reference.produce(first.events, keys: first.cards) }

        let run = try RunningVigil(OperationsTests.runArguments(faulted))
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        let started = await run.waitForStatus(port: port) { ($0.number("events") ?? 0) >= 5_000 }
        #expect(started != nil, "\(run.stderr.suffix(3000))")

        // Latency: a quarter of the stream arrives while every read waits 200 ms.
        proxy.set(.delay(.milliseconds(200)))
        let second = part(1)
        try await offPool { try reference.produce(second.events, keys: second.cards) }
        try await Task.sleep(for: .seconds(5))
        proxy.set(.pass)

        // Cuts: every connection dropped three times, two seconds apart, while a quarter arrives.
        let third = part(2)
        let producing = Task {
            try await offPool { try reference.produce(third.events, keys: third.cards, rate: 2_000) }
        }
        for _ in 0..<3 {
            try await Task.sleep(for: .seconds(2))
            proxy.dropConnections()
        }
        try await producing.value

        // Half-open: for 20 s nothing passes, and the connections open then stay dead.
        proxy.set(.halfOpen)
        try await Task.sleep(for: .seconds(20))
        proxy.set(.pass)
        let stuck = proxy.counts.stuck
        let halfOpenEnd = ContinuousClock.now
        let fourth = part(3)
        try await offPool { try reference.produce(fourth.events, keys: fourth.cards) }
        let caughtUp = await run.waitForStatus(port: port, timeout: .seconds(300)) {
            ($0.number("events") ?? 0) >= Double(n) && ($0.number("ready") ?? 0) == 1
        }
        let recovery = ContinuousClock.now - halfOpenEnd
        #expect(caughtUp != nil, "the engine reads to the end after the faults: \(run.stderr.suffix(3000))")
        #expect(run.process.isRunning, "\(run.stderr.suffix(3000))")
        run.signal(SIGTERM)
        let status = try await offPool { run.waitExit(timeout: .seconds(120)) }
        #expect(status == 0, "\(run.stderr.suffix(3000))")

        let c = try await AlertComparison.uninterrupted(reference, against: faulted)
        #expect(c.expected > 100, "too few alerts to compare: \(c.expected)")
        #expect(c.missing == 0 && c.extra == 0, "missing \(c.missing) and extra \(c.extra) of \(c.expected) alerts")
        let counts = proxy.counts
        print(
            "[proxy] \(n) events: \(c.expected) alerts expected, \(c.missing) missing, \(c.extra) extra; \(counts.accepted) connections, \(stuck) left half-open (\(counts.discardedBytes) bytes thrown away); read to the end \(recovery) after the half-open phase"
        )
    }
}
